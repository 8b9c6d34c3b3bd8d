/**
 * `rate: max`: the highest sustainable fixed rate, found as OpenMessaging Benchmark's
 * `producerRate: 0` finds it, by trying fixed rates. Each step is one ordinary fixed-rate run
 * (warmup, `stepSeconds` measured, drain) against the same broker (started once), on fresh topics.
 *
 * A step holds (is sustainable) when, over its measure window:
 *   1. achieved publish rate >= (1 − tolerance) × offered;
 *   2. delivery rate >= (1 − tolerance) × offered × deliveries per message (the fan-out);
 *   3. the queues stay bounded (least-squares slopes over the window's intervals): the backlog
 *      (deliveries outstanding) grows by at most queueGrowthMax × offered × fan-out per second,
 *      and the producers' lag behind their schedule (interval lateness p99) by at most
 *      queueGrowthMax seconds per second. Rates alone cannot say this: a step 5% behind its
 *      schedule still publishes 95% of the offered rate, and its lag grows without bound;
 *   4. e2e p99 does not trend up: the interval e2e p99 grows by at most queueGrowthMax seconds
 *      per second (least-squares slope; a queue that builds shows here as it does in the backlog);
 *      with latencyGrowthMax set, also p99 of the second half <= max(latencyGrowthMax × the first
 *      half's, latencyFloorMs); and <= p99MaxMs when that is set;
 *   5. the drain finished in time, and nothing was lost or refused.
 *
 * The search: start at `startRate`; while every step held, multiply by `growth` (capped at
 * `maxRate`); while none held, divide by it; once there is a highest holding rate below a lowest
 * failing one, bisect until they are within `precision` of each other or `maxSteps` ran. The
 * found rate is the highest that held; with `confirm`, it runs once more as a fixed-rate step of
 * `confirmSeconds` (default 3 × stepSeconds: a slowly building queue shows over a longer window),
 * and when that fails it is withdrawn and the search continues below it (at most 3 confirmations).
 */
import type { PhaseTiming, RunOutcome } from "./runner.js";
import type { EncodedInterval, IntervalPoint } from "./recorder.js";
import { mergeEncoded } from "./histogram.js";
import type { Plan } from "./plan.js";
import { searchSettings, type Scenario, type SearchSettings } from "./scenario.js";

export type StepKind = "ramp" | "bisect" | "confirm";

/** One step's figures (everything the verdict reads). */
export interface StepFigures {
  offeredRate: number;
  achievedRate: number;
  /** Timed first deliveries per second, measure start to the last one. */
  deliveryRate: number;
  /** Deliveries one accepted message owes (subscriptions of its topic, averaged). */
  fanOut: number;
  p50Us: number;
  p99Us: number;
  p99FirstHalfUs: number | null;
  p99SecondHalfUs: number | null;
  /** Growth of the interval e2e p99 over the measure window, µs per second (null with < 3 intervals). Absent in results written before it. */
  p99SlopeUsPerSec?: number | null;
  /** Deliveries outstanding: growth per second over the measure window (null with < 3 samples). */
  backlogSlope: number | null;
  /** Deliveries outstanding at the last sample of the measure window. */
  backlogEnd: number | null;
  /**
   * The producers' lag behind their schedule: growth of the interval lateness p99, in µs per
   * second, over the measure window (null with < 3 intervals). Absent in results written before it.
   */
  lagSlopeUsPerSec?: number | null;
  /** Interval lateness p99 of the last interval of the measure window (µs). */
  lagEndUs?: number | null;
  lost: number;
  publishErrors: number;
  drainTimedOut: boolean;
}

export interface RateSearchStep extends StepFigures {
  index: number;
  kind: StepKind;
  sustainable: boolean;
  /** Why it did not hold (empty when it did). */
  reasons: string[];
  /**
   * The generator-bound verdict of this step (docs/loadgen.md, "Generator-bound verdict"): its
   * reasons, empty when the broker, not the generator, was the limit. Absent when not judged
   * (results written before it, or a runner that does not judge it).
   */
  generatorBound?: string[];
}

export interface RateSearchReport {
  /** The highest rate that held; null when none did. */
  foundRate: number | null;
  /** The confirmation step at foundRate held too (null: not run). */
  confirmed: boolean | null;
  /** Measured seconds of a confirmation step; absent in results written before it (their confirmation was stepSeconds long). */
  confirmSeconds?: number;
  /** Why the search stopped. */
  stoppedBecause: string;
  settings: SearchSettings;
  /** Wall seconds of the whole search, every step together. */
  totalSeconds: number;
  steps: RateSearchStep[];
}

/** The verdict on one step: [] when it held, else the conditions it broke. */
export function judgeStep(f: StepFigures, s: SearchSettings): string[] {
  const out: string[] = [];
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const floor = 1 - s.tolerance;
  if (f.achievedRate < floor * f.offeredRate) out.push(`published ${pct(f.achievedRate / f.offeredRate)} of the offered rate (< ${pct(floor)})`);
  const owed = f.offeredRate * f.fanOut;
  if (owed > 0 && f.deliveryRate < floor * owed) out.push(`delivered ${pct(f.deliveryRate / owed)} of the offered deliveries/s (< ${pct(floor)})`);
  if (f.backlogSlope !== null && owed > 0 && f.backlogSlope > s.queueGrowthMax * owed) out.push(`backlog grew ${Math.round(f.backlogSlope)} deliveries/s (> ${pct(s.queueGrowthMax)} of ${Math.round(owed)})`);
  const lag = f.lagSlopeUsPerSec;
  if (lag !== undefined && lag !== null && lag > s.queueGrowthMax * 1e6) {
    out.push(`producers fell behind their schedule: lateness p99 grew ${ms(lag)} per second (> ${ms(s.queueGrowthMax * 1e6)}/s)${f.lagEndUs ? `, to ${ms(f.lagEndUs)}` : ""}`);
  }
  const p99Slope = f.p99SlopeUsPerSec;
  if (p99Slope !== undefined && p99Slope !== null && p99Slope > s.queueGrowthMax * 1e6) out.push(`e2e p99 grew ${ms(p99Slope)} per second (> ${ms(s.queueGrowthMax * 1e6)}/s)`);
  if (s.latencyGrowthMax !== undefined && f.p99FirstHalfUs !== null && f.p99SecondHalfUs !== null) {
    const limitUs = Math.max(s.latencyGrowthMax * f.p99FirstHalfUs, s.latencyFloorMs * 1000);
    if (f.p99SecondHalfUs > limitUs) out.push(`e2e p99 grew from ${ms(f.p99FirstHalfUs)} (first half) to ${ms(f.p99SecondHalfUs)} (second half; limit ${ms(limitUs)})`);
  }
  if (s.p99MaxMs !== undefined && f.p99Us > s.p99MaxMs * 1000) out.push(`e2e p99 ${ms(f.p99Us)} > p99MaxMs ${s.p99MaxMs} ms`);
  if (f.drainTimedOut) out.push("deliveries still missing when the drain timed out");
  if (f.lost > 0) out.push(`${f.lost} deliveries lost`);
  if (f.publishErrors > 0) out.push(`${f.publishErrors} publishes refused`);
  return out;
}

function ms(us: number): string {
  return `${(us / 1000).toFixed(us < 10_000 ? 2 : 0)} ms`;
}

/** The search's choice of the next rate, from the verdicts so far. No I/O, no time. */
export class RateSearchPlanner {
  private good: number | undefined;
  private bad: number | undefined;
  /** Every rate that held (a failed confirmation withdraws the found one). */
  private readonly held: number[] = [];
  private steps = 0;
  stoppedBecause = "";

  constructor(private readonly s: SearchSettings) {}

  get foundRate(): number | undefined {
    return this.good;
  }

  /** The next rate to try, or undefined when the search is over (stoppedBecause says why). */
  next(): { rate: number; kind: StepKind } | undefined {
    const s = this.s;
    if (this.steps >= s.maxSteps) return this.stop(`maxSteps (${s.maxSteps}) ran`);
    const { good, bad } = this;
    let rate: number;
    let kind: StepKind = "ramp";
    if (bad === undefined) {
      if (good !== undefined && s.maxRate !== undefined && good >= s.maxRate) return this.stop(`maxRate ${s.maxRate} msg/s held`);
      rate = good === undefined ? s.startRate : good * s.growth;
      if (s.maxRate !== undefined) rate = Math.min(rate, s.maxRate);
    } else if (good === undefined) {
      rate = bad / s.growth;
      if (rate < 1) return this.stop("no rate of 1 msg/s or more held");
    } else {
      if ((bad - good) / good <= s.precision) return this.stop(`the highest holding rate is within ${s.precision * 100}% of the lowest failing one`);
      rate = (good + bad) / 2;
      kind = "bisect";
    }
    rate = Math.max(1, Math.round(rate));
    if (rate === good || rate === bad) return this.stop("no whole rate left between the highest holding and the lowest failing one");
    return { rate, kind };
  }

  record(rate: number, sustainable: boolean): void {
    this.steps++;
    if (sustainable) {
      this.good = Math.max(this.good ?? 0, rate);
      this.held.push(rate);
    } else this.bad = Math.min(this.bad ?? Infinity, rate);
  }

  /**
   * The confirmation of the found rate failed: that rate (and any above it) no longer counts as
   * holding; the highest lower rate that held is the found one again, and the search goes on
   * between it and the withdrawn rate while steps remain.
   */
  withdraw(rate: number): void {
    this.bad = Math.min(this.bad ?? Infinity, rate);
    const below = this.held.filter((r) => r < rate);
    this.good = below.length ? Math.max(...below) : undefined;
    this.stoppedBecause = "";
  }

  private stop(why: string): undefined {
    this.stoppedBecause = why;
    return undefined;
  }
}

/**
 * What a fixed-rate run's verdict reads, whether from a run's outcome (a search step) or from a
 * written result (any fixed-rate run: report/rate-held.ts).
 */
export interface WindowInput {
  offeredRate: number;
  phases: readonly PhaseTiming[];
  /** Wall ms of the run's start (interval histograms are stamped in wall ms). */
  startedAtMs: number;
  series: readonly IntervalPoint[];
  intervals: readonly EncodedInterval[];
  measuredPublished: number;
  measureSeconds: number;
  /** Timed first deliveries and the seconds they span (measure start to the last one). */
  timedDeliveries: number;
  deliverySeconds: number;
  published: number;
  expected: number;
  p50Us: number;
  p99Us: number;
  lost: number;
  publishErrors: number;
  drainTimedOut: boolean;
}

/** A fixed-rate window's figures (the series carries `backlog` in one-process runs only: else no backlog slope). */
export function windowFigures(w: WindowInput): StepFigures {
  const measure = w.phases.find((p) => p.phase === "measure");
  const from = measure?.startSec ?? 0;
  const to = measure?.endSec ?? from;
  const measured = w.series.filter((p) => p.phase === "measure");
  const points = measured.filter((p) => p.backlog !== undefined);
  // Interval histograms of the measure window (wall ms), split at its middle.
  const wallFrom = w.startedAtMs + from * 1000;
  const wallTo = w.startedAtMs + to * 1000;
  const mid = (wallFrom + wallTo) / 2;
  const inWindow = w.intervals.filter((iv) => iv.endMs > wallFrom && iv.startMs < wallTo + 500);
  const p99Of = (list: typeof inWindow): number | null => {
    if (list.length === 0) return null;
    const h = mergeEncoded(list.map((i) => i.histogram));
    const v = h.totalCount > 0 ? h.getValueAtPercentile(99) : null;
    h.destroy();
    return v;
  };
  return {
    offeredRate: w.offeredRate,
    achievedRate: Math.round(w.measuredPublished / Math.max(1e-6, w.measureSeconds)),
    deliveryRate: Math.round(w.timedDeliveries / Math.max(1e-6, w.deliverySeconds)),
    fanOut: w.published > 0 ? w.expected / w.published : 0,
    p50Us: w.p50Us,
    p99Us: w.p99Us,
    p99FirstHalfUs: p99Of(inWindow.filter((iv) => (iv.startMs + iv.endMs) / 2 < mid)),
    p99SecondHalfUs: p99Of(inWindow.filter((iv) => (iv.startMs + iv.endMs) / 2 >= mid)),
    backlogSlope: points.length >= 3 ? Math.round(slope(points.map((p) => [p.t, p.backlog!]))) : null,
    backlogEnd: points.length ? points[points.length - 1]!.backlog! : null,
    p99SlopeUsPerSec: measured.length >= 3 ? Math.round(slope(measured.map((p) => [p.t, p.e2eP99Us]))) : null,
    lagSlopeUsPerSec: measured.length >= 3 ? Math.round(slope(measured.map((p) => [p.t, p.latenessP99Us]))) : null,
    lagEndUs: measured.length ? measured[measured.length - 1]!.latenessP99Us : null,
    lost: w.lost,
    publishErrors: w.publishErrors,
    drainTimedOut: w.drainTimedOut,
  };
}

/** A step's figures from its run's outcome (one-process run: the series carries `backlog`). */
export function stepFigures(outcome: RunOutcome, offeredRate: number): StepFigures {
  const r = outcome.recorder;
  const timed = r.e2e.totalCount;
  return windowFigures({
    offeredRate,
    phases: outcome.phases,
    startedAtMs: outcome.startedAtMs,
    series: r.series,
    intervals: r.intervals,
    measuredPublished: r.measuredPublished,
    measureSeconds: outcome.measureSeconds,
    timedDeliveries: timed,
    deliverySeconds: outcome.deliverySeconds,
    published: r.published,
    expected: outcome.accounting.expected,
    p50Us: timed ? r.e2e.getValueAtPercentile(50) : 0,
    p99Us: timed ? r.e2e.getValueAtPercentile(99) : 0,
    lost: outcome.accounting.lost,
    publishErrors: r.publishErrors,
    drainTimedOut: outcome.drainTimedOut,
  });
}

/** Least-squares slope of y over x. */
export function slope(xy: readonly (readonly [number, number])[]): number {
  const n = xy.length;
  const mx = xy.reduce((s, [x]) => s + x, 0) / n;
  const my = xy.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of xy) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Measured seconds of the confirmation step. */
export function confirmSeconds(search: SearchSettings): number {
  return search.confirmSeconds ?? 3 * search.stepSeconds;
}

/**
 * A search step's scenario: the scenario at one fixed rate, for stepSeconds (a confirmation:
 * confirmSeconds), with the search's warmup and drain.
 */
export function stepScenario(s: Scenario, rate: number, kind: StepKind = "ramp"): Scenario {
  const search = searchSettings(s);
  const { search: _search, messages: _messages, ...rest } = s;
  return {
    ...rest,
    rate,
    durationSeconds: kind === "confirm" ? confirmSeconds(search) : search.stepSeconds,
    warmupSeconds: search.warmupSeconds,
    drainTimeoutSeconds: search.drainTimeoutSeconds ?? Math.max(2, search.stepSeconds),
  };
}

export interface StepRun {
  outcome: RunOutcome;
  plan: Plan;
  scenario: Scenario;
  /** The step's generator-bound reasons (empty: not bound), when the runner judged them. */
  generatorBound?: readonly string[];
}

export interface RateSearchOutcome {
  report: RateSearchReport;
  /** The run the result's figures come from: the confirmation step, else the found step, else the lowest-rate step. */
  chosen: StepRun;
}

/**
 * Run the search; `runStep` runs one fixed-rate step (fresh topics, same broker) and resolves
 * with its outcome. Recorders of steps not chosen are destroyed here.
 */
export async function runRateSearch(s: Scenario, runStep: (stepScenario: Scenario, index: number) => Promise<StepRun>, nowMs: () => number = Date.now): Promise<RateSearchOutcome> {
  const settings = searchSettings(s);
  const planner = new RateSearchPlanner(settings);
  const steps: RateSearchStep[] = [];
  const startedMs = nowMs();
  // Every step's run is kept until the end (a recorder is a few histograms), then all but the chosen one freed.
  const runs: StepRun[] = [];
  let interrupted = false;
  let confirmed: boolean | null = null;
  let confirmedRun: StepRun | undefined;
  const step = async (rate: number, kind: StepKind): Promise<RateSearchStep> => {
    const run = await runStep(stepScenario(s, rate, kind), steps.length);
    runs.push(run);
    const judgedStep = judged(run.outcome, rate, steps.length, kind, settings);
    if (run.generatorBound !== undefined) judgedStep.generatorBound = [...run.generatorBound];
    steps.push(judgedStep);
    if (run.outcome.interrupted) interrupted = true;
    if (kind === "confirm" && judgedStep.sustainable) confirmedRun = run;
    return judgedStep;
  };
  for (let attempt = 0; ; attempt++) {
    for (let next = planner.next(); next && !interrupted; next = planner.next()) {
      const x = await step(next.rate, next.kind);
      planner.record(next.rate, x.sustainable);
    }
    const found = planner.foundRate;
    if (interrupted || found === undefined || !settings.confirm) break;
    // A found rate right at the broker's edge may hold once by luck: confirm it; if that fails,
    // withdraw it and search below it (at most CONFIRM_ATTEMPTS confirmations).
    confirmed = (await step(found, "confirm")).sustainable;
    if (confirmed || interrupted || attempt + 1 >= CONFIRM_ATTEMPTS) break;
    planner.withdraw(found);
    if (planner.foundRate === undefined) break;
  }
  if (interrupted) planner.stoppedBecause = "interrupted";
  const foundRate = planner.foundRate;
  const rateOf = (i: number) => steps[i]!.offeredRate;
  const foundIndex = foundRate === undefined ? -1 : steps.findIndex((x) => x.sustainable && x.offeredRate === foundRate);
  const lowestIndex = steps.reduce((best, _x, i) => (rateOf(i) < rateOf(best) ? i : best), 0);
  const chosen = confirmedRun ?? runs[foundIndex >= 0 ? foundIndex : lowestIndex]!;
  for (const run of runs) if (run !== chosen) run.outcome.recorder.destroy();
  return {
    report: {
      foundRate: foundRate ?? null,
      confirmed,
      confirmSeconds: confirmSeconds(settings),
      stoppedBecause: planner.stoppedBecause,
      settings,
      totalSeconds: Math.round(nowMs() - startedMs) / 1000,
      steps,
    },
    chosen,
  };
}

/** Confirmations of a found rate at most (a failed one withdraws it and the search goes on below it). */
export const CONFIRM_ATTEMPTS = 3;

function judged(outcome: RunOutcome, rate: number, index: number, kind: StepKind, settings: SearchSettings): RateSearchStep {
  const f = stepFigures(outcome, rate);
  const reasons = judgeStep(f, settings);
  return { index, kind, ...f, sustainable: reasons.length === 0, reasons };
}
