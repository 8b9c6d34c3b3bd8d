import { describe, expect, it } from "vitest";
import { PublishBatchRequest } from "../../proto/gen/ratatoskr.js";
import { ConsumeRequest, ConsumeResponse, PublishRequest, PublishStreamRequest, PublishStreamResponse } from "../../proto/gen/ratatoskr/v2/broker.js";
import { Message as V1Message } from "../../proto/gen/ratatoskr.js";
import {
  decodeConsumeResponse,
  decodePublishStreamAck,
  decodeV1MessagePayload,
  encodeAckRequest,
  encodeV1PublishBatch,
  encodeV2Publish,
  encodeV2PublishStream,
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

  it("decodes a generated ConsumeResponse to ack ids, attempts and payload views", () => {
    const encoded = Buffer.from(
      ConsumeResponse.encode({
        deliveries: payloads.map((p, i) => ({
          ackId: 2n ** 40n + BigInt(i),
          attempt: i + 1,
          message: { id: `id-${i}`, topic: "t", sequence: BigInt(1000 + i), payload: p, attributes: { k: "v" }, publishTimeMs: 1_700_000_000_000n },
        })),
      }).finish(),
    );
    const batch = decodeConsumeResponse(encoded);
    expect(batch.count).toBe(4);
    expect(batch.ackIds).toEqual([0n, 1n, 2n, 3n].map((i) => 2n ** 40n + i));
    expect(batch.attempts).toEqual([1, 2, 3, 4]);
    expect(batch.payloads).toEqual(payloads);
  });

  it("decodes ack ids over the whole int64 range", () => {
    const encoded = Buffer.from(ConsumeResponse.encode({ deliveries: INT64.map((ackId) => ({ ackId, attempt: 1, message: undefined })) }).finish());
    expect(decodeConsumeResponse(encoded).ackIds).toEqual(INT64);
  });

  it("encodes acks as a ConsumeRequest the generated decoder reads back, over the whole int64 range", () => {
    const ids = INT64;
    const req = ConsumeRequest.decode(encodeAckRequest(ids));
    expect(req.ackIds).toEqual(ids);
    expect(req.start).toBeUndefined();
    expect(req.nackIds).toEqual([]);
  });

  it("decodes a v1 Message payload", () => {
    const m = Buffer.from(V1Message.encode({ id: "x", topic: "t", payload: Buffer.alloc(200, 3), metadata: { a: "b" }, timestamp: 5n }).finish());
    expect(decodeV1MessagePayload(m)).toEqual(Buffer.alloc(200, 3));
  });
});
