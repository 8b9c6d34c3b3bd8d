import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, describe, expect, it } from "vitest";
import { runBench } from "./bench.js";
import { readResult } from "./report/index.js";
import { startV2TestServer, uniqueName } from "../test/support/index.js";

// The OMB-style workloads end to end through `runBench`: result.json against its schema, the
// report sections and charts, and a producer-only then consumer-only pair against one durable broker.
const dir = mkdtempSync(join(tmpdir(), "rt-workloads-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const schema = JSON.parse(readFileSync(join(import.meta.dirname, "report", "result.schema.json"), "utf8")) as object;
const validate = new Ajv2020({ allErrors: true, strict: true, validateFormats: false }).compile(schema);
const schemaErrors = (v: unknown) => (validate(v) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""} ${JSON.stringify(e.params)}`));
const quiet = () => undefined;

function scenarioFile(name: string, text: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `name: ${name}\n${text}`);
  return file;
}

describe("workloads through ratatoskr bench", () => {
  it("rate: max writes every step, the found rate and the latency curve (result.json, report.md, report.html)", async () => {
    const file = scenarioFile(
      "rm-bench",
      "driver: fake\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nrate: max\nbatchSize: 20\nlingerMs: 2\n" +
        "driverOptions: {fake: {deliveriesPerSecond: 3000}}\nsearch: {stepSeconds: 1, warmupSeconds: 0.2, startRate: 1000, maxSteps: 3, drainTimeoutSeconds: 2}\n",
    );
    const out = join(dir, "rm-out");
    const code = await runBench({ scenario: file, out, set: [], quiet: true }, quiet);
    const raw = JSON.parse(readFileSync(join(out, "result.json"), "utf8")) as unknown;
    expect(schemaErrors(raw)).toEqual([]);
    const r = readResult(out);
    expect(r.scenario.rate).toBe("max");
    const steps = r.rateSearch!.steps;
    expect(steps[0]!.offeredRate).toBe(1000);
    for (const x of steps) expect(x.reasons.length === 0, `step ${x.index}`).toBe(x.sustainable);
    // Every step carries its own generator-bound verdict (reasons; empty when not bound).
    for (const x of steps) expect(Array.isArray(x.generatorBound), `step ${x.index}`).toBe(true);
    // Over the capacity nothing holds (4000 msg/s into a 3000/s broker, if the ramp got there).
    for (const x of steps.filter((y) => y.offeredRate >= 4000)) expect(x.sustainable).toBe(false);
    if (r.rateSearch!.foundRate !== null) expect(r.run.whole!.offeredRate).toBe(r.rateSearch!.foundRate);
    const md = readFileSync(join(out, "report.md"), "utf8");
    expect(md).toMatch(/## Rate search \(`rate: max`\)/);
    expect(md).toMatch(/\| 1 \| ramp \| 1000 \|/);
    expect(readFileSync(join(out, "report.html"), "utf8")).toMatch(/id="chart-rate-curve"/);
    expect([0, 1]).toContain(code);
  }, 90_000);

  it("a backlog run's phases and figures are in result.json and the reports", async () => {
    const file = scenarioFile("bl-bench", "driver: fake\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 1\nbacklog: {bytes: 256000}\nmessages: 500\nbatchSize: 50\nslo: {lostMax: 0}\n");
    const out = join(dir, "bl-out");
    expect(await runBench({ scenario: file, out, set: [], quiet: true }, quiet)).toBe(0);
    const raw = JSON.parse(readFileSync(join(out, "result.json"), "utf8")) as unknown;
    expect(schemaErrors(raw)).toEqual([]);
    const r = readResult(out);
    expect(r.run.phases.map((p) => p.phase)).toEqual(["connect", "build", "measure", "drain", "teardown"]);
    expect(r.backlog).toMatchObject({ targetMessages: 2000, stored: 2000, expectedDeliveries: 2000, drained: true });
    expect(r.counts).toMatchObject({ expected: 2500, delivered: 2500, lost: 0 });
    expect(readFileSync(join(out, "report.md"), "utf8")).toMatch(/\| target \| 250\.0 KiB \(2000 messages of 128 B\) \|/);
  }, 60_000);

  it("runs in one process only: --workers 2 with rate: max is refused before anything starts", async () => {
    const file = scenarioFile("rm-workers", "driver: fake\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 2\nrate: max\n");
    expect(await runBench({ scenario: file, out: join(dir, "rm-workers"), set: [], quiet: true, workers: 2 }, quiet)).toBe(2);
    expect(await runBench({ scenario: file, out: join(dir, "rm-shard"), set: [], quiet: true, shard: "0/2" }, quiet)).toBe(2);
  });

  it("a consumer-only run reads the backlog a producer-only run left on a durable broker (same scenario, same --run-id)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "rt-workloads-data-"));
    const srv = await startV2TestServer({ dataDir });
    try {
      const runId = uniqueName("po");
      const file = scenarioFile("po-co", "topics: 2\nsubscriptions: {perTopic: 2}\nproducers: 2\nmessages: 3000\nbatchSize: 50\ndrainTimeoutSeconds: 20\n");
      const common = { scenario: file, target: srv.running.address, runId, quiet: true };
      expect(await runBench({ ...common, out: join(dir, "po"), set: ["only=producers", "slo.publishErrorsMax=0"] }, quiet)).toBe(0);
      const p = readResult(join(dir, "po"));
      expect(p.counts).toMatchObject({ measuredPublished: 3000, publishErrors: 0, expected: 0, delivered: 0 });

      expect(await runBench({ ...common, out: join(dir, "co"), set: ["only=consumers", "slo.lostMax=0", "slo.duplicatesMax=0"] }, quiet)).toBe(0);
      const c = readResult(join(dir, "co"));
      expect(schemaErrors(JSON.parse(readFileSync(join(dir, "co", "result.json"), "utf8")))).toEqual([]);
      expect(c.counts).toMatchObject({ published: 0, expected: 6000, delivered: 6000, lost: 0, duplicates: 0 });
      expect(c.only).toBe("consumers");
      // A second consumer-only run finds nothing: the first acked everything and cleaned up.
      expect(await runBench({ ...common, out: join(dir, "co2"), set: ["only=consumers", "drainTimeoutSeconds=1", "slo.lostMax=0"] }, quiet)).toBe(1);
      expect(readResult(join(dir, "co2")).counts.delivered).toBe(0);
    } finally {
      await srv.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
