import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runBench } from "../bench.js";
import { readResult } from "../report/index.js";

// The issue's must-show item: "a stall of 1 s at a fixed rate shows in the corrected e2e p99 and
// not in the uncorrected one". What is true is in docs/faults.md, "stall, and the corrected and uncorrected latency":
// the publisher keeps at most maxInFlightBatches batches unacknowledged, so during the stall it
// sends those few on time (held, they are late from their send time too: the uncorrected
// latency sees them) and then waits; the messages due during the stall are sent after the
// release, late from their intended time only. With few in-flight messages against the run's
// total, the uncorrected p99 stays low and the corrected p99 carries the stall.
describe("a 1 s stall at a fixed rate, through the fault proxy", () => {
  it("shows in the corrected e2e p99 and not in the uncorrected one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rt-stall-"));
    const scenario = join(dir, "stall.yaml");
    writeFileSync(
      scenario,
      [
        "name: stall-test",
        "topics: 1",
        "subscriptions: {perTopic: 1}",
        "producers: 1",
        "rate: 400",
        "durationSeconds: 8",
        "batchSize: 10",
        "maxInFlightBatches: 1",
        "connections: 1",
        "workers: 1",
        "drainTimeoutSeconds: 30",
        "faults:",
        "  - {kind: stall, at: 3s, duration: 1s}",
        "",
      ].join("\n"),
    );
    const out = join(dir, "out");
    const code = await runBench({ scenario, out, set: [], quiet: true, handleSignals: false }, () => undefined);
    const r = readResult(out);
    expect(code).toBe(0);
    expect(r.counts.lost).toBe(0);
    expect(r.faults).toHaveLength(1);
    const [stall] = r.faults!;
    expect(stall!.kind).toBe("stall");
    // Times are rounded to the millisecond in result.json: 1 s can come back as 0.9999999.
    expect(stall!.endSec! - stall!.startSec).toBeGreaterThanOrEqual(0.9995);
    // The messages due during the stall (about 1/8 of the run) waited up to 1 s from their intended time.
    expect(r.latency.e2e.p99Us).toBeGreaterThanOrEqual(800_000);
    // Held on the wire were only the in-flight batch (≤ 10 messages of ~3200): uncorrected p99 far below.
    expect(r.latency.e2eUncorrected.p99Us).toBeLessThan(r.latency.e2e.p99Us / 4);
    expect(r.latency.e2eUncorrected.maxUs).toBeGreaterThanOrEqual(800_000);
  }, 120_000);
});
