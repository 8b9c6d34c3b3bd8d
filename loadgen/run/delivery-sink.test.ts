import { afterEach, describe, expect, it, vi } from "vitest";
import { FakeClock } from "../clock.js";
import { readsHandedOver } from "../drivers/index.js";
import { Accounting } from "./accounting.js";
import { AccountingSink } from "./delivery-sink.js";
import { FLAG_WARMUP, PayloadBatch } from "./payload.js";
import { buildPlan } from "./plan.js";
import { Recorder } from "./recorder.js";
import { parseScenario } from "./scenario.js";

// One producer on two topics, two subscriptions each: slots 0, 1 read topic 0; slots 2, 3 topic 1.
const scenario = parseScenario("name: sink\ntopics: 2\nsubscriptions: {perTopic: 2}\nproducers: 1\nmessages: 100\n", "sink.yaml");
const plan = buildPlan(scenario, "r");

function setup() {
  const clock = new FakeClock(1_000_000);
  const accounting = new Accounting(
    plan.subscriptions.map((s) => s.topic),
    plan.producersPerTopic,
    scenario.topics,
  );
  const recorder = new Recorder();
  recorder.startMeasuring();
  const sink = new AccountingSink(plan, scenario.topics, accounting, recorder, clock);
  return { clock, accounting, recorder, sink };
}

/** Messages as the producers write them (payload.ts), intended at `intendedUs`, sent at `sentUs`. */
function messages(topic: number, seqs: number[], intendedUs: number, sentUs: number, flags = 0): Buffer[] {
  const batch = new PayloadBatch(64, seqs.length, "random");
  for (const seq of seqs) batch.push(0, topic, seq, intendedUs, flags);
  batch.stampSent(sentUs);
  return batch.messages().map((m) => Buffer.from(m));
}

/**
 * Hands `count` payloads to the sink as a driver does: byte ranges of one frame-like buffer,
 * each after a few bytes of other fields, so the sink must read at the range it is given.
 */
function deliver(sink: AccountingSink, slot: number, payloads: readonly Uint8Array[], attempts: readonly number[] | undefined, count: number): void {
  const frame = Buffer.concat(payloads.slice(0, count).flatMap((p) => [Buffer.from([0xaa, 0xbb, 0xcc]), p]));
  let at = 0;
  for (let i = 0; i < count; i++) {
    at += 3;
    sink.onDelivery(slot, frame, at, at + payloads[i]!.length, attempts ? attempts[i]! : 1);
    at += payloads[i]!.length;
  }
}

const slotOf = (topic: number) => plan.subscriptions.findIndex((s) => s.topic === topic);

afterEach(() => {
  vi.useRealTimers();
});

describe("the delivery sink", () => {
  it("accounts each first delivery and times it from the header's intended and sent times", () => {
    const { clock, accounting, recorder, sink } = setup();
    clock.setUs(1_004_000);
    const batch = messages(0, [0, 1, 2], 1_000_000, 1_001_000);
    deliver(sink, slotOf(0), batch, undefined, batch.length);
    expect(accounting.totals()).toMatchObject({ delivered: 3, duplicates: 0, foreign: 0 });
    expect(recorder.e2e.totalCount).toBe(3);
    // 4 ms after the intended time (corrected), 3 ms after it was sent (uncorrected); HDR keeps 3 digits.
    expect(recorder.e2e.maxValue).toBeGreaterThanOrEqual(3_996);
    expect(recorder.e2e.maxValue).toBeLessThanOrEqual(4_004);
    expect(recorder.e2eUncorrected.maxValue).toBeGreaterThanOrEqual(2_997);
    expect(recorder.e2eUncorrected.maxValue).toBeLessThanOrEqual(3_003);
    expect(sink.lastTimedDeliveryUs).toBe(1_004_000);
  });

  it("reads the clock once per synchronous burst of deliveries, and afresh after the burst", async () => {
    const { clock, recorder, sink } = setup();
    clock.setUs(1_002_000);
    const first = messages(0, [0], 1_000_000, 1_000_000);
    deliver(sink, slotOf(0), first, undefined, 1);
    // Same synchronous run (one socket read's worth): the burst's receive time still applies.
    clock.setUs(1_009_000);
    const second = messages(0, [1], 1_000_000, 1_000_000);
    deliver(sink, slotOf(0), second, undefined, 1);
    expect(sink.lastTimedDeliveryUs).toBe(1_002_000);
    expect(recorder.e2e.maxValue).toBeLessThanOrEqual(2_002);
    // Once the burst's microtasks ran, the next delivery reads the clock again.
    await Promise.resolve();
    const third = messages(0, [2], 1_000_000, 1_000_000);
    deliver(sink, slotOf(0), third, undefined, 1);
    expect(sink.lastTimedDeliveryUs).toBe(1_009_000);
    expect(recorder.e2e.maxValue).toBeGreaterThanOrEqual(8_990);
  });

  it("reads the clock afresh for the next socket read handed over in the same synchronous run", () => {
    const { clock, sink } = setup();
    clock.setUs(1_002_000);
    deliver(sink, slotOf(0), messages(0, [0], 1_000_000, 1_000_000), undefined, 1);
    // read-budget.ts gives several held reads back in one turn, no microtask between them.
    readsHandedOver.count++;
    clock.setUs(1_009_000);
    deliver(sink, slotOf(0), messages(0, [1], 1_000_000, 1_000_000), undefined, 1);
    expect(sink.lastTimedDeliveryUs).toBe(1_009_000);
  });

  it("takes only `count` payloads of a frame", () => {
    const { accounting, sink } = setup();
    const batch = messages(0, [0, 1, 2, 3], 0, 0);
    deliver(sink, slotOf(0), batch, undefined, 2);
    expect(accounting.deliveredCount).toBe(2);
  });

  it("counts a payload for another topic, or not a generator payload at all, as foreign", () => {
    const { accounting, recorder, sink } = setup();
    const wrongTopic = messages(1, [0], 0, 0);
    const notOurs = Buffer.alloc(64, 7);
    deliver(sink, slotOf(0), [...wrongTopic, notOurs, Buffer.alloc(3)], undefined, 3);
    expect(accounting.totals()).toMatchObject({ delivered: 0, foreign: 3 });
    expect(recorder.e2e.totalCount).toBe(0);
  });

  it("accounts duplicates and redeliveries without timing them again", () => {
    const { accounting, recorder, sink } = setup();
    const batch = messages(0, [0, 1], 0, 0);
    deliver(sink, slotOf(0), batch, [1, 1], 2);
    deliver(sink, slotOf(0), batch, [2, 2], 2);
    expect(accounting.totals()).toMatchObject({ delivered: 2, duplicates: 2, redelivered: 2 });
    expect(recorder.e2e.totalCount).toBe(2);
  });

  it("accounts warmup messages but leaves them out of timing and of the last timed delivery", () => {
    const { clock, accounting, recorder, sink } = setup();
    clock.setUs(2_000_000);
    const warm = messages(0, [0, 1], 0, 0, FLAG_WARMUP);
    deliver(sink, slotOf(0), warm, undefined, 2);
    expect(accounting.deliveredCount).toBe(2);
    expect(recorder.e2e.totalCount).toBe(0);
    expect(sink.lastTimedDeliveryUs).toBe(0);
  });

  it("expects every accepted publish once per subscription of its topic, and says when all arrived", async () => {
    const { sink } = setup();
    sink.onPublished(0, 2);
    sink.onPublished(1, 1);
    expect(sink.expectedTotal).toBe(6);
    const drained = sink.drained(3_600_000);
    for (const [slot, s] of plan.subscriptions.entries()) {
      const batch = messages(s.topic, s.topic === 0 ? [0, 1] : [0], 0, 0);
      deliver(sink, slot, batch, undefined, batch.length);
    }
    expect(await drained).toBe(false);
    expect(await sink.drained(1)).toBe(false); // already complete: resolves at once
  });

  it("reports a drain that timed out with deliveries missing", async () => {
    vi.useFakeTimers();
    const { sink } = setup();
    sink.onPublished(0, 1);
    const drained = sink.drained(5_000);
    const batch = messages(0, [0], 0, 0);
    deliver(sink, slotOf(0), batch, undefined, 1); // one of the two subscriptions
    vi.advanceTimersByTime(5_000);
    expect(await drained).toBe(true);
  });

  it("counts every stream error and keeps the first ten, named by subscription", () => {
    const { sink } = setup();
    for (let i = 0; i < 12; i++) sink.onStreamError(1, new Error(`cut ${i}`));
    expect(sink.streamErrors).toBe(12);
    expect(sink.streamErrorSamples).toHaveLength(10);
    expect(sink.streamErrorSamples[0]).toEqual({ subscription: plan.subscriptions[1]!.name, message: "cut 0" });
  });
});

describe("stranded subscriptions", () => {
  it("are those owing deliveries whose every consumer stream ended; one live consumer keeps a subscription waiting", () => {
    const clock = new FakeClock(1_000_000);
    const accounting = new Accounting(plan.subscriptions.map((x) => x.topic), plan.producersPerTopic, scenario.topics);
    const recorder = new Recorder();
    const sink = new AccountingSink(plan, scenario.topics, accounting, recorder, clock, 2);
    sink.onPublished(0, 3);
    expect(sink.stranded()).toEqual([]); // owed, but no stream ended: it may still arrive
    const [a, b] = plan.subscriptions.map((x, slot) => [x, slot] as const).filter(([x]) => x.topic === 0).map(([, slot]) => slot);
    sink.onStreamError(a!, new Error("ended"));
    expect(sink.stranded()).toEqual([]); // slot a still has its second consumer
    sink.onStreamError(a!, new Error("ended"));
    sink.onStreamError(b!, new Error("ended"));
    expect(sink.stranded()).toEqual([]); // slot b still has one consumer and owes 3
    deliver(sink, b!, messages(0, [0, 1, 2], 1_000_000, 1_000_000), undefined, 3);
    expect(sink.stranded()).toEqual([a]); // only a owes anything now, and it has no consumer left
    recorder.destroy();
  });
});
