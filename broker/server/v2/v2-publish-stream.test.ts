import { Server, ServerCredentials, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PublishStreamRequest, type BrokerClient } from "../../../proto/gen/ratatoskr/v2/broker.js";
import { createBrokerCore, type StoredMessage } from "../../core/index.js";
import { MemoryStore } from "../../store/store-memory.js";
import { DEFAULT_CONFIG } from "../config.js";
import { silentLogger } from "../logger.js";
import { PUBLISH_STREAM_WINDOW } from "./v2-publish-stream.js";
import { addV2Service } from "./v2-service.js";
import { pollUntil, startV2TestServer, TestConsumer, TestPublisher, uniqueName, v2Api, v2Client, type V2Api, type V2TestServer } from "../../../test/support/index.js";

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

/** A memory store whose commits wait until the test opens the gate, so requests are provably still being stored. */
class GatedStore extends MemoryStore {
  appends = 0;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }
  open(): void {
    this.openGate?.();
    this.gate = undefined;
  }
  override async append(topic: string, messages: readonly StoredMessage[]): Promise<void> {
    this.appends++;
    const gate = this.gate;
    if (gate) await gate;
    return super.append(topic, messages);
  }
}

describe("v2 PublishStream and a malformed frame", () => {
  const store = new GatedStore();
  const core = createBrokerCore({ store });
  const server = new Server();
  let client: BrokerClient;
  let api: V2Api;
  let stopV2: () => void;
  beforeAll(async () => {
    stopV2 = addV2Service(server, core, { ...DEFAULT_CONFIG, logLevel: "silent" }, silentLogger).shutdown;
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    client = v2Client(`127.0.0.1:${port}`);
    api = v2Api(client);
  });
  afterAll(async () => {
    store.open();
    client.close();
    stopV2();
    await core.close();
    server.forceShutdown();
  });

  const encoded = (requestId: bigint, topic: string, text: string): Buffer =>
    Buffer.from(PublishStreamRequest.encode({ requestId, topic, messages: [{ payload: Buffer.from(text), attributes: {}, messageId: "" }] }).finish());

  it.each([
    ["a truncated length-delimited field", [0x12, 0x7f, 0x01]],
    ["an invalid wire type", [0x0f]],
    ["a truncated varint", [0x18, 0xff]],
    ["an 11-byte varint request_id", [0x18, ...Array<number>(10).fill(0xff), 0x01]],
  ])("answers every request stored before %s, then ends the stream with INVALID_ARGUMENT and serves on", async (_kind, bytes) => {
    const topic = uniqueName("ps-malformed");
    await api.createTopic({ name: topic });
    const n = 40;
    const pub = new TestPublisher(client);
    // Raw bytes throughout, as a client of another language would send them. The commits are
    // held until all n requests are being stored, so the bad frame arrives while they are pending.
    store.appends = 0;
    store.hold();
    for (let i = 1; i <= n; i++) pub.sendRaw(encoded(BigInt(i), topic, `m${i}`));
    pub.sendRaw(Buffer.from(bytes));
    pub.sendRaw(encoded(999n, topic, "after the bad frame"));
    await pollUntil(async () => store.appends === n, `${n} requests being stored`);
    expect(pub.responses).toHaveLength(0);
    store.open();
    await pub.waitFor(() => pub.ended, "the stream to end");

    expect(pub.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(pub.error?.details).toMatch(/^malformed PublishStreamRequest: /);
    // Every request before the bad frame was answered (before the status) and stored; nothing after it.
    expect(pub.responses.map((r) => r.requestId).sort((a, b) => (a < b ? -1 : 1))).toEqual(Array.from({ length: n }, (_, i) => BigInt(i + 1)));
    expect(pub.responses.every((r) => r.errorCode === 0)).toBe(true);
    expect((await api.getTopic(topic)).stats?.published).toBe(BigInt(n));
    expect(store.appends).toBe(n);

    const next = new TestPublisher(client);
    next.send(1n, topic, ["served on"]);
    await next.waitFor(() => next.responses.length === 1, "a response on a new stream");
    expect(next.byId(1n)).toMatchObject({ errorCode: 0, results: [{ sequence: BigInt(n + 1) }] });
    next.finish();
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
