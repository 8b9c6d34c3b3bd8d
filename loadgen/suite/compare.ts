/**
 * The side-by-side comparison of a suite run: per scenario, one row per run (driver or label)
 * with throughput, e2e p50/p99/p99.9/max, delivered %, broker CPU and memory, and the ratio to
 * the best peer (NATS core or JetStream) in the same scenario; then the set's targets, each
 * judged as a ratio measured in the same run. Rendered as Markdown and as a self-contained HTML
 * page (ECharts SVG, no scripts).
 */
import { z } from "zod";
import { findDriver, type DurabilityPromise } from "../drivers/index.js";
import { brokerCpuBetween, costOf, measureWindow, type RunResult } from "../report/index.js";

export const METRICS = {
  deliveryRate: { title: "deliveries/s", higherIsBetter: true },
  publishRate: { title: "published msg/s", higherIsBetter: true },
  e2eP99Us: { title: "e2e p99", higherIsBetter: false },
} as const;
export type MetricName = keyof typeof METRICS;

export const targetSchema = z.strictObject({
  name: z.string(),
  scenario: z.string(),
  metric: z.enum(["deliveryRate", "publishRate", "e2eP99Us"]),
  /** Row label of our run. */
  subject: z.string(),
  /** Row labels of the peers; the best of them is the reference. */
  peers: z.array(z.string()).min(1),
  /** subject / best peer must be >= min (throughput) or <= max (latency). */
  min: z.number().positive().optional(),
  max: z.number().positive().optional(),
  /** The scenario to look the peers up in, when it differs (e.g. durable vs at-least-once). */
  peerScenario: z.string().optional(),
});
export type Target = z.output<typeof targetSchema>;

/** One row of the comparison: the figures of one run. */
export interface Row {
  label: string;
  driver: string;
  scenario: string;
  storage: string;
  note: string | undefined;
  /** A fixed offered rate: latency is the figure of merit, not throughput. */
  fixedRate: boolean;
  ok: boolean;
  exitCode: number;
  publishRate: number;
  deliveryRate: number;
  e2e: { p50Us: number; p99Us: number; p999Us: number; maxUs: number };
  deliveredPct: number;
  brokerCpuPercent: number | null;
  brokerCpuSeconds: number | null;
  brokerPeakRssBytes: number | null;
  /** Broker CPU-µs per delivery and per published message over the measure window (null: not sampled). */
  brokerCpuUsPerDelivery: number | null;
  brokerCpuUsPerPublish: number | null;
  /** This row's throughput / the best peer's (null without a peer). */
  throughputVsBestPeer: number | null;
  /** This row's p99 / the best peer's p99 (lower is better). */
  p99VsBestPeer: number | null;
  bestPeer: string | null;
  /** With --repeat: this row is the median of `count` passes; the figure of merit ranged min..max. */
  passes?: { count: number; min: number; max: number };
  /** The run's generator-bound verdict: its figures may measure the load generator (docs/loadgen.md, "Generator-bound verdict"). */
  generatorBound?: boolean;
  /** A run with faults: its fault figures, worst over its faults (absent: the run had none). */
  faults?: FaultRow;
  /** What the run promised: the driver's durability disclosure for its broker settings (absent in results written before it). */
  promise?: DurabilityPromise;
}

/** The fault figures of one run, for the comparison of brokers on a fault scenario. */
export interface FaultRow {
  count: number;
  worstUnavailableSeconds: number;
  /** Null when some fault did not recover (`notRecovered` of them). */
  worstRecoverySeconds: number | null;
  notRecovered: number;
  /** Worst corrected e2e p99 inside a fault window, and p99 outside every fault and recovery window. */
  p99InFaultUs: number;
  p99OutsideUs: number;
  lost: number;
  duplicates: number;
  /** What the run promised (durability disclosure), in short: publish ack; flush. */
  promise: string;
}

/** The fault row of a result, or undefined when it had no fault figures. */
export function faultRowOf(r: RunResult): FaultRow | undefined {
  const a = r.faultFigures;
  if (!a || a.faults.length === 0) return undefined;
  const stuck = a.faults.filter((f) => f.recoverySeconds === null).length;
  return {
    count: a.faults.length,
    worstUnavailableSeconds: Math.max(...a.faults.map((f) => f.unavailableSeconds)),
    worstRecoverySeconds: stuck ? null : Math.max(...a.faults.map((f) => f.recoverySeconds!)),
    notRecovered: stuck,
    p99InFaultUs: Math.max(...a.faults.map((f) => f.latency.inFault.corrected.p99Us)),
    p99OutsideUs: a.outside.corrected.p99Us,
    lost: r.counts.lost,
    duplicates: r.counts.duplicates,
    promise: r.durability ? `${r.durability.publishAck}; ${r.durability.flush}` : "not disclosed",
  };
}

export interface TargetVerdict extends Target {
  subjectValue: number | null;
  peerLabel: string | null;
  peerValue: number | null;
  ratio: number | null;
  met: boolean | null;
  /** Runs involved that failed their own gates (their figures stand, with that caveat). */
  caveats: string[];
}

/** Broker CPU over the measure and drain phases (report/cost.ts brokerCpuBetween), as a share of one core and in seconds. */
export function brokerCpu(r: RunResult): { percent: number; seconds: number } | null {
  const window = measureWindow(r.run.phases);
  const cpu = window && brokerCpuBetween(r.broker.samples, window.fromSec, window.toSec);
  return cpu ? { percent: (cpu.cpuSeconds / (cpu.toSec - cpu.fromSec)) * 100, seconds: cpu.cpuSeconds } : null;
}

export function rowOf(r: RunResult, meta: { label: string; note?: string | undefined; exitCode: number }): Row {
  const c = r.counts;
  const cpu = brokerCpu(r);
  const b = r.broker;
  const cost = costOf(r);
  return {
    label: meta.label,
    driver: r.run.driver,
    scenario: r.run.scenario,
    storage: storageLabel(r),
    note: meta.note,
    fixedRate: r.scenario.rate !== "unthrottled",
    ok: meta.exitCode === 0,
    exitCode: meta.exitCode,
    publishRate: r.throughput.publishRate,
    deliveryRate: r.throughput.deliveryRate,
    e2e: { p50Us: r.latency.e2e.p50Us, p99Us: r.latency.e2e.p99Us, p999Us: r.latency.e2e.p999Us, maxUs: r.latency.e2e.maxUs },
    deliveredPct: c.expected === 0 ? 100 : (c.delivered / c.expected) * 100,
    brokerCpuPercent: cpu ? Math.round(cpu.percent) : null,
    brokerCpuSeconds: cpu ? Math.round(cpu.seconds * 10) / 10 : null,
    brokerPeakRssBytes: b.peakRssBytes,
    brokerCpuUsPerDelivery: cost?.cpuUsPerDelivery ?? null,
    brokerCpuUsPerPublish: cost?.cpuUsPerPublish ?? null,
    throughputVsBestPeer: null,
    p99VsBestPeer: null,
    bestPeer: null,
    ...(r.generatorBound?.bound ? { generatorBound: true } : {}),
    ...optionalFaults(faultRowOf(r)),
    ...(r.durability ? { promise: r.durability } : {}),
  };
}

function optionalFaults(f: FaultRow | undefined): { faults?: FaultRow } {
  return f ? { faults: f } : {};
}

/** The driver that ran says what its server did with the broker block. */
function storageLabel(r: RunResult): string {
  return findDriver(r.run.driver).report.storage(r.broker);
}

const isPeerDriver = (name: string): boolean => findDriver(name).report.peer;

/** The figure a row is judged by: e2e p99 at a fixed offered rate, deliveries/s otherwise. */
export function meritOf(row: Row): number {
  return row.fixedRate ? row.e2e.p99Us : row.deliveryRate;
}

/**
 * Rows of several passes of one run (same scenario and label) → the median pass by its figure
 * of merit, carrying the range over the passes. With an even count the worse middle pass is taken.
 */
export function medianPasses(rows: readonly Row[]): Row[] {
  const out: Row[] = [];
  for (const list of groupBy(rows, (r) => `${r.scenario}\u0000${r.label}`).values()) {
    if (list.length === 1) {
      out.push(list[0]!);
      continue;
    }
    // Worst first: highest p99 at a fixed rate, lowest deliveries/s otherwise.
    const sorted = [...list].sort((a, b) => (a.fixedRate ? meritOf(b) - meritOf(a) : meritOf(a) - meritOf(b)));
    const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
    const values = sorted.map(meritOf);
    out.push({ ...median, passes: { count: list.length, min: Math.min(...values), max: Math.max(...values) } });
  }
  return out;
}

/**
 * Fill in the ratios to the best peer of each scenario (peers compared with each other too).
 * A run that failed its own gates is neither a best peer nor given a ratio: its figures are not
 * the scenario's (e.g. it could not sustain the offered rate), so the comparison shows it apart.
 */
export function withPeerRatios(rows: readonly Row[]): Row[] {
  const byScenario = groupBy(rows, (r) => r.scenario);
  return rows.map((row) => {
    if (!row.ok) return { ...row, bestPeer: null, throughputVsBestPeer: null, p99VsBestPeer: null };
    const peers = (byScenario.get(row.scenario) ?? []).filter((r) => r.ok && isPeerDriver(r.driver) && r.deliveryRate > 0);
    if (peers.length === 0) return row;
    const best = peers.reduce((a, b) => (b.deliveryRate > a.deliveryRate ? b : a));
    const bestP99 = peers.reduce((a, b) => (b.e2e.p99Us < a.e2e.p99Us ? b : a));
    return {
      ...row,
      bestPeer: row.fixedRate ? bestP99.label : best.label,
      throughputVsBestPeer: best.deliveryRate > 0 ? row.deliveryRate / best.deliveryRate : null,
      p99VsBestPeer: bestP99.e2e.p99Us > 0 ? row.e2e.p99Us / bestP99.e2e.p99Us : null,
    };
  });
}

export function isPeer(row: Row): boolean {
  return isPeerDriver(row.driver);
}

export function metricValue(row: Row, metric: MetricName): number {
  return metric === "e2eP99Us" ? row.e2e.p99Us : row[metric];
}

export function judgeTargets(rows: readonly Row[], targets: readonly Target[]): TargetVerdict[] {
  return targets.map((t) => {
    const find = (scenario: string, label: string) => rows.find((r) => r.scenario === scenario && r.label === label);
    const subject = find(t.scenario, t.subject);
    const higher = METRICS[t.metric].higherIsBetter;
    const peers = t.peers.map((p) => find(t.peerScenario ?? t.scenario, p)).filter((r): r is Row => r !== undefined);
    const best = peers.length
      ? peers.reduce((a, b) => ((higher ? metricValue(b, t.metric) > metricValue(a, t.metric) : metricValue(b, t.metric) < metricValue(a, t.metric)) ? b : a))
      : undefined;
    const subjectValue = subject ? metricValue(subject, t.metric) : null;
    const peerValue = best ? metricValue(best, t.metric) : null;
    const ratio = subjectValue !== null && peerValue ? subjectValue / peerValue : null;
    let met: boolean | null = null;
    // A run that failed its own gates (e.g. could not sustain the offered rate) misses the target.
    if (ratio !== null) met = (t.min === undefined || ratio >= t.min) && (t.max === undefined || ratio <= t.max) && subject!.ok;
    const caveats = [
      ...[subject, ...peers].filter((r): r is Row => r !== undefined && !r.ok).map((r) => `${r.label} failed its scenario gates`),
      ...[subject, best].filter((r): r is Row => r !== undefined && r.generatorBound === true).map((r) => `${r.label} was generator-bound`),
    ];
    return { ...t, subjectValue, peerLabel: best?.label ?? null, peerValue, ratio, met, caveats };
  });
}

export function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const i of items) {
    const k = key(i);
    const list = m.get(k);
    if (list) list.push(i);
    else m.set(k, [i]);
  }
  return m;
}
