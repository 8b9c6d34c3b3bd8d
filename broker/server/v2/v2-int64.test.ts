// 64-bit fields over a real socket: ack, nack and extension ids and PublishStream request ids
// across the whole 64-bit range, config limits the core cannot hold, and the ranges that do
// round-trip. Values beyond 2^53 used to end the stream with INTERNAL "Error deserializing request".
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetentionPolicy, StartPosition, type TopicConfig } from "../../../proto/gen/ratatoskr/v2/broker.js";
import { consumersAttached, expectStatus, pollUntil, startV2TestServer, TestConsumer, TestPublisher, uniqueName, type V2TestServer } from "../../../test/support/index.js";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** 2^53+1 (the first integer a double cannot hold), 2^63−1 (the int64 maximum), 2^64−1 (the uint64 maximum). */
const HUGE = [2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 64n - 1n];

/** Protobuf varint of an unsigned 64-bit value, written here by hand so the test does not lean on the generated encoder. */
function varint(value: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** A packed repeated varint field (wire type 2). ConsumeRequest: ack_ids = 2, nack_ids = 3; DeadlineExtension: ack_ids = 1. */
function packed(field: number, values: readonly bigint[]): number[] {
  const body = values.flatMap(varint);
  return [(field << 3) | 2, ...varint(BigInt(body.length)), ...body];
}

/** `ConsumeRequest { extend: { ack_ids, extend_ms } }` as raw bytes. */
function extendFrame(ids: readonly bigint[], extendMs: number): Buffer {
  const inner = [...packed(1, ids), 0x10, ...varint(BigInt(extendMs))];
  return Buffer.from([0x22, ...varint(BigInt(inner.length)), ...inner]);
}

/** Ids a consumer was never given: the 64-bit extremes, and ids whose low 32 bits equal a live one (a truncating decoder would hit it). */
function strangers(live: readonly bigint[]): bigint[] {
  return [...HUGE, ...live.map((id) => id + 2n ** 32n), ...live.map((id) => id + 2n ** 53n)];
}

describe("v2 64-bit ids over gRPC", () => {
  let srv: V2TestServer;
  const consumers: TestConsumer[] = [];
  beforeAll(async () => {
    srv = await startV2TestServer();
  });
  afterAll(async () => {
    for (const c of consumers) if (!c.ended) c.cut();
    await srv.close();
  });

  async function consumerWith(n: number): Promise<{ topic: string; sub: string; c: TestConsumer }> {
    const topic = uniqueName("i64");
    const sub = `${topic}-sub`;
    await srv.api.createTopic({ name: topic });
    await srv.api.createSubscription({ name: sub, topic, config: { ackDeadlineMs: 60_000 } });
    const c = new TestConsumer(srv.client, sub);
    consumers.push(c);
    await consumersAttached(srv.api, sub, 1);
    await srv.api.publishText(topic, Array.from({ length: n }, (_, i) => `m${i}`));
    await c.waitForDeliveries(n);
    return { topic, sub, c };
  }

  it("ignores acks of unknown 64-bit ids, up to 2^64-1 on the wire, and later acks still work", async () => {
    const { sub, c } = await consumerWith(2);
    const live = c.deliveries.map((d) => d.ackId);
    c.sendRaw(Buffer.from(packed(2, strangers(live))));
    c.ack([live[0]!]);
    // Frames are handled in order: once the real ack shows, the strangers were handled before it.
    await pollUntil(async () => (await srv.api.getSubscription(sub)).stats?.acked === 1n, "the real ack");
    const stats = (await srv.api.getSubscription(sub)).stats!;
    expect([stats.acked, stats.inFlight, stats.ackFloor]).toEqual([1n, 1n, 1n]);
    c.ack([live[1]!]);
    await pollUntil(async () => (await srv.api.getSubscription(sub)).stats?.ackFloor === 2n, "the second real ack");
    expect([c.ended, c.error]).toEqual([false, undefined]);
  });

  it("ignores nacks of unknown 64-bit ids and still redelivers a real nack", async () => {
    const { sub, c } = await consumerWith(2);
    const live = c.deliveries.map((d) => d.ackId);
    c.sendRaw(Buffer.from(packed(3, strangers(live))));
    c.nack([live[0]!]);
    await c.waitForDeliveries(3);
    // Only the real nack came back: the stranger ids released nothing.
    expect(c.deliveries.map((d) => [d.message!.sequence, d.attempt])).toEqual([
      [1n, 1],
      [2n, 1],
      [1n, 2],
    ]);
    expect((await srv.api.getSubscription(sub)).stats?.inFlight).toBe(2n);
    c.ack([c.deliveries[2]!.ackId, live[1]!]);
    await pollUntil(async () => (await srv.api.getSubscription(sub)).stats?.ackFloor === 2n, "both acked");
    expect([c.ended, c.error]).toEqual([false, undefined]);
  });

  it("ignores deadline extensions of unknown 64-bit ids and still honours a real one", async () => {
    const { sub, c } = await consumerWith(2);
    const live = c.deliveries.map((d) => d.ackId);
    // extend_ms 0 gives a message back at once: had a stranger id matched a lease, it would be redelivered.
    c.sendRaw(extendFrame(strangers(live), 0));
    c.sendRaw(extendFrame([live[1]!], 0));
    await c.waitForDeliveries(3);
    expect(c.deliveries.map((d) => [d.message!.sequence, d.attempt])).toEqual([
      [1n, 1],
      [2n, 1],
      [2n, 2],
    ]);
    c.ack([live[0]!, c.deliveries[2]!.ackId]);
    await pollUntil(async () => (await srv.api.getSubscription(sub)).stats?.ackFloor === 2n, "both acked");
    expect([c.ended, c.error]).toEqual([false, undefined]);
  });

  it("hands out ack ids that the generated decoder reads as bigint", async () => {
    const { c } = await consumerWith(1);
    expect(typeof c.deliveries[0]!.ackId).toBe("bigint");
    expect(c.deliveries[0]!.ackId).toBeGreaterThan(0n);
  });

  it("echoes PublishStream request ids exactly across the 64-bit range and keeps the stream going", async () => {
    const topic = uniqueName("i64-req");
    await srv.api.createTopic({ name: topic });
    const pub = new TestPublisher(srv.client);
    const ids = [0n, 1n, MAX_SAFE, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 64n - 2n, 2n ** 64n - 1n]; // ascending
    ids.forEach((id, i) => pub.send(id, topic, [`m${i}`]));
    await pub.waitFor(() => pub.responses.length === ids.length, `${ids.length} responses`);
    expect(pub.responses.map((r) => r.requestId).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(ids);
    ids.forEach((id, i) => {
      const r = pub.byId(id);
      expect(r.errorCode).toBe(0);
      expect(r.results[0]!.sequence).toBe(BigInt(i + 1));
    });
    pub.send(7n, topic, ["after"]);
    await pub.waitFor(() => pub.responses.length === ids.length + 1, "the request after them");
    expect(pub.byId(7n).results[0]!.sequence).toBe(BigInt(ids.length + 1));
    expect(pub.ended).toBe(false);
    pub.finish();
    await pub.waitFor(() => pub.ended, "the stream to end");
    expect(pub.error).toBeUndefined();
  });
});

describe("v2 64-bit limits", () => {
  let srv: V2TestServer;
  beforeAll(async () => {
    srv = await startV2TestServer();
  });
  afterAll(async () => {
    await srv.close();
  });

  const limits = (over: Partial<TopicConfig>): TopicConfig => ({
    retention: RetentionPolicy.RETENTION_POLICY_LIMITS,
    maxMessages: 0n,
    maxBytes: 0n,
    maxAgeMs: 0n,
    dedupWindowMs: 0n,
    ...over,
  });

  it.each([
    ["config.max_messages", { maxMessages: MAX_SAFE + 1n }],
    ["config.max_bytes", { maxBytes: 2n ** 63n - 1n }],
    ["config.max_age_ms", { maxAgeMs: 2n ** 63n - 1n }],
    ["config.dedup_window_ms", { dedupWindowMs: MAX_SAFE + 1n }],
  ] as const)("refuses a topic whose %s is beyond what the broker can hold with INVALID_ARGUMENT naming it", async (field, over) => {
    const name = uniqueName("i64-limit");
    await expectStatus(srv.api.createTopic({ name, config: limits(over) }), status.INVALID_ARGUMENT, new RegExp(`^${field.replace(".", "\\.")}: must be at most ${Number.MAX_SAFE_INTEGER}`));
    await expectStatus(srv.api.getTopic(name), status.NOT_FOUND, /does not exist/);
  });

  it("keeps limits up to Number.MAX_SAFE_INTEGER exactly", async () => {
    const name = uniqueName("i64-max");
    const created = await srv.api.createTopic({ name, config: limits({ maxMessages: MAX_SAFE, maxBytes: MAX_SAFE, maxAgeMs: MAX_SAFE, dedupWindowMs: MAX_SAFE }) });
    expect(created.config).toEqual(limits({ maxMessages: MAX_SAFE, maxBytes: MAX_SAFE, maxAgeMs: MAX_SAFE, dedupWindowMs: MAX_SAFE }));
    expect((await srv.api.getTopic(name)).config).toEqual(created.config);
    expect(await srv.api.publishText(name, ["kept"])).toEqual([1n]);
  });

  it.each([
    ["config.start_sequence", { start: StartPosition.START_POSITION_SEQUENCE, startSequence: 2n ** 63n - 1n }, /^config\.start_sequence: must be at most/],
    ["config.start_timestamp_ms", { start: StartPosition.START_POSITION_TIMESTAMP, startTimestampMs: MAX_SAFE + 1n }, /^config\.start_timestamp_ms: must be at most/],
    ["config.ack_deadline_ms", { ackDeadlineMs: 2 ** 31 - 1 }, /^config\.ack_deadline_ms: /],
  ] as const)("refuses a subscription whose %s is beyond what the broker supports with INVALID_ARGUMENT naming it", async (_field, config, detail) => {
    const topic = uniqueName("i64-sub");
    await srv.api.createTopic({ name: topic });
    await expectStatus(srv.api.createSubscription({ name: `${topic}-sub`, topic, config }), status.INVALID_ARGUMENT, detail);
    await expectStatus(srv.api.getSubscription(`${topic}-sub`), status.NOT_FOUND, /./);
  });

  it("ends a Consume stream whose max_outstanding_bytes is beyond what the broker can hold with INVALID_ARGUMENT naming it", async () => {
    const topic = uniqueName("i64-flow");
    await srv.api.createTopic({ name: topic });
    await srv.api.createSubscription({ name: `${topic}-sub`, topic });
    const c = new TestConsumer(srv.client, `${topic}-sub`, { maxOutstandingBytes: 2n ** 63n - 1n });
    await c.waitForEnd();
    expect(c.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(c.error?.details).toMatch(/^start\.max_outstanding_bytes: must be at most/);
    const ok = new TestConsumer(srv.client, `${topic}-sub`, { maxOutstandingBytes: MAX_SAFE, autoAck: true });
    await consumersAttached(srv.api, `${topic}-sub`, 1);
    await srv.api.publishText(topic, ["flows"]);
    await ok.waitForDeliveries(1);
    ok.cut();
  });

  it("ends a Consume stream that sends a malformed frame with INVALID_ARGUMENT and leaves the others alone", async () => {
    const topic = uniqueName("i64-badframe");
    await srv.api.createTopic({ name: topic });
    await srv.api.createSubscription({ name: `${topic}-sub`, topic });
    const healthy = new TestConsumer(srv.client, `${topic}-sub`, { autoAck: true });
    const bad = new TestConsumer(srv.client, `${topic}-sub`);
    await consumersAttached(srv.api, `${topic}-sub`, 2);
    bad.sendRaw(Buffer.from([0x12, 0x7f, 0x01])); // ack_ids claims 127 bytes, carries 1
    await bad.waitForEnd();
    expect(bad.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.error?.details).toMatch(/^ConsumeRequest: malformed frame/);
    await srv.api.publishText(topic, ["still served"]);
    await healthy.waitForDeliveries(1);
    expect(healthy.ended).toBe(false);
    healthy.cut();
  });
});
