/**
 * The broker's own account of its storage against the scenario's `broker:` block. With
 * --target, the scenario's block only says what was asked for; the run is labelled with what
 * the broker reports, and every difference is a warning recorded in the result. No gate reads
 * storage or fsync, so a difference never fails a run (exit 2 would be for a gate that did).
 */
import type { BrokerSelfReport, BrokerSettings } from "./driver.js";

/** The storage and fsync a run is labelled with: the broker's word where it gives one. */
export function effectiveStorage(asked: BrokerSettings, reported: BrokerSelfReport | undefined): { storage: "memory" | "durable"; fsync: boolean } {
  const storage = reported?.storage ?? asked.storage;
  // Memory storage has nothing to flush, whatever the scenario said.
  const fsync = storage === "memory" ? false : (reported?.fsync ?? asked.fsync);
  return { storage, fsync };
}

/** One line per field where the broker's report differs from the scenario, or cannot be checked. */
export function selfReportWarnings(target: string, asked: BrokerSettings, reported: BrokerSelfReport | undefined): string[] {
  if (!reported) return [];
  const out: string[] = [];
  const from = `the broker at ${target} reports (${reported.source})`;
  if (reported.storage !== undefined && reported.storage !== asked.storage) {
    out.push(`broker.storage: the scenario asks for ${asked.storage}, ${from} ${reported.storage}; the report is labelled ${reported.storage}`);
  }
  const storage = reported.storage ?? asked.storage;
  if (storage === "durable" && asked.fsync && reported.fsync === undefined) {
    out.push(`broker.fsync: the scenario asks for fsync; the broker at ${target} does not report whether it flushes before acking (${reported.source}), so the fsync label is the scenario's`);
  } else if (reported.fsync !== undefined && storage === "durable" && reported.fsync !== asked.fsync) {
    out.push(`broker.fsync: the scenario asks for ${asked.fsync}, ${from} ${reported.fsync}; the report is labelled fsync=${reported.fsync}`);
  } else if (storage === "memory" && asked.fsync) {
    out.push(`broker.fsync: the scenario asks for fsync, but ${from} memory storage (nothing to flush); the report is labelled fsync=false`);
  }
  if (asked.memoryBudgetBytes !== undefined && reported.memoryBudgetBytes !== undefined && reported.memoryBudgetBytes !== asked.memoryBudgetBytes) {
    out.push(`broker.memoryBudgetBytes: the scenario asks for ${asked.memoryBudgetBytes}, ${from} ${reported.memoryBudgetBytes}`);
  }
  return out;
}
