import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runBench } from "./bench.js";
import { systemClock } from "./clock.js";
import { FakeDriver } from "./drivers/index.js";
import { buildResult, captureEnvironment, combineResults, generatorVerdict, GENERATOR_BOUND_THRESHOLDS, mergeResults, readResult, renderReport, type ResultMeta, type RunResult, type WorkerFigures } from "./report/index.js";
import { buildPlan, decodeHistogram, encodeHistogram, parseScenario, Progress, runScenario, splitPlan, summarize, type Scenario } from "./run/index.js";
import { defaultWorkers, runWorkers } from "./workers.js";

const meta: ResultMeta = { runId: "w1", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "in-process", args: [], storage: "memory", fsync: false } };
const quiet = new Progress({ write: () => true }, true);

function scenario(extra = ""): Scenario {
  return parseScenario(
    `name: workers-test\ndriver: fake\ntopics: 2\nsubscriptions: {perTopic: 2}\nproducers: 2\nmessages: 10000\nbatchSize: 100\ndrainTimeoutSeconds: 3\n${extra}`,
    "workers-test.yaml",
  );
}

async function inWorkers(s: Scenario, workers: number): Promise<RunResult> {
  const plan = buildPlan(s, "w1");
  return runWorkers({ scenario: s, plan, workers, runId: "w1", target: "in-process", connectTimeoutMs: 5000, cleanup: false, meta, clock: systemClock, progress: quiet });
}

async function inOneProcess(s: Scenario): Promise<RunResult> {
  const plan = buildPlan(s, "w1");
  const o = s.driverOptions.fake ?? {};
  const outcome = await runScenario(s, plan, new FakeDriver(o), { clock: systemClock, intervalMs: 200, progress: quiet });
  const r = buildResult(s, plan, outcome, meta);
  outcome.recorder.destroy();
  return r;
}

describe("splitting a plan over workers", () => {
  it("puts producers and consumers on separate workers, consumers favoured by the fan-out, every one once", () => {
    const s = parseScenario("name: split\ntopics: 1\nsubscriptions: {perTopic: 10}\nproducers: 1\nmessages: 10\n", "split.yaml");
    const parts = splitPlan(buildPlan(s, "x"), 4);
    expect(parts.map((p) => p.role)).toEqual(["producer", "consumer", "consumer", "consumer"]);
    expect(parts.flatMap((p) => p.subscriptionIds).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(parts.flatMap((p) => p.topics)).toEqual([0]);
    expect(splitPlan(buildPlan(s, "x"), 1).map((p) => p.role)).toEqual(["both"]);
  });
});

describe("a run over worker threads (fake driver)", () => {
  it("publishes and delivers every message with exact counts, timed from the intended send time", async () => {
    // Fixed rate: corrected latency (from the intended time) is at least the uncorrected one.
    const r = await inWorkers(scenario("rate: 20000\nworkers: 3\nslo: {lostMax: 0, duplicatesMax: 0}\n"), 3);
    expect(r.generator?.mode).toBe("workers");
    expect(r.generator?.perWorker.map((w) => w.role)).toEqual(["producer", "consumer", "consumer"]);
    expect(r.counts).toMatchObject({ published: 10000, measuredPublished: 10000, expected: 20000, delivered: 20000, lost: 0, duplicates: 0, foreign: 0, subscriptions: 4, topics: 2, producers: 2 });
    expect(r.latency.e2e.count).toBe(20000);
    expect(r.latency.lateness.count).toBe(10000);
    expect(r.latency.e2e.p50Us!).toBeGreaterThanOrEqual(r.latency.e2eUncorrected.p50Us!);
    expect(r.latency.e2e.maxUs!).toBeGreaterThanOrEqual(r.latency.e2eUncorrected.maxUs!);
    // The workers' fine timelines merge losslessly: every ack and every first delivery is in one bucket.
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect([sum(r.timeline!.published), sum(r.timeline!.delivered)]).toEqual([10000, 20000]);
    expect(r.passed).toBe(true);
  }, 120_000);

  it("catches lost, duplicated and reordered deliveries exactly as one process does", async () => {
    const s = scenario("driverOptions: {fake: {dropEvery: 101, duplicateEvery: 89, swapEvery: 60}}\n");
    const [workers, single] = [await inWorkers(s, 3), await inOneProcess(s)];
    // 5,000 messages per topic reach each of 4 subscriptions; the fake counts per subscription.
    expect(single.counts.lost).toBe(4 * Math.floor(5000 / 101));
    expect(single.counts.duplicates).toBe(4 * Math.floor(5000 / 89));
    expect(single.counts.outOfOrder).toBeGreaterThan(0);
    for (const k of ["expected", "delivered", "lost", "duplicates", "outOfOrder", "foreign"] as const) expect(workers.counts[k], k).toBe(single.counts[k]);
  }, 120_000);
});

describe("never-acknowledged publishes over worker threads (fake driver)", () => {
  it("splits them from losses exactly as one process does: delivered anyway, or not delivered", async () => {
    // 100 batches of 100: batches 7, 14, ..., 98 (14) are delivered but their acks lost; batches
    // 11, 22, ..., 99 except 77 (8) are refused. Each topic has 2 subscriptions.
    const s = scenario("driverOptions: {fake: {unackEvery: 7, refuseEvery: 11}}\n");
    const [workers, single] = [await inWorkers(s, 3), await inOneProcess(s)];
    expect(single.counts).toMatchObject({ expected: (10000 - 1400 - 800) * 2, delivered: (10000 - 800) * 2, lost: 0, unackedDelivered: 1400 * 2, unackedUndelivered: 800 * 2, completeSubscriptions: 4 });
    expect(single.run.drainTimedOut).toBe(false);
    for (const k of ["expected", "delivered", "lost", "unackedDelivered", "unackedUndelivered", "publishErrors"] as const) expect(workers.counts[k], k).toBe(single.counts[k]);
    expect(workers.run.drainTimedOut).toBe(false);
  }, 120_000);
});

describe("shards with workers", () => {
  it("compose: each shard splits over its workers, and the merge of the shards has exact counts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rt-workers-shards-"));
    const file = join(dir, "s.yaml");
    writeFileSync(file, "name: shards-workers\ndriver: fake\ntopics: 4\nsubscriptions: {perTopic: 2}\nproducers: 2\nmessages: 8000\ndrainTimeoutSeconds: 5\nslo: {lostMax: 0, duplicatesMax: 0}\n");
    const results: RunResult[] = [];
    for (const i of [0, 1]) {
      const out = join(dir, `shard${i}`);
      expect(await runBench({ scenario: file, out, set: [], shard: `${i}/2`, workers: 2, quiet: true, handleSignals: false }, () => undefined)).toBe(0);
      results.push(readResult(join(out, "result.json")));
    }
    for (const r of results) expect(r.generator).toMatchObject({ mode: "workers", workers: 2 });
    const merged = mergeResults(results);
    expect(merged.counts).toMatchObject({ published: 8000, expected: 16000, delivered: 16000, lost: 0, duplicates: 0, topics: 4, subscriptions: 8, producers: 2 });
    expect(merged.generator?.perWorker.map((w) => [w.shard, w.role])).toEqual([[0, "producer"], [0, "consumer"], [1, "producer"], [1, "consumer"]]);
    expect(merged.passed).toBe(true);
  }, 180_000);
});

describe("combining workers' results", () => {
  it("ends although a worker's driver leaves a handle open after close: the parent terminates it once its result is in", async () => {
    const r = await inWorkers(scenario("driverOptions: {fake: {holdOpenAfterClose: true}}\n"), 2);
    expect(r.counts).toMatchObject({ expected: 20000, delivered: 20000, lost: 0 });
  }, 30_000);

  it("gives the histograms of one run that recorded every sample", async () => {
    const base = await inOneProcess(scenario());
    const whole = decodeHistogram(encodeHistogram(decodeHistogram(base.histograms.e2e)));
    whole.reset();
    const parts = [0, 1, 2].map(() => decodeHistogram(base.histograms.e2e));
    for (const p of parts) p.reset();
    for (let i = 0; i < 30000; i++) {
      const v = 1 + ((i * 7919) % 250000);
      whole.recordValue(v);
      parts[i % 3]!.recordValue(v);
    }
    const results = parts.map((p) => ({ ...base, histograms: { ...base.histograms, e2e: encodeHistogram(p) } }));
    const combined = combineResults(results, 1);
    // Both as stored (encoded), as every percentile in result.json is derived.
    const stored = summarize(decodeHistogram(encodeHistogram(whole)));
    expect(stored.count).toBe(30000);
    expect(combined.latency.e2e).toEqual(stored);
    expect(combined.histograms.e2e).toBe(encodeHistogram(whole));
    expect(combined.counts.delivered).toBe(3 * base.counts.delivered);
  }, 60_000);
});

describe("the generator-bound verdict", () => {
  const worker = (w: Partial<WorkerFigures>): WorkerFigures => ({ index: 0, role: "both", cpuSeconds: 1, cpuShare: 0.3, loopUtilization: 0.3, loopDelayP99Ms: 1, loopDelayMaxMs: 2, ...w });

  it("flags a saturated worker while the broker had headroom, and says so", () => {
    const v = generatorVerdict({ workers: [worker({ index: 1, role: "consumer", loopUtilization: 0.97, cpuShare: 0.95 })], brokerCpuShare: 0.4, achievedRateRatio: null, latenessP99Us: 0 });
    expect(v.bound).toBe(true);
    expect(v.reasons.join()).toMatch(/worker 1 \(consumer\) was saturated .* broker used 0.40 of a core/);
    expect(v.thresholds).toEqual({ ...GENERATOR_BOUND_THRESHOLDS });
  });

  it("does not flag a saturated worker when the broker was saturated too, nor a run with headroom", () => {
    expect(generatorVerdict({ workers: [worker({ loopUtilization: 0.97, cpuShare: 0.95 })], brokerCpuShare: 0.95, achievedRateRatio: null, latenessP99Us: 0 }).bound).toBe(false);
    expect(generatorVerdict({ workers: [worker({})], brokerCpuShare: 0.2, achievedRateRatio: 1, latenessP99Us: 900 }).bound).toBe(false);
  });

  it("flags sends that fell behind with a busy producer, and a stalled event loop", () => {
    const behind = generatorVerdict({ workers: [worker({ role: "producer", loopUtilization: 0.8 })], brokerCpuShare: 0.3, achievedRateRatio: 0.7, latenessP99Us: 0 });
    expect(behind.reasons.join()).toMatch(/intended sends fell behind/);
    const stalled = generatorVerdict({ workers: [worker({ loopDelayP99Ms: 120, loopDelayMaxMs: 200 })], brokerCpuShare: 0.99, achievedRateRatio: null, latenessP99Us: 0 });
    expect(stalled.reasons.join()).toMatch(/stalled: event-loop delay p99 120 ms/);
  });

  it("is set by a deliberately generator-bound run (one loop, unthrottled fan-out) and clear with headroom", async () => {
    const bound = await inOneProcess(parseScenario("name: bound\ndriver: fake\ntopics: 1\nsubscriptions: {perTopic: 10}\nproducers: 1\nmessages: 60000\ndrainTimeoutSeconds: 10\n", "bound.yaml"));
    expect(bound.generatorBound?.bound, JSON.stringify(bound.generator)).toBe(true);
    expect(bound.generatorBound?.reasons.join()).toMatch(/saturated|stalled/);
    const dir = mkdtempSync(join(tmpdir(), "rt-bound-"));
    renderReport(dir, bound);
    expect(readFileSync(join(dir, "report.md"), "utf8")).toContain("**GENERATOR-BOUND: these figures may measure the load generator");
    expect(readFileSync(join(dir, "report.html"), "utf8")).toContain('id="generator-bound"');
    const easy = await inOneProcess(parseScenario("name: easy\ndriver: fake\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nrate: 1000\nmessages: 1500\nbatchSize: 10\ndrainTimeoutSeconds: 5\n", "easy.yaml"));
    expect(easy.generatorBound, JSON.stringify(easy.generator)).toMatchObject({ bound: false, reasons: [] });
  }, 60_000);
});

describe("the default worker count", () => {
  const plan = (producers: number, subscriptions: number) => ({ producers: new Array(producers).fill({}), subscriptions: new Array(subscriptions).fill({}) }) as never;
  it("leaves one core to a broker the harness started, and stays in one process on 2 cores", () => {
    expect(defaultWorkers(plan(1, 10), "nats", true, 2)).toBe(1);
    expect(defaultWorkers(plan(1, 10), "nats", true, 8)).toBe(7);
  });
  it("uses every core against a --target broker, but never more workers than producers + subscriptions", () => {
    expect(defaultWorkers(plan(1, 10), "nats", false, 2)).toBe(2);
    expect(defaultWorkers(plan(1, 1), "ratatoskr", false, 8)).toBe(2);
  });
  it("runs the in-process fake driver in one process", () => {
    expect(defaultWorkers(plan(4, 4), "fake", false, 8)).toBe(1);
  });
});
