import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  consumersAttached,
  expectStatus,
  pollUntil,
  startV2TestServer,
  TestConsumer,
  uniqueName,
  v1Api,
  v1Client,
  v1Subscribe,
  type V2TestServer,
} from "../../../test/support/index.js";

const limits = (over: Partial<{ retention: number; maxMessages: bigint; maxBytes: bigint; maxAgeMs: bigint; dedupWindowMs: bigint }>) => ({
  retention: 0,
  maxMessages: 0n,
  maxBytes: 0n,
  maxAgeMs: 0n,
  dedupWindowMs: 0n,
  ...over,
});

describe("v2 topics, publish and subscriptions over gRPC", () => {
  let srv: V2TestServer;
  beforeAll(async () => {
    srv = await startV2TestServer();
  });
  afterAll(async () => {
    await srv.close();
  });

  it("creates, gets, lists and deletes topics with configuration and statistics", async () => {
    const name = uniqueName("topic");
    const created = await srv.api.createTopic({ name, config: limits({ retention: 2, maxMessages: 5n }) });
    expect(created.config).toMatchObject({ retention: 2, maxMessages: 5n, dedupWindowMs: 120_000n });
    await srv.api.publishText(name, ["a", "b"]);
    const got = await srv.api.getTopic(name);
    expect(got.stats).toMatchObject({ published: 2n, firstSequence: 1n, lastSequence: 2n, retainedMessages: 2n, retainedBytes: 2n });
    await srv.api.deleteTopic(name);
    await expectStatus(srv.api.getTopic(name), status.NOT_FOUND, /does not exist/);
  });

  it("lists topics in pages with an opaque token", async () => {
    const prefix = uniqueName("page");
    const names = ["a", "b", "c", "d", "e"].map((s) => `${prefix}-${s}`);
    for (const n of names) await srv.api.createTopic({ name: n });
    const seen: string[] = [];
    let token = "";
    do {
      const page = await srv.api.listTopics({ pageSize: 2, pageToken: token });
      expect(page.topics.length).toBeLessThanOrEqual(2);
      seen.push(...page.topics.map((t) => t.name));
      token = page.nextPageToken;
    } while (token !== "");
    expect(seen.filter((n) => n.startsWith(prefix))).toEqual(names);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it("refuses bad topic input with the right status, naming the field", async () => {
    const name = uniqueName("bad");
    await srv.api.createTopic({ name });
    await expectStatus(srv.api.createTopic({ name }), status.ALREADY_EXISTS);
    await expectStatus(srv.api.createTopic({ name: "has space" }), status.INVALID_ARGUMENT);
    await expectStatus(srv.api.createTopic({ name: uniqueName("x"), config: limits({ retention: 2, maxMessages: -1n }) }), status.INVALID_ARGUMENT, /config\.max_messages/);
    await expectStatus(srv.api.createTopic({ name: uniqueName("x"), config: limits({ retention: 9 }) }), status.INVALID_ARGUMENT, /config\.retention/);
    await expectStatus(srv.api.listTopics({ pageSize: -1 }), status.INVALID_ARGUMENT, /page_size/);
    await expectStatus(srv.api.listTopics({ pageToken: "garbage!" }), status.INVALID_ARGUMENT, /page_token/);
    await expectStatus(srv.api.deleteTopic(uniqueName("missing")), status.NOT_FOUND);
  });

  it("publishes batches with per-message sequences and refuses missing topics", async () => {
    const name = uniqueName("pub");
    await srv.api.createTopic({ name });
    const res = await srv.api.publish(name, [{ payload: Buffer.from("1") }, { payload: Buffer.from("2") }, { payload: Buffer.from("3") }]);
    expect(res.results.map((r) => r.sequence)).toEqual([1n, 2n, 3n]);
    expect(res.results.every((r) => /^[0-9a-f-]{36}$/.test(r.messageId) && !r.duplicate)).toBe(true);
    expect(res.publishTimeMs).toBeGreaterThan(0);
    await expectStatus(srv.api.publish(uniqueName("missing"), [{ payload: Buffer.from("x") }]), status.NOT_FOUND);
  });

  it("de-duplicates producer message ids within the window", async () => {
    const name = uniqueName("dedup");
    await srv.api.createTopic({ name, config: limits({ retention: 2 }) });
    const first = await srv.api.publish(name, [{ payload: Buffer.from("a"), messageId: "order-1" }, { payload: Buffer.from("b"), messageId: "order-2" }]);
    const retry = await srv.api.publish(name, [{ payload: Buffer.from("b"), messageId: "order-2" }, { payload: Buffer.from("c"), messageId: "order-3" }]);
    expect(first.results.map((r) => [r.messageId, r.sequence, r.duplicate])).toEqual([
      ["order-1", 1n, false],
      ["order-2", 2n, false],
    ]);
    expect(retry.results.map((r) => [r.messageId, r.sequence, r.duplicate])).toEqual([
      ["order-2", 2n, true],
      ["order-3", 3n, false],
    ]);
    const inBatch = await srv.api.publish(name, [{ payload: Buffer.from("d"), messageId: "order-4" }, { payload: Buffer.from("d"), messageId: "order-4" }]);
    expect(inBatch.results.map((r) => [r.sequence, r.duplicate])).toEqual([
      [4n, false],
      [4n, true],
    ]);
    const topic = await srv.api.getTopic(name);
    expect(topic.stats).toMatchObject({ published: 4n, duplicates: 2n, retainedMessages: 4n });
  });

  it("creates, gets, lists and deletes subscriptions", async () => {
    const topic = uniqueName("subs");
    await srv.api.createTopic({ name: topic });
    const made = await srv.api.createSubscription({ name: `${topic}-b`, topic, config: { ackDeadlineMs: 5000, maxDeliveries: 4 } });
    expect(made.config).toMatchObject({ start: 1, ackDeadlineMs: 5000, maxDeliveries: 4 });
    await srv.api.createSubscription({ name: `${topic}-a`, topic });
    const listed = await srv.api.listSubscriptions({ topic, pageSize: 1 });
    expect(listed.subscriptions.map((s) => s.name)).toEqual([`${topic}-a`]);
    const rest = await srv.api.listSubscriptions({ topic, pageSize: 1, pageToken: listed.nextPageToken });
    expect(rest.subscriptions.map((s) => s.name)).toEqual([`${topic}-b`]);
    expect(rest.nextPageToken).toBe("");
    expect((await srv.api.getTopic(topic)).stats?.subscriptionCount).toBe(2);
    await srv.api.deleteSubscription(`${topic}-a`);
    await expectStatus(srv.api.getSubscription(`${topic}-a`), status.NOT_FOUND);
    await expectStatus(srv.api.deleteSubscription(`${topic}-a`), status.NOT_FOUND);
  });

  it("refuses bad subscription input with the right status, naming the field", async () => {
    const topic = uniqueName("badsub");
    await srv.api.createTopic({ name: topic });
    await srv.api.createSubscription({ name: `${topic}-s`, topic });
    const sub = (config: object, name = uniqueName("s")) => srv.api.createSubscription({ name, topic, config });
    await expectStatus(sub({}, `${topic}-s`), status.ALREADY_EXISTS);
    await expectStatus(srv.api.createSubscription({ name: uniqueName("s"), topic: uniqueName("nope") }), status.NOT_FOUND);
    await expectStatus(sub({ ackDeadlineMs: -1 }), status.INVALID_ARGUMENT, /config\.ack_deadline_ms/);
    await expectStatus(sub({ maxDeliveries: -1 }), status.INVALID_ARGUMENT, /config\.max_deliveries/);
    await expectStatus(sub({ start: 3, startSequence: -4n }), status.INVALID_ARGUMENT, /config\.start_sequence/);
    await expectStatus(sub({ start: 42 }), status.INVALID_ARGUMENT, /config\.start/);
    await expectStatus(sub({ maxDeliveries: 3, deadLetterTopic: topic }), status.INVALID_ARGUMENT, /config\.dead_letter_topic/);
    await expectStatus(sub({ maxDeliveries: 3, deadLetterTopic: uniqueName("gone") }), status.NOT_FOUND);
    await expectStatus(sub({ deadLetterTopic: `${topic}-dlq` }), status.INVALID_ARGUMENT, /config\.max_deliveries/);
    await expectStatus(sub({ retryBackoffMinMs: 500, retryBackoffMaxMs: 100 }), status.INVALID_ARGUMENT, /config\.retry_backoff_max_ms/);
    await expectStatus(sub({}, "bad name"), status.INVALID_ARGUMENT, /name/);
    await expectStatus(srv.api.listSubscriptions({ topic: uniqueName("nope") }), status.NOT_FOUND);
    await expectStatus(srv.api.listSubscriptions({ pageSize: -3 }), status.INVALID_ARGUMENT, /page_size/);
  });

  it("delivers v1-published messages to v2 consumers and v2-published ones to v1 subscribers", async () => {
    const topic = uniqueName("interop");
    await srv.api.createTopic({ name: topic });
    await srv.api.createSubscription({ name: `${topic}-sub`, topic });
    const client = v1Client(srv.running.address);
    const v1 = v1Api(client);
    try {
      const consumer = new TestConsumer(srv.client, `${topic}-sub`, { autoAck: true });
      await consumersAttached(srv.api, `${topic}-sub`, 1);
      const published = await v1.publish({ topic, payload: Buffer.from("from v1"), metadata: { k: "v" } });
      expect(published.success).toBe(true);
      await consumer.waitForDeliveries(1);
      const m = consumer.deliveries[0]!.message!;
      expect([m.id, m.payload.toString(), m.attributes]).toEqual([published.messageId, "from v1", { k: "v" }]);
      consumer.cut();

      const sub = await v1Subscribe(client, topic);
      await srv.api.publishText(topic, ["from v2"]);
      await sub.received(1);
      expect(sub.messages[0]!.payload.toString()).toBe("from v2");
      sub.stream.cancel();
    } finally {
      client.close();
    }
  });

  it("reports broker statistics for resource sampling", async () => {
    const topic = uniqueName("stats");
    await srv.api.createTopic({ name: topic });
    await srv.api.createSubscription({ name: `${topic}-sub`, topic });
    const before = await srv.api.brokerStats();
    const c = new TestConsumer(srv.client, `${topic}-sub`, { autoAck: true });
    await consumersAttached(srv.api, `${topic}-sub`, 1);
    await srv.api.publishText(topic, ["1", "2", "3"]);
    await c.waitForDeliveries(3);
    await pollUntil(async () => (await srv.api.brokerStats()).acked >= before.acked + 3n, "acks counted");
    const after = await srv.api.brokerStats();
    expect(after.storage).toBe("memory");
    expect(after.published - before.published).toBe(3n);
    expect(after.delivered - before.delivered).toBe(3n);
    expect(after.topics).toBeGreaterThanOrEqual(1);
    expect(after.subscriptions).toBeGreaterThanOrEqual(1);
    expect(after.consumers).toBeGreaterThanOrEqual(1);
    expect(after.rssBytes).toBeGreaterThan(0);
    expect(after.heapUsedBytes).toBeGreaterThan(0);
    expect(after.cpuUserSeconds).toBeGreaterThan(0);
    expect(after.memoryBudgetBytes).toBe(1024n * 1024n * 1024n);
    c.cut();
  });
});

describe("v2 memory budget and shutdown", () => {
  it("refuses publishes with RESOURCE_EXHAUSTED when the budget is full and accepts them once consumers ack", async () => {
    const srv = await startV2TestServer({ memoryBudgetBytes: 2000 });
    try {
      const topic = uniqueName("budget");
      await srv.api.createTopic({ name: topic });
      await srv.api.createSubscription({ name: `${topic}-sub`, topic });
      const fill = Array.from({ length: 10 }, () => "x".repeat(150));
      await srv.api.publishText(topic, fill);
      await expectStatus(srv.api.publishText(topic, fill), status.RESOURCE_EXHAUSTED, /budget/);
      const c = new TestConsumer(srv.client, `${topic}-sub`, { autoAck: true });
      await c.waitForDeliveries(10);
      await pollUntil(async () => (await srv.api.brokerStats()).retainedBytes === 0n, "acked messages freed");
      const again = await srv.api.publishText(topic, fill);
      expect(again).toEqual([11n, 12n, 13n, 14n, 15n, 16n, 17n, 18n, 19n, 20n]);
      c.cut();
    } finally {
      await srv.close();
    }
  });

  it("ends open Consume streams with UNAVAILABLE on shutdown", async () => {
    const srv = await startV2TestServer();
    const topic = uniqueName("shutdown");
    await srv.api.createTopic({ name: topic });
    await srv.api.createSubscription({ name: `${topic}-sub`, topic });
    const attached = new TestConsumer(srv.client, `${topic}-sub`);
    const idle = new TestConsumer(srv.client, undefined);
    await consumersAttached(srv.api, `${topic}-sub`, 1);
    await srv.close();
    await attached.waitForEnd();
    await idle.waitForEnd();
    expect(attached.error?.code).toBe(status.UNAVAILABLE);
    expect(idle.error?.code).toBe(status.UNAVAILABLE);
  });
});
