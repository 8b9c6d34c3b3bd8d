/**
 * Rendering a suite directory (suite.json + the set file + one result.json per run) as
 * compare.md and a self-contained compare.html: per scenario one table (throughput, e2e
 * p50/p99/p99.9/max, delivered %, broker CPU and memory, ratio to the best peer) and one chart;
 * then the set's targets judged as ratios of the same run.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ReportError } from "../errors.js";
import { readResult, renderChart, type RunResult } from "../report/index.js";
import { fmtBytes, fmtCount, fmtUs } from "../run/index.js";
import { groupBy, isPeer, judgeTargets, medianPasses, METRICS, rowOf, withPeerRatios, type FaultRow, type Row, type TargetVerdict } from "./compare.js";
import { MANIFEST_FILE, type SuiteManifest } from "./run.js";
import { setSchema, type SuiteSet } from "./set.js";

export interface SuiteView {
  manifest: SuiteManifest;
  set: SuiteSet;
  rows: Row[];
  results: Map<string, RunResult>;
  targets: TargetVerdict[];
  descriptions: Map<string, string>;
}

/** Whether `dir` is a bench-suite output directory. */
export function isSuiteDir(dir: string): boolean {
  return existsSync(join(dir, MANIFEST_FILE));
}

export function readSuite(dir: string): SuiteView {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(file)) throw new ReportError(`${dir} is not a bench-suite directory (no ${MANIFEST_FILE})`);
  const manifest = JSON.parse(readFileSync(file, "utf8")) as SuiteManifest;
  const set = setSchema.parse(parse(readFileSync(join(dir, manifest.setFile), "utf8")));
  const notes = new Map<string, string | undefined>();
  for (const e of set.runs) if (e.label) notes.set(e.label, e.note);
  const rows: Row[] = [];
  const results = new Map<string, RunResult>();
  const descriptions = new Map<string, string>();
  for (const run of manifest.runs) {
    const resultFile = join(dir, run.dir, "result.json");
    if (!existsSync(resultFile)) continue; // the run could not run; listed under "runs" below
    const r = readResult(resultFile);
    results.set(run.dir, r);
    descriptions.set(r.run.scenario, r.scenario.description.trim());
    rows.push(rowOf(r, { label: run.label, note: notes.get(run.label), exitCode: run.exitCode }));
  }
  const withRatios = withPeerRatios(medianPasses(rows));
  return { manifest, set, rows: withRatios, results, targets: judgeTargets(withRatios, set.targets), descriptions };
}

const ratio = (v: number | null) => (v === null ? "–" : `${v.toFixed(2)}×`);
const pct = (v: number) => `${v.toFixed(v >= 99.995 ? 0 : 2)}%`;
const cpu = (r: Row) => (r.brokerCpuPercent === null ? "n/a" : `${r.brokerCpuPercent}% (${r.brokerCpuSeconds} s)`);
const usPer = (v: number | null) => (v === null ? "n/a" : v.toFixed(v < 10 ? 2 : 1));
const cost = (r: Row) => `${usPer(r.brokerCpuUsPerDelivery)} / ${usPer(r.brokerCpuUsPerPublish)}`;
const rss = (r: Row) => (r.brokerPeakRssBytes === null ? "n/a" : fmtBytes(r.brokerPeakRssBytes));

function metricText(metric: keyof typeof METRICS, v: number | null): string {
  if (v === null) return "n/a";
  return metric === "e2eP99Us" ? fmtUs(v) : `${fmtCount(v)}/s`;
}

const HEAD = ["run", "storage", "published msg/s", "deliveries/s", "e2e p50", "e2e p99", "e2e p99.9", "e2e max", "delivered", "broker CPU (avg, CPU-s)", "broker CPU-µs per delivery / per publish", "broker peak RSS", "throughput ÷ best peer", "p99 ÷ best peer"];

/** "median of 3 passes: p99 2.1ms–8.3ms" (empty for a single pass). */
function passesText(r: Row): string {
  if (!r.passes) return "";
  const f = (v: number) => (r.fixedRate ? fmtUs(v) : `${fmtCount(v)}/s`);
  return `median of ${r.passes.count} passes (${r.fixedRate ? "e2e p99" : "deliveries/s"} ${f(r.passes.min)} – ${f(r.passes.max)})`;
}

const FAULT_HEAD = ["run", "storage", "what it promises", "faults", "worst unavailable", "worst recovery", "lost", "duplicates", "worst e2e p99 in a fault", "e2e p99 outside faults"];

/** One row of a scenario's fault comparison. */
function faultCells(r: Row & { faults: FaultRow }): string[] {
  const f = r.faults;
  const recovery = f.worstRecoverySeconds === null ? `not recovered (${f.notRecovered} of ${f.count})` : `${f.worstRecoverySeconds.toFixed(2)} s`;
  return [
    (r.ok ? r.label : `${r.label} (exit ${r.exitCode})`) + (r.passes ? ` ×${r.passes.count}` : ""),
    r.storage,
    f.promise,
    String(f.count),
    `${f.worstUnavailableSeconds.toFixed(2)} s`,
    recovery,
    fmtCount(f.lost),
    fmtCount(f.duplicates),
    fmtUs(f.p99InFaultUs),
    fmtUs(f.p99OutsideUs),
  ];
}

/** The rows of a scenario that ran faults (a fault scenario: every run of it has them). */
export function faultRows(rows: readonly Row[]): (Row & { faults: FaultRow })[] {
  return rows.filter((r): r is Row & { faults: FaultRow } => r.faults !== undefined);
}

const FAULT_NOTE =
  "Per fault figures from each run's fine timeline (docs/faults.md, \"Reading the figures\"): unavailable = longest span with no ack and no delivery overlapping a fault; recovery = until a 1 s window delivered 90% of the pre-fault rate; lost = acknowledged, never delivered (over the run). Runs that failed their gates (e.g. lostMax) are shown here too: their losses are the point.";

function cells(r: Row): string[] {
  return [
    (r.ok ? r.label : `${r.label} (exit ${r.exitCode})`) + (r.passes ? ` ×${r.passes.count}` : ""),
    r.storage,
    fmtCount(r.publishRate),
    fmtCount(r.deliveryRate),
    fmtUs(r.e2e.p50Us),
    fmtUs(r.e2e.p99Us),
    fmtUs(r.e2e.p999Us),
    fmtUs(r.e2e.maxUs),
    pct(r.deliveredPct),
    cpu(r),
    cost(r),
    rss(r),
    ratio(r.throughputVsBestPeer) + boundMark(r),
    ratio(r.p99VsBestPeer) + boundMark(r),
  ];
}

/** Marks a ratio whose run was generator-bound: it may measure the load generator, not the broker. */
function boundMark(r: Row): string {
  return r.generatorBound ? " ⚠ generator-bound" : "";
}

/**
 * One line per (scenario, our run): the figure of merit against the best peer's. Runs that failed
 * their gates (ours or peers') are left out of the ratios; `failedRuns` lists them apart.
 */
export function headline(rows: readonly Row[]): string[][] {
  const out: string[][] = [];
  for (const [scenario, list] of groupBy(rows, (r) => r.scenario)) {
    for (const r of list.filter((x) => !isPeer(x) && x.ok)) {
      const peer = list.find((x) => x.label === r.bestPeer);
      const bound = [r, peer].filter((x): x is Row => x?.generatorBound === true).map((x) => ` ⚠ ${x.label} generator-bound`).join("");
      if (r.fixedRate) {
        out.push([scenario, r.label, `e2e p99 ${fmtUs(r.e2e.p99Us)} at ${fmtCount(r.publishRate)} msg/s`, peer ? `${peer.label}: ${fmtUs(peer.e2e.p99Us)} at ${fmtCount(peer.publishRate)} msg/s` : "–", ratio(r.p99VsBestPeer) + " (lower is better)" + bound]);
      } else {
        out.push([scenario, r.label, `${fmtCount(r.deliveryRate)} deliveries/s`, peer ? `${peer.label}: ${fmtCount(peer.deliveryRate)}/s` : "–", ratio(r.throughputVsBestPeer) + bound]);
      }
    }
  }
  return out;
}

/** The runs that failed their own gates, with their figure of merit, outside every ratio. */
export function failedRuns(rows: readonly Row[]): string[][] {
  return rows
    .filter((r) => !r.ok)
    .map((r) => [
      r.scenario,
      r.label + (r.passes ? ` ×${r.passes.count}` : ""),
      String(r.exitCode),
      r.fixedRate ? `e2e p99 ${fmtUs(r.e2e.p99Us)} at ${fmtCount(r.publishRate)} msg/s` : `${fmtCount(r.deliveryRate)} deliveries/s`,
    ]);
}

const FAILED_HEAD = ["scenario", "run", "exit", "figure (not compared)"];
const FAILED_NOTE = "These runs failed their own scenario gates (see each run's report.md), so their figures are left out of the headline and of every best-peer ratio.";

const HEADLINE_HEAD = ["scenario", "run", "figure", "best peer", "ratio"];

/** The comparison's title: ratatoskr beside the peer drivers that ran (their registry names), not a fixed list. */
export function suiteTitle(name: string, rows: readonly Row[]): string {
  const peers = [...new Set(rows.filter(isPeer).map((r) => r.driver))];
  if (peers.length === 0) return `${name}: ratatoskr`;
  const list = peers.length === 1 ? peers[0]! : `${peers.slice(0, -1).join(", ")} and ${peers[peers.length - 1]!}`;
  return `${name}: ratatoskr side by side with ${list}`;
}

const PROMISE_HEAD = ["run", "storage", "publish ack", "where messages live", "flush", "delivery acks", "replicas", "ordering", "notes"];
const PROMISE_NOTE =
  "What each run promised, as its driver discloses it for the broker settings in effect (result.json `durability`; docs/peers.md per driver). One line per run label and storage; runs whose result predates the disclosure are not listed.";

/** One line per distinct run label and storage: what that run promised (the durability disclosure). */
export function promiseRows(rows: readonly Row[]): string[][] {
  const seen = new Map<string, string[]>();
  for (const r of rows) {
    const p = r.promise;
    if (!p) continue;
    const cells = [r.label, r.storage, p.publishAck, p.storage, p.flush, p.ackPolicy, String(p.replicas), p.ordering, (p.notes ?? []).join("; ")];
    const key = JSON.stringify(cells);
    if (!seen.has(key)) seen.set(key, cells);
  }
  return [...seen.values()];
}

function targetCells(t: TargetVerdict): string[] {
  const need = t.min !== undefined ? `≥ ${t.min}` : t.max !== undefined ? `≤ ${t.max}` : "";
  return [
    t.name,
    `${t.subject}: ${metricText(t.metric, t.subjectValue)}`,
    t.peerLabel ? `${t.peerLabel}: ${metricText(t.metric, t.peerValue)}` : "n/a",
    ratio(t.ratio),
    need,
    (t.met === null ? "not measured" : t.met ? "met" : "MISSED") + (t.caveats.length ? ` (${t.caveats.join("; ")})` : ""),
  ];
}

export function renderSuiteMarkdown(v: SuiteView): string {
  const m = v.manifest;
  const out: string[] = [`# ${suiteTitle(v.set.name, v.rows)}`, ""];
  if (v.set.description) out.push(v.set.description.trim(), "");
  out.push(`Measured ${m.startedAt} – ${m.finishedAt || "(unfinished)"} with:`, "", "```", m.command, "```", "");
  out.push("| component | version |", "|---|---|", ...Object.entries(m.versions).map(([k, val]) => `| ${k} | ${val} |`), "");
  if (v.set.notes.length) out.push("**Read this first:**", "", ...v.set.notes.map((n) => `- ${n}`), "");
  const head = headline(v.rows);
  if (head.length) {
    out.push("## Headline", "", `| ${HEADLINE_HEAD.join(" | ")} |`, "|---|---|---:|---:|---:|", ...head.map((c) => `| ${c.join(" | ")} |`), "");
  }
  const failedRows = failedRuns(v.rows);
  if (failedRows.length) {
    out.push("## Failed runs (not compared)", "", FAILED_NOTE, "", `| ${FAILED_HEAD.join(" | ")} |`, "|---|---|---:|---:|", ...failedRows.map((c) => `| ${c.join(" | ")} |`), "");
  }
  for (const [scenario, rows] of groupBy(v.rows, (r) => r.scenario)) {
    out.push(`## ${scenario}`, "");
    const d = v.descriptions.get(scenario);
    if (d) out.push(d, "");
    out.push(`| ${HEAD.join(" | ")} |`, `|${HEAD.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`);
    for (const r of rows) out.push(`| ${cells(r).join(" | ")} |`);
    const notes = rows.filter((r) => r.note || r.passes).map((r) => `- ${r.label}: ${[passesText(r), r.note ?? ""].filter(Boolean).join("; ")}`);
    if (notes.length) out.push("", ...notes);
    out.push("");
    const faulted = faultRows(rows);
    if (faulted.length) {
      out.push(`### ${scenario}: faults`, "", FAULT_NOTE, "", `| ${FAULT_HEAD.join(" | ")} |`, `|${FAULT_HEAD.map((_, i) => (i < 3 ? "---" : "---:")).join("|")}|`);
      for (const r of faulted) out.push(`| ${faultCells(r).map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`);
      out.push("");
    }
  }
  const promised = promiseRows(v.rows);
  if (promised.length) {
    out.push("## What each run promises", "", PROMISE_NOTE, "", `| ${PROMISE_HEAD.join(" | ")} |`, `|${PROMISE_HEAD.map((_, i) => (i === 6 ? "---:" : "---")).join("|")}|`);
    for (const c of promised) out.push(`| ${c.map((x) => x.replace(/\|/g, "\\|")).join(" | ")} |`);
    out.push("");
  }
  if (v.targets.length) {
    out.push("## Targets (ratios within this run)", "", "| target | ours | best peer | ratio | required | result |", "|---|---:|---:|---:|---|---|");
    for (const t of v.targets) out.push(`| ${targetCells(t).join(" | ")} |`);
    out.push("");
  }
  const failed = m.runs.filter((r) => r.exitCode !== 0);
  out.push("## Runs", "", "| run | exit | seconds | command |", "|---|---:|---:|---|");
  for (const r of m.runs) out.push(`| ${r.scenario} × ${r.label}${passTag(r)} | ${r.exitCode} | ${r.seconds} | \`${r.command}\` |`);
  if (failed.length) out.push("", `Exit 1 = a scenario gate failed (the figures stand, see the run's report.md); exit 2 = the run could not run.`);
  out.push("", "Each run's own report (report.md, report.html, result.json, .hgrm) is in `<scenario>/<run>/` (`<scenario>/<run>/pass-<k>/` with --repeat).", "");
  return out.join("\n");
}

/** " (pass k)" for runs of a --repeat suite. */
const passTag = (r: { dir: string; pass?: number }): string => (r.pass !== undefined && r.dir.endsWith(`pass-${r.pass}`) ? ` (pass ${r.pass})` : "");

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function htmlTable(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => `<td${i >= 2 ? ' class="num"' : ""}>${esc(c)}</td>`).join("")}</tr>`)
    .join("\n")}</tbody></table>`;
}

function scenarioChart(scenario: string, rows: readonly Row[]): string {
  const labels = rows.map((r) => r.label);
  return renderChart(
    {
      title: { text: `${scenario}: deliveries/s (bars) and e2e p99 (line)`, left: "center", textStyle: { fontSize: 14 } },
      legend: { top: 28 },
      grid: { left: 80, right: 80, top: 70, bottom: 40 },
      xAxis: { type: "category", data: labels },
      yAxis: [
        { type: "value", name: "deliveries/s" },
        { type: "log", name: "p99 ms", min: 0.01 },
      ],
      series: [
        { name: "deliveries/s", type: "bar", data: rows.map((r) => r.deliveryRate), label: { show: true, position: "top", formatter: (p: { value: number }) => fmtCount(p.value) } },
        { name: "e2e p99 (ms)", type: "line", yAxisIndex: 1, data: rows.map((r) => Math.max(0.01, r.e2e.p99Us / 1000)) },
      ],
    },
    900,
    320,
  );
}

export function renderSuiteHtml(v: SuiteView): string {
  const m = v.manifest;
  const parts: string[] = [
    `<h1>${esc(suiteTitle(v.set.name, v.rows))}</h1>`,
    v.set.description ? `<p>${esc(v.set.description.trim())}</p>` : "",
    `<p>Measured ${esc(m.startedAt)} – ${esc(m.finishedAt || "(unfinished)")} with <code>${esc(m.command)}</code>.</p>`,
    htmlTable(["component", "version"], Object.entries(m.versions)),
    v.set.notes.length ? `<h2>Read this first</h2><ul>${v.set.notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>` : "",
  ];
  const head = headline(v.rows);
  if (head.length) parts.push("<h2>Headline</h2>", htmlTable(HEADLINE_HEAD, head));
  const failedRows = failedRuns(v.rows);
  if (failedRows.length) parts.push("<h2>Failed runs (not compared)</h2>", `<p>${esc(FAILED_NOTE)}</p>`, htmlTable(FAILED_HEAD, failedRows));
  for (const [scenario, rows] of groupBy(v.rows, (r) => r.scenario)) {
    parts.push(`<h2>${esc(scenario)}</h2>`);
    const d = v.descriptions.get(scenario);
    if (d) parts.push(`<p>${esc(d)}</p>`);
    parts.push(htmlTable(HEAD, rows.map(cells)));
    const notes = rows.filter((r) => r.note || r.passes).map((r) => `${r.label}: ${[passesText(r), r.note ?? ""].filter(Boolean).join("; ")}`);
    if (notes.length) parts.push(`<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>`);
    const faulted = faultRows(rows);
    if (faulted.length) parts.push(`<h3>${esc(scenario)}: faults</h3>`, `<p>${esc(FAULT_NOTE)}</p>`, htmlTable(FAULT_HEAD, faulted.map(faultCells)));
    parts.push(`<div class="chart">${scenarioChart(scenario, rows)}</div>`);
  }
  const promised = promiseRows(v.rows);
  if (promised.length) parts.push("<h2>What each run promises</h2>", `<p>${esc(PROMISE_NOTE)}</p>`, htmlTable(PROMISE_HEAD, promised));
  if (v.targets.length) {
    parts.push("<h2>Targets (ratios within this run)</h2>", htmlTable(["target", "ours", "best peer", "ratio", "required", "result"], v.targets.map(targetCells)));
  }
  parts.push("<h2>Runs</h2>", htmlTable(["run", "exit", "seconds", "command"], m.runs.map((r) => [`${r.scenario} × ${r.label}${passTag(r)}`, String(r.exitCode), String(r.seconds), r.command])));
  const css =
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:13px}" +
    "th,td{border:1px solid #ccc;padding:4px 8px}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}code{background:#f4f4f4;padding:1px 4px}";
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${esc(v.set.name)}</title><style>${css}</style></head><body>\n${parts.join("\n")}\n</body></html>\n`;
}

/** Write compare.md and compare.html into the suite directory; returns their paths. */
export function writeSuiteComparison(dir: string): { files: string[]; view: SuiteView } {
  const view = readSuite(dir);
  const md = join(dir, "compare.md");
  const html = join(dir, "compare.html");
  writeFileSync(md, renderSuiteMarkdown(view));
  writeFileSync(html, renderSuiteHtml(view));
  return { files: [md, html], view };
}
