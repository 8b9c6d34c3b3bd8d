import { describe, expect, it } from "vitest";
import { PublishBatchRequest } from "../../proto/gen/ratatoskr.js";
import { ConsumeRequest, ConsumeResponse, PublishRequest } from "../../proto/gen/ratatoskr/v2/broker.js";
import { Message as V1Message } from "../../proto/gen/ratatoskr.js";
import { decodeConsumeResponse, decodeV1MessagePayload, encodeAckRequest, encodeV1PublishBatch, encodeV2Publish } from "./wire.js";

const payloads = [Buffer.from("a"), Buffer.alloc(300, 7), Buffer.alloc(0), Buffer.from("zz")];

describe("hand-rolled wire codec", () => {
  it("encodes a v2 Publish the generated decoder reads back", () => {
    const req = PublishRequest.decode(encodeV2Publish("topic-é", payloads));
    expect(req.topic).toBe("topic-é");
    expect(req.messages.map((m) => Buffer.from(m.payload))).toEqual(payloads);
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
