/**
 * Gates for CI: `--junit FILE` writes each gate of each run as a JUnit testcase (so a CI system
 * shows which SLO failed, by name, limit and actual), `--summary-md FILE` the headline and the
 * gates as Markdown for a CI step summary.
 *
 * A run becomes one <testsuite>; a gate one <testcase>: a failed gate has a <failure>, and every
 * gate of an interrupted run has an <error type="interrupted"> (its figures cover part of the
 * run, so it was not judged). A run without gates is a suite with zero testcases.
 */
import type { GateResult } from "./gates.js";
import { SEED_HEADER, seedRow } from "./md.js";
import type { RunResult } from "./result.js";

/** Escape text for XML content and attribute values; drops characters XML 1.0 cannot carry. */
export function xmlEscape(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

const unitSuffix = (g: GateResult) => (g.unit === "ms" ? " ms" : g.unit === "messages" ? " messages" : g.unit === "s" ? " s" : "");

/** `e2e p99 <= 20 ms`: the gate and its limit, as a testcase name. */
export function gateLabel(g: GateResult): string {
  return `${g.name} ${g.op} ${g.limit}${unitSuffix(g)}`;
}

function gateActual(g: GateResult): string {
  return g.actual === null ? "not measurable" : `${g.actual}${unitSuffix(g)}`;
}

function runLabel(r: RunResult): string {
  return `${r.run.scenario} (${r.run.driver})`;
}

function attrs(a: Record<string, string | number>): string {
  return Object.entries(a)
    .map(([k, v]) => ` ${k}="${xmlEscape(String(v))}"`)
    .join("");
}

function testsuite(r: RunResult): string {
  const interrupted = r.run.interrupted === true;
  const failures = interrupted ? 0 : r.gates.filter((g) => !g.passed).length;
  const errors = interrupted ? r.gates.length : 0;
  const lines = [
    `  <testsuite${attrs({ name: runLabel(r), tests: r.gates.length, failures, errors, skipped: 0, time: r.run.durationSeconds, timestamp: r.run.startedAt })}>`,
    `    <properties>`,
    `      <property${attrs({ name: "run.id", value: r.run.id })}/>`,
    `      <property${attrs({ name: "driver", value: r.run.driver })}/>`,
    `      <property${attrs({ name: "broker.target", value: r.broker.target })}/>`,
    `      <property${attrs({ name: "interrupted", value: String(interrupted) })}/>`,
    `    </properties>`,
  ];
  const classname = `ratatoskr.bench.${r.run.scenario}.${r.run.driver}`;
  for (const g of r.gates) {
    const body = `limit: ${g.op} ${g.limit}${unitSuffix(g)}\nactual: ${gateActual(g)}\n${g.detail}`;
    lines.push(`    <testcase${attrs({ name: gateLabel(g), classname, time: 0 })}>`);
    if (interrupted) lines.push(`      <error${attrs({ type: "interrupted", message: `run interrupted before it finished; not judged (partial figure: ${gateActual(g)})` })}>${xmlEscape(body)}</error>`);
    else if (!g.passed) lines.push(`      <failure${attrs({ type: "gate", message: g.detail })}>${xmlEscape(body)}</failure>`);
    lines.push(`      <system-out>${xmlEscape(`limit ${g.op} ${g.limit}${unitSuffix(g)}; actual ${gateActual(g)}`)}</system-out>`);
    lines.push(`    </testcase>`);
  }
  lines.push(`  </testsuite>`);
  return lines.join("\n");
}

/** A run of a suite that left no result (it could not run): one <testsuite> with one erroring <testcase>. */
export interface UnreportedRun {
  name: string;
  message: string;
}

function unreportedSuite(u: UnreportedRun): string {
  return [
    `  <testsuite${attrs({ name: u.name, tests: 1, failures: 0, errors: 1, skipped: 0, time: 0 })}>`,
    `    <testcase${attrs({ name: "run", classname: "ratatoskr.bench", time: 0 })}>`,
    `      <error${attrs({ type: "not-run", message: u.message })}/>`,
    `    </testcase>`,
    `  </testsuite>`,
  ].join("\n");
}

/** One JUnit XML document: a <testsuite> per run, a <testcase> per gate. */
export function renderJUnit(results: readonly RunResult[], name = "ratatoskr bench", unreported: readonly UnreportedRun[] = []): string {
  const tests = results.reduce((n, r) => n + r.gates.length, 0) + unreported.length;
  const errors = results.reduce((n, r) => n + (r.run.interrupted ? r.gates.length : 0), 0) + unreported.length;
  const failures = results.reduce((n, r) => n + (r.run.interrupted ? 0 : r.gates.filter((g) => !g.passed).length), 0);
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites${attrs({ name, tests, failures, errors })}>`,
    ...results.map(testsuite),
    ...unreported.map(unreportedSuite),
    `</testsuites>`,
    "",
  ].join("\n");
}

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");

/** Markdown for a CI step summary: per run the verdict, the seed-shaped headline row and the gates. */
export function renderSummaryMarkdown(results: readonly RunResult[], unreported: readonly UnreportedRun[] = []): string {
  const lines: string[] = [];
  for (const u of unreported) lines.push(`### ${cell(u.name)}: NOT RUN`, "", cell(u.message), "");
  for (const r of results) {
    const verdict = r.run.interrupted ? "INTERRUPTED" : r.passed ? "PASS" : "FAIL";
    lines.push(`### ${cell(runLabel(r))}: ${verdict}`, "");
    if (r.run.interrupted) lines.push("Stopped before it finished: the figures cover part of the run and the gates are not judged.", "");
    lines.push(SEED_HEADER, seedRow(r), "");
    if (r.gates.length === 0) lines.push("No `slo:` gates in this scenario.", "");
    else {
      lines.push("| gate | limit | actual | result |", "|---|---:|---:|---|");
      for (const g of r.gates) {
        const result = r.run.interrupted ? "not judged" : g.passed ? "pass" : `**FAIL**: ${cell(g.detail)}`;
        lines.push(`| ${cell(g.name)} | ${g.op} ${g.limit}${unitSuffix(g)} | ${gateActual(g)} | ${result} |`);
      }
      lines.push("");
    }
  }
  return lines.join("\n");
}
