/**
 * The report sections of the OMB-style workloads: the `rate: max` search (every step, and the
 * curve of latency against offered rate), a backlog's build and drain, and what a producer-only
 * or consumer-only run's counts mean. report.md and report.html both take them from here.
 */
import { fmtBytes, fmtCount, fmtUs, type RateSearchStep } from "../run/index.js";
import type { RunResult } from "./result.js";

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const opt = (v: number | null, f: (x: number) => string) => (v === null ? "n/a" : f(v));
/** A growth in µs per second (a slope of the step figures). */
export const perSecond = (us: number) => `${fmtUs(us)}/s`;

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
    opt(x.p99SlopeUsPerSec ?? null, perSecond),
    x.backlogSlope === null ? "n/a" : `${fmtCount(x.backlogSlope)}/s`,
    opt(x.lagSlopeUsPerSec ?? null, perSecond),
    (x.sustainable ? "holds" : `fails: ${x.reasons.join("; ")}`) + (x.generatorBound?.length ? ` (generator-bound: ${x.generatorBound.join("; ")})` : ""),
  ];
}

const STEP_HEAD = ["step", "kind", "offered msg/s", "achieved msg/s", "deliveries/s", "e2e p50", "e2e p99", "p99 1st → 2nd half", "p99 growth", "backlog growth", "lag growth", "verdict"];

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
    `${p99Trend(s)}${s.p99MaxMs !== undefined ? `, p99 at most ${s.p99MaxMs} ms` : ""}, and its drain completes with nothing lost or refused. ` +
    bracketNote(rs) +
    generatorNote(rs) +
    "The rest of this report is the figures of the confirmation step (else the found step, else the lowest step)."
  );
}

/** The p99 trend condition as the search judged it (results written before the slope had the halves test only). */
function p99Trend(s: NonNullable<RunResult["rateSearch"]>["settings"]): string {
  const halves = s.latencyGrowthMax === undefined ? "" : `p99 of its second half is at most ${s.latencyGrowthMax}× its first half's (or under ${s.latencyFloorMs} ms)`;
  if (s.queueGrowthMax === undefined) return halves;
  const slope = `e2e p99 grows by at most ${fmtUs(s.queueGrowthMax * 1e6)} per second`;
  return halves ? `${slope}, ${halves}` : slope;
}

/**
 * Where the answer lies when the search did not narrow it to its precision (it ran out of steps,
 * e.g. after a failed confirmation withdrew a rate), and which rates a confirmation withdrew.
 */
export function bracketNote(rs: Pick<NonNullable<RunResult["rateSearch"]>, "foundRate" | "steps" | "settings">): string {
  const out: string[] = [];
  const withdrawn = rs.steps.filter((x) => x.kind === "confirm" && !x.sustainable).map((x) => `${fmtCount(x.offeredRate)} msg/s`);
  if (withdrawn.length > 0) out.push(`Withdrawn after a failed confirmation: ${withdrawn.join(", ")}.`);
  const found = rs.foundRate;
  const failedAbove = rs.steps.filter((x) => !x.sustainable && (found === null || x.offeredRate > found)).map((x) => x.offeredRate);
  if (found !== null && failedAbove.length > 0) {
    const bad = Math.min(...failedAbove);
    if ((bad - found) / found > rs.settings.precision) {
      out.push(`**The highest sustainable rate lies between ${fmtCount(found)} (held) and ${fmtCount(bad)} msg/s (failed)**: the search stopped before narrowing it to ${pct(rs.settings.precision)}; read the found rate as a lower bound (more \`maxSteps\` narrow it).`);
    }
  }
  return out.length ? `${out.join(" ")} ` : "";
}

/** Whether the steps that failed above the found rate measured the generator, not the broker ("" when none was judged). */
export function generatorNote(rs: NonNullable<RunResult["rateSearch"]>): string {
  const above = rs.steps.filter((x) => !x.sustainable && x.generatorBound !== undefined && (rs.foundRate === null || x.offeredRate > rs.foundRate));
  const bound = above.filter((x) => x.generatorBound!.length > 0);
  // The found rate's own steps (the search's and the confirmation) at the generator's limit.
  const atFound = rs.steps.some((x) => x.sustainable && x.offeredRate === rs.foundRate && (x.generatorBound?.length ?? 0) > 0);
  const own = atFound ? "The found rate's own steps were generator-bound too. " : "";
  if (above.length === 0 || bound.length === 0) return own;
  const which = bound.map((x) => fmtCount(x.offeredRate)).join(", ");
  return bound.length === above.length
    ? `**Every step that failed above the found rate was generator-bound** (${which} msg/s): the found rate is the generator's limit on this machine, a lower bound for the broker's. ${own}`
    : `${bound.length} of the ${above.length} steps that failed above the found rate were generator-bound (${which} msg/s); the others failed with the generator within its limits. ${own}`;
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
