import { cpSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import yargs from "yargs";
import { buildPlan, buildResult, parseScenario, readResult, runScenario, systemClock, writeReport } from "../loadgen/index.js";
import { FakeDriver } from "../loadgen/drivers/index.js";
import { captureEnvironment } from "../loadgen/report/index.js";
import { reportCommand } from "./report-command.js";

const scenario = parseScenario("name: cli-merge\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 2\nmessages: 400\nbatchSize: 50\nslo: {lostMax: 0}\n", "cli-merge.yaml");
const dir = mkdtempSync(join(tmpdir(), "rt-report-cli-"));

async function shardDir(index: number): Promise<string> {
  const plan = buildPlan(scenario, "cm1", { index, count: 2 });
  const outcome = await runScenario(scenario, plan, new FakeDriver(), { clock: systemClock, intervalMs: 200 });
  const r = buildResult(scenario, plan, outcome, { runId: "cm1", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "x", args: [], storage: "memory", fsync: false } });
  outcome.recorder.destroy();
  const out = join(dir, `shard${index}`);
  writeReport(out, r);
  return out;
}

/** Run `ratatoskr report ...` in-process; the exit code it would end with. */
async function report(args: string[]): Promise<number | undefined> {
  vi.spyOn(process.stdout, "write").mockImplementation(() => true);
  vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  await yargs().command(reportCommand).strict().exitProcess(false).parseAsync(["report", ...args]);
  const code = process.exitCode;
  process.exitCode = undefined;
  return code === undefined ? undefined : Number(code);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("ratatoskr report merge", () => {
  it("exits 2 for one shard of two, and 1 with --allow-partial (marked partial)", async () => {
    const s0 = await shardDir(0);
    expect(await report(["merge", s0, "--out", join(dir, "refused")])).toBe(2);
    const out = join(dir, "partial");
    expect(await report(["merge", s0, "--out", out, "--allow-partial"])).toBe(1);
    expect(readResult(out).run).toMatchObject({ partial: true, missingShards: [1] });
    expect(readFileSync(join(out, "report.md"), "utf8").split("\n")[0]).toBe("# cli-merge: FAIL (PARTIAL)");
    expect(readFileSync(join(out, "report.html"), "utf8")).toContain("PARTIAL: merged 1 of 2 shards; shard 1 missing.");
    expect(await report(["merge", s0, await shardDir(1), "--out", join(dir, "whole")])).toBe(0);
  }, 30_000);

  it("takes a directory of shard report directories (what the Kubernetes and Compose runs write)", async () => {
    const shards = join(dir, "run-x", "shards");
    mkdirSync(join(shards, "not-a-shard"), { recursive: true }); // no result.json: ignored
    cpSync(await shardDir(0), join(shards, "shard-0"), { recursive: true });
    cpSync(await shardDir(1), join(shards, "shard-1"), { recursive: true });
    const out = join(dir, "run-x", "merged");
    expect(await report(["merge", shards, "--out", out])).toBe(0);
    const merged = readResult(out);
    expect(merged.run.shardsMerged).toBe(2);
    expect(merged.counts.delivered).toBe(readResult(join(shards, "shard-0")).counts.delivered + readResult(join(shards, "shard-1")).counts.delivered);
    expect(await report(["merge", join(shards, "not-a-shard"), "--out", join(dir, "run-x", "none")])).toBe(2);
  }, 30_000);
});
