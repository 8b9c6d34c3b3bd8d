/** report.md: the seed-shaped summary table, latency percentiles, gates, counts, environment. */
import type { RunResult } from "./result.js";
import { fmtBytes, fmtCount, fmtUs, totalSubscriptions, type GeneratorSettings, type LatencySummary } from "../run/index.js";
import { durabilityLines, faultSection } from "./fault-table.js";
import { gateValue, headline, parameterRows, partialNotice } from "./summary.js";
import { perSecond, workloadMarkdown } from "./workloads.js";
import { costText } from "./cost.js";

export const SEED_HEADER = "| configuration | messages | topics | subscribers | throughput | deliveries | broker memory |\n|---|---:|---:|---:|---:|---:|---:|";

export function configurationLabel(r: RunResult): string {
  const b = r.broker;
  const storage = b.storage === "durable" ? `durable${b.fsync ? "+fsync" : ""}` : "memory";
  return `${r.run.scenario} (${r.run.driver}, ${storage}${b.tls === "on" ? ", tls: on" : ""}${r.run.shardsMerged > 1 ? `, ${r.run.shardsMerged} shards` : ""}${r.run.partial ? `, PARTIAL ${r.run.shardsMerged}/${r.run.shard.count}` : ""})`;
}

export function seedRow(r: RunResult): string {
  const c = r.counts;
  const pct = c.expected === 0 ? 100 : (c.delivered / c.expected) * 100;
  const subscribers = r.run.shard.count > 1 && r.run.shardsMerged === 1 ? c.subscriptions : totalSubscriptions(r.scenario);
  return (
    `| ${configurationLabel(r)} | ${fmtCount(c.measuredPublished)} | ${r.run.shard.count > 1 && r.run.shardsMerged === 1 ? c.topics : r.scenario.topics} | ${fmtCount(subscribers)}` +
    ` | ${fmtCount(r.throughput.publishRate)} msg/s in, ${fmtCount(r.throughput.deliveryRate)} msg/s out` +
    ` | ${fmtCount(c.delivered)} / ${fmtCount(c.expected)} (${pct.toFixed(pct === 100 ? 0 : 3)}%)` +
    ` | ${r.broker.peakRssBytes === null ? "n/a" : `${fmtBytes(r.broker.peakRssBytes)} peak RSS`} |`
  );
}

const LAT_HEADER = "| metric | count | p50 | p90 | p99 | p99.9 | p99.99 | max | mean |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|";

function latRow(name: string, s: LatencySummary): string {
  return `| ${name} | ${fmtCount(s.count)} | ${fmtUs(s.p50Us)} | ${fmtUs(s.p90Us)} | ${fmtUs(s.p99Us)} | ${fmtUs(s.p999Us)} | ${fmtUs(s.p9999Us)} | ${fmtUs(s.maxUs)} | ${fmtUs(s.meanUs)} |`;
}

function peak(values: (number | undefined)[]): number {
  return values.reduce<number>((a, v) => (v !== undefined && v > a ? v : a), 0);
}

/** The generator's own settings as the Generator line gives them. */
function settingsText(s: GeneratorSettings): string {
  return `heap growth ${s.heapGrowingPercent === null ? "V8's own" : `${s.heapGrowingPercent}%`}, reads ${fmtBytes(s.turnReadBytes)} a loop turn`;
}

export function renderMarkdown(r: RunResult): string {
  const c = r.counts;
  const e = r.environment;
  const s = r.scenario;
  const lines: string[] = [];
  if (r.run.interrupted) lines.push("**INTERRUPTED**: this run was stopped before it finished; its figures cover only part of it and its gates are not judged as passed.", "");
  lines.push(`# ${r.run.scenario}: ${r.run.interrupted ? "INTERRUPTED" : r.passed ? "PASS" : "FAIL"}${r.run.partial ? " (PARTIAL)" : ""}`, "");
  const notice = partialNotice(r);
  if (notice) lines.push(`**${notice}**`, "");
  for (const w of r.warnings ?? []) lines.push(`> **Warning:** ${w}`, "");
  lines.push(`**Headline:** ${headline(r)}`, "");
  // Right under the headline it qualifies.
  const bound = generatorBoundBanner(r);
  if (bound) lines.push(`> **${bound}**`, "");
  if (r.generator) {
    const g = r.generator;
    lines.push(
      `**Generator:** ${g.mode === "workers" ? `${g.workers} worker threads` : "one process (one event loop)"}; ` +
        g.perWorker.map((w) => `${w.shard !== undefined ? `shard ${w.shard} ` : ""}worker ${w.index} ${w.role}: loop busy ${Math.round(w.loopUtilization * 100)}%, ${w.cpuShare.toFixed(2)} of a core, loop delay p99 ${w.loopDelayP99Ms} ms`).join("; ") +
        `; generator-bound: ${r.generatorBound?.bound ? "yes" : "no"}` +
        (g.settings ? `; settings: ${settingsText(g.settings)}` : ""),
      "",
    );
  }
  const held = rateHeldLine(r);
  if (held) lines.push(`**Rate held:** ${held}`, "");
  lines.push(`**Broker cost:** ${costLine(r)}`, "");
  if (s.description) lines.push(s.description.trim(), "");
  lines.push("## Parameters", "", "| parameter | value |", "|---|---|", ...parameterRows(r).map(([k, v]) => `| ${k} | ${v} |`), "");
  lines.push(
    `Run \`${r.run.id}\` started ${r.run.startedAt}, driver \`${r.run.driver}\`, broker ${r.broker.embedded ? "embedded" : "external"} at ${r.broker.target}` +
      `${r.run.shard.count > 1 && r.run.shardsMerged === 1 ? `, shard ${r.run.shard.index}/${r.run.shard.count}` : ""}${r.run.shardsMerged > 1 ? `, ${r.run.shardsMerged} of ${r.run.shard.count} shards merged` : ""}.`,
    "",
  );
  lines.push(
    "In the table below *messages* and *throughput* are the measure phase only; *deliveries* count warmup and measure messages (every message is accounted, only measured ones are timed).",
    "",
  );
  lines.push(SEED_HEADER, seedRow(r), "");
  lines.push(...workloadMarkdown(r));
  lines.push("## Latency", "", "End-to-end latency is measured from each message's *intended* send time (coordinated-omission corrected); the uncorrected figure is from the actual send time. Publish latency is the broker's acknowledgement time for a batch from when it was sent; lateness is how far behind schedule messages left.", "");
  lines.push(LAT_HEADER);
  lines.push(latRow("e2e (corrected)", r.latency.e2e), latRow("e2e (uncorrected)", r.latency.e2eUncorrected), latRow("publish", r.latency.publish), latRow("lateness", r.latency.lateness), "");
  lines.push("## Gates", "");
  if (r.gates.length === 0) lines.push("No `slo:` gates in this scenario.", "");
  else {
    lines.push("| gate | limit | actual | result |", "|---|---:|---:|---|");
    for (const g of r.gates) lines.push(`| ${g.name} | ${g.op} ${gateValue(g, g.limit)} | ${gateValue(g, g.actual)} | ${g.passed ? "pass" : `**FAIL**: ${g.detail}`} |`);
    lines.push("");
  }
  lines.push(...faultSection(r));
  lines.push("## Delivery accounting", "");
  lines.push("Published is split by phase; expected, delivered and lost cover warmup and measure together.", "");
  lines.push("| published in warmup | published in measure | publish errors | expected deliveries | delivered | lost | duplicates | out of order | redelivered | foreign | stream errors | complete subscriptions |");
  lines.push("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  lines.push(`| ${c.published - c.measuredPublished} | ${c.measuredPublished} | ${c.publishErrors} | ${c.expected} | ${c.delivered} | ${c.lost} | ${c.duplicates} | ${c.outOfOrder} | ${c.redelivered} | ${c.foreign} | ${c.streamErrors} | ${c.completeSubscriptions}/${c.subscriptions} |`, "");
  const faultLine = faultCountsLine(c);
  if (faultLine) lines.push(faultLine, "");
  if (r.run.drainTimedOut) lines.push(`Drain timed out after ${s.drainTimeoutSeconds} s with deliveries missing.`, "");
  lines.push(...durabilityLines(r));
  if (r.errors.streams.length || r.errors.publishes.length) {
    lines.push("Errors (first few):", "");
    for (const x of r.errors.streams) lines.push(`- stream ${x.subscription}: ${x.message}`);
    for (const x of r.errors.publishes) lines.push(`- publish ${x}`);
    lines.push("");
  }
  lines.push("## Phases", "", "| phase | start | end |", "|---|---:|---:|");
  for (const p of r.run.phases) lines.push(`| ${p.phase} | ${p.startSec.toFixed(1)} s | ${p.endSec.toFixed(1)} s |`);
  lines.push("", "## Environment", "");
  lines.push(
    `- CPU: ${e.cpuModel}, ${e.cpuCores} cores; memory ${fmtBytes(e.memoryBytes)}`,
    `- OS: ${e.os} (kernel ${e.kernel}, ${e.arch}); Node ${e.node}`,
    `- Packages: ${Object.entries(e.packages).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `- Git commit: ${e.gitCommit}${e.gitDirty ? " (with uncommitted changes)" : ""}`,
    `- Generator: peak CPU ${peak(r.series.map((p) => p.generatorCpuPercent))}% of a core, worst event-loop delay ${peak(r.series.map((p) => p.generatorLoopDelayMaxMs))} ms, peak RSS ${fmtBytes(peak(r.series.map((p) => p.generatorRssBytes)))}`,
    `- Broker: ${r.broker.embedded ? "embedded, " : ""}storage ${r.broker.storage}${r.broker.fsync ? " + fsync" : ""}; tls: ${r.broker.tls ?? "off"}; resources from ${r.broker.resourceSource ?? "n/a"}; args \`${r.broker.args.join(" ")}\`; CPU ${r.broker.cpuSeconds ?? "n/a"} s over the run (first to last broker sample)`,
    "",
    "Files: `result.json` (all figures, encoded histograms), `e2e.hgrm`, `e2e-uncorrected.hgrm`, `publish.hgrm`, `lateness.hgrm` (percentile distributions, ms), `e2e.hlog` (per-second interval histograms), `report.html` (charts).",
    "",
  );
  return lines.join("\n");
}

/** The broker cost per message with the window and counts it came from. */
function costLine(r: RunResult): string {
  const c = r.broker.cost;
  if (!c) return "n/a (no broker CPU samples around the measure window)";
  return (
    `${costText(c)} (broker CPU ${c.cpuSeconds.toFixed(3)} s from ${c.fromSec.toFixed(1)} s to ${c.toSec.toFixed(1)} s, measure start to drain end; ` +
    `${fmtCount(c.deliveries)} deliveries, ${fmtCount(c.published)} published${c.clipped ? "; the samples covered only part of the window" : ""})`
  );
}

/** The generator-bound banner (report.md and report.html), or undefined when the run was not. */
export function generatorBoundBanner(r: RunResult): string | undefined {
  if (!r.generatorBound?.bound) return undefined;
  return `GENERATOR-BOUND: these figures may measure the load generator, not the broker (${r.generatorBound.reasons.join("; ")})`;
}

/**
 * The counts of a run that rode through faults, in one line (absent when all are zero): `lost`
 * above counts acknowledged messages only (docs/faults.md, "Drivers under faults").
 */
export function faultCountsLine(c: RunResult["counts"]): string | undefined {
  const v = [c.unackedDelivered ?? 0, c.unackedUndelivered ?? 0, c.publishRetries ?? 0, c.streamBreaks ?? 0, c.reconnects ?? 0];
  if (v.every((n) => n === 0)) return undefined;
  return `Under faults: never acknowledged but delivered ${v[0]}, never acknowledged and not delivered ${v[1]} (not a loss); publish retries ${v[2]}, consumer streams broken ${v[3]}, reconnects ${v[4]}.`;
}

/** A fixed-rate run's held-its-rate verdict in one line (undefined for other runs). */
export function rateHeldLine(r: RunResult): string | undefined {
  const h = r.rateHeld;
  if (!h) return undefined;
  const f = h.figures;
  const slope = (v: number | null | undefined) => (v === null || v === undefined ? "n/a" : perSecond(v));
  const grew = `lag grew ${slope(f.lagSlopeUsPerSec)}, e2e p99 ${slope(f.p99SlopeUsPerSec)}, backlog ${f.backlogSlope === null ? "n/a" : `${fmtCount(f.backlogSlope)} deliveries/s`}`;
  const verdict = h.held ? "yes, by the rate: max step conditions" : `**no**: ${h.reasons.join("; ")}`;
  return `${verdict} (${grew}${h.notJudged.length ? `; not judged: ${h.notJudged.join("; ")}` : ""}).`;
}
