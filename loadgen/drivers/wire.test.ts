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

  it("encodes a v2 PublishStream request the generated decoder reads back", () => {
    for (const requestId of [0, 1, 127, 128, 2 ** 40 + 3]) {
      const req = PublishStreamRequest.decode(encodeV2PublishStream(requestId, "t", payloads));
      expect(req.requestId).toBe(requestId);
      expect(req.topic).toBe("t");
      expect(req.messages.map((m) => Buffer.from(m.payload))).toEqual(payloads);
    }
  });

  it("reads request id and status from a generated PublishStreamResponse, skipping the results", () => {
    const ok = PublishStreamResponse.encode({
      requestId: 2 ** 33 + 1,
      results: [{ messageId: "m", sequence: 2 ** 45, duplicate: true }],
      publishTimeMs: 1_700_000_000_000,
      errorCode: 0,
      errorMessage: "",
    }).finish();
    expect(decodePublishStreamAck(Buffer.from(ok))).toEqual({ requestId: 2 ** 33 + 1, errorCode: 0, errorMessage: "" });
    const failed = PublishStreamResponse.encode({ requestId: 7, results: [], publishTimeMs: 0, errorCode: 8, errorMessage: "budget é full" }).finish();
    expect(decodePublishStreamAck(Buffer.from(failed))).toEqual({ requestId: 7, errorCode: 8, errorMessage: "budget é full" });
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
          ackId: 2 ** 40 + i,
          attempt: i + 1,
          message: { id: `id-${i}`, topic: "t", sequence: 1000 + i, payload: p, attributes: { k: "v" }, publishTimeMs: 1_700_000_000_000 },
        })),
      }).finish(),
    );
    const batch = decodeConsumeResponse(encoded);
    expect(batch.count).toBe(4);
    expect(batch.ackIds).toEqual([0, 1, 2, 3].map((i) => 2 ** 40 + i));
    expect(batch.attempts).toEqual([1, 2, 3, 4]);
    expect(batch.payloads).toEqual(payloads);
  });

  it("encodes acks as a ConsumeRequest the generated decoder reads back", () => {
    const ids = [1, 127, 128, 300, 2 ** 40 + 5, 2 ** 52];
    const req = ConsumeRequest.decode(encodeAckRequest(ids));
    expect(req.ackIds).toEqual(ids);
    expect(req.start).toBeUndefined();
    expect(req.nackIds).toEqual([]);
  });

  it("decodes a v1 Message payload", () => {
    const m = Buffer.from(V1Message.encode({ id: "x", topic: "t", payload: Buffer.alloc(200, 3), metadata: { a: "b" }, timestamp: 5 }).finish());
    expect(decodeV1MessagePayload(m)).toEqual(Buffer.alloc(200, 3));
  });
});
