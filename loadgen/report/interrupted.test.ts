import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { buildPlan, parseScenario, runScenario } from "../run/index.js";
import { captureEnvironment } from "./environment.js";
import { renderMarkdown } from "./md.js";
import { mergeResults } from "./merge.js";
import { buildResult, judge, type RunResult } from "./result.js";

// An interrupted run (run.interrupted) never passes: not when judged again, not in a merge.
const scenario = parseScenario("name: intr\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 2\nmessages: 400\nslo: {lostMax: 0}\n", "intr.yaml");
const env = captureEnvironment();

async function shard(index: number): Promise<RunResult> {
  const plan = buildPlan(scenario, "r1", { index, count: 2 });
  const outcome = await runScenario(scenario, plan, new FakeDriver(), { clock: systemClock, intervalMs: 200 });
  const r = buildResult(scenario, plan, outcome, { runId: "r1", driver: "fake", environment: env, broker: { embedded: false, target: "x", args: [], storage: "memory", fsync: false } });
  outcome.recorder.destroy();
  return r;
}

describe("an interrupted result", () => {
  it("does not pass though its gates hold, and says so at the top of report.md", async () => {
    const r = await shard(0);
    expect(r.passed).toBe(true);
    const interrupted = judge({ ...r, run: { ...r.run, interrupted: true } });
    expect(interrupted.gates.every((g) => g.passed)).toBe(true);
    expect(interrupted.passed).toBe(false);
    expect(renderMarkdown(interrupted).split("\n")[0]).toMatch(/^\*\*INTERRUPTED\*\*/);
  });

  it("makes a merge interrupted and failing when any shard was", async () => {
    const a = await shard(0);
    const b = await shard(1);
    expect(mergeResults([a, b]).passed).toBe(true);
    const merged = mergeResults([a, { ...b, run: { ...b.run, interrupted: true } }]);
    expect(merged.run.interrupted).toBe(true);
    expect(merged.passed).toBe(false);
  });
});
