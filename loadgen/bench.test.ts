import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runBench } from "./bench.js";
import { readResult } from "./report/index.js";

// End to end through `runBench`: the embedded reference broker as a child process on
// 127.0.0.1:0, real gRPC, both drivers. Small on purpose; figures are not asserted.
const dir = mkdtempSync(join(tmpdir(), "rt-bench-"));
const scenarioFile = join(dir, "tiny.yaml");
writeFileSync(
  scenarioFile,
  "name: tiny\ntopics: 4\nsubscriptions: {perTopic: 2}\nproducers: 2\nmessages: 4000\nbatchSize: 50\nrate: 4000\ndrainTimeoutSeconds: 15\nslo: {deliveredRatioMin: 1, lostMax: 0, duplicatesMax: 0}\n",
);
const quiet = () => undefined;

describe("ratatoskr bench against the embedded broker", () => {
  for (const driver of ["ratatoskr", "ratatoskr-v1"] as const) {
    it(`delivers every message through the ${driver} driver and passes its gates`, async () => {
      const out = join(dir, driver);
      const code = await runBench({ scenario: scenarioFile, driver, out, set: [], quiet: true }, quiet);
      const r = readResult(out);
      expect(r.counts).toMatchObject({ measuredPublished: 4000, expected: 8000, delivered: 8000, lost: 0, duplicates: 0, streamErrors: 0 });
      expect(r.broker.embedded).toBe(true);
      expect(r.broker.peakRssBytes).toBeGreaterThan(0);
      expect(r.latency.e2e.count).toBe(8000);
      expect(code).toBe(0);
    }, 60_000);
  }

  it("exits 1 and names the gate when a gate fails", async () => {
    const out = join(dir, "gate");
    const lines: string[] = [];
    const code = await runBench({ scenario: scenarioFile, out, set: ["slo.e2eP50MaxMs=0", "messages=500"], quiet: true }, (s) => lines.push(s));
    expect(code).toBe(1);
    expect(lines.join("\n")).toMatch(/gate FAIL: e2e p50 .* fails <= 0 ms \(off by/);
    expect(readResult(out).passed).toBe(false);
  }, 60_000);

  it("exits 2 for a bad scenario and for an unreachable broker", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "name: bad\ntopics: 0\n");
    expect(await runBench({ scenario: bad, set: [], quiet: true }, quiet)).toBe(2);
    expect(await runBench({ scenario: scenarioFile, target: "127.0.0.1:1", set: [], quiet: true, out: join(dir, "x"), connectTimeoutMs: 1000 }, quiet)).toBe(2);
  }, 60_000);
});
