import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runBench } from "../bench.js";
import { readResult } from "../report/index.js";
import { startNatsServer, NatsServerMissingError, findNatsServer } from "./nats-server.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("embedded nats-server", () => {
  it("says how to install nats-server when it is not on PATH", () => {
    const empty = mkdtempSync(join(tmpdir(), "rt-nopath-"));
    expect(() => findNatsServer(empty, [])).toThrow(NatsServerMissingError);
    expect(() => findNatsServer(empty, [])).toThrow(/nats-server was not found on PATH .*apt-get install -y nats-server/);
  });

  it("starts on a loopback port with JetStream and a temporary store, and stop() ends it and removes the store", async () => {
    const s = await startNatsServer();
    expect(s.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(s.args).toEqual(expect.arrayContaining(["-a", "127.0.0.1", "-js", "-sd", s.storeDir]));
    expect(s.version).toMatch(/^v\d+\.\d+\.\d+/);
    expect(alive(s.pid)).toBe(true);
    expect(readFileSync(`/proc/${s.pid}/cmdline`, "utf8")).toContain("nats-server");
    await s.stop();
    expect(alive(s.pid)).toBe(false);
    expect(existsSync(s.storeDir)).toBe(false);
  });
});

// End to end through `ratatoskr bench` with no --target: the driver decides to start nats-server.
describe("ratatoskr bench with the NATS drivers", () => {
  const dir = mkdtempSync(join(tmpdir(), "rt-nats-bench-"));
  const scenario = join(dir, "tiny.yaml");
  writeFileSync(
    scenario,
    "name: tiny\ntopics: 3\nsubscriptions: {perTopic: 2}\nproducers: 2\nmessages: 3000\nbatchSize: 50\nrate: 3000\ndrainTimeoutSeconds: 15\nconnections: 2\nslo: {deliveredRatioMin: 1, lostMax: 0, duplicatesMax: 0}\n",
  );
  const quiet = () => undefined;

  for (const driver of ["nats", "jetstream"] as const) {
    it(`runs a scenario through the ${driver} driver against an embedded nats-server, accounting every delivery`, async () => {
      const out = join(dir, driver);
      findNatsServer(); // without nats-server, fail with how to install it rather than a missing result.json
      const code = await runBench({ scenario, driver, out, set: [], quiet: true }, quiet);
      const r = readResult(out);
      expect(r.counts).toMatchObject({ measuredPublished: 3000, expected: 6000, delivered: 6000, lost: 0, duplicates: 0, redelivered: 0, streamErrors: 0 });
      expect(r.broker.embedded).toBe(true);
      expect(r.broker.args[0]).toMatch(/nats-server$/);
      expect(r.broker.peakRssBytes).toBeGreaterThan(0);
      expect(code).toBe(0);
    }, 60_000);
  }

  it("runs JetStream on file storage for a durable scenario without fsync", async () => {
    const out = join(dir, "js-file");
    findNatsServer();
    const code = await runBench({ scenario, driver: "jetstream", out, set: ["broker.storage=durable", "messages=600"], quiet: true }, quiet);
    expect(code).toBe(0);
    expect(readResult(out).counts).toMatchObject({ expected: 1200, delivered: 1200, lost: 0 });
  }, 60_000);

  it("refuses, with exit 2 and the reason, a scenario field the driver cannot honour", async () => {
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (lines.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await runBench({ scenario, driver: "nats", out: join(dir, "refused"), set: ["broker.storage=durable"], quiet: true }, quiet)).toBe(2);
      expect(await runBench({ scenario, driver: "jetstream", out: join(dir, "refused2"), set: ["broker.storage=durable", "broker.fsync=true"], quiet: true }, quiet)).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(lines.join("")).toMatch(/driver nats refuses scenario .*broker\.storage=durable: NATS core stores nothing/s);
    expect(lines.join("")).toMatch(/driver jetstream refuses scenario .*broker\.fsync=true/s);
    expect(existsSync(join(dir, "refused"))).toBe(false);
  });
});
