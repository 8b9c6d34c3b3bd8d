/** HTML tables for report.html (summary, latency, gates, accounting, environment). */
import { FAULT_TABLE_HEAD, faultCells } from "./fault-table.js";
import { configurationLabel } from "./md.js";
import type { RunResult } from "./result.js";
import { fmtBytes, fmtCount, fmtUs, totalSubscriptions } from "../run/index.js";
import { gateValue, headline, isShard, parameterRows, partialNotice } from "./summary.js";

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function table(head: string[], rows: (string | number)[][]): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join("");
  const tr = rows
    .map((r) => `<tr>${r.map((c) => (typeof c === "number" ? `<td class="num">${c}</td>` : `<td>${c}</td>`)).join("")}</tr>`)
    .join("\n");
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

/** The faults table (docs/faults.md, "Reading the figures"), or nothing when the run had no fault figures. */
function faultTable(r: RunResult): string[] {
  const a = r.faultFigures;
  if (!a) return [];
  return [
    "<h2>Faults</h2>",
    `<p>Seconds since the run started; unavailable, first delivery and recovery at ${a.resolutionSeconds} s resolution (pre-fault rate ${a.preFaultDeliveryRate ?? "n/a"} deliveries/s; longest gap before the first fault ${a.preFaultLongestGapSeconds ?? "n/a"} s); e2e p99 corrected / uncorrected from 1 s interval histograms. Lost over the run: ${r.counts.lost}.</p>`,
    table(FAULT_TABLE_HEAD, a.faults.map((f) => faultCells(f, a.outside).map(esc))),
  ];
}

export function renderHtmlTables(r: RunResult): string {
  const c = r.counts;
  const pct = c.expected === 0 ? 100 : (c.delivered / c.expected) * 100;
  const e = r.environment;
  const lat = (name: string, s: RunResult["latency"]["e2e"]) => [name, fmtCount(s.count), fmtUs(s.p50Us), fmtUs(s.p90Us), fmtUs(s.p99Us), fmtUs(s.p999Us), fmtUs(s.p9999Us), fmtUs(s.maxUs)];
  const notice = partialNotice(r);
  const parts = [
    notice ? `<p class="fail"><strong>${esc(notice)}</strong></p>` : "",
    `<p><strong>Headline:</strong> ${esc(headline(r))}</p>`,
    "<h2>Parameters</h2>",
    table(["parameter", "value"], parameterRows(r).map(([k, v]) => [esc(k), esc(v)])),
    `<p>Run <code>${esc(r.run.id)}</code> started ${esc(r.run.startedAt)}; driver <code>${esc(r.run.driver)}</code>; broker ${r.broker.embedded ? "embedded" : "external"} at ${esc(r.broker.target)}.</p>`,
    table(
      ["configuration", "messages", "topics", "subscribers", "throughput", "deliveries", "broker memory"],
      [[
        esc(configurationLabel(r)),
        fmtCount(c.measuredPublished),
        isShard(r) ? c.topics : r.scenario.topics,
        fmtCount(isShard(r) ? c.subscriptions : totalSubscriptions(r.scenario)),
        `${fmtCount(r.throughput.publishRate)} msg/s in, ${fmtCount(r.throughput.deliveryRate)} msg/s out`,
        `${fmtCount(c.delivered)} / ${fmtCount(c.expected)} (${pct.toFixed(pct === 100 ? 0 : 3)}%)`,
        r.broker.peakRssBytes === null ? "n/a" : `${fmtBytes(r.broker.peakRssBytes)} peak RSS`,
      ]],
    ),
    "<h2>Latency</h2><p>End-to-end latency from the intended send time (coordinated-omission corrected) and from the actual send time (uncorrected).</p>",
    table(["metric", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max"], [
      lat("e2e (corrected)", r.latency.e2e),
      lat("e2e (uncorrected)", r.latency.e2eUncorrected),
      lat("publish", r.latency.publish),
      lat("lateness", r.latency.lateness),
    ]),
    "<h2>Gates</h2>",
    r.gates.length === 0
      ? "<p>No gates.</p>"
      : table(["gate", "limit", "actual", "result"], r.gates.map((g) => [esc(g.name), `${g.op} ${esc(gateValue(g, g.limit))}`, esc(gateValue(g, g.actual)), g.passed ? `<span class="pass">pass</span>` : `<span class="fail">FAIL: ${esc(g.detail)}</span>`])),
    ...faultTable(r),
    "<h2>Delivery accounting</h2>",
    "<p>Published is split by phase; expected, delivered and lost cover warmup and measure together.</p>",
    table(["published in warmup", "published in measure", "publish errors", "expected", "delivered", "lost", "duplicates", "out of order", "redelivered", "stream errors"], [
      [c.published - c.measuredPublished, c.measuredPublished, c.publishErrors, c.expected, c.delivered, c.lost, c.duplicates, c.outOfOrder, c.redelivered, c.streamErrors],
    ]),
    "<h2>Environment</h2>",
    `<p>${esc(e.cpuModel)}, ${e.cpuCores} cores, ${fmtBytes(e.memoryBytes)}; ${esc(e.os)}; Node ${esc(e.node)}; commit <code>${esc(e.gitCommit.slice(0, 12))}</code>${e.gitDirty ? " (dirty)" : ""}; broker args <code>${esc(r.broker.args.join(" "))}</code>.</p>`,
  ];
  return parts.join("\n");
}
