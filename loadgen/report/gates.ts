/**
 * SLO gates: each `slo:` field of the scenario becomes one gate judged against the result.
 * A failed gate says which and by how much; exit code 1 when any gate fails.
 */
import { worstRecovery, type FaultFigures } from "../faults/index.js";
import type { Slo } from "../run/index.js";

export interface GateInput {
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  publishErrors: number;
  e2eP50Us: number;
  e2eP99Us: number;
  e2eP999Us: number;
  publishP99Us: number;
  /** Achieved / offered publish rate; undefined when unthrottled. */
  achievedRateRatio: number | undefined;
  /** Producer lateness p99 (µs); undefined when unthrottled (no schedule to be late for). */
  latenessP99Us?: number | undefined;
  /** The generator-bound verdict; undefined when the result has none (written before it existed). */
  generatorBound?: boolean | undefined;
  /** A fixed-rate run's held-its-rate verdict (report/rate-held.ts); undefined when not judged. */
  rateHeld?: { held: boolean; reasons: readonly string[] } | undefined;
  /**
   * The per-fault figures, when the run applied faults; `figures` undefined when it did but the
   * result cannot say (no fine timeline). Undefined: no fault ran.
   */
  faults?: { figures: readonly FaultFigures[] | undefined } | undefined;
}

export interface GateResult {
  name: string;
  /** `>=` or `<=` */
  op: ">=" | "<=";
  limit: number;
  actual: number | null;
  unit: string;
  passed: boolean;
  /** Human sentence, e.g. "lost 12 > 0 (by 12)". */
  detail: string;
}

interface GateDef {
  key: Exclude<keyof Slo, "generatorBound" | "rateHeld" | "unavailableSecondsMax" | "recoverySecondsMax">;
  name: string;
  op: ">=" | "<=";
  unit: string;
  actual: (g: GateInput) => number | undefined;
  /** Scale from the slo value to the actual's unit. */
  scale?: number;
}

const DEFS: GateDef[] = [
  { key: "deliveredRatioMin", name: "delivered ratio", op: ">=", unit: "", actual: (g) => (g.expected === 0 ? 1 : g.delivered / g.expected) },
  // Lost = acknowledged by the broker and never delivered (expected counts acknowledged publishes only).
  { key: "lostMax", name: "lost", op: "<=", unit: "messages", actual: (g) => g.lost },
  { key: "duplicatesMax", name: "duplicates", op: "<=", unit: "messages", actual: (g) => g.duplicates },
  { key: "outOfOrderMax", name: "out of order", op: "<=", unit: "messages", actual: (g) => g.outOfOrder },
  { key: "publishErrorsMax", name: "publish errors", op: "<=", unit: "messages", actual: (g) => g.publishErrors },
  { key: "e2eP50MaxMs", name: "e2e p50", op: "<=", unit: "ms", actual: (g) => g.e2eP50Us / 1000 },
  { key: "e2eP99MaxMs", name: "e2e p99", op: "<=", unit: "ms", actual: (g) => g.e2eP99Us / 1000 },
  { key: "e2eP999MaxMs", name: "e2e p99.9", op: "<=", unit: "ms", actual: (g) => g.e2eP999Us / 1000 },
  { key: "publishP99MaxMs", name: "publish p99", op: "<=", unit: "ms", actual: (g) => g.publishP99Us / 1000 },
  { key: "achievedRateRatioMin", name: "achieved/offered rate", op: ">=", unit: "", actual: (g) => g.achievedRateRatio },
  { key: "latenessP99MaxMs", name: "lateness p99", op: "<=", unit: "ms", actual: (g) => (g.latenessP99Us === undefined ? undefined : g.latenessP99Us / 1000) },
];

export function evaluateGates(slo: Slo, input: GateInput): GateResult[] {
  const out: GateResult[] = [];
  if (slo.generatorBound === false) {
    // A flag, not a figure: actual 1 = bound, 0 = not; the gate asks for 0.
    const bound = input.generatorBound;
    out.push({
      name: "generator bound",
      op: "<=",
      limit: 0,
      actual: bound === undefined ? null : bound ? 1 : 0,
      unit: "",
      passed: bound === false,
      detail:
        bound === undefined
          ? "generator bound: not measurable (the result has no verdict)"
          : bound
            ? "generator bound: yes, fails generatorBound: false (the generator, not the broker, was the limit; see the verdict's reasons)"
            : "generator bound: no",
    });
  }
  if (slo.rateHeld === true) {
    // A flag: actual 1 = held, 0 = not; the gate asks for 1.
    const v = input.rateHeld;
    out.push({
      name: "rate held",
      op: ">=",
      limit: 1,
      actual: v === undefined ? null : v.held ? 1 : 0,
      unit: "",
      passed: v?.held === true,
      detail: v === undefined ? "rate held: not measurable (needs a fixed-rate run)" : v.held ? "rate held: yes" : `rate held: no (${v.reasons.join("; ")})`,
    });
  }
  out.push(...faultGates(slo, input));
  for (const d of DEFS) {
    const limit = slo[d.key];
    if (limit === undefined) continue;
    const actual = d.actual(input);
    if (actual === undefined) {
      out.push({ name: d.name, op: d.op, limit, actual: null, unit: d.unit, passed: false, detail: `${d.name}: not measurable in this run (needs a fixed rate)` });
      continue;
    }
    const passed = d.op === ">=" ? actual >= limit : actual <= limit;
    const by = Math.abs(actual - limit);
    const fmt = (v: number) => (d.unit === "" ? `${(v * 100).toFixed(3)}%` : `${round(v)}${d.unit === "ms" ? " ms" : ""}`);
    const detail = passed
      ? `${d.name} ${fmt(actual)} ${d.op} ${fmt(limit)}`
      : `${d.name} ${fmt(actual)} fails ${d.op} ${fmt(limit)} (off by ${fmt(by)})`;
    out.push({ name: d.name, op: d.op, limit, actual: round(actual), unit: d.unit, passed, detail });
  }
  return out;
}

/** unavailableSecondsMax and recoverySecondsMax: the worst fault of the run against the limit. */
function faultGates(slo: Slo, input: GateInput): GateResult[] {
  const out: GateResult[] = [];
  const figures = input.faults?.figures;
  const missing = input.faults === undefined ? "no fault ran in this run" : "the result has no fine timeline to measure faults from";
  const at = (f: FaultFigures) => `${f.kind} #${f.occurrence + 1} of fault ${f.spec} at ${round(f.startSec)} s`;
  const limitU = slo.unavailableSecondsMax;
  if (limitU !== undefined) {
    const name = "unavailable";
    if (!figures || figures.length === 0) out.push({ name, op: "<=", limit: limitU, actual: null, unit: "s", passed: false, detail: `${name}: not measurable (${missing})` });
    else {
      const worst = figures.reduce((a, f) => (f.unavailableSeconds > a.unavailableSeconds ? f : a));
      const actual = worst.unavailableSeconds;
      const passed = actual <= limitU;
      out.push({
        name,
        op: "<=",
        limit: limitU,
        actual,
        unit: "s",
        passed,
        detail: passed ? `${name} ${actual} s <= ${limitU} s (worst: ${at(worst)})` : `${name} ${actual} s fails <= ${limitU} s (off by ${round(actual - limitU)} s; ${at(worst)}${worst.unavailableUntilRunEnd ? ", until the run ended" : ""})`,
      });
    }
  }
  const limitR = slo.recoverySecondsMax;
  if (limitR !== undefined) {
    const name = "recovery";
    if (!figures || figures.length === 0) out.push({ name, op: "<=", limit: limitR, actual: null, unit: "s", passed: false, detail: `${name}: not measurable (${missing})` });
    else {
      const { seconds, fault } = worstRecovery(figures);
      if (seconds === null) {
        out.push({ name, op: "<=", limit: limitR, actual: null, unit: "s", passed: false, detail: `${name}: ${fault ? at(fault) : "a fault"} did not recover (${fault?.notRecovered ?? "unknown"}), fails <= ${limitR} s` });
      } else {
        const passed = seconds <= limitR;
        out.push({
          name,
          op: "<=",
          limit: limitR,
          actual: seconds,
          unit: "s",
          passed,
          detail: passed ? `${name} ${seconds} s <= ${limitR} s${fault ? ` (worst: ${at(fault)})` : ""}` : `${name} ${seconds} s fails <= ${limitR} s (off by ${round(seconds - limitR)} s; ${fault ? at(fault) : ""})`,
        });
      }
    }
  }
  return out;
}

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

export function allPassed(gates: readonly GateResult[]): boolean {
  return gates.every((g) => g.passed);
}
