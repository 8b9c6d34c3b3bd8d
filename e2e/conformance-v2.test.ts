// Conformance, v2: topics, batched publish with sequences and de-duplication, subscriptions
// (fan-out, competing consumers, replay), Consume with acks/nacks/leases, dead-lettering, flow
// control and broker stats (docs/design.md, "v2 semantics"), checked from outside against the broker image.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetentionPolicy, StartPosition, type BrokerClient } from "../proto/gen/ratatoskr/v2/broker.js";
import {
  codeOf,
  consumersAttached,
  pollUntil,
  TestConsumer,
  topicWithSubscription,
  uniqueName,
  v2Api,
  v2Client,
  type ConsumeOptions,
  type SubscriptionConfigInput,
  type V2Api,
} from "../test/support/index.js";
import { startBrokerContainer, type BrokerContainer } from "./support/broker-container.js";
import { requireDockerAndImage } from "./support/docker-engine.js";

await requireDockerAndImage();

const texts = (n: number, prefix = "m"): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
const LIMITS = { retention: RetentionPolicy.RETENTION_POLICY_LIMITS, maxMessages: 0n, maxBytes: 0n, maxAgeMs: 0n, dedupWindowMs: 0n };
const byValue = (x: bigint, y: bigint): number => (x < y ? -1 : x > y ? 1 : 0);

let broker: BrokerContainer;
let client: BrokerClient;
let api: V2Api;
const consumers: TestConsumer[] = [];

beforeAll(async () => {
  broker = await startBrokerContainer();
  client = v2Client(broker.address);
  api = v2Api(client);
});

afterAll(async () => {
  for (const c of consumers) if (!c.ended) c.cut();
  client?.close();
  await broker?.container.stop();
});

function consume(sub: string, options: ConsumeOptions = {}): TestConsumer {
  // Each consumer on its own connection, as separate client processes would be.
  const c = new TestConsumer(v2Client(broker.address), sub, options);
  consumers.push(c);
  return c;
}

const topicWithSub = (config?: SubscriptionConfigInput) => topicWithSubscription(api, config);

describe("v2 in a container: topics", () => {
  it("creates, gets, lists and deletes topics with status-code errors", async () => {
    const name = uniqueName("topic");
    const created = await api.createTopic({ name, config: { ...LIMITS, maxMessages: 100n } });
    expect(created).toMatchObject({ name, config: { retention: RetentionPolicy.RETENTION_POLICY_LIMITS, maxMessages: 100n } });
    expect(await codeOf(api.createTopic({ name }))).toBe(status.ALREADY_EXISTS);
    expect((await api.getTopic(name)).name).toBe(name);
    expect((await api.listTopics()).topics.map((t) => t.name)).toContain(name);
    await api.deleteTopic(name);
    expect(await codeOf(api.getTopic(name))).toBe(status.NOT_FOUND);
    expect(await codeOf(api.deleteTopic(name))).toBe(status.NOT_FOUND);
  });

  it("refuses invalid topic names with INVALID_ARGUMENT", async () => {
    for (const bad of ["", "a".repeat(256), "white space", "slash/name", "ünïcode"]) {
      expect(await codeOf(api.createTopic({ name: bad })), JSON.stringify(bad)).toBe(status.INVALID_ARGUMENT);
    }
  });

  it("refuses publishing to a missing topic with NOT_FOUND", async () => {
    expect(await codeOf(api.publishText(uniqueName("missing"), ["x"]))).toBe(status.NOT_FOUND);
  });
});

describe("v2 in a container: publish", () => {
  it("assigns gap-free sequences from 1 across batches and counts them in the topic stats", async () => {
    const topic = uniqueName("seq");
    await api.createTopic({ name: topic, config: LIMITS });
    expect(await api.publishText(topic, texts(3))).toEqual([1n, 2n, 3n]);
    expect(await api.publishText(topic, texts(2))).toEqual([4n, 5n]);
    const { stats } = await api.getTopic(topic);
    expect(stats).toMatchObject({ published: 5n, firstSequence: 1n, lastSequence: 5n, retainedMessages: 5n });
  });

  it("de-duplicates producer message ids: a retry repeats the first sequence and is not stored again", async () => {
    const topic = uniqueName("dedup");
    await api.createTopic({ name: topic, config: LIMITS });
    const first = await api.publish(topic, [{ payload: Buffer.from("a"), messageId: "order-1" }, { payload: Buffer.from("b"), messageId: "order-2" }]);
    const retry = await api.publish(topic, [{ payload: Buffer.from("a"), messageId: "order-1" }]);
    expect(first.results.map((r) => [r.messageId, r.sequence, r.duplicate])).toEqual([
      ["order-1", 1n, false],
      ["order-2", 2n, false],
    ]);
    expect(retry.results.map((r) => [r.messageId, r.sequence, r.duplicate])).toEqual([["order-1", 1n, true]]);
    expect((await api.getTopic(topic)).stats).toMatchObject({ published: 2n, duplicates: 1n });
  });
});

describe("v2 in a container: subscriptions and Consume", () => {
  it("fans out: every subscription of a topic gets every message, with payload and attributes intact", async () => {
    const topic = uniqueName("fanout");
    await api.createTopic({ name: topic });
    await api.createSubscription({ name: `${topic}-a`, topic });
    await api.createSubscription({ name: `${topic}-b`, topic });
    const a = consume(`${topic}-a`, { autoAck: true });
    const b = consume(`${topic}-b`, { autoAck: true });
    await consumersAttached(api, `${topic}-a`, 1);
    await consumersAttached(api, `${topic}-b`, 1);
    const payload = Buffer.from([0, 255, 1, 254]);
    await api.publish(topic, [{ payload, attributes: { k: "v", "ü": "✓" } }, ...texts(99).map((t) => ({ payload: Buffer.from(t) }))]);
    await a.waitForDeliveries(100);
    await b.waitForDeliveries(100);
    for (const c of [a, b]) {
      expect(c.deliveries.map((d) => d.message!.sequence)).toEqual(Array.from({ length: 100 }, (_, i) => BigInt(i + 1)));
      expect(Buffer.compare(Buffer.from(c.deliveries[0]!.message!.payload), payload)).toBe(0);
      expect(c.deliveries[0]!.message!.attributes).toEqual({ k: "v", "ü": "✓" });
      expect(c.deliveries.every((d) => d.attempt === 1)).toBe(true);
    }
    await pollUntil(async () => (await api.getSubscription(`${topic}-a`)).stats?.ackFloor === 100n, "all acks recorded");
  });

  it("splits one subscription between competing consumers without overlap or loss", async () => {
    const { topic, sub } = await topicWithSub();
    const a = consume(sub, { autoAck: true, maxOutstandingMessages: 20 });
    const b = consume(sub, { autoAck: true, maxOutstandingMessages: 20 });
    await consumersAttached(api, sub, 2);
    for (let i = 0; i < 5; i++) await api.publishText(topic, texts(100, `b${i}-`));
    // A consumer's waitFor only re-checks on its own events, so poll the sum of both.
    await pollUntil(() => a.deliveries.length + b.deliveries.length >= 500, "500 deliveries in total");
    const seqs = [...a.deliveries, ...b.deliveries].map((d) => d.message!.sequence).sort(byValue);
    expect(seqs).toEqual(Array.from({ length: 500 }, (_, i) => BigInt(i + 1)));
    expect(a.deliveries.length).toBeGreaterThan(0);
    expect(b.deliveries.length).toBeGreaterThan(0);
  });

  it("replays from the earliest retained message and from a sequence number", async () => {
    const topic = uniqueName("replay");
    await api.createTopic({ name: topic, config: LIMITS });
    await api.publishText(topic, texts(10));
    await api.createSubscription({ name: `${topic}-earliest`, topic, config: { start: StartPosition.START_POSITION_EARLIEST } });
    await api.createSubscription({ name: `${topic}-seq`, topic, config: { start: StartPosition.START_POSITION_SEQUENCE, startSequence: 7n } });
    await api.createSubscription({ name: `${topic}-latest`, topic, config: { start: StartPosition.START_POSITION_LATEST } });
    const earliest = consume(`${topic}-earliest`, { autoAck: true });
    const fromSeq = consume(`${topic}-seq`, { autoAck: true });
    const latest = consume(`${topic}-latest`, { autoAck: true });
    await earliest.waitForDeliveries(10);
    await fromSeq.waitForDeliveries(4);
    await consumersAttached(api, `${topic}-latest`, 1);
    await api.publishText(topic, ["new"]);
    await latest.waitForDeliveries(1);
    expect(earliest.texts().slice(0, 10)).toEqual(texts(10));
    expect(fromSeq.deliveries.slice(0, 4).map((d) => d.message!.sequence)).toEqual([7n, 8n, 9n, 10n]);
    expect(latest.texts()).toEqual(["new"]);
  });

  it("redelivers nacked and cut-off messages with the attempt raised, and never an acked one", async () => {
    const { topic, sub } = await topicWithSub();
    const first = consume(sub);
    await consumersAttached(api, sub, 1);
    await api.publishText(topic, texts(5));
    await first.waitForDeliveries(5);
    first.ack([first.deliveries[0]!.ackId, first.deliveries[1]!.ackId]);
    first.nack([first.deliveries[2]!.ackId]);
    await first.waitForDeliveries(6);
    expect([first.deliveries[5]!.message!.sequence, first.deliveries[5]!.attempt]).toEqual([3n, 2]);
    await pollUntil(async () => (await api.getSubscription(sub)).stats?.ackFloor === 2n, "acks of 1 and 2");
    first.cut();
    const second = consume(sub, { autoAck: true });
    await second.waitForDeliveries(3);
    expect(second.deliveries.map((d) => [d.message!.sequence, d.attempt] as const).sort((x, y) => byValue(x[0], y[0]))).toEqual([
      [3n, 3],
      [4n, 2],
      [5n, 2],
    ]);
  });

  it("redelivers after the ack deadline passes", async () => {
    const { topic, sub } = await topicWithSub({ ackDeadlineMs: 300 });
    const c = consume(sub);
    await consumersAttached(api, sub, 1);
    await api.publishText(topic, ["slow"]);
    await c.waitForDeliveries(2);
    expect(c.deliveries.map((d) => d.attempt)).toEqual([1, 2]);
    c.ack([c.deliveries[1]!.ackId]);
    await pollUntil(async () => (await api.getSubscription(sub)).stats?.ackFloor === 1n, "the ack");
  });

  it("dead-letters a message after max deliveries", async () => {
    const dlq = uniqueName("dlq");
    await api.createTopic({ name: dlq });
    await api.createSubscription({ name: `${dlq}-sub`, topic: dlq });
    const { topic, sub } = await topicWithSub({ maxDeliveries: 2, deadLetterTopic: dlq });
    const c = consume(sub);
    const dead = consume(`${dlq}-sub`, { autoAck: true });
    await consumersAttached(api, sub, 1);
    await consumersAttached(api, `${dlq}-sub`, 1);
    await api.publish(topic, [{ payload: Buffer.from("poison"), attributes: { origin: "e2e" } }]);
    for (let attempt = 1; attempt <= 2; attempt++) {
      await c.waitForDeliveries(attempt);
      c.nack([c.deliveries[attempt - 1]!.ackId]);
    }
    await dead.waitForDeliveries(1);
    expect(Buffer.from(dead.deliveries[0]!.message!.payload).toString()).toBe("poison");
    expect(dead.deliveries[0]!.message!.attributes).toMatchObject({ origin: "e2e" });
    await pollUntil(async () => (await api.getSubscription(sub)).stats?.deadLettered === 1n, "the dead-letter count");
  });

  it("never exceeds the consumer's max outstanding messages", async () => {
    const { topic, sub } = await topicWithSub();
    const c = consume(sub, { maxOutstandingMessages: 5 });
    await consumersAttached(api, sub, 1);
    await api.publishText(topic, texts(40));
    await c.waitForDeliveries(5);
    while (c.deliveries.length < 40) {
      const target = Math.min(40, c.deliveries.length + 2);
      c.ack([...c.outstanding.keys()].slice(0, 2));
      await c.waitForDeliveries(target);
    }
    expect(c.maxOutstanding).toBe(5);
  });

  it("ends a Consume on a missing subscription with NOT_FOUND", async () => {
    const c = consume(uniqueName("nope"));
    await c.waitForEnd();
    expect(c.error?.code).toBe(status.NOT_FOUND);
  });
});

describe("v2 in a container: broker stats", () => {
  it("reports memory storage and counts that grow with traffic", async () => {
    const before = await api.brokerStats();
    expect(before.storage).toBe("memory");
    expect(before.rssBytes).toBeGreaterThan(0n);
    const topic = uniqueName("stats");
    await api.createTopic({ name: topic });
    await api.publishText(topic, texts(7));
    const after = await api.brokerStats();
    expect(after.published - before.published).toBe(7n);
    expect(after.topics).toBe(before.topics + 1);
    expect(after.uptimeMs).toBeGreaterThanOrEqual(before.uptimeMs);
  });
});
