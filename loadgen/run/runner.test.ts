import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver, procSample, type Consumer, type DeliverySink, type FakeFaults, type SubscriptionSpec } from "../drivers/index.js";
import { decodeHistogram } from "./histogram.js";
import { buildPlan, expectedPerTopic } from "./plan.js";
import { buildResult, captureEnvironment } from "../report/index.js";
import { runScenario } from "./runner.js";
import { parseScenario } from "./scenario.js";

function scenario(overrides: string[] = []) {
  return parseScenario(
    "name: runner-test\ntopics: 3\nsubscriptions: {perTopic: 2}\nproducers: 2\nmessages: 3000\nbatchSize: 40\ndrainTimeoutSeconds: 2\nslo: {deliveredRatioMin: 1, lostMax: 0, duplicatesMax: 0}\n",
    "runner-test.yaml",
    overrides,
  );
}

async function run(faults: FakeFaults, overrides: string[] = []) {
  const s = scenario(overrides);
  const plan = buildPlan(s, "r1");
  const driver = new FakeDriver(faults);
  const outcome = await runScenario(s, plan, driver, { clock: systemClock, intervalMs: 200 });
  const result = buildResult(s, plan, outcome, {
    runId: "r1",
    driver: "fake",
    environment: captureEnvironment(),
    broker: { embedded: false, target: "in-process", args: [], storage: "memory", fsync: false },
  });
  return { s, plan, outcome, result, driver };
}

describe("runner against the fake driver", () => {
  it("publishes every message and accounts every delivery", async () => {
    const { outcome, result, driver } = await run({});
    expect(driver.published).toBe(3000);
    expect(outcome.accounting).toMatchObject({ expected: 6000, delivered: 6000, lost: 0, duplicates: 0, outOfOrder: 0, foreign: 0 });
    expect(outcome.drainTimedOut).toBe(false);
    expect(result.latency.e2e.count).toBe(6000);
    expect(result.latency.lateness.count).toBe(0); // unthrottled: no schedule to be late for
    expect(result.passed).toBe(true);
    expect(result.run.phases.map((p) => p.phase)).toEqual(["connect", "measure", "drain", "teardown"]);
    // The fine timeline holds every ack and every first delivery, inside the run's span.
    const tl = result.timeline!;
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect([sum(tl.published), sum(tl.delivered)]).toEqual([3000, 6000]);
    const startMs = Date.parse(result.run.startedAt);
    expect(tl.startMs).toBeLessThanOrEqual(startMs);
    expect(tl.startMs).toBeGreaterThan(startMs - 100);
    expect(tl.startMs + tl.delivered.length * tl.bucketMs).toBeLessThanOrEqual(startMs + result.run.durationSeconds * 1000 + 200);
    // Each interval histogram has its uncorrected twin with the same count.
    for (const iv of result.intervalHistograms) expect(decodeHistogram(iv.uncorrected!).totalCount).toBe(decodeHistogram(iv.histogram).totalCount);
  });

  it("accounts streams of several producers per topic, with warmup excluded from timing", async () => {
    const { outcome, result } = await run({}, ["producers=5", "rate=20000", "warmupSeconds=0.3"]);
    const warm = outcome.recorder.published - 3000;
    expect(warm).toBeGreaterThan(0);
    expect(outcome.accounting.lost).toBe(0);
    expect(outcome.accounting.delivered).toBe((3000 + warm) * 2);
    expect(result.latency.e2e.count).toBe(6000); // warmup deliveries are not timed
    expect(result.run.phases.map((p) => p.phase)).toContain("warmup");
  });

  it("counts exactly the deliveries a lossy broker dropped and fails the gates", async () => {
    const { plan, outcome, result } = await run({ dropEvery: 100 });
    const perTopic = expectedPerTopic(plan, 3);
    const expectedLost = plan.subscriptions.reduce((a, sub) => a + Math.floor(perTopic[sub.topic]! / 100), 0);
    expect(expectedLost).toBeGreaterThan(0);
    expect(outcome.accounting.lost).toBe(expectedLost);
    expect(outcome.drainTimedOut).toBe(true);
    expect(result.passed).toBe(false);
    const failed = result.gates.filter((g) => !g.passed).map((g) => g.name);
    expect(failed).toEqual(["delivered ratio", "lost"]);
    expect(result.gates.find((g) => g.name === "lost")!.detail).toContain(`off by ${expectedLost}`);
  });

  it("counts duplicates from a broker that delivers twice", async () => {
    const { plan, outcome, result } = await run({ duplicateEvery: 50 });
    const perTopic = expectedPerTopic(plan, 3);
    const expectedDup = plan.subscriptions.reduce((a, sub) => a + Math.floor(perTopic[sub.topic]! / 50), 0);
    expect(outcome.accounting).toMatchObject({ lost: 0, duplicates: expectedDup, delivered: 6000 });
    expect(result.gates.filter((g) => !g.passed).map((g) => g.name)).toEqual(["duplicates"]);
  });

  it("notices reordering without calling it loss", async () => {
    const { outcome } = await run({ swapEvery: 10 });
    expect(outcome.accounting.outOfOrder).toBeGreaterThan(0);
    expect(outcome.accounting).toMatchObject({ lost: 0, duplicates: 0, delivered: 6000 });
  });

  it("gives a 0.3 s run broker CPU seconds and peak RSS from the teardown sample", async () => {
    const s = parseScenario("name: short\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\ndurationSeconds: 0.3\nrate: 2000\nbatchSize: 10\ndrainTimeoutSeconds: 2\n", "short.yaml");
    const plan = buildPlan(s, "r2");
    // This process stands in for the broker: /proc is read the same way for an embedded one.
    const fromProc = async () => procSample(process.pid);
    const outcome = await runScenario(s, plan, new FakeDriver({}), { clock: systemClock, sampleBroker: fromProc, finalSampleBroker: fromProc });
    const result = buildResult(s, plan, outcome, {
      runId: "r2",
      driver: "fake",
      environment: captureEnvironment(),
      broker: { embedded: true, target: "in-process", args: [], storage: "memory", fsync: false },
    });
    expect(result.broker.cpuSeconds).toBeGreaterThan(0);
    expect(result.latency.lateness.count).toBeGreaterThan(0); // paced: lateness recorded
    expect(result.broker.peakRssBytes).toBeGreaterThanOrEqual(process.memoryUsage.rss() / 2);
    expect(outcome.brokerSamples.at(-1)!.peakRssBytes).toBeGreaterThanOrEqual(outcome.brokerSamples.at(-1)!.rssBytes);
  });
});

/** A fake broker whose consumer streams of slot 0 end with an error as soon as they open (a broker that ended them). */
class EndingFakeDriver extends FakeDriver {
  override async openConsumer(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink): Promise<Consumer> {
    if (spec.slot !== 0) return super.openConsumer(spec, consumerIndex, sink);
    setImmediate(() => sink.onStreamError(0, new Error("RESOURCE_EXHAUSTED: ended by the broker")));
    return { close: () => undefined };
  }
}

describe("a drain that cannot complete", () => {
  it("ends when every subscription still owed deliveries has no consumer left, instead of waiting out drainTimeoutSeconds", async () => {
    const s = scenario(["drainTimeoutSeconds=600", "messages=600"]);
    const plan = buildPlan(s, "r-ended");
    const outcome = await runScenario(s, plan, new EndingFakeDriver({}), { clock: systemClock, intervalMs: 200 });
    const drain = outcome.phases.find((p) => p.phase === "drain")!;
    // What slot 0 owes (its topic's share of 600 messages) can never arrive: the drain stops within a few steps, not after 600 s.
    expect(drain.endSec - drain.startSec).toBeLessThan(60);
    expect(outcome.drainTimedOut).toBe(true);
    expect(outcome.accounting.lost).toBe(expectedPerTopic(plan, s.topics)[plan.subscriptions[0]!.topic]);
    expect(outcome.streamErrors).toBe(1);
    expect(outcome.warnings.join()).toMatch(/the drain ended early: 1 subscription\(s\) still owed deliveries and had no consumer left/);
  }, 60_000);
});
