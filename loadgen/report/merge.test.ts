import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { ReportError } from "../errors.js";
import { buildPlan, decodeHistogram, mergeEncoded, parseScenario, runScenario } from "../run/index.js";
import { captureEnvironment } from "./environment.js";
import { renderMarkdown } from "./md.js";
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

  it("counts a producer that feeds topics in several shards once", async () => {
    // 3 producers over 6 topics: producer 0 feeds topics 0 and 3, which shards 0/2 and 1/2 split.
    const shards = [await shard(0, 2), await shard(1, 2)];
    expect(shards.map((s) => s.counts.producers)).toEqual([3, 3]);
    const merged = mergeResults(shards);
    expect(merged.counts).toMatchObject({ producers: 3, topics: 6, subscriptions: 12 });
    expect(merged.run.whole).toEqual({ producers: 3, topics: 6, subscriptions: 12, offeredRate: null });
  });

  it("refuses to merge the same shard twice", async () => {
    const a = await shard(0, 2);
    const b = await shard(1, 2);
    expect(() => mergeResults([a, b, a])).toThrow(/the same shard appears twice: shard 0/);
  });

  it("refuses a set that lacks shards, naming the missing ones", async () => {
    const shards = [await shard(0, 3), await shard(2, 3)];
    expect(() => mergeResults(shards)).toThrow(ReportError);
    expect(() => mergeResults(shards)).toThrow(/have 2 of 3 shards, missing shard 1 /);
  });

  it("refuses shards of different runs, scenarios or shard counts", async () => {
    const a = await shard(0, 2);
    const b = await shard(1, 2);
    expect(() => mergeResults([a, { ...b, run: { ...b.run, id: "other" } }])).toThrow(/share scenario, driver and run id/);
    expect(() => mergeResults([a, { ...b, run: { ...b.run, scenario: "other" } }])).toThrow(/share scenario, driver and run id/);
    expect(() => mergeResults([a, { ...b, run: { ...b.run, shard: { index: 1, count: 3 } } }])).toThrow(/shard counts differ/);
    expect(() => mergeResults([mergeResults([a, b]), b])).toThrow(/already a merge/);
  });

  it("with allowPartial merges the shards present, marks the result partial and fails its gates", async () => {
    const merged = mergeResults([await shard(0, 3), await shard(2, 3)], { allowPartial: true });
    expect(merged.run).toMatchObject({ partial: true, missingShards: [1], shardsMerged: 2, shard: { count: 3 } });
    // Every delivery of the shards present arrived: only the completeness gate fails.
    expect(merged.counts.lost).toBe(0);
    expect(merged.passed).toBe(false);
    expect(merged.gates.filter((g) => !g.passed).map((g) => g.name)).toEqual(["complete shards"]);
    const md = renderMarkdown(merged);
    expect(md.split("\n")[0]).toBe("# merge-test: FAIL (PARTIAL)");
    expect(md).toContain("**PARTIAL: merged 2 of 3 shards; shard 1 missing.");
  });

  it("a whole merge is not marked partial", async () => {
    const merged = mergeResults([await shard(0, 2), await shard(1, 2)], { allowPartial: true });
    expect(merged.run.partial).toBeUndefined();
    expect(merged.gates.map((g) => g.name)).not.toContain("complete shards");
  });
});
