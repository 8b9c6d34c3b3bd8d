import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { buildPlan, parseScenario, runScenario, type PhaseTiming } from "../run/index.js";
import { brokerCost, brokerCpuBetween, combineCosts, costText, cumulativeCpu, type CpuSample } from "./cost.js";
import { captureEnvironment } from "./environment.js";
import { renderMarkdown } from "./md.js";
import { buildResult } from "./result.js";
import { brokerCpuShare } from "./verdict.js";

const phases: PhaseTiming[] = [
  { phase: "connect", startSec: 0, endSec: 1 },
  { phase: "warmup", startSec: 1, endSec: 2 },
  { phase: "measure", startSec: 2, endSec: 6 },
  { phase: "drain", startSec: 6, endSec: 7 },
];

/** Cumulative samples every `step` s of a broker burning `rate(t)` cores, split 3:1 user:system. */
function samples(until: number, step: number, rate: (t: number) => number): CpuSample[] {
  const out: CpuSample[] = [];
  let cpu = 0;
  for (let t = 0; t <= until + 1e-9; t += step) {
    out.push({ t: Math.round(t * 1000) / 1000, cpuUserSeconds: cpu * 0.75, cpuSystemSeconds: cpu * 0.25 });
    cpu += rate(t) * step;
  }
  return out;
}

describe("broker cost per message", () => {
  it("counts only the CPU from measure start to drain end", () => {
    // 0.1 core before the measure phase, 0.8 core in measure and drain, 0.05 after: 0.8 × 5 s = 4 CPU-s.
    const s = samples(9, 0.25, (t) => (t < 2 ? 0.1 : t < 7 ? 0.8 : 0.05));
    const c = brokerCost(s, phases, { deliveries: 1_000_000, published: 500_000 })!;
    expect(c.fromSec).toBe(2);
    expect(c.toSec).toBe(7);
    expect(c.cpuSeconds).toBeCloseTo(4, 6);
    expect(c.cpuUsPerDelivery).toBeCloseTo(4, 3);
    expect(c.cpuUsPerPublish).toBeCloseTo(8, 3);
    expect(c.clipped).toBe(false);
  });

  it("interpolates between samples that straddle the window's ends", () => {
    // Samples at 1.5, 3.5, 5.5, 7.5 s of a constant 0.5 core: 5 s window = 2.5 CPU-s, though no sample falls on its ends.
    const s = [1.5, 3.5, 5.5, 7.5].map((t) => ({ t, cpuUserSeconds: 10 + t * 0.5, cpuSystemSeconds: 0 }));
    const c = brokerCost(s, phases, { deliveries: 2_500_000, published: 2_500_000 })!;
    expect(c.cpuSeconds).toBeCloseTo(2.5, 6);
    expect(c.cpuUsPerDelivery).toBeCloseTo(1, 3);
  });

  it("accepts samples in any order", () => {
    const s = samples(8, 0.5, () => 1).reverse();
    expect(brokerCost(s, phases, { deliveries: 5_000_000, published: 1 })!.cpuUsPerDelivery).toBeCloseTo(1, 3);
  });

  it("clips the window to the samples it has and says so", () => {
    // The last sample is at 5 s: the figure covers measure start to 5 s only.
    const s = samples(5, 0.5, () => 1);
    const c = brokerCost(s, phases, { deliveries: 3_000_000, published: 3_000_000 })!;
    expect(c.toSec).toBe(5);
    expect(c.cpuSeconds).toBeCloseTo(3, 6);
    expect(c.clipped).toBe(true);
  });

  it("is null without a measure phase, with one sample, or with no sample span inside the window", () => {
    const s = samples(9, 0.5, () => 1);
    expect(brokerCost(s, phases.filter((p) => p.phase !== "measure"), { deliveries: 1, published: 1 })).toBeNull();
    expect(brokerCost(s.slice(0, 1), phases, { deliveries: 1, published: 1 })).toBeNull();
    expect(brokerCost(s.filter((x) => x.t >= 7.5), phases, { deliveries: 1, published: 1 })).toBeNull();
  });

  it("gives no per-message figure for zero messages, and a zero CPU for a counter that did not move", () => {
    // (A counter that goes down is a restarted broker: "broker CPU across restarts" below.)
    const flat = [0, 3, 8].map((t) => ({ t, cpuUserSeconds: 5, cpuSystemSeconds: 0 }));
    const c = brokerCost(flat, phases, { deliveries: 0, published: 10 })!;
    expect(c.cpuSeconds).toBe(0);
    expect(c.cpuUsPerDelivery).toBeNull();
    expect(c.cpuUsPerPublish).toBe(0);
  });

  it("ends the window at the end of measure when there was no drain", () => {
    const s = samples(9, 0.25, (t) => (t < 6 ? 1 : 0));
    const c = brokerCost(s, phases.filter((p) => p.phase !== "drain"), { deliveries: 4_000_000, published: 4_000_000 })!;
    expect(c.toSec).toBe(6);
    expect(c.cpuUsPerDelivery).toBeCloseTo(1, 3);
  });

  it("combines parts of one run against one broker: the widest part's CPU over all parts' messages", () => {
    const a = brokerCost(samples(8, 0.5, () => 1), phases, { deliveries: 1_000_000, published: 500_000 })!;
    const b = brokerCost(samples(8, 0.5, () => 0.5), phases, { deliveries: 4_000_000, published: 500_000 })!;
    const c = combineCosts([a, b])!;
    expect(c.cpuSeconds).toBeCloseTo(5, 6);
    expect(c.deliveries).toBe(5_000_000);
    expect(c.cpuUsPerDelivery).toBeCloseTo(1, 3);
    expect(c.cpuUsPerPublish).toBeCloseTo(5, 3);
    expect(combineCosts([a, null])).toBeNull();
  });

  it("reads as CPU-µs per delivery and per published message", () => {
    const c = brokerCost(samples(8, 0.5, () => 1), phases, { deliveries: 1_562_500, published: 400_000 })!;
    expect(costText(c)).toBe("3.20 CPU-µs per delivery, 12.5 per published message");
    expect(costText(null)).toBe("n/a");
  });
});

describe("the cost in a run's result and report.md", () => {
  it("is computed from the broker's own samples and the run's timed deliveries", async () => {
    const scenario = parseScenario("name: cost-test\ntopics: 2\nsubscriptions: {perTopic: 2}\nproducers: 1\nrate: 20000\nmessages: 4000\nbatchSize: 20\nmessageSizeBytes: 64\n", "cost-test.yaml");
    const plan = buildPlan(scenario, "cost1", { index: 0, count: 1 });
    const driver = new FakeDriver();
    const outcome = await runScenario(scenario, plan, driver, { clock: systemClock, intervalMs: 100, sampleBroker: () => driver.brokerStats() });
    const r = buildResult(scenario, plan, outcome, { runId: "cost1", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "x", args: [], storage: "memory", fsync: false } });
    outcome.recorder.destroy();
    const c = r.broker.cost!;
    expect(c).not.toBeNull();
    expect(c.deliveries).toBe(r.latency.e2e.count);
    expect(c.deliveries).toBe(8000); // 4000 measured messages × 2 subscriptions per topic
    expect(r.broker.samples.length).toBeGreaterThanOrEqual(2);
    expect(c.published).toBe(4000);
    expect(c.cpuSeconds).toBeGreaterThan(0);
    // The fake broker is this process: its CPU inside the window cannot exceed the run's total.
    expect(c.cpuSeconds).toBeLessThanOrEqual(r.broker.cpuSeconds! + 0.001);
    expect(c.cpuUsPerDelivery).toBeCloseTo((c.cpuSeconds * 1e6) / 8000, 2);
    expect(renderMarkdown(r)).toContain(`**Broker cost:** ${costText(c)} (broker CPU`);
  });
});

describe("broker CPU across restarts", () => {
  it("adds a restarted broker's CPU (its counter starts again from 0) to what the old process had used", () => {
    const s = (t: number, cpu: number) => ({ t, cpuUserSeconds: cpu, cpuSystemSeconds: 0 });
    // 1 s of CPU, a kill at ~2 s, the new process at 0.2 s and then 0.7 s of CPU.
    const samples = [s(0, 10), s(1, 10.5), s(2, 11), s(3, 0.2), s(4, 0.7)];
    expect(cumulativeCpu(samples)).toEqual([10, 10.5, 11, 11.2, 11.7]);
    const cost = brokerCost(samples, [{ phase: "measure", startSec: 0, endSec: 4 }], { deliveries: 1000, published: 1000 });
    expect(cost?.cpuSeconds).toBeCloseTo(1.7, 6);
    expect(cost?.cpuUsPerDelivery).toBe(1700);
  });

  it("reads a dip of a few ms (the last sample from /proc in 10 ms ticks after the broker's own µs figures) as no change, not as a restart", () => {
    const s = (t: number, cpu: number) => ({ t, cpuUserSeconds: cpu, cpuSystemSeconds: 0 });
    // The published latency run of 2026-12-01: 25.8246 s from the broker, then 25.82 s from /proc.
    const samples = [s(0, 4.1), s(60, 25.8246), s(60.02, 25.82)];
    expect(cumulativeCpu(samples)).toEqual([4.1, 25.8246, 25.8246]);
    const cost = brokerCost(samples, [{ phase: "measure", startSec: 0, endSec: 60.02 }], { deliveries: 300_000, published: 300_000 });
    expect(cost?.cpuSeconds).toBeCloseTo(21.7246, 6);
    // A drop of more than 0.05 CPU-s is a new process.
    expect(cumulativeCpu([s(0, 1), s(1, 0.9)])).toEqual([1, 1.9]);
  });

  it("is read the same way by the cost, the verdict's CPU share and any window: interpolated, across the restart, clipped to the samples", () => {
    const s = (t: number, cpu: number) => ({ t, cpuUserSeconds: cpu, cpuSystemSeconds: 0 });
    const samples = [s(0, 10), s(1, 10.5), s(2, 11), s(3, 0.2), s(4, 0.7)];
    // 0.5 → 3.5 s: half of the first second (0.25), 1 → 2 (0.5), the restart step (0.2), half of 3 → 4 (0.25).
    expect(brokerCpuBetween(samples, 0.5, 3.5)).toEqual({ fromSec: 0.5, toSec: 3.5, cpuSeconds: expect.closeTo(1.2, 9), clipped: false });
    expect(brokerCpuShare(samples, 0.5, 3.5)).toBe(0.4);
    // A window past the last sample is clipped to it, and says so.
    expect(brokerCpuBetween(samples, 3, 9)).toMatchObject({ fromSec: 3, toSec: 4, clipped: true });
    expect(brokerCpuShare(samples, 3, 9)).toBe(0.5);
    expect(brokerCpuBetween(samples.slice(0, 1), 0, 1)).toBeNull();
    expect(brokerCpuBetween(samples, 5, 9)).toBeNull();
  });
});
