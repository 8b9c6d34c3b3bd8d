import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { faultedResult, SYNTHETIC_KILL, withSyntheticTimeline } from "../../test/support/index.js";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { buildPlan, decodeHistogram, parseScenario, runScenario, summarize, type Scenario } from "../run/index.js";
import { captureEnvironment } from "./environment.js";
import { renderJUnit } from "./junit.js";
import { renderMarkdown } from "./md.js";
import { mergeResults } from "./merge.js";
import { buildResult, type RunResult } from "./result.js";

// Figures, gates, report rows and merges of a faulted result (test/support/faulted-result.ts: a
// 20 s measure phase at 1,000 deliveries/s, nothing from 10.0 to 12.5 s, a kill from 10 to 12 s).
const schema = JSON.parse(readFileSync(join(import.meta.dirname, "result.schema.json"), "utf8")) as object;
const validate = new Ajv2020({ allErrors: true, strict: true, validateFormats: false }).compile(schema);
const schemaErrors = (v: unknown) => (validate(v) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""} ${JSON.stringify(e.params)}`));

function scenarioWith(slo: string): Scenario {
  return parseScenario(`name: fault-report-test\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 400\nbatchSize: 20\nslo: {lostMax: 0${slo}}\n`, "fault-report-test.yaml");
}

describe("fault figures in a result", () => {
  it("are derived when the result is judged, and match result.schema.json", async () => {
    const r = await faultedResult(scenarioWith(""));
    const a = r.faultFigures!;
    expect(a.preFaultDeliveryRate).toBe(1000);
    const f = a.faults[0]!;
    expect([f.unavailableSeconds, f.firstDeliveryAfterSeconds, f.recoverySeconds]).toEqual([2.5, 0.6, 0.4]);
    // Corrected p99 inside the fault is the slow histogram's, uncorrected stays small; outside both are.
    expect(f.latency.inFault.corrected.p99Us).toBe(summarize(decodeHistogram(r.intervalHistograms[8]!.histogram)).p99Us);
    expect(f.latency.inFault.corrected.p99Us).toBeGreaterThan(9_000_000);
    expect(f.latency.inFault.uncorrected!.p99Us).toBeLessThan(6_000);
    expect(a.outside.corrected.p99Us).toBeLessThan(3_000);
    expect(a.outside.corrected.count).toBe(10 * 18);
    expect(schemaErrors(JSON.parse(JSON.stringify(r)))).toEqual([]);
    // A stale figure is never kept: judging again after the timeline changed gives new figures.
    const healed = withSyntheticTimeline(r, { perBucket: () => 100 });
    expect(healed.faultFigures!.faults[0]!.unavailableSeconds).toBe(0);
  });

  it("gate unavailability and recovery, naming the worst fault", async () => {
    const tight = await faultedResult(scenarioWith(", unavailableSecondsMax: 1, recoverySecondsMax: 0.2"));
    const gate = (r: RunResult, name: string) => r.gates.find((g) => g.name === name)!;
    expect(gate(tight, "unavailable")).toMatchObject({ passed: false, actual: 2.5, limit: 1, unit: "s" });
    expect(gate(tight, "unavailable").detail).toBe("unavailable 2.5 s fails <= 1 s (off by 1.5 s; kill #1 of fault 0 at 10 s)");
    expect(gate(tight, "recovery")).toMatchObject({ passed: false, actual: 0.4 });
    expect(tight.passed).toBe(false);
    expect(renderJUnit([tight])).toContain("2.5 s");

    const loose = await faultedResult(scenarioWith(", unavailableSecondsMax: 3, recoverySecondsMax: 1"));
    expect(gate(loose, "unavailable").passed).toBe(true);
    expect(gate(loose, "recovery").passed).toBe(true);
    expect(loose.passed).toBe(true);

    // Never back to 90% (half rate after the fault): the recovery gate fails and says why.
    const stuck = await faultedResult(scenarioWith(", recoverySecondsMax: 5"), { perBucket: (t) => (t >= 10 && t < 12.5 ? 0 : t >= 12.5 ? 50 : 100) });
    expect(gate(stuck, "recovery")).toMatchObject({ passed: false, actual: null });
    expect(gate(stuck, "recovery").detail).toMatch(/kill #1 of fault 0 at 10 s did not recover \(run-ended\)/);
  });

  it("fail the fault gates of a run without faults as not measurable", async () => {
    const s = scenarioWith(", unavailableSecondsMax: 1, recoverySecondsMax: 1");
    const plan = buildPlan(s, "f2");
    const outcome = await runScenario(s, plan, new FakeDriver(), { clock: systemClock, intervalMs: 200 });
    const r = buildResult(s, plan, outcome, { runId: "f2", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "x", args: [], storage: "memory", fsync: false } });
    outcome.recorder.destroy();
    expect(r.faultFigures).toBeUndefined();
    for (const name of ["unavailable", "recovery"]) {
      expect(r.gates.find((g) => g.name === name)).toMatchObject({ passed: false, actual: null, detail: `${name}: not measurable (no fault ran in this run)` });
    }
  });

  it("put a fault table and the durability disclosure into report.md", async () => {
    const md = renderMarkdown(await faultedResult(scenarioWith("")));
    expect(md).toContain("## Faults");
    expect(md).toContain("| fault | at | duration | detail | unavailable | first delivery after | recovery | e2e p99 in fault | e2e p99 in recovery | e2e p99 outside |");
    const row = md.split("\n").find((l) => l.startsWith("| kill #1 |"))!;
    expect(row).toMatch(/^\| kill #1 \| 10\.0 s \| 2\.00 s \| SIGKILL pid 4121 \\\| restarted as pid 4188 after 2\.0 s \| 2\.50 s \| 0\.60 s \| 0\.40 s \| 10\.0\ds \/ 5\.0\dms \| 2\.0\dms \/ 1\.0\dms \| 2\.0\dms \/ 1\.0\dms \|$/);
    expect(md).toMatch(/lost 0 \(acknowledged, never delivered\)/);
    expect(md).toContain("- publish ack: in-process: at once");
    expect(md.indexOf("## Faults")).toBeLessThan(md.indexOf("## Delivery accounting"));
  });

  it("merge shards' timelines bucket by bucket and are derived again from the merge", async () => {
    const s = scenarioWith("");
    // Shards started together (--start-at): one start time, so their buckets line up exactly.
    const first = await faultedResult(s, { shard: { index: 0, count: 2 }, share: 0.5 });
    const halves = [first, await faultedResult(s, { shard: { index: 1, count: 2 }, share: 0.5, startedAt: first.run.startedAt })];
    const merged = mergeResults(halves);
    const sum = (r: RunResult) => r.timeline!.delivered.reduce((a, b) => a + b, 0);
    expect(sum(merged)).toBe(sum(halves[0]!) + sum(halves[1]!));
    expect(merged.faults).toEqual([SYNTHETIC_KILL]);
    expect(merged.faultFigures!.faults[0]!.unavailableSeconds).toBe(2.5);
    // Interval histograms merge with their uncorrected halves.
    expect(merged.intervalHistograms.every((iv) => iv.uncorrected !== undefined)).toBe(true);
    expect(decodeHistogram(merged.intervalHistograms[0]!.uncorrected!).totalCount).toBe(20);
  });
});
