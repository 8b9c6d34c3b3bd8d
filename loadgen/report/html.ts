/**
 * report.html: one self-contained page (no scripts, no CDN). Charts are rendered server-side by
 * Apache ECharts to SVG and inlined: throughput over time, latency over time, the latency
 * percentile distribution on a 1/(1−p) log axis, broker CPU and memory. Fault windows (the
 * run's `faults`) are shaded bands on the throughput and latency timelines.
 */
import * as echarts from "echarts";
import { decodeHistogram, percentileCurve } from "../run/index.js";
import { generatorBoundBanner } from "./md.js";
import { renderHtmlTables } from "./tables.js";
import { latencyCurve, workloadHtml } from "./workloads.js";
import type { RunResult } from "./result.js";

const WIDTH = 900;
const HEIGHT = 340;

type Option = Record<string, unknown>;

export function renderChart(option: Option, width = WIDTH, height = HEIGHT): string {
  const chart = echarts.init(null, null, { renderer: "svg", ssr: true, width, height });
  try {
    chart.setOption({ animation: false, backgroundColor: "#ffffff", textStyle: { fontFamily: "sans-serif" }, ...option });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

function phaseAreas(r: RunResult): unknown {
  const total = Math.max(1e-3, ...r.run.phases.map((p) => p.endSec));
  const colors: Record<string, string> = { connect: "#f3f3f3", warmup: "#fff5e0", build: "#f5eeff", measure: "#ffffff", drain: "#eef6ff", teardown: "#f3f3f3" };
  return {
    silent: true,
    label: { color: "#777", fontSize: 10 },
    // Phases too short to hold their label (drain, teardown) stay unlabelled.
    data: r.run.phases.filter((p) => p.phase !== "measure").map((p) => [
      { name: p.endSec - p.startSec >= total * 0.04 ? p.phase : "", xAxis: p.startSec, itemStyle: { color: colors[p.phase] ?? "#f3f3f3" } },
      { xAxis: Math.max(p.endSec, p.startSec + 0.01) },
    ]),
  };
}

/** The fault band colour: translucent, so the lines stay readable through it. */
export const FAULT_BAND_COLOR = "rgba(214, 39, 40, 0.18)";

/** The label of a fault's band: its kind and occurrence (a cut is an instant: a thin band). */
export function faultBandLabel(f: { kind: string; occurrence: number }): string {
  return `${f.kind} #${f.occurrence + 1}`;
}

/**
 * A series that only draws the fault windows: one band per applied fault from its start to its
 * end (to the run's end when it was not lifted; a cut gets a band one bucket wide so it shows).
 * Undefined when the run had no faults.
 */
function faultBands(r: RunResult): Record<string, unknown> | undefined {
  const faults = (r.faults ?? []).filter((f) => f.error === undefined);
  if (faults.length === 0) return undefined;
  const end = Math.max(1e-3, ...r.run.phases.map((p) => p.endSec));
  const bucket = (r.timeline?.bucketMs ?? 100) / 1000;
  return {
    name: "faults",
    type: "line",
    data: [],
    color: FAULT_BAND_COLOR,
    markArea: {
      silent: true,
      itemStyle: { color: FAULT_BAND_COLOR },
      label: { color: "#a00", fontSize: 10, position: "insideTop" },
      data: faults.map((f) => [
        { name: faultBandLabel(f), xAxis: f.startSec },
        { xAxis: Math.max(f.endSec ?? end, f.startSec + bucket) },
      ]),
    },
  };
}

const baseGrid = { left: 70, right: 70, top: 75, bottom: 50 };

export function throughputChart(r: RunResult): string {
  return renderChart({
    title: { text: "Throughput (messages per second)", left: "center", textStyle: { fontSize: 14 } },
    legend: { top: 30 },
    grid: baseGrid,
    xAxis: { type: "value", name: "s", min: 0 },
    yAxis: { type: "value", name: "msg/s" },
    series: [
      { name: "published", type: "line", showSymbol: false, data: r.series.map((p) => [p.t, p.publishRate]), markArea: phaseAreas(r) },
      { name: "delivered", type: "line", showSymbol: false, data: r.series.map((p) => [p.t, p.deliveryRate]) },
      ...optional(faultBands(r)),
    ],
  });
}

export function latencyOverTimeChart(r: RunResult): string {
  const ms = (us: number) => Math.max(0.001, us / 1000);
  const timed = r.series.filter((p) => p.e2eMaxUs > 0);
  return renderChart({
    title: { text: "End-to-end latency per second (from intended send time)", left: "center", textStyle: { fontSize: 14 } },
    legend: { top: 30 },
    grid: baseGrid,
    xAxis: { type: "value", name: "s", min: 0 },
    yAxis: { type: "log", name: "ms", logBase: 10 },
    series: [
      { name: "p50", type: "line", showSymbol: false, data: timed.map((p) => [p.t, ms(p.e2eP50Us)]), markArea: phaseAreas(r) },
      { name: "p99", type: "line", showSymbol: false, data: timed.map((p) => [p.t, ms(p.e2eP99Us)]) },
      { name: "p99.9", type: "line", showSymbol: false, data: timed.map((p) => [p.t, ms(p.e2eP999Us)]) },
      { name: "max", type: "line", showSymbol: false, data: timed.map((p) => [p.t, ms(p.e2eMaxUs)]) },
      ...optional(faultBands(r)),
    ],
  });
}

/** x = 1/(1−p) on a log axis, labelled with percentiles (90%, 99%, 99.9%, ...). */
export function percentileChart(r: RunResult): string {
  const curve = (b64: string) =>
    percentileCurve(decodeHistogram(b64))
      .filter(([p]) => p < 100)
      .map(([p, us]) => [1 / (1 - p / 100), Math.max(0.001, us / 1000)]);
  const label = (x: number) => {
    const p = 100 * (1 - 1 / x);
    return p === 0 ? "0%" : `${Number(p.toPrecision(6))}%`;
  };
  return renderChart({
    title: { text: "Latency by percentile", left: "center", textStyle: { fontSize: 14 } },
    legend: { top: 30 },
    grid: baseGrid,
    xAxis: { type: "log", logBase: 10, name: "percentile", min: 1, axisLabel: { formatter: label } },
    yAxis: { type: "log", logBase: 10, name: "ms" },
    series: [
      { name: "e2e (corrected)", type: "line", showSymbol: false, data: curve(r.histograms.e2e) },
      { name: "e2e (uncorrected)", type: "line", showSymbol: false, data: curve(r.histograms.e2eUncorrected) },
      { name: "publish", type: "line", showSymbol: false, data: curve(r.histograms.publish) },
    ],
  });
}

export function brokerChart(r: RunResult): string {
  const withCpu = r.series.filter((p) => p.brokerCpuPercent !== undefined);
  const withRss = r.series.filter((p) => p.brokerRssBytes !== undefined);
  return renderChart({
    title: { text: "Broker CPU and memory (generator CPU dashed)", left: "center", textStyle: { fontSize: 14 } },
    legend: { top: 30 },
    grid: baseGrid,
    xAxis: { type: "value", name: "s", min: 0 },
    yAxis: [
      { type: "value", name: "CPU %", min: 0 },
      { type: "value", name: "RSS MiB", min: 0 },
    ],
    series: [
      { name: "CPU %", type: "line", showSymbol: false, data: withCpu.map((p) => [p.t, p.brokerCpuPercent]), markArea: phaseAreas(r) },
      { name: "RSS MiB", type: "line", showSymbol: false, yAxisIndex: 1, data: withRss.map((p) => [p.t, Math.round((p.brokerRssBytes! / 1048576) * 10) / 10]) },
      { name: "generator CPU %", type: "line", showSymbol: false, lineStyle: { type: "dashed" }, data: r.series.filter((p) => p.generatorCpuPercent !== undefined).map((p) => [p.t, p.generatorCpuPercent]) },
    ],
  });
}

/** rate: max: e2e p50 and p99 of each step against its offered rate, holding steps marked. */
export function rateCurveChart(r: RunResult): string {
  const steps = latencyCurve(r.rateSearch?.steps ?? []);
  const ms = (us: number) => Math.max(0.001, us / 1000);
  return renderChart({
    title: { text: "Latency against offered rate (rate: max search)", left: "center", textStyle: { fontSize: 14 } },
    legend: { top: 30 },
    grid: baseGrid,
    xAxis: { type: "value", name: "msg/s offered", min: 0 },
    yAxis: { type: "log", name: "ms", logBase: 10 },
    series: [
      { name: "p50", type: "line", data: steps.map((x) => [x.offeredRate, ms(x.p50Us)]) },
      { name: "p99", type: "line", data: steps.map((x) => [x.offeredRate, ms(x.p99Us)]) },
      { name: "holds", type: "scatter", symbolSize: 10, data: steps.filter((x) => x.sustainable).map((x) => [x.offeredRate, ms(x.p99Us)]) },
      { name: "fails", type: "scatter", symbol: "triangle", symbolSize: 10, data: steps.filter((x) => !x.sustainable).map((x) => [x.offeredRate, ms(x.p99Us)]) },
    ],
  });
}

/** Backlog runs: deliveries outstanding over time, with the phases. */
export function backlogChart(r: RunResult): string {
  const points = r.series.filter((p) => p.backlog !== undefined);
  return renderChart({
    title: { text: "Backlog (deliveries outstanding)", left: "center", textStyle: { fontSize: 14 } },
    legend: { top: 30 },
    grid: baseGrid,
    xAxis: { type: "value", name: "s", min: 0 },
    yAxis: { type: "value", name: "deliveries" },
    series: [{ name: "backlog", type: "line", showSymbol: false, data: points.map((p) => [p.t, p.backlog]), markArea: phaseAreas(r) }],
  });
}

function optional<T>(x: T | undefined): T[] {
  return x === undefined ? [] : [x];
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export function renderHtml(r: RunResult): string {
  // Per-second charts need at least two points; a shorter run says so instead of an empty frame.
  const perSecond = r.series.length >= 2;
  const tooShort = `<p class="note">This run lasted ${r.run.durationSeconds} s: too short for a per-second chart (${r.series.length} point${r.series.length === 1 ? "" : "s"}). The tables above hold its figures.</p>`;
  const charts: [string, string][] = [
    ...(perSecond ? ([["throughput", throughputChart(r)], ["latency-over-time", latencyOverTimeChart(r)]] as [string, string][]) : [["too-short", tooShort] as [string, string]]),
    ...(r.rateSearch ? ([["rate-curve", rateCurveChart(r)]] as [string, string][]) : []),
    ...(r.backlog && perSecond ? ([["backlog", backlogChart(r)]] as [string, string][]) : []),
    ["percentiles", percentileChart(r)],
    ...(perSecond ? ([["broker", brokerChart(r)]] as [string, string][]) : []),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(r.run.scenario)}: ${r.passed ? "PASS" : "FAIL"}: Ratatoskr bench report</title>
<style>
body { font-family: sans-serif; margin: 2em auto; max-width: 980px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
td.num { text-align: right; }
.pass { color: #17702b; } .fail { color: #b00020; font-weight: bold; }
figure.chart { margin: 1.5em 0; }
code { background: #f4f4f4; padding: 0 3px; }
</style>
</head>
<body>
<h1>${esc(r.run.scenario)}: <span class="${r.passed ? "pass" : "fail"}">${r.passed ? "PASS" : "FAIL"}${r.run.partial ? " (PARTIAL)" : ""}</span></h1>
${generatorBoundBanner(r) ? `<p class="fail" id="generator-bound">${esc(generatorBoundBanner(r)!)}</p>\n` : ""}${renderHtmlTables(r)}
${workloadHtml(r)}
${charts.map(([id, svg]) => `<figure class="chart" id="chart-${id}">\n${svg}\n</figure>`).join("\n")}
</body>
</html>
`;
}
