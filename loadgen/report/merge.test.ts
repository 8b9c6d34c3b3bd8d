import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { ReportError } from "../errors.js";
import { buildPlan, decodeHistogram, mergeEncoded, parseScenario, runScenario } from "../run/index.js";
import { captureEnvironment } from "./environment.js";
import { mergeResults } from "./merge.js";
import { buildResult, type RunResult } from "./result.js";

const scenario = parseScenario(
  "name: merge-test\ntopics: 6\nsubscriptions: {perTopic: 2}\nproducers: 3\nmessages: 6000\nbatchSize: 50\nslo: {deliveredRatioMin: 1, lostMax: 0}\n",
  "merge-test.yaml",
);
const env = captureEnvironment();

async function shard(index: number, count: number, dropEvery?: number): Promise<RunResult> {
  const plan = buildPlan(scenario, "m1", { index, count });
  const outcome = await runScenario({ ...scenario, drainTimeoutSeconds: 1 }, plan, new FakeDriver(dropEvery ? { dropEvery } : {}), { clock: systemClock, intervalMs: 200 });
  const r = buildResult(scenario, plan, outcome, { runId: "m1", driver: "fake", environment: env, broker: { embedded: false, target: "x", args: [], storage: "memory", fsync: false } });
  outcome.recorder.destroy();
  return r;
}

describe("report merge", () => {
  it("adds shard counts and merges their histograms losslessly", async () => {
    const shards = [await shard(0, 3), await shard(1, 3), await shard(2, 3)];
    const merged = mergeResults(shards);
    expect(merged.run.shardsMerged).toBe(3);
    expect(merged.counts).toMatchObject({ measuredPublished: 6000, expected: 12000, delivered: 12000, lost: 0, topics: 6, subscriptions: 12 });
    const direct = mergeEncoded(shards.map((s) => s.histograms.e2e));
    expect(decodeHistogram(merged.histograms.e2e).totalCount).toBe(12000);
    expect(merged.latency.e2e.p99Us).toBe(direct.getValueAtPercentile(99));
    expect(merged.latency.e2e.maxUs).toBe(direct.maxValue);
    expect(merged.passed).toBe(true);
  });

  it("judges the gates again on the merged figures", async () => {
    const merged = mergeResults([await shard(0, 2), await shard(1, 2, 100)]);
    expect(merged.counts.lost).toBeGreaterThan(0);
    expect(merged.passed).toBe(false);
    expect(merged.gates.filter((g) => !g.passed).map((g) => g.name)).toEqual(["delivered ratio", "lost"]);
  });

  it("refuses to merge the same shard twice", async () => {
    const a = await shard(0, 2);
    expect(() => mergeResults([a, a])).toThrow(ReportError);
  });
});
