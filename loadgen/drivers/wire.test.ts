import { describe, expect, it } from "vitest";
import { PublishBatchRequest } from "../../proto/gen/ratatoskr.js";
import { ConsumeRequest, ConsumeResponse, PublishRequest, PublishStreamRequest, PublishStreamResponse } from "../../proto/gen/ratatoskr/v2/broker.js";
import { Message as V1Message } from "../../proto/gen/ratatoskr.js";
import {
  AckRequestBuilder,
  decodePublishStreamAck,
  decodeV1MessagePayload,
  encodeV1PublishBatch,
  encodeV2Publish,
  encodeV2PublishStream,
  readConsumeResponse,
  type DeliveryVisitor,
} from "./wire.js";

const payloads = [Buffer.from("a"), Buffer.alloc(300, 7), Buffer.alloc(0), Buffer.from("zz")];

describe("hand-rolled wire codec", () => {
  it("encodes a v2 Publish the generated decoder reads back", () => {
    const req = PublishRequest.decode(encodeV2Publish("topic-é", payloads));
    expect(req.topic).toBe("topic-é");
    expect(req.messages.map((m) => Buffer.from(m.payload))).toEqual(payloads);
  });

  // The uint64 range's edges: below and above 2^53 (where numbers stop being exact), 2^63, 2^64−1.
  const UINT64 = [0n, 1n, 127n, 128n, 2n ** 40n + 3n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 56n - 1n, 2n ** 56n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];
  const INT64 = [...UINT64.filter((v) => v < 2n ** 63n), -1n, -(2n ** 63n)];

  it("encodes a v2 PublishStream request the generated decoder reads back, over the whole uint64 range", () => {
    for (const requestId of UINT64) {
      const req = PublishStreamRequest.decode(encodeV2PublishStream(requestId, "t", payloads));
      expect(req.requestId).toBe(requestId);
      expect(req.topic).toBe("t");
      expect(req.messages.map((m) => Buffer.from(m.payload))).toEqual(payloads);
    }
  });

  it("reads request id and status from a generated PublishStreamResponse, skipping the results, over the whole uint64 range", () => {
    for (const requestId of UINT64) {
      const ok = PublishStreamResponse.encode({
        requestId,
        results: [{ messageId: "m", sequence: 2n ** 45n, duplicate: true }],
        publishTimeMs: 1_700_000_000_000n,
        errorCode: 0,
        errorMessage: "",
      }).finish();
      expect(decodePublishStreamAck(Buffer.from(ok))).toEqual({ requestId, errorCode: 0, errorMessage: "" });
    }
    const failed = PublishStreamResponse.encode({ requestId: 7n, results: [], publishTimeMs: 0n, errorCode: 8, errorMessage: "budget é full" }).finish();
    expect(decodePublishStreamAck(Buffer.from(failed))).toEqual({ requestId: 7n, errorCode: 8, errorMessage: "budget é full" });
  });

  it("encodes a v1 PublishBatch the generated decoder reads back", () => {
    const req = PublishBatchRequest.decode(encodeV1PublishBatch("t1", payloads));
    expect(req.topic).toBe("t1");
    expect(req.messages.map((m) => [m.topic, Buffer.from(m.payload)])).toEqual(payloads.map((p) => ["", p]));
  });

  /** What readConsumeResponse hands its visitor, copied out; the ack ranges gathered into `acks`. */
  function read(buf: Buffer, start = 0, end = buf.length) {
    const acks = new AckRequestBuilder();
    const got: { attempt: number; payload: Buffer }[] = [];
    const visitor: DeliveryVisitor = {
      delivery(b, ackStart, ackEnd, attempt, payloadStart, payloadEnd) {
        got.push({ attempt, payload: Buffer.from(b.subarray(payloadStart, payloadEnd)) });
        acks.add(b, ackStart, ackEnd);
      },
    };
    const count = readConsumeResponse(buf, start, end, visitor);
    return { count, got, acks };
  }

  /** A framed ack message as the broker reads it: the gRPC prefix checked, the ConsumeRequest decoded. */
  function unframe(framed: Buffer): ConsumeRequest {
    expect(framed[0]).toBe(0);
    expect(framed.readUInt32BE(1)).toBe(framed.length - 5);
    return ConsumeRequest.decode(framed.subarray(5));
  }

  it("reads a generated ConsumeResponse's deliveries as ranges of the frame, skipping the fields it does not read", () => {
    const encoded = Buffer.from(
      ConsumeResponse.encode({
        deliveries: payloads.map((p, i) => ({
          ackId: 2n ** 40n + BigInt(i),
          attempt: i + 1,
          message: { id: `id-${i}`, topic: "t", sequence: BigInt(1000 + i), payload: p, attributes: { k: "v" }, publishTimeMs: 1_700_000_000_000n },
        })),
      }).finish(),
    );
    // Inside a larger buffer, as a message sits in a socket read: only its range is read.
    const inside = Buffer.concat([Buffer.from([1, 2, 3]), encoded, Buffer.from([9, 9])]);
    const { count, got, acks } = read(inside, 3, 3 + encoded.length);
    expect(count).toBe(4);
    expect(got.map((d) => d.attempt)).toEqual([1, 2, 3, 4]);
    expect(got.map((d) => d.payload)).toEqual(payloads);
    expect(unframe(acks.take()!).ackIds).toEqual([0n, 1n, 2n, 3n].map((i) => 2n ** 40n + i));
  });

  it("acks the ids it read over the whole int64 range, as a ConsumeRequest the generated decoder reads back", () => {
    const encoded = Buffer.from(ConsumeResponse.encode({ deliveries: INT64.map((ackId) => ({ ackId, attempt: 1, message: undefined })) }).finish());
    const { count, got, acks } = read(encoded);
    expect(count).toBe(INT64.length);
    expect(got.every((d) => d.payload.length === 0)).toBe(true);
    const req = unframe(acks.take()!);
    expect(req.ackIds).toEqual(INT64);
    expect(req.start).toBeUndefined();
    expect(req.nackIds).toEqual([]);
  });

  it("reads random ConsumeResponses exactly, and its ack buffer grows, empties on take and clears", () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const acks = new AckRequestBuilder();
    expect(acks.take()).toBeUndefined();
    for (let round = 0; round < 50; round++) {
      const deliveries = Array.from({ length: 1 + rand(120) }, () => ({
        ackId: BigInt.asIntN(64, (BigInt(rand(2 ** 30)) << BigInt(rand(40))) ^ BigInt(rand(2 ** 30))),
        attempt: 1 + rand(5),
        message: { id: "m", topic: "t", sequence: BigInt(rand(1e9)), payload: Buffer.alloc(rand(300), rand(256)), attributes: {}, publishTimeMs: 0n },
      }));
      const encoded = Buffer.from(ConsumeResponse.encode({ deliveries }).finish());
      const got: { attempt: number; payload: Buffer }[] = [];
      readConsumeResponse(encoded, 0, encoded.length, {
        delivery(b, ackStart, ackEnd, attempt, payloadStart, payloadEnd) {
          got.push({ attempt, payload: Buffer.from(b.subarray(payloadStart, payloadEnd)) });
          acks.add(b, ackStart, ackEnd);
        },
      });
      expect(got).toEqual(deliveries.map((d) => ({ attempt: d.attempt, payload: d.message.payload })));
      expect(acks.count).toBe(deliveries.length);
      if (round % 7 === 6) {
        acks.clear(); // a stream that ended: its ids are dropped
        expect(acks.take()).toBeUndefined();
        continue;
      }
      expect(unframe(acks.take()!).ackIds).toEqual(deliveries.map((d) => d.ackId));
      expect(acks.count).toBe(0);
    }
  });

  it("decodes a v1 Message payload", () => {
    const m = Buffer.from(V1Message.encode({ id: "x", topic: "t", payload: Buffer.alloc(200, 3), metadata: { a: "b" }, timestamp: 5n }).finish());
    expect(decodeV1MessagePayload(m)).toEqual(Buffer.alloc(200, 3));
  });
});
