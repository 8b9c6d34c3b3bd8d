import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver, type Driver } from "../drivers/index.js";
import { UsageError } from "../errors.js";
import { buildResult, captureEnvironment, renderMarkdown } from "../report/index.js";
import { backlogMessages, backlogQuotas } from "./backlog.js";
import { buildPlan } from "./plan.js";
import { runScenario } from "./runner.js";
import { parseScenario } from "./scenario.js";

const meta = { runId: "b1", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "in-process", args: [], storage: "memory" as const, fsync: false } };

function scenario(extra: string) {
  return parseScenario(`name: backlog-test\ntopics: 2\nsubscriptions: {perTopic: 2}\nproducers: 2\nbatchSize: 50\n${extra}`, "backlog-test.yaml");
}

describe("backlog build and drain", () => {
  it("holds consumers back until the backlog is stored, releases them, and reports build, drain and the broker", async () => {
    // Build at 5000 msg/s (1 s), then 2000 measured messages at 5000 msg/s; the fake delivers at most 12000/s.
    const s = scenario("backlog: {messages: 5000, rate: 5000}\nrate: 5000\nmessages: 2000\nlingerMs: 2\ndrainTimeoutSeconds: 10\nslo: {lostMax: 0}\n");
    const plan = buildPlan(s, "b1");
    const driver = new FakeDriver({ deliveriesPerSecond: 12_000 });
    const outcome = await runScenario(s, plan, driver, { clock: systemClock, intervalMs: 200, sampleBroker: () => driver.brokerStats() });
    const result = buildResult(s, plan, outcome, meta);
    const b = result.backlog!;

    expect(result.run.phases.map((p) => p.phase)).toEqual(["connect", "build", "measure", "drain", "teardown"]);
    // Nothing reached a consumer during the build: every build-phase point delivered nothing while the backlog grew.
    const build = result.series.filter((p) => p.phase === "build");
    expect(build.length).toBeGreaterThan(1);
    expect(build.every((p) => p.delivered === 0)).toBe(true);
    expect(build[build.length - 1]!.backlog!).toBeGreaterThan(build[0]!.backlog!);

    expect(b).toMatchObject({ target: { messages: 5000 }, targetMessages: 5000, stored: 5000, storedBytes: 5000 * 128, buildPublishErrors: 0, expectedDeliveries: 10_000, deliveredBacklog: 10_000, drained: true });
    expect(b.buildRate).toBeGreaterThan(2500);
    expect(b.buildRate).toBeLessThanOrEqual(5500);
    // 10,000 backlog deliveries at most 12,000/s (plus the bucket's 100 ms burst): the drain takes time, and its rate is bounded by the capacity.
    expect(b.drainSeconds!).toBeGreaterThan(0.5);
    expect(b.drainRate!).toBeLessThanOrEqual(12_000 * 1.2);
    expect(Math.abs(b.drainRate! - 10_000 / b.drainSeconds!) / b.drainRate!).toBeLessThan(0.01);
    expect(b.publishWhileDraining.count).toBeGreaterThan(0);
    expect(b.broker.withinBudget).toBe(true);
    expect(b.broker.peakBacklog!).toBeGreaterThan(1000); // the fake's queue, sampled while it held the backlog

    // Every message accounted, backlog included; only measured messages timed.
    expect(result.counts).toMatchObject({ expected: 14_000, delivered: 14_000, lost: 0, duplicates: 0 });
    expect(result.latency.e2e.count).toBe(4000);
    expect(result.passed).toBe(true);
    const md = renderMarkdown(result);
    expect(md).toMatch(/## Backlog build and drain/);
    expect(md).toMatch(/stayed within its budgets/);
  }, 60_000);

  it("says when the backlog did not drain, and counts what a lossy broker lost", async () => {
    const s = scenario("backlog: {messages: 1000}\nmessages: 200\ndrainTimeoutSeconds: 1\n");
    const plan = buildPlan(s, "b2");
    const outcome = await runScenario(s, plan, new FakeDriver({ dropEvery: 50 }), { clock: systemClock, intervalMs: 200 });
    const result = buildResult(s, plan, outcome, meta);
    expect(result.backlog).toMatchObject({ stored: 1000, expectedDeliveries: 2000, drained: false, drainSeconds: null, drainRate: null });
    expect(result.backlog!.deliveredBacklog).toBeLessThan(2000);
    expect(result.counts.lost).toBe(Math.floor(2400 / 2 / 50) * 2);
    expect(renderMarkdown(result)).toMatch(/did not drain/);
  }, 30_000);

  it("turns a byte target into messages of the scenario's size and splits it like messages", () => {
    const s = scenario("backlog: {bytes: 100000}\nmessageSizeBytes: 1000\nmessages: 10\n");
    expect(backlogMessages(s.backlog!, s.messageSizeBytes)).toBe(100);
    const quotas = backlogQuotas(s, buildPlan(s, "b3"));
    expect([...quotas.values()].flat().reduce((a, b) => a + b, 0)).toBe(100);
  });

  it("refuses a driver that keeps nothing for a subscription without a consumer", async () => {
    const s = scenario("backlog: {messages: 100}\nmessages: 10\n");
    const fake = new FakeDriver();
    const atMostOnce = new Proxy(fake, { get: (t, k) => (k === "acks" ? false : (Reflect.get(t, k) as unknown)) }) as Driver;
    await expect(runScenario(s, buildPlan(s, "b4"), atMostOnce, { clock: systemClock, intervalMs: 200 })).rejects.toThrow(UsageError);
    await expect(runScenario(s, buildPlan(s, "b4"), atMostOnce, { clock: systemClock, intervalMs: 200 })).rejects.toThrow(/keeps nothing for a subscription without a consumer/);
  });
});
