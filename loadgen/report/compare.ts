/**
 * `report compare`: runs side by side. The seed-shaped table for every run, then latency and
 * throughput with the change relative to the first run (the baseline).
 */
import { fmtCount, fmtUs } from "../run/index.js";
import { SEED_HEADER, seedRow, configurationLabel } from "./md.js";
import type { RunResult } from "./result.js";

function delta(base: number, v: number, lowerIsBetter: boolean): string {
  if (base === 0) return "";
  const pct = ((v - base) / base) * 100;
  if (Math.abs(pct) < 0.05) return " (±0%)";
  const better = lowerIsBetter ? pct < 0 : pct > 0;
  return ` (${pct > 0 ? "+" : ""}${pct.toFixed(1)}%${better ? ", better" : ", worse"})`;
}

export function compareMarkdown(results: readonly RunResult[]): string {
  const base = results[0];
  if (!base) return "";
  const lines = ["# Comparison", "", SEED_HEADER, ...results.map(seedRow), ""];
  lines.push(
    "| run | publish msg/s | delivery msg/s | e2e p50 | e2e p99 | e2e p99.9 | e2e max | publish p99 | lost | duplicates | gates |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  );
  for (const [i, r] of results.entries()) {
    const d = (a: number, b: number, low: boolean) => (i === 0 ? "" : delta(a, b, low));
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
        ` | ${r.counts.lost} | ${r.counts.duplicates} | ${r.passed ? "pass" : `FAIL (${r.gates.filter((g) => !g.passed).map((g) => g.name).join(", ")})`} |`,
    );
  }
  const envs = new Set(results.map((r) => `${r.environment.cpuModel} ×${r.environment.cpuCores}, Node ${r.environment.node}`));
  lines.push("", envs.size === 1 ? `All runs on ${[...envs][0]}.` : `Runs come from different machines: ${[...envs].join("; ")}. Compare with care.`, "");
  return lines.join("\n");
}
