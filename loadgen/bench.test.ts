import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { runBench, type BenchArgs } from "./bench.js";
import { DRIVER_NAMES } from "./drivers/index.js";
import { readResult } from "./report/index.js";
import { startV2TestServer } from "../test/support/index.js";

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

  it("exits 2 for an unknown driver, from --driver or from the scenario, listing the known ones", async () => {
    const bogusScenario = join(dir, "bogus.yaml");
    writeFileSync(bogusScenario, "name: bogus\ndriver: bogus\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 10\n");
    const run = async (args: BenchArgs) => {
      const stderr: string[] = [];
      const spy = vi.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => stderr.push(String(s)) > 0);
      try {
        return { code: await runBench(args, quiet), stderr: stderr.join("") };
      } finally {
        spy.mockRestore();
      }
    };
    const flag = await run({ scenario: scenarioFile, driver: "bogus", out: join(dir, "bogus-flag"), set: [], quiet: true });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain(`unknown driver "bogus"; the known drivers are ${DRIVER_NAMES.join(", ")}`);
    const field = await run({ scenario: bogusScenario, out: join(dir, "bogus-field"), set: [], quiet: true });
    expect(field.code).toBe(2);
    expect(field.stderr).toContain(`at driver: expected one of ${DRIVER_NAMES.map((n) => JSON.stringify(n)).join(" | ")}, got "bogus"`);
    // Nothing ran: no report was written.
    expect(existsSync(join(dir, "bogus-flag"))).toBe(false);
    expect(existsSync(join(dir, "bogus-field"))).toBe(false);
  });

  it("records the driver that ran in the scenario of result.json, with its options filled in", async () => {
    const out = join(dir, "v1-override");
    expect(await runBench({ scenario: scenarioFile, driver: "ratatoskr-v1", out, set: ["messages=200"], quiet: true }, quiet)).toBe(0);
    const r = readResult(out);
    expect(r.run.driver).toBe("ratatoskr-v1");
    expect(r.scenario.driver).toBe("ratatoskr-v1");
    expect(r.scenario.driverOptions).toEqual({ "ratatoskr-v1": {} });
    const v2 = join(dir, "v2-unary");
    expect(await runBench({ scenario: scenarioFile, out: v2, set: ["messages=200", "driverOptions.ratatoskr.publish=unary"], quiet: true }, quiet)).toBe(0);
    expect(readResult(v2).scenario).toMatchObject({ driver: "ratatoskr", driverOptions: { ratatoskr: { publish: "unary" } } });
  }, 60_000);

  it("with tls: true starts the embedded broker on a generated certificate, delivers everything over TLS, labels the report and removes the certificate", async () => {
    const out = join(dir, "tls");
    const code = await runBench({ scenario: scenarioFile, out, set: ["tls=true"], quiet: true }, quiet);
    const r = readResult(out);
    expect(r.counts).toMatchObject({ measuredPublished: 4000, expected: 8000, delivered: 8000, lost: 0, duplicates: 0, streamErrors: 0 });
    expect(r.broker.tls).toBe("on");
    const certFile = r.broker.args[r.broker.args.indexOf("--tls-cert") + 1]!;
    expect(certFile).toMatch(/ratatoskr-bench-tls-.*server\.crt$/);
    expect(existsSync(certFile)).toBe(false);
    expect(code).toBe(0);
  }, 60_000);

  it("with --broker-metrics reads the target broker's CPU and RSS from its /metrics and says so", async () => {
    const srv = await startV2TestServer({ metricsPort: 0 });
    try {
      const out = join(dir, "metrics-source");
      const url = srv.running.metricsUrl!;
      expect(await runBench({ scenario: scenarioFile, target: srv.running.address, brokerMetrics: url, out, set: ["messages=400"], quiet: true }, quiet)).toBe(0);
      const r = readResult(out);
      expect(r.broker.resourceSource).toBe(`metrics ${url}`);
      expect(r.broker.tls).toBe("off");
      expect(r.broker.samples.length).toBeGreaterThan(0);
      expect(r.broker.samples.every((x) => x.rssBytes > 0)).toBe(true);
    } finally {
      await srv.close();
    }
  }, 60_000);

  it("exits 2 for --broker-metrics or --tls-* without --target, and for a --broker-metrics that is not a URL", async () => {
    expect(await runBench({ scenario: scenarioFile, brokerMetrics: "http://127.0.0.1:1/metrics", out: join(dir, "m1"), set: [], quiet: true }, quiet)).toBe(2);
    expect(await runBench({ scenario: scenarioFile, tls: { caFile: "/nonexistent" }, out: join(dir, "m2"), set: [], quiet: true }, quiet)).toBe(2);
    expect(await runBench({ scenario: scenarioFile, target: "127.0.0.1:1", brokerMetrics: "127.0.0.1:9100", out: join(dir, "m3"), set: [], quiet: true }, quiet)).toBe(2);
    expect(existsSync(join(dir, "m1"))).toBe(false);
  });
});
