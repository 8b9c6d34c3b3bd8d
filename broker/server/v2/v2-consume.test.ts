import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StartPosition } from "../../../proto/gen/ratatoskr/v2/broker.js";
import { DEAD_LETTER_ATTRIBUTES } from "../../core/dead-letter.js";
import { consumersAttached, pollUntil, startV2TestServer, TestConsumer, topicWithSubscription, uniqueName, type SubscriptionConfigInput, type V2TestServer } from "../../../test/support/index.js";

const texts = (n: number, prefix = "m"): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

describe("v2 Consume over gRPC", () => {
  let srv: V2TestServer;
  const consumers: TestConsumer[] = [];
  const consume = (sub: string, options = {}): TestConsumer => {
    const c = new TestConsumer(srv.client, sub, options);
    consumers.push(c);
    return c;
  };
  beforeAll(async () => {
    srv = await startV2TestServer();
  });
  afterAll(async () => {
    for (const c of consumers) if (!c.ended) c.cut();
    await srv.close();
  });

  const topicWithSub = (config?: SubscriptionConfigInput) => topicWithSubscription(srv.api, config);

  it("replays from a sequence number", async () => {
    const topic = uniqueName("replay-seq");
    await srv.api.createTopic({ name: topic, config: { retention: 2, maxMessages: 0n, maxBytes: 0n, maxAgeMs: 0n, dedupWindowMs: 0n } });
    await srv.api.publishText(topic, texts(10));
    await srv.api.createSubscription({ name: `${topic}-sub`, topic, config: { start: StartPosition.START_POSITION_SEQUENCE, startSequence: 7n } });
    const c = consume(`${topic}-sub`, { autoAck: true });
    await c.waitForDeliveries(4);
    expect(c.deliveries.map((d) => d.message!.sequence)).toEqual([7n, 8n, 9n, 10n]);
  });

  it("replays from a timestamp", async () => {
    const topic = uniqueName("replay-ts");
    await srv.api.createTopic({ name: topic, config: { retention: 2, maxMessages: 0n, maxBytes: 0n, maxAgeMs: 0n, dedupWindowMs: 0n } });
    const early = await srv.api.publish(topic, texts(3).map((p) => ({ payload: Buffer.from(p) })));
    // Wait until the broker's clock has moved past the first batch's publish time.
    const cutoff = early.publishTimeMs + 1n;
    while (Date.now() < Number(cutoff) + 1) await new Promise<void>((r) => setImmediate(r));
    const late = await srv.api.publishText(topic, ["late1", "late2"]);
    await srv.api.createSubscription({ name: `${topic}-sub`, topic, config: { start: StartPosition.START_POSITION_TIMESTAMP, startTimestampMs: cutoff } });
    const c = consume(`${topic}-sub`, { autoAck: true });
    await c.waitForDeliveries(2);
    expect(c.deliveries.map((d) => d.message!.sequence)).toEqual(late);
    expect(c.texts()).toEqual(["late1", "late2"]);
  });

  it("splits one subscription between competing consumers without overlap", async () => {
    const { topic, sub } = await topicWithSub();
    const a = consume(sub, { autoAck: true, maxOutstandingMessages: 50 });
    const b = consume(sub, { autoAck: true, maxOutstandingMessages: 50 });
    // Both streams must be attached before publishing, or the first takes everything.
    await consumersAttached(srv.api, sub, 2);
    for (let i = 0; i < 10; i++) await srv.api.publishText(topic, texts(100, `b${i}-`));
    // A consumer's waitFor re-checks only on its own events, so poll the sum of both.
    await pollUntil(() => a.deliveries.length + b.deliveries.length >= 1000, "1000 deliveries in total");
    const seqs = [...a.deliveries, ...b.deliveries].map((d) => d.message!.sequence).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    expect(seqs).toEqual(Array.from({ length: 1000 }, (_, i) => BigInt(i + 1)));
    expect(a.deliveries.length).toBeGreaterThan(0);
    expect(b.deliveries.length).toBeGreaterThan(0);
  });

  it("redelivers a cut stream's unacked messages to another consumer with the attempt raised", async () => {
    const { topic, sub } = await topicWithSub();
    const first = consume(sub);
    await consumersAttached(srv.api, sub, 1);
    await srv.api.publishText(topic, texts(5));
    await first.waitForDeliveries(5);
    first.ack([first.deliveries[0]!.ackId, first.deliveries[1]!.ackId]);
    await pollUntil(async () => (await srv.api.getSubscription(sub)).stats?.ackFloor === 2n, "acks of 1 and 2");
    first.cut();
    const second = consume(sub, { autoAck: true });
    await second.waitForDeliveries(3);
    expect(second.deliveries.map((d) => [d.message!.sequence, d.attempt])).toEqual([
      [3n, 2],
      [4n, 2],
      [5n, 2],
    ]);
  });

  it("redelivers after the ack deadline passes", async () => {
    const { topic, sub } = await topicWithSub({ ackDeadlineMs: 200 });
    const c = consume(sub);
    await consumersAttached(srv.api, sub, 1);
    await srv.api.publishText(topic, ["slow"]);
    await c.waitForDeliveries(2);
    expect(c.deliveries.slice(0, 2).map((d) => d.attempt)).toEqual([1, 2]);
    expect(c.deliveries[1]!.ackId).not.toBe(c.deliveries[0]!.ackId);
    // On a loaded machine the ack may race the next expiry; ack whatever is current.
    c.setAutoAck(true);
    await pollUntil(async () => (await srv.api.getSubscription(sub)).stats?.ackFloor === 1n, "ack");
  });

  it("waits out the nack backoff before redelivering", async () => {
    const { topic, sub } = await topicWithSub({ retryBackoffMinMs: 150, retryBackoffMaxMs: 150 });
    const c = consume(sub);
    await consumersAttached(srv.api, sub, 1);
    await srv.api.publishText(topic, ["retry me"]);
    await c.waitForDeliveries(1);
    const nackedAt = performance.now();
    c.nack([c.deliveries[0]!.ackId]);
    await c.waitForDeliveries(2);
    expect(performance.now() - nackedAt).toBeGreaterThanOrEqual(150);
    expect(c.deliveries[1]!.attempt).toBe(2);
  });

  it("honours a deadline extension", async () => {
    // The extension must reach the broker before the first deadline, even on a loaded machine.
    const { topic, sub } = await topicWithSub({ ackDeadlineMs: 1000 });
    const c = consume(sub);
    await consumersAttached(srv.api, sub, 1);
    await srv.api.publishText(topic, ["extend me"]);
    await c.waitForDeliveries(1);
    const extendedAt = performance.now();
    c.send({ extend: { ackIds: [c.deliveries[0]!.ackId], extendMs: 1500 } });
    await c.waitForDeliveries(2);
    expect(performance.now() - extendedAt).toBeGreaterThanOrEqual(1500);
  });

  it("dead-letters a message after max deliveries, with attempts and origin attributes", async () => {
    const dlq = uniqueName("dlq");
    await srv.api.createTopic({ name: dlq });
    await srv.api.createSubscription({ name: `${dlq}-sub`, topic: dlq });
    const { topic, sub } = await topicWithSub({ maxDeliveries: 3, deadLetterTopic: dlq });
    const c = consume(sub);
    const dead = consume(`${dlq}-sub`, { autoAck: true });
    await consumersAttached(srv.api, sub, 1);
    await srv.api.publish(topic, [{ payload: Buffer.from("poison"), attributes: { origin: "test" } }]);
    for (let attempt = 1; attempt <= 3; attempt++) {
      await c.waitForDeliveries(attempt);
      c.nack([c.deliveries[attempt - 1]!.ackId]);
    }
    await dead.waitForDeliveries(1);
    const m = dead.deliveries[0]!.message!;
    expect(m.payload.toString()).toBe("poison");
    expect(m.attributes).toMatchObject({
      origin: "test",
      [DEAD_LETTER_ATTRIBUTES.attempts]: "3",
      [DEAD_LETTER_ATTRIBUTES.topic]: topic,
      [DEAD_LETTER_ATTRIBUTES.subscription]: sub,
    });
    expect(c.deliveries.map((d) => d.attempt)).toEqual([1, 2, 3]);
    await pollUntil(async () => (await srv.api.getSubscription(sub)).stats?.deadLettered === 1n, "dead-letter count");
  });

  it("never exceeds the consumer's max outstanding messages", async () => {
    const { topic, sub } = await topicWithSub();
    const c = consume(sub, { maxOutstandingMessages: 5 });
    await consumersAttached(srv.api, sub, 1);
    await srv.api.publishText(topic, texts(60));
    await c.waitForDeliveries(5);
    while (c.deliveries.length < 60) {
      // Ack only part of what is held, so the broker is always at the edge of the limit.
      const target = Math.min(60, c.deliveries.length + 2);
      c.ack([...c.outstanding.keys()].slice(0, 2));
      await c.waitForDeliveries(target);
    }
    expect(c.maxOutstanding).toBe(5);
  });

  it("never exceeds the consumer's max outstanding bytes", async () => {
    const { topic, sub } = await topicWithSub();
    const c = consume(sub, { maxOutstandingBytes: 1000 });
    await consumersAttached(srv.api, sub, 1);
    await srv.api.publishText(topic, Array.from({ length: 30 }, (_, i) => `${i}`.padEnd(300, "x")));
    await c.waitForDeliveries(3);
    while (c.deliveries.length < 30) {
      const target = c.deliveries.length + 1;
      c.ack([...c.outstanding.keys()].slice(0, 1));
      await c.waitForDeliveries(target);
    }
    expect(c.maxOutstandingBytes).toBeLessThanOrEqual(1000);
    expect(c.maxOutstandingBytes).toBe(900);
  });

  it("stops writing to a consumer that does not read and catches up once it reads again", async () => {
    const { topic, sub } = await topicWithSub();
    const c = consume(sub, { autoAck: true, maxOutstandingMessages: 100_000, maxOutstandingBytes: 1 << 30 });
    await consumersAttached(srv.api, sub, 1);
    c.pause();
    const payload = Buffer.alloc(4096, 1);
    const batches = 60;
    for (let i = 0; i < batches; i++) await srv.api.publish(topic, Array.from({ length: 50 }, () => ({ payload })));
    // Every publish has been fanned out by now; a broker ignoring write() → false would have
    // leased all of them into the stalled stream.
    const stalled = await srv.api.getSubscription(sub);
    expect(stalled.stats!.nextSequence).toBeLessThan(batches * 50);
    c.resume();
    await c.waitForDeliveries(batches * 50);
    expect(c.deliveries.map((d) => d.message!.sequence)).toEqual(Array.from({ length: batches * 50 }, (_, i) => BigInt(i + 1)));
  });

  it("ends a Consume stream whose first frame lacks start with INVALID_ARGUMENT, leaving others alone", async () => {
    const { topic, sub } = await topicWithSub();
    const healthy = consume(sub, { autoAck: true });
    await consumersAttached(srv.api, sub, 1);
    const bad = consume(undefined as unknown as string);
    bad.send({ ackIds: [1n] });
    await bad.waitForEnd();
    expect(bad.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.error?.details).toMatch(/start/);
    const unknown = consume(uniqueName("nope"));
    await unknown.waitForEnd();
    expect(unknown.error?.code).toBe(status.NOT_FOUND);
    const badLimits = consume(sub, { maxOutstandingMessages: -1 });
    await badLimits.waitForEnd();
    expect(badLimits.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(badLimits.error?.details).toMatch(/max_outstanding_messages/);
    await srv.api.publishText(topic, ["still fine"]);
    await healthy.waitForDeliveries(1);
    expect(healthy.ended).toBe(false);
  });

  it("ends consumers with NOT_FOUND when their subscription is deleted", async () => {
    const { sub } = await topicWithSub();
    const c = consume(sub);
    await consumersAttached(srv.api, sub, 1);
    await srv.api.deleteSubscription(sub);
    await c.waitForEnd();
    expect(c.error?.code).toBe(status.NOT_FOUND);
  });
});

