import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runBench } from "../bench.js";

function captureStderr<T>(fn: () => Promise<T>): Promise<{ value: T; text: string }> {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (lines.push(String(s)), true)) as typeof process.stderr.write;
  return fn()
    .then((value) => ({ value, text: lines.join("") }))
    .finally(() => (process.stderr.write = write));
}

describe("bench with faults", () => {
  const dir = mkdtempSync(join(tmpdir(), "rt-bench-faults-"));
  const scenario = (faults: string) => {
    const file = join(dir, `s${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, `name: f\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nrate: 100\ndurationSeconds: 5\nfaults:\n${faults}\n`);
    return file;
  };

  it("refuses a process fault against --target before sending anything, naming the fault and the reason", async () => {
    const out = join(dir, "kill-target");
    const { value, text } = await captureStderr(() => runBench({ scenario: scenario("  - {kind: kill, at: 1s, downFor: 1s}"), target: "127.0.0.1:1", out, set: [], quiet: true, handleSignals: false }, () => undefined));
    expect(value).toBe(2);
    expect(text).toMatch(/faults\[0\] \(kill\) cannot apply: the broker is a --target: the harness did not start it, so it cannot signal it or restart it/);
    expect(existsSync(join(out, "result.json"))).toBe(false);
  });

  it("refuses slow-consumer before the run for a driver whose consumers cannot stop reading, and in worker mode", async () => {
    const nats = await captureStderr(() => runBench({ scenario: scenario("  - {kind: slow-consumer, at: 1s, duration: 1s}"), driver: "nats", target: "127.0.0.1:1", out: join(dir, "slow-nats"), set: [], quiet: true, handleSignals: false }, () => undefined));
    expect(nats.value).toBe(2);
    expect(nats.text).toMatch(/faults\[0\] \(slow-consumer\) cannot apply: the nats driver's consumers cannot stop reading on their own/);
    const workers = await captureStderr(() => runBench({ scenario: scenario("  - {kind: slow-consumer, at: 1s, duration: 1s}"), workers: 2, target: "127.0.0.1:1", out: join(dir, "slow-workers"), set: [], quiet: true, handleSignals: false }, () => undefined));
    expect(workers.value).toBe(2);
    expect(workers.text).toMatch(/faults\[0\] \(slow-consumer\) cannot apply: the consumers run in 2 worker threads; run it with workers: 1/);
  });

  it("refuses network faults against a broker off loopback (the proxy is loopback only)", async () => {
    const { value, text } = await captureStderr(() => runBench({ scenario: scenario("  - {kind: cut, at: 1s}"), target: "192.0.2.1:4222", out: join(dir, "far"), set: [], quiet: true, handleSignals: false }, () => undefined));
    expect(value).toBe(2);
    expect(text).toMatch(/faults: fault proxy: target host 192\.0\.2\.1 is not a loopback address/);
  });
});
