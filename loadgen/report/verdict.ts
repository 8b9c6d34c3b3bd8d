/**
 * The generator-bound verdict (docs/loadgen.md, "Generator-bound verdict"): did this run
 * measure the broker, or the load generator? A pure function of the result's figures, so that
 * a merge, a re-render or a test reaches the same verdict from the same numbers.
 *
 * A run is generator-bound when any of these holds:
 *  - saturated: a worker's event loop was busy ≥ 90% of the window (loop utilization), or its
 *    thread used ≥ 0.9 of a core, while the broker had headroom (its CPU < 0.8 of a core, or
 *    not known);
 *  - fell behind: at a fixed rate, sends fell behind their intended times (achieved/offered
 *    < 0.95 or producer lateness p99 > 100 ms) while the broker had headroom and a producing
 *    worker was busy (loop utilization ≥ 0.75): the lag is the generator's, not back-pressure;
 *  - stalled: a worker's event-loop delay p99 exceeded 50 ms (timings carry the generator's own
 *    stalls, whatever the broker did).
 */
import { brokerCpuBetween, type CpuSample } from "./cost.js";

export const GENERATOR_BOUND_THRESHOLDS = {
  /** A worker at or above this loop utilization (0..1) or CPU share of a core is saturated. */
  workerBusy: 0.9,
  /** Below this share of a core the broker had headroom. */
  brokerHeadroom: 0.8,
  /** Fixed rate: achieved/offered below this fell behind. */
  achievedRateRatio: 0.95,
  /** Fixed rate: producer lateness p99 above this (ms) fell behind. */
  latenessP99Ms: 100,
  /** A producing worker at or above this loop utilization counts as busy for "fell behind". */
  producerBusy: 0.75,
  /** Event-loop delay p99 above this (ms) stalled the worker. */
  loopDelayP99Ms: 50,
} as const;

export interface WorkerFigures {
  index: number;
  role: "producer" | "consumer" | "both";
  /** The shard the worker ran in (set by a merge of shards). */
  shard?: number;
  cpuSeconds: number;
  cpuShare: number;
  loopUtilization: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

export interface VerdictInput {
  workers: readonly WorkerFigures[];
  /** The broker's CPU over the same window, in cores; null when not known. */
  brokerCpuShare: number | null;
  /** Fixed-rate runs only (null when unthrottled). */
  achievedRateRatio: number | null;
  latenessP99Us: number;
}

export interface GeneratorBound {
  bound: boolean;
  /** One sentence per finding; empty when not bound. */
  reasons: string[];
  brokerCpuShare: number | null;
  /** The thresholds the verdict was judged with. */
  thresholds: { [K in keyof typeof GENERATOR_BOUND_THRESHOLDS]: number };
}

export function generatorVerdict(input: VerdictInput): GeneratorBound {
  const T = GENERATOR_BOUND_THRESHOLDS;
  const reasons: string[] = [];
  const broker = input.brokerCpuShare;
  const headroom = broker === null || broker < T.brokerHeadroom;
  const brokerText = broker === null ? "the broker's CPU is not known" : `the broker used ${broker.toFixed(2)} of a core`;
  const name = (w: WorkerFigures) => `${w.shard !== undefined ? `shard ${w.shard} ` : ""}worker ${w.index} (${w.role})`;
  if (headroom) {
    for (const w of input.workers) {
      if (w.loopUtilization >= T.workerBusy || w.cpuShare >= T.workerBusy) {
        reasons.push(`${name(w)} was saturated (event loop busy ${pct(w.loopUtilization)}, ${w.cpuShare.toFixed(2)} of a core) while ${brokerText}`);
      }
    }
    const behind =
      input.achievedRateRatio !== null && (input.achievedRateRatio < T.achievedRateRatio || input.latenessP99Us > T.latenessP99Ms * 1000);
    const busyProducer = input.workers.find((w) => w.role !== "consumer" && w.loopUtilization >= T.producerBusy);
    if (behind && busyProducer) {
      reasons.push(
        `intended sends fell behind (achieved/offered ${input.achievedRateRatio!.toFixed(3)}, lateness p99 ${(input.latenessP99Us / 1000).toFixed(1)} ms) while ${name(busyProducer)} was busy ${pct(busyProducer.loopUtilization)} and ${brokerText}`,
      );
    }
  }
  for (const w of input.workers) {
    if (w.loopDelayP99Ms > T.loopDelayP99Ms) reasons.push(`${name(w)} stalled: event-loop delay p99 ${w.loopDelayP99Ms} ms (max ${w.loopDelayMaxMs} ms) > ${T.loopDelayP99Ms} ms`);
  }
  return { bound: reasons.length > 0, reasons, brokerCpuShare: broker, thresholds: { ...T } };
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

/**
 * The broker's CPU in cores between two moments of the run (seconds since its start), from
 * cumulative CPU samples (brokerCpuBetween: across restarts, interpolated, clipped to the
 * samples). Null with fewer than two samples or no span.
 */
export function brokerCpuShare(samples: readonly CpuSample[], fromSec: number, toSec: number): number | null {
  const cpu = brokerCpuBetween(samples, fromSec, toSec);
  return cpu ? Math.round((cpu.cpuSeconds / (cpu.toSec - cpu.fromSec)) * 1000) / 1000 : null;
}
