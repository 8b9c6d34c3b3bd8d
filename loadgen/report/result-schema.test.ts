import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { runBench } from "../bench.js";
import { systemClock } from "../clock.js";
import { DRIVER_NAMES, FakeDriver, TURN_READ_BYTES } from "../drivers/index.js";
import { buildPlan, decodeHistogram, parseScenario, runScenario, summarize } from "../run/index.js";
import { captureEnvironment } from "./environment.js";
import { readResult } from "./files.js";
import { mergeResults } from "./merge.js";
import { buildResult, type RunResult } from "./result.js";

// result.schema.json against real results: of every driver (fake in-process, the others by a
// tiny `bench` against their embedded broker on loopback) and every committed one under reports/.
const repoRoot = join(import.meta.dirname, "..", "..");
const schema = JSON.parse(readFileSync(join(import.meta.dirname, "result.schema.json"), "utf8")) as {
  properties: { run: { properties: { driver: { enum: string[] } } } };
};
// Formats are annotations here (no ajv-formats); startedAt is checked by hand below.
const validate = new Ajv2020({ allErrors: true, strict: true, validateFormats: false }).compile(schema);

function schemaErrors(value: unknown): string[] {
  return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params)}`);
}

function expectValid(r: unknown, what: string): void {
  expect(schemaErrors(r), what).toEqual([]);
  const result = r as RunResult;
  expect(Number.isNaN(Date.parse(result.run.startedAt)), `${what}: startedAt`).toBe(false);
  // "Every percentile in the file is derived from" the encoded histograms.
  for (const k of ["e2e", "e2eUncorrected", "publish", "lateness"] as const) {
    const l = result.latency[k];
    expect(l, `${what}: latency.${k}`).toEqual(summarize(decodeHistogram(result.histograms[k])));
    if (l.count > 0) {
      const ordered = [l.minUs, l.p50Us, l.p90Us, l.p99Us, l.p999Us, l.p9999Us, l.maxUs] as number[];
      expect(ordered, `${what}: latency.${k} min <= percentiles <= max`).toEqual([...ordered].sort((a, b) => a - b));
    }
  }
}

function resultFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return resultFiles(p);
    return name === "result.json" ? [p] : [];
  });
}

const scenario = parseScenario(
  "name: schema-test\ntopics: 4\nsubscriptions: {perTopic: 2}\nproducers: 2\nmessages: 2000\nbatchSize: 50\nslo: {lostMax: 0, e2eP99MaxMs: 60000}\n",
  "schema-test.yaml",
);

async function fakeResult(shard = { index: 0, count: 1 }): Promise<RunResult> {
  const plan = buildPlan(scenario, "s1", shard);
  const outcome = await runScenario(scenario, plan, new FakeDriver(), { clock: systemClock, intervalMs: 200, sampleBroker: () => new FakeDriver().brokerStats() });
  const r = buildResult(scenario, plan, outcome, { runId: "s1", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "in-process", args: [], storage: "memory", fsync: false } });
  outcome.recorder.destroy();
  return r;
}

describe("result.schema.json", () => {
  it("names exactly the registered drivers", () => {
    expect([...schema.properties.run.properties.driver.enum].sort()).toEqual([...DRIVER_NAMES].sort());
  });

  it("rejects a result with a field missing, an unknown field or a wrong type", async () => {
    const r = JSON.parse(JSON.stringify(await fakeResult())) as Record<string, unknown> & RunResult;
    expect(schemaErrors(r)).toEqual([]);
    const { counts: _dropped, ...noCounts } = r;
    expect(schemaErrors(noCounts).join()).toMatch(/missingProperty":"counts"/);
    expect(schemaErrors({ ...r, extra: 1 }).join()).toMatch(/additionalProperty":"extra"/);
    expect(schemaErrors({ ...r, latency: { ...r.latency, e2e: { ...r.latency.e2e, p99Us: "1ms" } } }).join()).toMatch(/\/latency\/e2e\/p99Us must be number,null/);

    // The generator's figures and the verdict are strict too.
    expect(r.generator?.perWorker).toHaveLength(1);
    expect(r.generatorBound).toMatchObject({ bound: expect.any(Boolean), reasons: expect.any(Array) });
    expect(schemaErrors({ ...r, generatorBound: { ...r.generatorBound!, why: "x" } }).join()).toMatch(/additionalProperty":"why"/);
    expect(schemaErrors({ ...r, generator: { ...r.generator!, mode: "threads" } }).join()).toMatch(/\/generator\/mode must be equal to one of the allowed values/);
    const { reasons: _r, ...noReasons } = r.generatorBound!;
    expect(schemaErrors({ ...r, generatorBound: noReasons }).join()).toMatch(/missingProperty":"reasons"/);
    // The generator's own settings: the read budget of this thread, the heap growth only when set.
    expect(r.generator?.settings).toEqual({ heapGrowingPercent: null, turnReadBytes: TURN_READ_BYTES });
    expect(schemaErrors({ ...r, generator: { ...r.generator!, settings: { ...r.generator!.settings!, turnReadBytes: "1MiB" } } }).join()).toMatch(/\/generator\/settings\/turnReadBytes must be integer/);
  });

  it("keeps the shards' generator settings in a merge only when every shard ran with the same ones", async () => {
    const shards = [await fakeResult({ index: 0, count: 2 }), await fakeResult({ index: 1, count: 2 })];
    expect(mergeResults(shards).generator?.settings).toEqual(shards[0]!.generator!.settings);
    const other = { ...shards[1]!, generator: { ...shards[1]!.generator!, settings: { heapGrowingPercent: 100, turnReadBytes: TURN_READ_BYTES } } };
    const merged = mergeResults([shards[0]!, other]);
    expect(merged.generator).toBeDefined();
    expect(merged.generator!.settings).toBeUndefined();
  });

  it("accepts null figures of an empty histogram", async () => {
    const r = JSON.parse(JSON.stringify(await fakeResult())) as RunResult;
    const empty = { count: 0, minUs: null, meanUs: null, p50Us: null, p90Us: null, p99Us: null, p999Us: null, p9999Us: null, maxUs: null };
    expect(schemaErrors({ ...r, latency: { ...r.latency, lateness: empty } })).toEqual([]);
  });

  it("matches the fake driver's single, shard, merged and partially merged results", async () => {
    const single = await fakeResult();
    const shards = [await fakeResult({ index: 0, count: 2 }), await fakeResult({ index: 1, count: 2 })];
    // Through JSON, as result.json is read.
    const json = (r: RunResult) => JSON.parse(JSON.stringify(r)) as unknown;
    expectValid(json(single), "single");
    expectValid(json(shards[0]!), "shard 0/2");
    expectValid(json(mergeResults(shards)), "merged");
    expectValid(json(mergeResults([shards[1]!], { allowPartial: true })), "partial merge");
  });

  for (const driver of ["ratatoskr", "nats", "jetstream"] as const) {
    it(`matches the result.json a ${driver} bench writes`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `rt-schema-${driver}-`));
      const file = join(dir, "tiny.yaml");
      // Unthrottled: lateness records only zeros, whose minimum was once written as 2^53-1.
      writeFileSync(file, "name: schema-tiny\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 300\nbatchSize: 50\ndrainTimeoutSeconds: 15\nslo: {lostMax: 0}\n");
      const code = await runBench({ scenario: file, driver, out: join(dir, "out"), set: [], quiet: true }, () => undefined);
      const r = JSON.parse(readFileSync(join(dir, "out", "result.json"), "utf8")) as RunResult;
      expect(r.run.driver).toBe(driver);
      expectValid(r, driver);
      expect(code).toBe(0);
    }, 60_000);
  }

  it("matches every committed result under reports/, of every driver", () => {
    const files = resultFiles(join(repoRoot, "reports"));
    expect(files.length).toBeGreaterThan(0);
    const drivers = new Set<string>();
    for (const f of files) {
      const r = JSON.parse(readFileSync(f, "utf8")) as RunResult;
      drivers.add(r.run.driver);
      expectValid(r, f.slice(repoRoot.length + 1));
      // And the reader accepts it.
      expect(readResult(f).run.id).toBe(r.run.id);
    }
    expect([...drivers].sort()).toEqual(["jetstream", "mqtt", "nats", "rabbitmq", "ratatoskr", "ratatoskr-v1", "redis-streams"]);
  });
});
