import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { buildPlan, parseScenario, runScenario, type Scenario } from "../run/index.js";
import { captureEnvironment } from "./environment.js";
import { renderMarkdown } from "./md.js";
import { buildResult, type RunResult } from "./result.js";
import { renderHtmlTables } from "./tables.js";

// 4 topics, 2 producers: producer 0 feeds topics 0 and 2, producer 1 topics 1 and 3, so shard 0/2
// (topics 0, 2) has one producer and half the offered rate.
const scenario = parseScenario(
  "name: md-test\ntopics: 4\nsubscriptions: {perTopic: 2}\nproducers: 2\nrate: 40000\nmessages: 2000\nbatchSize: 20\nmessageSizeBytes: 64\nconnections: 3\nslo: {lostMax: 0, e2eP99MaxMs: 60000, deliveredRatioMin: 0.999}\n",
  "md-test.yaml",
);

async function run(s: Scenario, shard = { index: 0, count: 1 }): Promise<RunResult> {
  const plan = buildPlan(s, "md1", shard);
  const outcome = await runScenario(s, plan, new FakeDriver(), { clock: systemClock, intervalMs: 200 });
  const r = buildResult(s, plan, outcome, { runId: "md1", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "x", args: [], storage: "memory", fsync: false } });
  outcome.recorder.destroy();
  return r;
}

const row = (md: string, name: string) => md.split("\n").find((l) => l.startsWith(`| ${name} |`));

describe("report.md", () => {
  it("opens with the headline and the scenario parameters", async () => {
    const r = await run(scenario);
    const md = renderMarkdown(r);
    const lines = md.split("\n");
    expect(lines[0]).toBe("# md-test: PASS");
    expect(lines[2]).toMatch(/^\*\*Headline:\*\* e2e latency p50 .+, p99 .+, p99\.9 .+, max .+ \(4000 timed deliveries of 2000 measured messages\); .+ msg\/s published of 40\.0K msg\/s offered \(\d+\.\d%\)/);
    expect(md.indexOf("## Parameters")).toBeLessThan(md.indexOf("## Latency"));
    expect(row(md, "offered rate")).toBe("| offered rate | 40.0K msg/s |");
    expect(row(md, "batch")).toBe("| batch | 20 messages, linger 5 ms, 4 batches in flight per producer |");
    expect(row(md, "message size")).toBe("| message size | 64 B (random) |");
    expect(row(md, "producers")).toBe("| producers | 2 |");
    expect(row(md, "subscriptions")).toBe("| subscriptions | 8 |");
    expect(row(md, "consumers")).toBe("| consumers | 8 (1 per subscription) |");
    expect(row(md, "connections")).toBe("| connections | 3 |");
    expect(row(md, "phases")).toMatch(/^\| phases \| warmup 0 s, measure 2000 messages \(took \d+\.\d s\), drain timeout 30 s; as run: connect .*measure .*drain/);
  });

  it("names the generator's own settings on its Generator line", async () => {
    const r = await run(scenario);
    const line = () => renderMarkdown(r).split("\n").find((l) => l.startsWith("**Generator:**"))!;
    expect(line()).toContain("settings: heap growth V8's own, reads 1.0 MiB a loop turn");
    r.generator!.settings = { heapGrowingPercent: 100, turnReadBytes: 65_000 };
    expect(line()).toContain("settings: heap growth 100%, reads 63.5 KiB a loop turn");
  });

  it("gives gate limits and actuals with their units", async () => {
    const md = renderMarkdown(await run(scenario));
    expect(row(md, "lost")).toBe("| lost | <= 0 messages | 0 messages | pass |");
    expect(row(md, "e2e p99")).toMatch(/^\| e2e p99 \| <= 60000 ms \| [\d.]+ ms \| pass \|$/);
    expect(row(md, "delivered ratio")).toBe("| delivered ratio | >= 99.9% | 100% | pass |");
  });

  it("keeps warmup and measured publishes apart", async () => {
    const r = await run({ ...scenario, warmupSeconds: 0.2 });
    const md = renderMarkdown(r);
    const i = md.split("\n").findIndex((l) => l.startsWith("| published in warmup | published in measure |"));
    const cells = md.split("\n")[i + 2]!.split("|").map((c) => c.trim());
    expect(Number(cells[1])).toBe(r.counts.published - 2000);
    expect(Number(cells[1])).toBeGreaterThan(0);
    expect(Number(cells[2])).toBe(2000);
  });
});

describe("a shard's result", () => {
  it("states its own share of producers, topics and offered rate, and the whole run's", async () => {
    const r = await run(scenario, { index: 0, count: 2 });
    expect(r.counts).toMatchObject({ producers: 1, topics: 2, subscriptions: 4 });
    expect(r.throughput.offeredRate).toBe(20000);
    expect(r.run.whole).toEqual({ producers: 2, topics: 4, subscriptions: 8, offeredRate: 40000 });
    const md = renderMarkdown(r);
    expect(row(md, "offered rate")).toBe("| offered rate | 20.0K msg/s (this shard 0/2; whole run 40.0K msg/s) |");
    expect(row(md, "producers")).toBe("| producers | 1 (this shard 0/2; whole run 2) |");
    expect(row(md, "topics")).toBe("| topics | 2 (this shard 0/2; whole run 4) |");
    expect(md).toMatch(/msg\/s published of 20\.0K msg\/s offered/);
    const html = renderHtmlTables(r);
    expect(html).toContain("<td>20.0K msg/s (this shard 0/2; whole run 40.0K msg/s)</td>");
  });
});
