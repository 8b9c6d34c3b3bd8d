import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { buildPlan, parseScenario, runScenario } from "../run/index.js";
import { compareMarkdown, delta } from "./compare.js";
import { captureEnvironment } from "./environment.js";
import { buildResult, type RunResult } from "./result.js";

const scenario = parseScenario("name: cmp-test\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 2\nmessages: 1000\nbatchSize: 50\n", "cmp-test.yaml");

async function base(): Promise<RunResult> {
  const plan = buildPlan(scenario, "c1");
  const outcome = await runScenario(scenario, plan, new FakeDriver(), { clock: systemClock, intervalMs: 200 });
  const r = buildResult(scenario, plan, outcome, { runId: "c1", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "x", args: [], storage: "memory", fsync: false } });
  outcome.recorder.destroy();
  return r;
}

function withRate(r: RunResult, id: string, deliveryRate: number): RunResult {
  return { ...r, run: { ...r.run, id }, throughput: { ...r.throughput, deliveryRate } };
}

/** The delivery msg/s cell of the row of run `id`. */
function deliveryCell(md: string, id: string): string {
  const line = md.split("\n").find((l) => l.includes(`\`${id}\``) && l.includes(" | "))!;
  return line.split(" | ")[2]!;
}

describe("report compare", () => {
  it("calls a change within ±5% noise, and beyond it better or worse", () => {
    expect(delta(100_000, 104_000, false)).toBe(" (+4.0%, within noise)");
    expect(delta(100_000, 95_000, false)).toBe(" (-5.0%, within noise)");
    expect(delta(100_000, 106_000, false)).toBe(" (+6.0%, better)");
    expect(delta(1000, 1060, true)).toBe(" (+6.0%, worse)");
  });

  it("takes the threshold from --noise", async () => {
    const b = withRate(await base(), "b0", 100_000);
    const runs = [b, withRate(b, "up8", 108_000), withRate(b, "down3", 97_000)];
    const def = compareMarkdown(runs);
    expect(deliveryCell(def, "up8")).toBe("108.0K (+8.0%, better)");
    expect(deliveryCell(def, "down3")).toBe("97.0K (-3.0%, within noise)");
    const wide = compareMarkdown(runs, { noisePercent: 10 });
    expect(deliveryCell(wide, "up8")).toBe("108.0K (+8.0%, within noise)");
    expect(wide).toContain("Changes within ±10% of the baseline are called noise");
    const narrow = compareMarkdown(runs, { noisePercent: 1 });
    expect(deliveryCell(narrow, "down3")).toBe("97.0K (-3.0%, worse)");
  });

  it("warns when the scenarios differ, naming the parameters", async () => {
    const b = await base();
    const other: RunResult = { ...b, run: { ...b.run, id: "c2" }, scenario: { ...b.scenario, batchSize: 10, rate: 5000 } };
    const md = compareMarkdown([b, other]);
    expect(md).toContain("**Warning: the scenarios differ, so these runs are not like for like.**");
    expect(md).toContain("- `c2` differs from the baseline `c1`: batchSize 50 → 10; rate \"unthrottled\" → 5000.");
  });

  it("does not warn for runs of the same scenario", async () => {
    const b = await base();
    expect(compareMarkdown([b, withRate(b, "c3", 1)])).not.toContain("Warning");
  });

  it("shows the broker CPU-µs per delivery with its change from the baseline (lower is better)", async () => {
    const b = await base();
    const cost = (id: string, us: number | null): RunResult => ({
      ...b,
      run: { ...b.run, id },
      broker: { ...b.broker, cost: us === null ? null : { fromSec: 0, toSec: 1, cpuSeconds: 1, deliveries: 1, published: 1, cpuUsPerDelivery: us, cpuUsPerPublish: us, clipped: false } },
    });
    const md = compareMarkdown([cost("k0", 3.2), cost("k1", 1.6), cost("k2", 3.3), cost("k3", null)]);
    const cell = (id: string) => md.split("\n").find((l) => l.includes(`\`${id}\``) && l.includes(" | "))!.split(" | ")[8];
    expect(cell("k0")).toBe("3.20");
    expect(cell("k1")).toBe("1.60 (-50.0%, better)");
    expect(cell("k2")).toBe("3.30 (+3.1%, within noise)");
    expect(cell("k3")).toBe("n/a");
  });
});
