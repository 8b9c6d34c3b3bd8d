/**
 * `report compare`: runs side by side. The seed-shaped table for every run, then latency and
 * throughput with the change relative to the first run (the baseline). A change within the
 * noise threshold (±5% unless told) is called noise, not better or worse; runs of different
 * scenario parameters are flagged, since their figures are not like for like.
 */
import { fmtCount, fmtUs } from "../run/index.js";
import { SEED_HEADER, seedRow, configurationLabel } from "./md.js";
import { costOf } from "./cost.js";
import type { RunResult } from "./result.js";

export const DEFAULT_NOISE_PERCENT = 5;

export interface CompareOptions {
  /** Changes within ±this many percent of the baseline are noise (default 5). */
  noisePercent?: number;
}

export function delta(base: number, v: number, lowerIsBetter: boolean, noisePercent = DEFAULT_NOISE_PERCENT): string {
  if (base === 0) return "";
  const pct = ((v - base) / base) * 100;
  const shown = `${pct > 0 ? "+" : ""}${pct.toFixed(1)}%`;
  if (Math.abs(pct) <= noisePercent) return ` (${shown}, within noise)`;
  const better = lowerIsBetter ? pct < 0 : pct > 0;
  return ` (${shown}${better ? ", better" : ", worse"})`;
}

/** Scenario parameters that make figures comparable; a difference in any is reported. */
const PARAMS = ["topics", "producers", "consumersPerSubscription", "messageSizeBytes", "batchSize", "rate", "messages", "durationSeconds", "warmupSeconds", "connections", "maxInFlightBatches", "pacing", "payload"] as const;

/** The scenario parameters in which each run differs from the baseline, as sentences. */
export function scenarioDifferences(results: readonly RunResult[]): string[] {
  const base = results[0];
  if (!base) return [];
  const show = (v: unknown) => (v === undefined ? "unset" : JSON.stringify(v));
  const out: string[] = [];
  for (const r of results.slice(1)) {
    const diffs: string[] = [];
    if (r.run.scenario !== base.run.scenario) diffs.push(`scenario ${base.run.scenario} → ${r.run.scenario}`);
    for (const k of PARAMS) {
      if (JSON.stringify(r.scenario[k]) !== JSON.stringify(base.scenario[k])) diffs.push(`${k} ${show(base.scenario[k])} → ${show(r.scenario[k])}`);
    }
    if (JSON.stringify(r.scenario.subscriptions) !== JSON.stringify(base.scenario.subscriptions)) diffs.push(`subscriptions ${show(base.scenario.subscriptions)} → ${show(r.scenario.subscriptions)}`);
    if (r.broker.storage !== base.broker.storage || r.broker.fsync !== base.broker.fsync) diffs.push(`storage ${base.broker.storage}${base.broker.fsync ? "+fsync" : ""} → ${r.broker.storage}${r.broker.fsync ? "+fsync" : ""}`);
    if (r.run.shard.count !== base.run.shard.count || r.run.shardsMerged !== base.run.shardsMerged || Boolean(r.run.partial) !== Boolean(base.run.partial)) {
      diffs.push(`shards ${base.run.shardsMerged}/${base.run.shard.count}${base.run.partial ? " (partial)" : ""} → ${r.run.shardsMerged}/${r.run.shard.count}${r.run.partial ? " (partial)" : ""}`);
    }
    if (diffs.length) out.push(`\`${r.run.id}\` differs from the baseline \`${base.run.id}\`: ${diffs.join("; ")}.`);
  }
  return out;
}

export function compareMarkdown(results: readonly RunResult[], options: CompareOptions = {}): string {
  const base = results[0];
  if (!base) return "";
  const noise = options.noisePercent ?? DEFAULT_NOISE_PERCENT;
  const lines = ["# Comparison", ""];
  const differences = scenarioDifferences(results);
  if (differences.length) {
    lines.push("**Warning: the scenarios differ, so these runs are not like for like.**", "", ...differences.map((d) => `- ${d}`), "");
  }
  const partial = results.filter((r) => r.run.partial);
  if (partial.length) lines.push(`**Warning: partial merges (shards missing): ${partial.map((r) => `\`${r.run.id}\``).join(", ")}.**`, "");
  lines.push(SEED_HEADER, ...results.map(seedRow), "");
  lines.push(
    "| run | publish msg/s | delivery msg/s | e2e p50 | e2e p99 | e2e p99.9 | e2e max | publish p99 | broker CPU-µs per delivery | lost | duplicates | gates |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  );
  const baseCost = costOf(base)?.cpuUsPerDelivery ?? null;
  for (const [i, r] of results.entries()) {
    const d = (a: number, b: number, low: boolean) => (i === 0 ? "" : delta(a, b, low, noise));
    const cost = costOf(r)?.cpuUsPerDelivery ?? null;
    const l = r.latency;
    const bl = base.latency;
    lines.push(
      `| ${i === 0 ? "**baseline** " : ""}${configurationLabel(r)} \`${r.run.id}\`` +
        ` | ${fmtCount(r.throughput.publishRate)}${d(base.throughput.publishRate, r.throughput.publishRate, false)}` +
        ` | ${fmtCount(r.throughput.deliveryRate)}${d(base.throughput.deliveryRate, r.throughput.deliveryRate, false)}` +
        ` | ${fmtUs(l.e2e.p50Us)}${d(bl.e2e.p50Us, l.e2e.p50Us, true)}` +
        ` | ${fmtUs(l.e2e.p99Us)}${d(bl.e2e.p99Us, l.e2e.p99Us, true)}` +
        ` | ${fmtUs(l.e2e.p999Us)}${d(bl.e2e.p999Us, l.e2e.p999Us, true)}` +
        ` | ${fmtUs(l.e2e.maxUs)}` +
        ` | ${fmtUs(l.publish.p99Us)}${d(bl.publish.p99Us, l.publish.p99Us, true)}` +
        ` | ${cost === null ? "n/a" : `${cost.toFixed(2)}${baseCost === null ? "" : d(baseCost, cost, true)}`}` +
        ` | ${r.counts.lost} | ${r.counts.duplicates} | ${r.passed ? "pass" : `FAIL (${r.gates.filter((g) => !g.passed).map((g) => g.name).join(", ")})`} |`,
    );
  }
  const envs = new Set(results.map((r) => `${r.environment.cpuModel} ×${r.environment.cpuCores}, Node ${r.environment.node}`));
  lines.push("", `Changes within ±${noise}% of the baseline are called noise (\`--noise\` sets the threshold).`);
  lines.push("", envs.size === 1 ? `All runs on ${[...envs][0]}.` : `Runs come from different machines: ${[...envs].join("; ")}. Compare with care.`, "");
  return lines.join("\n");
}
