/**
 * The slow-consumer fault end to end (docs/faults.md, "slow-consumer"): the embedded reference
 * broker, the v2 driver, one subscription whose consumer stops reading for 2 s in a 6 s
 * fixed-rate run. While it does not read, publishes go on being acknowledged (the broker stores
 * them) and nothing is delivered; afterwards the backlog is delivered, nothing is lost, and the
 * held messages show in the e2e latency.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runBench } from "../bench.js";
import { readResult } from "../report/index.js";

describe("slow-consumer", () => {
  it("stops one subscription's consumer for the fault's duration; nothing is delivered meanwhile, nothing is lost", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rt-slow-consumer-"));
    const file = join(dir, "slow.yaml");
    writeFileSync(
      file,
      "name: slow\ndriver: ratatoskr\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nrate: 400\nbatchSize: 10\ndurationSeconds: 6\nwarmupSeconds: 1\n" +
        "drainTimeoutSeconds: 20\nconnections: 1\nworkers: 1\nfaults:\n  - {kind: slow-consumer, at: 2s, duration: 2s, subscription: 0}\nslo: {lostMax: 0}\n",
    );
    const out = join(dir, "out");
    const code = await runBench({ scenario: file, out, set: [], quiet: true, handleSignals: false }, () => undefined);
    const r = readResult(out);
    expect(code, JSON.stringify(r.gates)).toBe(0);
    const [fault] = r.faults ?? [];
    expect(fault).toMatchObject({ kind: "slow-consumer", occurrence: 0, detail: "subscription 0 stopped reading for 2 s" });
    expect(fault!.error).toBeUndefined();
    expect(fault!.endSec! - fault!.startSec).toBeGreaterThanOrEqual(1.95);

    // The fine timeline (100 ms buckets on the wall clock): publishes acknowledged all through the
    // fault, no delivery inside it (one bucket of slack at each edge for the grid).
    const t = r.timeline!;
    const runStartMs = Date.parse(r.run.startedAt);
    const bucketOf = (sec: number) => Math.floor((runStartMs + sec * 1000 - t.startMs) / t.bucketMs);
    const inside = (xs: number[]) => xs.slice(bucketOf(fault!.startSec) + 1, bucketOf(fault!.endSec!) - 1);
    expect(inside(t.published).reduce((a, b) => a + b, 0)).toBeGreaterThan(400); // ~2 s at 400 msg/s
    expect(inside(t.delivered).reduce((a, b) => a + b, 0)).toBe(0);

    // Afterwards the stored backlog arrives: every expected delivery, the held ones late.
    expect(r.counts.lost).toBe(0);
    expect(r.counts.delivered).toBe(r.counts.expected);
    expect(r.latency.e2e.maxUs).toBeGreaterThan(1_500_000);
    expect(r.latency.e2e.p50Us).toBeLessThan(r.latency.e2e.maxUs / 4);
  }, 90_000);
});
