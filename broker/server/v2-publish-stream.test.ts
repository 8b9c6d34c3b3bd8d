import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PUBLISH_STREAM_WINDOW } from "./v2-publish-stream.js";
import { startV2TestServer, TestConsumer, TestPublisher, uniqueName, type V2TestServer } from "./v2-test-kit.js";

describe("v2 PublishStream over gRPC", () => {
  let srv: V2TestServer;
  beforeAll(async () => {
    srv = await startV2TestServer();
  });
  afterAll(async () => {
    await srv.close();
  });

  it("stores requests in arrival order and answers each once with its request id, past the in-flight window", async () => {
    const topic = uniqueName("ps-order");
    await srv.api.createTopic({ name: topic });
    await srv.api.createSubscription({ name: `${topic}-sub`, topic });
    const n = PUBLISH_STREAM_WINDOW * 4;
    const pub = new TestPublisher(srv.client);
    for (let i = 0; i < n; i++) pub.send(BigInt(1000 + i), topic, [`m${i}`]);
    await pub.waitFor(() => pub.responses.length === n, `${n} responses`);

    expect(new Set(pub.responses.map((r) => r.requestId)).size).toBe(n);
    for (let i = 0; i < n; i++) {
      const r = pub.byId(BigInt(1000 + i));
      expect(r.errorCode).toBe(0);
      expect(r.results).toHaveLength(1);
      expect(r.results[0]!.sequence).toBe(BigInt(i + 1));
      expect(r.results[0]!.messageId).not.toBe("");
    }
    const consumer = new TestConsumer(srv.client, `${topic}-sub`, { autoAck: true });
    await consumer.waitForDeliveries(n);
    expect(consumer.texts()).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
    consumer.finish();
    pub.finish();
    await pub.waitFor(() => pub.ended, "the stream to end");
    expect(pub.error).toBeUndefined();
  });

  it("answers a failed request with its status and keeps the stream open", async () => {
    const topic = uniqueName("ps-errors");
    await srv.api.createTopic({ name: topic });
    const pub = new TestPublisher(srv.client);
    pub.send(1n, uniqueName("missing"), ["x"]);
    pub.send(2n, "bad name!", ["x"]);
    pub.send(3n, topic, ["ok"]);
    await pub.waitFor(() => pub.responses.length === 3, "3 responses");

    expect(pub.byId(1n)).toMatchObject({ errorCode: status.NOT_FOUND, results: [] });
    expect(pub.byId(1n).errorMessage).toMatch(/does not exist/);
    expect(pub.byId(2n).errorCode).toBe(status.INVALID_ARGUMENT);
    expect(pub.byId(3n)).toMatchObject({ errorCode: 0, errorMessage: "" });
    expect(pub.byId(3n).results[0]!.sequence).toBe(1n);
    expect(pub.ended).toBe(false);
    pub.finish();
    await pub.waitFor(() => pub.ended, "the stream to end");
    expect(pub.error).toBeUndefined();
  });

  it("de-duplicates producer message ids as Publish does", async () => {
    const topic = uniqueName("ps-dedup");
    await srv.api.createTopic({ name: topic });
    const pub = new TestPublisher(srv.client);
    pub.send(1n, topic, ["first"], "order-42");
    pub.send(2n, topic, ["retry"], "order-42");
    await pub.waitFor(() => pub.responses.length === 2, "2 responses");
    expect(pub.byId(1n).results[0]).toMatchObject({ sequence: 1n, duplicate: false });
    expect(pub.byId(2n).results[0]).toMatchObject({ sequence: 1n, duplicate: true });
    expect((await srv.api.getTopic(topic)).stats?.published).toBe(1n);
    pub.finish();
  });

  it("answers everything pending before it ends a half-closed stream with OK", async () => {
    const topic = uniqueName("ps-halfclose");
    await srv.api.createTopic({ name: topic });
    const pub = new TestPublisher(srv.client);
    for (let i = 0; i < 50; i++) pub.send(BigInt(i), topic, [`m${i}`]);
    pub.finish();
    await pub.waitFor(() => pub.ended, "the stream to end");
    expect(pub.error).toBeUndefined();
    expect(pub.responses).toHaveLength(50);
    expect((await srv.api.getTopic(topic)).stats?.published).toBe(50n);
  });
});

describe("v2 PublishStream at shutdown", () => {
  it("ends an open stream with UNAVAILABLE", async () => {
    const srv = await startV2TestServer({ shutdownGraceMs: 2000 });
    try {
      const topic = uniqueName("ps-shutdown");
      await srv.api.createTopic({ name: topic });
      const pub = new TestPublisher(srv.client);
      pub.send(1n, topic, ["before"]);
      await pub.waitFor(() => pub.responses.length === 1, "the first response");
      const closing = srv.running.close();
      await pub.waitFor(() => pub.ended, "the stream to end");
      await closing;
      expect(pub.error?.code).toBe(status.UNAVAILABLE);
      expect(pub.error?.details).toMatch(/shutting down/);
    } finally {
      srv.client.close();
    }
  });
});
