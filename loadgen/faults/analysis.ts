/**
 * Per-fault figures from a run's fine timeline (acks and first deliveries per 100 ms bucket),
 * its 1 s interval histograms and the faults the engine applied (docs/faults.md, "Reading the
 * figures"). Pure functions over plain data: the same input gives the same figures, whether
 * from a run just finished, a merge of shards or a result.json read back.
 *
 * Definitions (times in seconds since the run's start, the clock of FaultEvent):
 *  - pre-fault rate: the median delivery rate over the whole 1 s windows of the measure phase
 *    that end before the first fault starts (windows counted from measure start);
 *  - unavailability: the longest span of buckets with no publish acknowledged and no delivery
 *    that overlaps the fault's window [start, end + one bucket], clipped to measure start ..
 *    end of the active run (drain end);
 *  - first delivery after: from the fault's end to the end of the first bucket, at or after
 *    the bucket holding the end, with a delivery (an upper bound at bucket resolution);
 *  - recovery: from the fault's end to the start T of the first 1 s window [T, T + 1), T on the
 *    bucket grid from the bucket holding the end, whose delivery rate is at least 90% of the
 *    pre-fault rate; the window must end before the next fault starts and before the measure
 *    phase ends, otherwise the fault did not recover (and the figure says why);
 *  - latency windows: each 1 s interval histogram goes to a fault's window if it overlaps the
 *    fault, else to its recovery window (end .. end + recovery, or up to where the search
 *    stopped) if it overlaps that, else "outside" if it overlaps no fault's windows. A latency
 *    is filed under the interval in which the message was delivered.
 */
import type { FaultEvent, FaultKind } from "./types.js";

/** The fine timeline, placed on the run's clock. */
export interface TimelineInput {
  /** Bucket width in seconds (0.1). */
  bucketSeconds: number;
  /** Run second at which bucket 0 starts (≤ 0: buckets sit on the wall clock's grid). */
  startSec: number;
  published: ArrayLike<number>;
  delivered: ArrayLike<number>;
}

/** One 1 s interval histogram, placed on the run's clock. */
export interface IntervalInput {
  startSec: number;
  endSec: number;
  /** Encoded corrected e2e histogram. */
  corrected: string;
  /** Encoded uncorrected e2e histogram (absent in old results). */
  uncorrected?: string | undefined;
}

/** Percentiles of a set of encoded histograms merged (computed by the caller's histogram code). */
export interface WindowPercentiles {
  count: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

/** Merges encoded histograms and summarizes them; injected so that this module stays pure. */
export type SummarizeEncoded = (encoded: readonly string[]) => WindowPercentiles;

export interface WindowLatency {
  /** Seconds covered by the interval histograms filed here. */
  seconds: number;
  corrected: WindowPercentiles;
  /** Null when some interval lacked its uncorrected histogram (a result written before it existed). */
  uncorrected: WindowPercentiles | null;
}

export type NotRecovered = "fault-not-lifted" | "next-fault" | "run-ended" | "no-pre-fault-rate";

export interface FaultFigures {
  spec: number;
  kind: FaultKind;
  occurrence: number;
  startSec: number;
  endSec: number | null;
  detail: string;
  /** Longest span overlapping the fault with no ack and no delivery, seconds (0: none). */
  unavailableSeconds: number;
  /** Where that span started (null when there was none). */
  unavailableFromSec: number | null;
  /** The span lasted until the end of the active run (it is a lower bound). */
  unavailableUntilRunEnd: boolean;
  /** Seconds from the fault's end to the first delivery after it (null: none came). */
  firstDeliveryAfterSeconds: number | null;
  /** Seconds from the fault's end until the delivery rate was back to 90% of the pre-fault rate (null: not recovered). */
  recoverySeconds: number | null;
  /** Why recoverySeconds is null. */
  notRecovered?: NotRecovered;
  latency: { inFault: WindowLatency; recovery: WindowLatency };
}

export interface FaultAnalysis {
  /** The fine timeline's bucket, seconds: the resolution of unavailability, first delivery and recovery. */
  resolutionSeconds: number;
  /** The resolution of the latency windows: whole interval histograms (1 s). */
  latencyResolutionSeconds: number;
  /** Recovered means the 1 s delivery rate reached this share of the pre-fault rate. */
  recoveryThreshold: number;
  /** Median 1 s delivery rate of the measure phase before the first fault (null: no whole second before it). */
  preFaultDeliveryRate: number | null;
  /** How many whole seconds that median is over. */
  preFaultSeconds: number;
  /**
   * The longest span with no ack and no delivery in the measure phase before the first fault:
   * the noise floor of `unavailableSeconds` (at low rates 100 ms buckets are empty by chance).
   */
  preFaultLongestGapSeconds: number | null;
  faults: FaultFigures[];
  /** Latency of the intervals that overlap no fault and no recovery window. */
  outside: WindowLatency;
}

export interface AnalysisInput {
  timeline: TimelineInput;
  /** The measure phase. */
  measure: { startSec: number; endSec: number };
  /** End of the active run (drain end): gaps are not looked for after it. */
  activeEndSec: number;
  faults: readonly FaultEvent[];
  intervals: readonly IntervalInput[];
  summarize: SummarizeEncoded;
}

export const RECOVERY_THRESHOLD = 0.9;
/** The sliding window of the recovery rate, seconds. */
export const RECOVERY_WINDOW_SECONDS = 1;

const EPS = 1e-9;

/** The per-fault figures of one run (faults in the order given: the engine's order of application). */
export function analyzeFaults(input: AnalysisInput): FaultAnalysis {
  const tl = input.timeline;
  const b = tl.bucketSeconds;
  const at = (k: number) => tl.startSec + k * b;
  /** The bucket holding second t. */
  const bucketOf = (t: number) => Math.floor((t - tl.startSec) / b + EPS);
  const count = (arr: ArrayLike<number>, k: number) => (k >= 0 && k < arr.length ? arr[k]! : 0);
  const active = (k: number) => count(tl.published, k) + count(tl.delivered, k) > 0;

  const faults = [...input.faults].filter((f) => f.error === undefined);
  const firstFaultSec = faults.length ? Math.min(...faults.map((f) => f.startSec)) : input.measure.endSec;

  // Pre-fault rate: whole seconds from measure start, each ending before the first fault.
  const rates: number[] = [];
  for (let s = input.measure.startSec; s + RECOVERY_WINDOW_SECONDS <= Math.min(firstFaultSec, input.measure.endSec) + EPS; s += RECOVERY_WINDOW_SECONDS) {
    rates.push(deliveredIn(s, s + RECOVERY_WINDOW_SECONDS) / RECOVERY_WINDOW_SECONDS);
  }
  const preFaultRate = rates.length ? median(rates) : null;

  // Gaps: maximal runs of empty buckets between measure start and the end of the active run.
  const firstK = bucketOf(input.measure.startSec);
  const lastK = bucketOf(input.activeEndSec - EPS);
  const gaps: { from: number; to: number }[] = [];
  for (let k = firstK; k <= lastK; k++) {
    if (active(k)) continue;
    const from = k;
    while (k + 1 <= lastK && !active(k + 1)) k++;
    gaps.push({ from: Math.max(at(from), input.measure.startSec), to: Math.min(at(k + 1), input.activeEndSec) });
  }
  const preGaps = gaps.filter((g) => g.to <= firstFaultSec + EPS).map((g) => g.to - g.from);
  const preFaultLongestGap = firstFaultSec - input.measure.startSec >= b ? round3(Math.max(0, ...preGaps)) : null;

  const starts = faults.map((f) => f.startSec);
  const figures: FaultFigures[] = [];
  const claimed: { from: number; to: number }[] = [];
  for (const f of faults) {
    const end = f.endSec;
    const reachEnd = (end ?? input.activeEndSec) + b;
    let longest: { from: number; to: number } | undefined;
    for (const g of gaps) {
      if (g.from < reachEnd - EPS && g.to > f.startSec + EPS && (!longest || g.to - g.from > longest.to - longest.from)) longest = g;
    }

    let firstDelivery: number | null = null;
    if (end !== null) {
      for (let k = bucketOf(end); at(k) < input.activeEndSec + EPS; k++) {
        if (k >= tl.delivered.length) break;
        if (count(tl.delivered, k) > 0) {
          firstDelivery = round3(Math.max(0, at(k + 1) - end));
          break;
        }
      }
    }

    // Recovery: the search stops at the next fault's start or the measure end, whichever first.
    const nextStart = Math.min(...starts.filter((s) => s > f.startSec + EPS), Infinity);
    const limit = Math.min(nextStart, input.measure.endSec);
    let recovery: number | null = null;
    let notRecovered: NotRecovered | undefined;
    let recoveryWindowEnd = end ?? f.startSec;
    if (end === null) notRecovered = "fault-not-lifted";
    else if (preFaultRate === null || preFaultRate <= 0) notRecovered = "no-pre-fault-rate";
    else {
      const need = RECOVERY_THRESHOLD * preFaultRate * RECOVERY_WINDOW_SECONDS;
      const w = Math.round(RECOVERY_WINDOW_SECONDS / b);
      for (let k = bucketOf(end); at(k + w) <= limit + EPS; k++) {
        let sum = 0;
        for (let j = k; j < k + w; j++) sum += count(tl.delivered, j);
        if (sum >= need - EPS) {
          recovery = round3(Math.max(0, at(k) - end));
          break;
        }
      }
      if (recovery === null) notRecovered = nextStart <= input.measure.endSec ? "next-fault" : "run-ended";
      recoveryWindowEnd = recovery === null ? Math.max(end, limit) : end + recovery;
    }

    const faultWin = { from: f.startSec, to: end ?? input.activeEndSec };
    const recoveryWin = { from: end ?? input.activeEndSec, to: recoveryWindowEnd };
    claimed.push(faultWin);
    if (recoveryWin.to > recoveryWin.from + EPS) claimed.push(recoveryWin);
    const inFault = input.intervals.filter((iv) => overlaps(iv, faultWin));
    const inRecovery = input.intervals.filter((iv) => !overlaps(iv, faultWin) && recoveryWin.to > recoveryWin.from + EPS && overlaps(iv, recoveryWin));

    figures.push({
      spec: f.spec,
      kind: f.kind,
      occurrence: f.occurrence,
      startSec: f.startSec,
      endSec: end,
      detail: f.detail,
      unavailableSeconds: longest ? round3(longest.to - longest.from) : 0,
      unavailableFromSec: longest ? round3(longest.from) : null,
      unavailableUntilRunEnd: longest !== undefined && longest.to >= input.activeEndSec - EPS,
      firstDeliveryAfterSeconds: firstDelivery,
      recoverySeconds: recovery,
      ...(notRecovered ? { notRecovered } : {}),
      latency: { inFault: windowLatency(inFault, input.summarize), recovery: windowLatency(inRecovery, input.summarize) },
    });
  }
  const outside = input.intervals.filter((iv) => !claimed.some((w) => overlaps(iv, w)));

  return {
    resolutionSeconds: b,
    latencyResolutionSeconds: 1,
    recoveryThreshold: RECOVERY_THRESHOLD,
    preFaultDeliveryRate: preFaultRate === null ? null : Math.round(preFaultRate),
    preFaultSeconds: rates.length,
    preFaultLongestGapSeconds: preFaultLongestGap,
    faults: figures,
    outside: windowLatency(outside, input.summarize),
  };

  function deliveredIn(from: number, to: number): number {
    // Buckets whose middle lies in [from, to).
    let sum = 0;
    for (let k = bucketOf(from); at(k) < to; k++) {
      const mid = at(k) + b / 2;
      if (mid >= from && mid < to) sum += count(tl.delivered, k);
    }
    return sum;
  }
}

/** Whether an interval [start, end) overlaps a window; a zero-width window (a cut) is the instant it names. */
function overlaps(iv: { startSec: number; endSec: number }, w: { from: number; to: number }): boolean {
  if (w.to <= w.from + EPS) return iv.startSec <= w.from + EPS && iv.endSec > w.from + EPS;
  return iv.startSec < w.to - EPS && iv.endSec > w.from + EPS;
}

function windowLatency(intervals: readonly IntervalInput[], summarize: SummarizeEncoded): WindowLatency {
  const withUncorrected = intervals.every((iv) => iv.uncorrected !== undefined);
  return {
    seconds: round3(intervals.reduce((a, iv) => a + (iv.endSec - iv.startSec), 0)),
    corrected: summarize(intervals.map((iv) => iv.corrected)),
    uncorrected: withUncorrected ? summarize(intervals.map((iv) => iv.uncorrected!)) : null,
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** The largest figure over the faults, for gates: null when any fault has none (it did not recover). */
export function worstRecovery(figures: readonly FaultFigures[]): { seconds: number | null; fault: FaultFigures | undefined } {
  const stuck = figures.find((f) => f.recoverySeconds === null);
  if (stuck) return { seconds: null, fault: stuck };
  let worst: FaultFigures | undefined;
  for (const f of figures) if (!worst || f.recoverySeconds! > worst.recoverySeconds!) worst = f;
  return { seconds: worst?.recoverySeconds ?? null, fault: worst };
}
