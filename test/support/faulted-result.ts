// A result of a run with faults, for the tests of what reads one (per-fault figures, gates,
// report.md, merges, the suite's comparison): a real fake-driver run, whose fine timeline,
// phases and interval histograms are then replaced by a synthetic 20 s measure phase (2..22 s):
// 1,000 deliveries/s (`perBucket` per 100 ms), by default nothing from 10.0 to 12.5 s, and one
// kill from 10 to 12 s. Interval histograms are real encoded ones: 10 s corrected / 5 ms
// uncorrected during the fault seconds, 2 ms / 1 ms elsewhere (10 values each).
import { systemClock } from "../../loadgen/clock.js";
import { FakeDriver, findDriver } from "../../loadgen/drivers/index.js";
import type { FaultEvent } from "../../loadgen/faults/index.js";
import { buildResult, captureEnvironment, judge, type RunResult } from "../../loadgen/report/index.js";
import { buildPlan, encodeHistogram, mergeEncoded, runScenario, type Scenario } from "../../loadgen/run/index.js";

export const SYNTHETIC_KILL: FaultEvent = { spec: 0, kind: "kill", occurrence: 0, startSec: 10, endSec: 12, detail: "SIGKILL pid 4121 | restarted as pid 4188 after 2.0 s" };

export interface FaultedOptions {
  /** Deliveries (and acks) per 100 ms bucket at run second t; default 100, none in 10.0..12.5. */
  perBucket?: (t: number) => number;
  /** Scale every bucket (a shard's share). */
  share?: number;
  /** The run's start (shards started together share one). */
  startedAt?: string;
  shard?: { index: number; count: number };
  faults?: FaultEvent[];
  runId?: string;
  driver?: string;
}

export async function faultedResult(s: Scenario, o: FaultedOptions = {}): Promise<RunResult> {
  const plan = buildPlan(s, o.runId ?? "f1", o.shard ?? { index: 0, count: 1 });
  const outcome = await runScenario(s, plan, new FakeDriver(), { clock: systemClock, intervalMs: 200 });
  const driver = o.driver ?? "fake";
  const r = buildResult(s, plan, { ...outcome, faults: o.faults ?? [SYNTHETIC_KILL] }, {
    runId: o.runId ?? "f1",
    driver,
    environment: captureEnvironment(),
    broker: { embedded: false, target: "in-process", args: [], storage: s.broker.storage, fsync: s.broker.fsync },
    durability: findDriver(driver).promises?.(s.broker, {}),
  });
  outcome.recorder.destroy();
  return withSyntheticTimeline(r, o);
}

/** The result with the synthetic timeline, phases and interval histograms, judged again. */
export function withSyntheticTimeline(r: RunResult, o: FaultedOptions = {}): RunResult {
  const perBucket = o.perBucket ?? ((t: number) => (t >= 10 && t < 12.5 ? 0 : 100));
  const startedAt = o.startedAt ?? r.run.startedAt;
  const startMs = Date.parse(startedAt);
  const delivered = Array.from({ length: 240 }, (_, k) => Math.round(perBucket(k / 10) * (o.share ?? 1)));
  const hist = (us: number) => {
    const h = mergeEncoded([]);
    h.recordValueWithCount(us, 10);
    return encodeHistogram(h);
  };
  const intervalHistograms = Array.from({ length: 21 }, (_, i) => {
    const s = 2 + i;
    const slow = s >= 10 && s < 12;
    return { startMs: startMs + s * 1000, endMs: startMs + (s + 1) * 1000, histogram: hist(slow ? 10_000_000 : 2_000), uncorrected: hist(slow ? 5_000 : 1_000) };
  });
  return judge({
    ...r,
    run: {
      ...r.run,
      startedAt,
      phases: [
        { phase: "connect", startSec: 0, endSec: 2 },
        { phase: "measure", startSec: 2, endSec: 22 },
        { phase: "drain", startSec: 22, endSec: 23 },
        { phase: "teardown", startSec: 23, endSec: 23.2 },
      ],
    },
    timeline: { bucketMs: 100, startMs, published: delivered.slice(), delivered },
    intervalHistograms,
  });
}
