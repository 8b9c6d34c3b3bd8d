/**
 * The fault table of report.md (and its lines for the durability disclosure): one row per
 * applied fault with its figures (docs/faults.md, "Reading the figures").
 */
import type { FaultFigures, WindowLatency } from "../faults/index.js";
import { fmtUs } from "../run/index.js";
import type { RunResult } from "./result.js";

export const FAULT_TABLE_HEAD = ["fault", "at", "duration", "detail", "unavailable", "first delivery after", "recovery", "e2e p99 in fault", "e2e p99 in recovery", "e2e p99 outside"];
const HEADER = `| ${FAULT_TABLE_HEAD.join(" | ")} |\n|---|---:|---:|---|---:|---:|---:|---:|---:|---:|`;

const secs = (v: number | null) => (v === null ? "n/a" : `${v.toFixed(v < 10 ? 2 : 1)} s`);

/** "12.3 ms / 1.1 ms" (corrected / uncorrected), or "none" when no interval was filed there. */
export function p99Cell(w: WindowLatency): string {
  if (w.corrected.count === 0) return "none";
  return `${fmtUs(w.corrected.p99Us)} / ${w.uncorrected ? fmtUs(w.uncorrected.p99Us) : "n/a"}`;
}

const NOT_RECOVERED: Record<NonNullable<FaultFigures["notRecovered"]>, string> = {
  "fault-not-lifted": "not lifted",
  "next-fault": "not before the next fault",
  "run-ended": "not before the measure phase ended",
  "no-pre-fault-rate": "n/a (no pre-fault second)",
};

/** The cells of one fault's row (plain text; the caller escapes for its format). */
export function faultCells(f: FaultFigures, outside: WindowLatency): string[] {
  const duration = f.endSec === null ? "until the end" : f.endSec === f.startSec ? "instant" : secs(Math.round((f.endSec - f.startSec) * 1000) / 1000);
  const unavailable = `${secs(f.unavailableSeconds)}${f.unavailableUntilRunEnd ? " (until the end)" : ""}`;
  const recovery = f.recoverySeconds === null ? NOT_RECOVERED[f.notRecovered ?? "run-ended"] : secs(f.recoverySeconds);
  return [`${f.kind} #${f.occurrence + 1}`, `${f.startSec.toFixed(1)} s`, duration, f.detail, unavailable, secs(f.firstDeliveryAfterSeconds), recovery, p99Cell(f.latency.inFault), p99Cell(f.latency.recovery), p99Cell(outside)];
}

export function faultRow(f: FaultFigures, outside: WindowLatency): string {
  return `| ${faultCells(f, outside).map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`;
}

/** The "Faults" section, or [] when the run had none. */
export function faultSection(r: RunResult): string[] {
  const events = r.faults ?? [];
  if (events.length === 0) return [];
  const lines = ["## Faults", ""];
  const failed = events.filter((e) => e.error !== undefined);
  for (const e of failed) lines.push(`> **Fault not applied:** ${e.kind} (fault ${e.spec}) at ${e.startSec.toFixed(1)} s: ${e.error}`, "");
  const a = r.faultFigures;
  if (!a) {
    lines.push("This result has no fine timeline (it was written before it existed), so its faults have no figures.", "");
    return lines;
  }
  lines.push(
    `Times are seconds since the run started. Unavailable: the longest span overlapping the fault with no publish acknowledged and no delivery (resolution ${a.resolutionSeconds} s; before the first fault the longest such span was ${secs(a.preFaultLongestGapSeconds)}, the noise floor). ` +
      `Recovery: until a 1 s window delivered ${Math.round(a.recoveryThreshold * 100)}% of the pre-fault rate (${a.preFaultDeliveryRate === null ? "n/a" : `${a.preFaultDeliveryRate} deliveries/s`}, the median over ${a.preFaultSeconds} s of measure before the first fault). ` +
      `e2e p99 is corrected / uncorrected, from the ${a.latencyResolutionSeconds} s interval histograms filed by delivery time (docs/faults.md, "Reading the figures").`,
    "",
    HEADER,
    ...a.faults.map((f) => faultRow(f, a.outside)),
    "",
  );
  const c = r.counts;
  lines.push(`Over the whole run (loss is not attributed to a fault): lost ${c.lost} (acknowledged, never delivered), duplicates ${c.duplicates}, redelivered ${c.redelivered}, publish errors ${c.publishErrors}.`, "");
  return lines;
}

/** The durability disclosure: what the run's settings promise, beside the losses. */
export function durabilityLines(r: RunResult): string[] {
  const d = r.durability;
  if (!d) return [];
  return [
    "Durability under test (what this driver and these broker settings promise):",
    "",
    `- publish ack: ${d.publishAck}`,
    `- storage: ${d.storage}`,
    `- flush: ${d.flush}`,
    `- delivery acks: ${d.ackPolicy}`,
    `- replicas: ${d.replicas}`,
    `- ordering: ${d.ordering}`,
    ...(d.notes ?? []).map((n) => `- note: ${n}`),
    "",
  ];
}
