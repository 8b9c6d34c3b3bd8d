/**
 * SLO gates: each `slo:` field of the scenario becomes one gate judged against the result.
 * A failed gate says which and by how much; exit code 1 when any gate fails.
 */
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
  /** The generator-bound verdict; undefined when the result has none (written before it existed). */
  generatorBound?: boolean | undefined;
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
  key: Exclude<keyof Slo, "generatorBound">;
  name: string;
  op: ">=" | "<=";
  unit: string;
  actual: (g: GateInput) => number | undefined;
  /** Scale from the slo value to the actual's unit. */
  scale?: number;
}

const DEFS: GateDef[] = [
  { key: "deliveredRatioMin", name: "delivered ratio", op: ">=", unit: "", actual: (g) => (g.expected === 0 ? 1 : g.delivered / g.expected) },
  { key: "lostMax", name: "lost", op: "<=", unit: "messages", actual: (g) => g.lost },
  { key: "duplicatesMax", name: "duplicates", op: "<=", unit: "messages", actual: (g) => g.duplicates },
  { key: "outOfOrderMax", name: "out of order", op: "<=", unit: "messages", actual: (g) => g.outOfOrder },
  { key: "publishErrorsMax", name: "publish errors", op: "<=", unit: "messages", actual: (g) => g.publishErrors },
  { key: "e2eP50MaxMs", name: "e2e p50", op: "<=", unit: "ms", actual: (g) => g.e2eP50Us / 1000 },
  { key: "e2eP99MaxMs", name: "e2e p99", op: "<=", unit: "ms", actual: (g) => g.e2eP99Us / 1000 },
  { key: "e2eP999MaxMs", name: "e2e p99.9", op: "<=", unit: "ms", actual: (g) => g.e2eP999Us / 1000 },
  { key: "publishP99MaxMs", name: "publish p99", op: "<=", unit: "ms", actual: (g) => g.publishP99Us / 1000 },
  { key: "achievedRateRatioMin", name: "achieved/offered rate", op: ">=", unit: "", actual: (g) => g.achievedRateRatio },
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

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

export function allPassed(gates: readonly GateResult[]): boolean {
  return gates.every((g) => g.passed);
}
