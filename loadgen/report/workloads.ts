/**
 * The report sections of the OMB-style workloads: the `rate: max` search (every step, and the
 * curve of latency against offered rate), a backlog's build and drain, and what a producer-only
 * or consumer-only run's counts mean. report.md and report.html both take them from here.
 */
import { fmtBytes, fmtCount, fmtUs, type RateSearchStep } from "../run/index.js";
import type { RunResult } from "./result.js";

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const opt = (v: number | null, f: (x: number) => string) => (v === null ? "n/a" : f(v));

/** What a reader must know before the figures of an only: run (undefined for other runs). */
export function onlyNotice(r: RunResult): string | undefined {
  if (r.only === "producers") {
    return "Producer-only run: nothing was consumed, so there is no delivery accounting and no end-to-end latency (expected, delivered and lost are 0 by construction). Its subscriptions were created and left in place (with their topics) for a consumer-only run.";
  }
  if (r.only === "consumers") {
    return "Consumer-only run: nothing was published. Expected is what a producer-only run of this scenario and run id publishes when every publish is accepted (subtract that run's publish errors from lost). e2e latency is each message's age at delivery (intended send time in the producer run to receipt here; meaningful on one host only), and deliveries/s is the consume rate over the backlog.";
  }
  return undefined;
}

function stepRow(x: RateSearchStep): string[] {
  return [
    String(x.index + 1),
    x.kind,
    fmtCount(x.offeredRate),
    fmtCount(x.achievedRate),
    fmtCount(x.deliveryRate),
    fmtUs(x.p50Us),
    fmtUs(x.p99Us),
    `${opt(x.p99FirstHalfUs, fmtUs)} → ${opt(x.p99SecondHalfUs, fmtUs)}`,
    x.backlogSlope === null ? "n/a" : `${fmtCount(x.backlogSlope)}/s`,
    x.lagSlopeUsPerSec === undefined || x.lagSlopeUsPerSec === null ? "n/a" : `${fmtUs(x.lagSlopeUsPerSec)}/s`,
    x.sustainable ? "holds" : `fails: ${x.reasons.join("; ")}`,
  ];
}

const STEP_HEAD = ["step", "kind", "offered msg/s", "achieved msg/s", "deliveries/s", "e2e p50", "e2e p99", "p99 1st → 2nd half", "backlog growth", "lag growth", "verdict"];

/** Steps by offered rate (the curve of latency against offered rate), one per rate: the last step tried at it. */
export function latencyCurve(steps: readonly RateSearchStep[]): RateSearchStep[] {
  const byRate = new Map<number, RateSearchStep>();
  for (const x of steps) byRate.set(x.offeredRate, x);
  return [...byRate.values()].sort((a, b) => a.offeredRate - b.offeredRate);
}

function searchSummary(r: RunResult): string {
  const rs = r.rateSearch!;
  const s = rs.settings;
  const found = rs.foundRate === null ? "no rate held" : `**${fmtCount(rs.foundRate)} msg/s**`;
  const confirm = rs.confirmed === null ? "not confirmed (no confirmation step)" : rs.confirmed ? "confirmed by a fixed-rate step at that rate" : "**not** confirmed: the fixed-rate step at that rate failed (see the last step)";
  // Results written before queueGrowthMax judged the backlog with the rate tolerance and had no lag condition.
  const queues =
    s.queueGrowthMax === undefined
      ? `the backlog grows by at most ${pct(s.tolerance)} of the offered deliveries/s`
      : `the backlog grows by at most ${pct(s.queueGrowthMax)} of the offered deliveries/s and the producers' lag (lateness p99) by at most ${fmtUs(s.queueGrowthMax * 1e6)} per second`;
  const confirmLength = rs.confirmed === null ? "" : ` (the confirmation ${rs.confirmSeconds ?? s.stepSeconds} s)`;
  return (
    `Highest sustainable rate: ${found}, ${confirm}. ${rs.steps.length} steps of ${s.stepSeconds} s${confirmLength} (warmup ${s.warmupSeconds} s) in ${rs.totalSeconds.toFixed(0)} s; stopped because ${rs.stoppedBecause}. ` +
    `A step holds when published and delivered rates are at least ${pct(1 - s.tolerance)} of offered, ${queues}, ` +
    `p99 of its second half is at most ${s.latencyGrowthMax}× its first half's (or under ${s.latencyFloorMs} ms)${s.p99MaxMs !== undefined ? `, p99 at most ${s.p99MaxMs} ms` : ""}, and its drain completes with nothing lost or refused. ` +
    "The rest of this report is the figures of the confirmation step (else the found step, else the lowest step)."
  );
}

function backlogRows(r: RunResult): [string, string][] {
  const b = r.backlog!;
  const target = "messages" in b.target ? `${fmtCount(b.target.messages)} messages` : `${fmtBytes(b.target.bytes)} (${fmtCount(b.targetMessages)} messages of ${r.scenario.messageSizeBytes} B)`;
  const bb = b.broker;
  return [
    ["target", target],
    ["stored", `${fmtCount(b.stored)} messages (${fmtBytes(b.storedBytes)} of payload)${b.buildPublishErrors ? `; ${fmtCount(b.buildPublishErrors)} refused` : ""}`],
    ["build", `${b.buildSeconds.toFixed(1)} s, ${fmtCount(b.buildRate)} msg/s`],
    ["release", `consumers opened in ${b.releaseSeconds.toFixed(1)} s`],
    ["drain", b.drained ? `${fmtCount(b.expectedDeliveries)} backlog deliveries in ${b.drainSeconds!.toFixed(1)} s (release to last backlog delivery), ${fmtCount(b.drainRate!)} deliveries/s` : `**did not drain**: ${fmtCount(b.deliveredBacklog)} of ${fmtCount(b.expectedDeliveries)} backlog deliveries arrived`],
    ["publish latency while draining", `p50 ${fmtUs(b.publishWhileDraining.p50Us)}, p99 ${fmtUs(b.publishWhileDraining.p99Us)}, max ${fmtUs(b.publishWhileDraining.maxUs)} (${fmtCount(b.publishWhileDraining.count)} messages)`],
    [
      "broker",
      `memory budget ${opt(bb.memoryBudgetBytes, fmtBytes)}; peak RSS ${opt(bb.peakRssBytes, fmtBytes)}, peak retained ${opt(bb.peakRetainedMessages, fmtCount)}, peak backlog ${opt(bb.peakBacklog, fmtCount)} (build start to drained); ` +
        `${bb.publishErrors} publishes refused, ${bb.streamErrors} streams ended: ${bb.withinBudget ? "stayed within its budgets" : "**hit a budget or limit**"} ` +
        "(the budget bounds what the broker counts, retained messages and de-duplication ids, not its RSS)",
    ],
  ];
}

export function workloadMarkdown(r: RunResult): string[] {
  const out: string[] = [];
  const notice = onlyNotice(r);
  if (notice) out.push(`> **${notice}**`, "");
  if (r.rateSearch) {
    out.push("## Rate search (`rate: max`)", "", searchSummary(r), "");
    out.push(`| ${STEP_HEAD.join(" | ")} |`, `|${STEP_HEAD.map((_, i) => (i >= 2 && i <= 8 ? "---:" : "---")).join("|")}|`);
    for (const x of r.rateSearch.steps) out.push(`| ${stepRow(x).join(" | ")} |`);
    out.push("", "Latency against offered rate (the last step at each rate):", "", "| offered msg/s | e2e p50 | e2e p99 | holds |", "|---:|---:|---:|---|");
    for (const x of latencyCurve(r.rateSearch.steps)) out.push(`| ${fmtCount(x.offeredRate)} | ${fmtUs(x.p50Us)} | ${fmtUs(x.p99Us)} | ${x.sustainable ? "yes" : "no"} |`);
    out.push("");
  }
  if (r.backlog) {
    out.push("## Backlog build and drain", "", "Consumers were held back (their subscriptions existed) until the backlog was stored, then released; build messages are accounted but not timed.", "");
    out.push("| | |", "|---|---|", ...backlogRows(r).map(([k, v]) => `| ${k} | ${v} |`), "");
  }
  return out;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

const md = (s: string) => esc(s).replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>");

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>\n${rows.map((row) => `<tr>${row.map((c) => `<td>${md(c)}</td>`).join("")}</tr>`).join("\n")}\n</tbody></table>`;
}

export function workloadHtml(r: RunResult): string {
  const parts: string[] = [];
  const notice = onlyNotice(r);
  if (notice) parts.push(`<p class="note" id="only-notice"><strong>${esc(notice)}</strong></p>`);
  if (r.rateSearch) {
    parts.push(`<h2 id="rate-search">Rate search (rate: max)</h2>`, `<p>${md(searchSummary(r))}</p>`, table(STEP_HEAD, r.rateSearch.steps.map(stepRow)));
  }
  if (r.backlog) {
    parts.push(`<h2 id="backlog">Backlog build and drain</h2>`, table(["", ""], backlogRows(r)));
  }
  return parts.join("\n");
}
