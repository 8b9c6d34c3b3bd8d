import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import type { Consumer, DeliverySink, Driver, SubscriptionSpec } from "../drivers/index.js";
import { openConsumers, RAMP_CHUNKS_IN_FLIGHT } from "./ramp.js";

/** A driver whose CreateSubscription answers after a delay chosen per subscription; it records what happened in which order. */
function recordingDriver(delayMs: (slot: number) => number, failSlot?: number) {
  const events: string[] = [];
  let creating = 0;
  let maxCreating = 0;
  const created = new Set<number>();
  const driver = {
    name: "recording",
    async createSubscription(spec: SubscriptionSpec): Promise<void> {
      creating++;
      maxCreating = Math.max(maxCreating, creating);
      await new Promise((r) => setTimeout(r, delayMs(spec.slot)));
      creating--;
      if (spec.slot === failSlot) throw new Error(`create ${spec.slot} refused`);
      created.add(spec.slot);
      events.push(`create ${spec.slot}`);
    },
    async openConsumer(spec: SubscriptionSpec, index: number): Promise<Consumer> {
      if (!created.has(spec.slot)) throw new Error(`consumer of ${spec.slot} opened before its subscription exists`);
      events.push(`open ${spec.slot}/${index}`);
      return { slot: spec.slot, index, close: () => undefined, setReading: () => undefined } as unknown as Consumer;
    },
  };
  return { driver: driver as unknown as Driver, events, maxCreating: () => maxCreating };
}

const specs = (n: number): SubscriptionSpec[] => Array.from({ length: n }, (_, slot) => ({ slot, name: `s${slot}`, topic: "t" }));
const options = (rampPerSecond: number, consumersPerSubscription = 1) => ({
  consumersPerSubscription,
  rampPerSecond,
  clock: systemClock,
  progress: { log: () => undefined },
  elapsedSec: () => 0,
});
const sink = {} as DeliverySink;
const ids = (out: Consumer[]) => out.map((c) => `${(c as unknown as { slot: number }).slot}/${(c as unknown as { index: number }).index}`);

describe("the connect ramp", () => {
  it("opens every consumer after its subscription, in spec order, however the creations finish", async () => {
    // Later subscriptions answer first: 30 subscriptions, 2 consumers each, chunks of 10 (ramp 100/s).
    const { driver, events } = recordingDriver((slot) => 30 - slot);
    const out: Consumer[] = [];
    await openConsumers(specs(30), driver, sink, out, options(100, 2));
    expect(ids(out)).toEqual(specs(30).flatMap((s) => [`${s.slot}/0`, `${s.slot}/1`]));
    for (let slot = 0; slot < 30; slot++) {
      const create = events.indexOf(`create ${slot}`);
      expect(create).toBeGreaterThanOrEqual(0);
      expect(events.indexOf(`open ${slot}/0`)).toBeGreaterThan(create);
      expect(events.indexOf(`open ${slot}/1`)).toBeGreaterThan(create);
    }
  });

  it("overlaps a slow chunk with the next, never more than RAMP_CHUNKS_IN_FLIGHT chunks at once", async () => {
    // Chunks of 5 (ramp 50/s) whose creations take 250 ms: 2.5 chunk periods each.
    const { driver, maxCreating } = recordingDriver(() => 250);
    const out: Consumer[] = [];
    await openConsumers(specs(30), driver, sink, out, options(50));
    expect(out).toHaveLength(30);
    // One chunk at a time would have had at most 5 creations outstanding.
    expect(maxCreating()).toBe(RAMP_CHUNKS_IN_FLIGHT * 5);
  });

  it("stops starting chunks after a failure, keeps what opened, and throws the first error", async () => {
    const { driver } = recordingDriver(() => 5, 12);
    const out: Consumer[] = [];
    await expect(openConsumers(specs(100), driver, sink, out, options(100))).rejects.toThrow("create 12 refused");
    // Chunks of 10: the failure is in the second; at most the third had started.
    expect(out.length).toBeGreaterThanOrEqual(19);
    expect(out.length).toBeLessThanOrEqual(29);
    expect(ids(out)).not.toContain("12/0");
  });
});
