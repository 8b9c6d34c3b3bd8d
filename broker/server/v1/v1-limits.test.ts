import { randomBytes } from "node:crypto";
import { connect, constants as h2 } from "node:http2";
import { credentials, makeGenericClientConstructor, status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startV1TestServer, uniqueName, v1Subscribe, type V1TestServer } from "../../../test/support/index.js";

const MAX_MESSAGE_BYTES = 2 * 1024 * 1024;
let s: V1TestServer;
beforeAll(async () => {
  s = await startV1TestServer({ config: { maxMessageBytes: MAX_MESSAGE_BYTES } });
});
afterAll(async () => {
  await s.close();
});

describe("v1 limits", () => {
  it("round-trips a 1 MiB payload byte for byte", async () => {
    const topic = uniqueName("big");
    await s.api.createTopic({ name: topic });
    const sub = await v1Subscribe(s.client, topic);
    const payload = randomBytes(1024 * 1024);
    const res = await s.api.publish({ topic, payload, metadata: { size: "1MiB" } });
    expect(res.success).toBe(true);
    await sub.received(1);
    expect(sub.messages[0]!.id).toBe(res.messageId);
    expect(Buffer.compare(sub.messages[0]!.payload, payload)).toBe(0);
    sub.stream.cancel();
  });

  it("refuses a message over the maximum size with RESOURCE_EXHAUSTED and a readable message", async () => {
    const topic = uniqueName("huge");
    const err = await s.api.publish({ topic, payload: Buffer.alloc(MAX_MESSAGE_BYTES + 1), metadata: {} }).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    expect(err?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err?.details).toMatch(/larger than max/i);
    // Nothing was created and the broker keeps serving.
    expect(await s.api.topicExists({ name: topic })).toEqual({ exists: false });
  });

  it("gives 1,000 concurrent publishes each a success and a distinct id", async () => {
    const topic = uniqueName("concurrent");
    const results = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => s.api.publish({ topic, payload: Buffer.from(String(i)), metadata: {} })),
    );
    expect(results.every((r) => r.success && r.error === "")).toBe(true);
    expect(new Set(results.map((r) => r.messageId)).size).toBe(1_000);
    expect((await s.api.getStats({ topic })).messageCount).toBe(1_000n);
  });

  it("answers a request that is not valid protobuf with an error status and keeps serving", async () => {
    // A client whose serializer sends raw bytes: 0xff… is an invalid tag / truncated varint.
    const Raw = makeGenericClientConstructor(
      {
        publish: {
          path: "/ratatoskr.MessageBroker/Publish",
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      "Raw",
    );
    const raw = new Raw(s.address, credentials.createInsecure()) as unknown as {
      publish(req: Buffer, cb: (err: ServiceError | null) => void): void;
      close(): void;
    };
    const err = await new Promise<ServiceError | null>((resolve) => raw.publish(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff]), resolve));
    raw.close();
    expect(err?.code).toBeDefined();
    expect(err?.code).not.toBe(status.OK);
    expect((await s.api.listTopics({})).topics).toBeInstanceOf(Array);
  });

  it("survives a broken gRPC frame on the raw HTTP/2 stream", async () => {
    const session = connect(`http://${s.address}`);
    const req = session.request({
      [h2.HTTP2_HEADER_METHOD]: "POST",
      [h2.HTTP2_HEADER_PATH]: "/ratatoskr.MessageBroker/Subscribe",
      "content-type": "application/grpc",
      te: "trailers",
    });
    // Length prefix promises 100 bytes; only 3 follow before the stream ends.
    req.end(Buffer.from([0, 0, 0, 0, 100, 1, 2, 3]));
    const grpcStatus = await new Promise<string | undefined>((resolve) => {
      req.on("trailers", (t) => resolve(String(t["grpc-status"])));
      req.on("response", (h) => h["grpc-status"] !== undefined && resolve(String(h["grpc-status"])));
      req.on("close", () => resolve(undefined));
      req.resume();
    });
    session.close();
    expect(grpcStatus).toBeDefined();
    expect(grpcStatus).not.toBe(String(status.OK));
    expect((await s.api.topicExists({ name: "anything" })).exists).toBe(false);
  });
});

describe("v1 memory budget", () => {
  it("refuses a Publish past the budget with RESOURCE_EXHAUSTED and marks such batch items resource_exhausted", async () => {
    const small = await startV1TestServer({ config: { memoryBudgetBytes: 1_000 } });
    try {
      const topic = uniqueName("budget");
      await expect(small.api.publish({ topic, payload: Buffer.alloc(2_000), metadata: {} })).rejects.toMatchObject({
        code: status.RESOURCE_EXHAUSTED,
        details: expect.stringMatching(/budget/),
      });
      const res = await small.api.publishBatch({
        topic,
        messages: [
          { topic: "", payload: Buffer.alloc(10), metadata: {} },
          { topic: uniqueName("budget-big"), payload: Buffer.alloc(2_000), metadata: {} },
          { topic: "", payload: Buffer.alloc(10), metadata: {} },
        ],
      });
      expect(res.results.map((r) => [r.success, r.error])).toEqual([
        [true, ""],
        [false, "resource_exhausted"],
        [true, ""],
      ]);
      // A refused item carries the broker's time too, as the original's PublishResponse did.
      expect(res.results[1]!.timestamp).toBeGreaterThan(0n);
      expect(res.results[1]!.messageId).toBe("");
      expect([res.successCount, res.errorCount]).toEqual([2, 1]);
    } finally {
      await small.close();
    }
  });
});
