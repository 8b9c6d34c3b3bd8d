/**
 * The broker's cost per message: broker CPU-µs per delivered and per published message over the
 * measure window, from the broker's own cumulative CPU samples (result.broker.samples). This is
 * the figure the hot-path work of issue 16 is judged by: CPU time moves much less with a busy
 * host than throughput does.
 */
import { cpuCounterStep, type PhaseTiming } from "../run/index.js";

/** A cumulative CPU sample of the broker, `t` in seconds since the start of the run. */
export interface CpuSample {
  t: number;
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
}

export interface BrokerCost {
  /** The window the CPU was read over, seconds since the start of the run: measure start → drain end (clipped to the samples). */
  fromSec: number;
  toSec: number;
  /** Broker CPU (user + system) inside the window, linearly interpolated between the samples around each end. */
  cpuSeconds: number;
  /** Timed first deliveries: every delivery of a measured message to a subscription (latency.e2e.count). */
  deliveries: number;
  /** Messages accepted during the measure phase (counts.measuredPublished). */
  published: number;
  /** cpuSeconds × 1e6 / deliveries (null with no delivery). */
  cpuUsPerDelivery: number | null;
  /** cpuSeconds × 1e6 / published (null with no publish). */
  cpuUsPerPublish: number | null;
  /** Part of the window had no sample around it (it was clipped): the figure covers less than the whole window. */
  clipped: boolean;
}

/**
 * The measure window of a run: from the start of its measure phase to the end of its drain (the
 * last timed delivery arrives in it), or the end of measure when there was no drain.
 */
export function measureWindow(phases: readonly PhaseTiming[]): { fromSec: number; toSec: number } | null {
  const measure = phases.find((p) => p.phase === "measure");
  if (!measure) return null;
  const drain = phases.find((p) => p.phase === "drain");
  return { fromSec: measure.startSec, toSec: (drain ?? measure).endSec };
}

/**
 * The broker's CPU seconds at each sample (sorted by time), made cumulative across restarts with
 * run/sampler.ts cpuCounterStep: a new broker process's CPU is added to what the old one had
 * used, and a dip of a few ms between two sample sources reads as no change. The CPU an old
 * process used between its last sample and its death (at most one sampling interval) is not seen.
 */
export function cumulativeCpu(sorted: readonly CpuSample[]): number[] {
  const out: number[] = [];
  let offset = 0;
  let prev: number | undefined;
  for (const s of sorted) {
    let value = s.cpuUserSeconds + s.cpuSystemSeconds;
    const step = prev === undefined ? "up" : cpuCounterStep(prev, value);
    if (step === "restart") offset += prev!;
    else if (step === "dip") value = prev!;
    out.push(offset + value);
    prev = value;
  }
  return out;
}

/** CPU seconds at time t, interpolated between the samples around it; `cum` is cumulativeCpu(sorted). */
function cpuAt(sorted: readonly CpuSample[], cum: readonly number[], t: number): number {
  let i = 1;
  while (i < sorted.length - 1 && sorted[i]!.t < t) i++;
  const a = sorted[i - 1]!;
  const b = sorted[i]!;
  if (b.t <= a.t) return cum[i]!;
  const f = Math.min(1, Math.max(0, (t - a.t) / (b.t - a.t)));
  return cum[i - 1]! + (cum[i]! - cum[i - 1]!) * f;
}

/**
 * The broker's CPU cost per message over the measure window. Null when the run has no measure
 * phase, fewer than two samples, or no sample span inside the window.
 *
 * Warmup messages still in flight at measure start cost CPU inside the window without being
 * counted as its deliveries, so a run with a backlog at that moment reads slightly high.
 */
export function brokerCost(
  samples: readonly CpuSample[],
  phases: readonly PhaseTiming[],
  counts: { deliveries: number; published: number },
): BrokerCost | null {
  const window = measureWindow(phases);
  const cpu = window && brokerCpuBetween(samples, window.fromSec, window.toSec);
  if (!cpu) return null;
  const per = (n: number) => (n > 0 ? round3((cpu.cpuSeconds * 1e6) / n) : null);
  return {
    fromSec: round3(cpu.fromSec),
    toSec: round3(cpu.toSec),
    cpuSeconds: round6(cpu.cpuSeconds),
    deliveries: counts.deliveries,
    published: counts.published,
    cpuUsPerDelivery: per(counts.deliveries),
    cpuUsPerPublish: per(counts.published),
    clipped: cpu.clipped,
  };
}

/**
 * The broker's CPU seconds between two moments of the run (seconds since its start): cumulative
 * across restarts (cumulativeCpu), linearly interpolated between the samples around each end,
 * the window clipped to the samples' span (`clipped` says so). Null with fewer than two samples
 * or no span left. The one reading of broker CPU over a window that the cost, the
 * generator-bound verdict and the suite's CPU column share.
 */
export function brokerCpuBetween(
  samples: readonly CpuSample[],
  from: number,
  to: number,
): { fromSec: number; toSec: number; cpuSeconds: number; clipped: boolean } | null {
  if (samples.length < 2) return null;
  const sorted = [...samples].sort((a, b) => a.t - b.t);
  const fromSec = Math.max(from, sorted[0]!.t);
  const toSec = Math.min(to, sorted[sorted.length - 1]!.t);
  if (toSec <= fromSec) return null;
  const cum = cumulativeCpu(sorted);
  const cpuSeconds = Math.max(0, cpuAt(sorted, cum, toSec) - cpuAt(sorted, cum, fromSec));
  return { fromSec, toSec, cpuSeconds, clipped: fromSec > from || toSec < to };
}

/** What a result holds that its cost is read or derived from. */
export interface CostSource {
  broker: { samples: readonly CpuSample[]; cost?: BrokerCost | null };
  run: { phases: readonly PhaseTiming[] };
  latency: { e2e: { count: number } };
  counts: { measuredPublished: number };
}

/** A result's cost: the one it carries, or for a result written before the figure existed the same figure from its samples. */
export function costOf(r: CostSource): BrokerCost | null {
  if (r.broker.cost !== undefined) return r.broker.cost;
  return brokerCost(r.broker.samples, r.run.phases, { deliveries: r.latency.e2e.count, published: r.counts.measuredPublished });
}

/**
 * The cost of several parts of one run against one broker (shards, or the workers of one
 * process when each part sampled it): the broker's CPU is the same broker's in each part, so
 * the widest part's CPU is taken, and the messages of all parts add up.
 */
export function combineCosts(costs: readonly (BrokerCost | null | undefined)[]): BrokerCost | null {
  const have = costs.filter((c): c is BrokerCost => c !== null && c !== undefined);
  if (have.length === 0 || have.length !== costs.length) return null;
  const widest = have.reduce((a, b) => (b.cpuSeconds > a.cpuSeconds ? b : a));
  const deliveries = have.reduce((a, c) => a + c.deliveries, 0);
  const published = have.reduce((a, c) => a + c.published, 0);
  const per = (n: number) => (n > 0 ? round3((widest.cpuSeconds * 1e6) / n) : null);
  return {
    ...widest,
    deliveries,
    published,
    cpuUsPerDelivery: per(deliveries),
    cpuUsPerPublish: per(published),
    clipped: have.some((c) => c.clipped),
  };
}

/** "3.21 CPU-µs per delivery, 3.30 per published message" (report.md, compare.md). */
export function costText(c: BrokerCost | null | undefined): string {
  if (!c) return "n/a";
  const f = (v: number | null) => (v === null ? "n/a" : v.toFixed(v < 10 ? 2 : 1));
  return `${f(c.cpuUsPerDelivery)} CPU-µs per delivery, ${f(c.cpuUsPerPublish)} per published message`;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
