import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Socket } from "node:net";
import { Metadata, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import {
  expectStatus,
  frame,
  http2Session,
  pollUntil,
  rawCall,
  startV2TestServer,
  TestConsumer,
  topicWithSubscription,
  uniqueName,
  v1Api,
  v1Client,
  v2Api,
  v2Client,
  type V2TestServer,
} from "../../test/support/index.js";

// Caps on what clients may create or hold (docs/limits.md): each hit is a clear status naming
// the limit (or, for connections, a closed connection), the broker stays up, and what exists
// keeps working. The caps are set low by flag so a unit test can reach them.

let s: V2TestServer | undefined;
const dirs: string[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await s?.close();
  s = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

for (const store of ["memory", "durable"] as const) {
  const start = (config: Record<string, unknown>) => {
    const dataDir = store === "durable" ? mkdtempSync(join(tmpdir(), "ratatoskr-limits-")) : undefined;
    if (dataDir) dirs.push(dataDir);
    return startV2TestServer({ dataDir, ...config });
  };

  describe(`topic, subscription and consumer caps (${store} store)`, () => {
    it("refuses topics past max-topics from v1 PublishBatch, v1 CreateTopic and v2 CreateTopic; existing topics keep working", async () => {
      s = await start({ maxTopics: 5 });
      const v1c = v1Client(s.running.address);
      cleanups.push(() => v1c.close());
      const v1 = v1Api(v1c);
      const prefix = uniqueName("cap");
      // One PublishBatch naming 20 topics (the 1.41M topics came from batches like it).
      const batch = await v1.publishBatch({
        topic: "",
        messages: Array.from({ length: 20 }, (_, i) => ({ topic: `${prefix}-${i}`, payload: Buffer.from(`m${i}`), metadata: {} })),
      });
      expect(batch.successCount).toBe(5);
      expect(batch.results.slice(5).every((r) => !r.success && r.error === "resource_exhausted")).toBe(true);
      await expectStatus(v1.createTopic({ name: `${prefix}-x` }), status.RESOURCE_EXHAUSTED, /max-topics 5/);
      await expectStatus(s.api.createTopic({ name: `${prefix}-y` }), status.RESOURCE_EXHAUSTED, /max-topics 5/);
      expect((await v1.listTopics({})).topics).toHaveLength(5);
      // Accepted messages are all there, and the capped topics still take publishes.
      const again = await v1.publish({ topic: `${prefix}-0`, payload: Buffer.from("again"), metadata: {} });
      expect(again.success).toBe(true);
      expect(Number((await s.api.getTopic(`${prefix}-0`)).stats?.published)).toBe(2);
      // A deleted topic frees its place.
      await s.api.deleteTopic(`${prefix}-1`);
      await s.api.createTopic({ name: `${prefix}-y` });
    });

    it("refuses subscriptions past max-subscriptions-per-topic and max-subscriptions", async () => {
      s = await start({ maxSubscriptionsPerTopic: 3, maxSubscriptions: 5 });
      const { api } = s;
      const a = uniqueName("ta");
      const b = uniqueName("tb");
      await api.createTopic({ name: a });
      await api.createTopic({ name: b });
      for (let i = 0; i < 3; i++) await api.createSubscription({ name: `${a}-s${i}`, topic: a });
      await expectStatus(api.createSubscription({ name: `${a}-s3`, topic: a }), status.RESOURCE_EXHAUSTED, /max-subscriptions-per-topic 3/);
      await api.createSubscription({ name: `${b}-s0`, topic: b });
      await api.createSubscription({ name: `${b}-s1`, topic: b });
      await expectStatus(api.createSubscription({ name: `${b}-s2`, topic: b }), status.RESOURCE_EXHAUSTED, /max-subscriptions 5/);
      // Existing subscriptions still get their messages.
      await api.publishText(a, ["one"]);
      const c = new TestConsumer(s.client, `${a}-s0`, { autoAck: true });
      await c.waitForDeliveries(1);
      expect(c.texts()).toEqual(["one"]);
      c.cut();
    });

    it("refuses a Consume stream past max-consumers-per-subscription; the others keep consuming", async () => {
      s = await start({ maxConsumersPerSubscription: 2 });
      const { topic, sub } = await topicWithSubscription(s.api);
      const c1 = new TestConsumer(s.client, sub, { autoAck: true });
      const c2 = new TestConsumer(s.client, sub, { autoAck: true });
      await pollUntil(async () => (await s!.api.getSubscription(sub)).stats?.consumerCount === 2, "two consumers");
      const c3 = new TestConsumer(s.client, sub, { autoAck: true });
      await c3.waitForEnd();
      expect(c3.error?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(c3.error?.details).toMatch(/max-consumers-per-subscription 2/);
      await s.api.publishText(topic, ["a", "b", "c", "d"]);
      await c1.waitFor(() => c1.deliveries.length + c2.deliveries.length === 4, "all four delivered");
      c1.cut();
      c2.cut();
    });
  });
}

describe("v1 ListTopics", () => {
  it("stays under the message size limit with long names: the first names in order, and the total in a header", async () => {
    s = await startV2TestServer({ maxMessageBytes: 16 * 1024, maxTopics: 0 });
    const v1c = v1Client(s.running.address);
    cleanups.push(() => v1c.close());
    const prefix = uniqueName("long");
    const names = Array.from({ length: 200 }, (_, i) => `${prefix}-${String(i).padStart(4, "0")}-${"x".repeat(200)}`.slice(0, 255));
    for (const name of names) await s.api.createTopic({ name });
    const { topics, total } = await new Promise<{ topics: string[]; total: string | undefined }>((resolve, reject) => {
      let total: string | undefined;
      const call = v1c.listTopics({}, (err, res) => (err ? reject(err) : resolve({ topics: res!.topics, total })));
      call.on("metadata", (md: Metadata) => (total = md.get("ratatoskr-topics-total")[0]?.toString()));
    });
    // 200 names of 255 bytes (51 KB) cannot fit 16 KiB: the response is cut, not refused.
    expect(topics.length).toBeGreaterThan(0);
    expect(topics.length).toBeLessThan(200);
    expect(topics).toEqual([...names].sort().slice(0, topics.length));
    expect(total).toBe("200");
  });
});

describe("connections, streams and timeouts", () => {
  it("closes connections past max-connections at once; open ones keep working", async () => {
    s = await startV2TestServer({ maxConnections: 3 });
    const port = s.running.port;
    await s.api.listTopics(); // the test client's own connection is one of the three
    const idle: Socket[] = [];
    for (let i = 0; i < 2; i++) idle.push(await connectTcp(port));
    cleanups.push(() => idle.forEach((x) => x.destroy()));
    await pollUntil(() => s!.running.resources.connections.open === 3, "three connections open");
    const refused = await connectTcp(port);
    await new Promise<void>((resolve) => (refused.closed ? resolve() : refused.once("close", () => resolve())));
    expect(s.running.resources.connections.refused).toBe(1);
    await s.api.listTopics(); // the first client is unaffected
    // A fourth gRPC client waits or fails; once an idle socket goes, a new client gets in.
    idle.pop()!.destroy();
    await pollUntil(() => s!.running.resources.connections.open === 2, "a place freed");
    const other = v2Client(s.running.address);
    cleanups.push(() => other.close());
    await v2Api(other).listTopics();
  });

  it("announces max-streams-per-connection in its HTTP/2 SETTINGS", async () => {
    s = await startV2TestServer({ maxStreamsPerConnection: 7 });
    const session = await http2Session(s.running.address);
    cleanups.push(() => session.destroy());
    await pollUntil(() => session.remoteSettings.maxConcurrentStreams === 7, "the server's SETTINGS");
  });

  it("sends GOAWAY to a connection idle for idle-connection-timeout-ms; a client reconnects", async () => {
    s = await startV2TestServer({ idleConnectionTimeoutMs: 300 });
    const session = await http2Session(s.running.address);
    cleanups.push(() => session.destroy());
    await new Promise<void>((resolve) => session.once("goaway", () => resolve()));
    await s.api.listTopics(); // the kit's client reconnects by itself
  });

  it("closes a connection that sends nothing within handshake-timeout-ms", async () => {
    s = await startV2TestServer({ handshakeTimeoutMs: 200 });
    const idle = await connectTcp(s.running.port);
    cleanups.push(() => idle.destroy());
    await new Promise<void>((resolve) => (idle.closed ? resolve() : idle.once("close", () => resolve())));
    expect(s.running.resources.connections.handshakeTimeouts).toBe(1);
    await s.api.listTopics(); // an HTTP/2 client completes its handshake and stays
    expect(s.running.resources.connections.handshakeTimeouts).toBe(1);
  });

  it("ends a call whose request message does not arrive whole within message-receive-timeout-ms", async () => {
    s = await startV2TestServer({ messageReceiveTimeoutMs: 300 });
    const session = await http2Session(s.running.address);
    cleanups.push(() => session.destroy());
    // Declares 4 MiB, sends 10 bytes and holds the stream open.
    const outcome = await rawCall(session, "/ratatoskr.v2.Broker/Publish", frame(Buffer.alloc(10), { declaredLength: 4 * 1024 * 1024 - 100 }), { endStream: false, timeoutMs: 10_000 });
    expect(outcome.end).not.toBe("timeout");
    expect(outcome.grpcStatus === status.RESOURCE_EXHAUSTED || outcome.end === "reset", JSON.stringify(outcome)).toBe(true);
    if (outcome.grpcStatus !== undefined) expect(outcome.grpcMessage).toMatch(/message-receive-timeout-ms/);
    expect(s.running.resources.connections.messageTimeouts).toBe(1);
    await s.api.listTopics();
  });

  it("refuses a message with the compressed flag and no grpc-encoding with INTERNAL, before the handler runs", async () => {
    s = await startV2TestServer({});
    const topic = uniqueName("cf");
    await s.api.createTopic({ name: topic });
    const session = await http2Session(s.running.address);
    cleanups.push(() => session.destroy());
    const { PublishRequest } = await import("../../proto/gen/ratatoskr/v2/broker.js");
    const body = Buffer.from(PublishRequest.encode(PublishRequest.fromPartial({ topic, messages: [{ payload: Buffer.from("x") }] })).finish());
    const outcome = await rawCall(session, "/ratatoskr.v2.Broker/Publish", frame(body, { compressed: true }));
    expect(outcome.grpcStatus, JSON.stringify(outcome)).toBe(status.INTERNAL);
    expect(outcome.grpcMessage).toMatch(/compressed flag/);
    expect(Number((await s.api.getTopic(topic)).stats?.published)).toBe(0);
    // The same bytes without the flag are a valid publish.
    const ok = await rawCall(session, "/ratatoskr.v2.Broker/Publish", frame(body));
    expect(ok.grpcStatus).toBe(status.OK);
  });
});

describe("truncated requests", () => {
  it("answers a request that ends inside a message with INTERNAL on unary, server-stream and bidi paths", async () => {
    s = await startV2TestServer({});
    const session = await http2Session(s.running.address);
    cleanups.push(() => session.destroy());
    for (const path of ["/ratatoskr.v2.Broker/Publish", "/ratatoskr.MessageBroker/ListTopics", "/ratatoskr.MessageBroker/Subscribe", "/ratatoskr.v2.Broker/PublishStream", "/ratatoskr.v2.Broker/Consume"]) {
      for (const body of [frame(Buffer.alloc(10), { declaredLength: 100 }), Buffer.from([0, 0, 0])]) {
        const outcome = await rawCall(session, path, body);
        expect(outcome.grpcStatus, `${path}: ${JSON.stringify(outcome)}`).toBe(status.INTERNAL);
        expect(outcome.grpcMessage).toMatch(/truncated/);
      }
    }
    // A whole empty message is not truncated: ListTopics answers it.
    expect((await rawCall(session, "/ratatoskr.MessageBroker/ListTopics", frame(Buffer.alloc(0)))).grpcStatus).toBe(status.OK);
  });
});

function connectTcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    socket.once("error", reject);
    socket.resume(); // reads (and drops) what the server sends, so its close is seen
    socket.connect(port, "127.0.0.1", () => {
      socket.off("error", reject);
      socket.on("error", () => undefined);
      resolve(socket);
    });
  });
}
