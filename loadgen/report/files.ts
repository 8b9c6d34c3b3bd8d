/** Writing and reading a report directory. */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ReportError } from "../errors.js";
import { decodeHistogram, percentileDistribution, writeHlog } from "../run/index.js";
import { renderHtml } from "./html.js";
import { renderMarkdown } from "./md.js";
import { RESULT_KIND, RESULT_SCHEMA_VERSION, type RunResult } from "./result.js";

export const REPORT_FILES = ["result.json", "report.md", "report.html", "e2e.hgrm", "e2e-uncorrected.hgrm", "publish.hgrm", "lateness.hgrm", "e2e.hlog"] as const;

export function writeReport(dir: string, r: RunResult): string[] {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "result.json"), `${JSON.stringify(r, null, 1)}\n`);
  return [join(dir, "result.json"), ...renderReport(dir, r)];
}

/** (Re)write the files derived from a result (md, html, hgrm, hlog); result.json is left alone. */
export function renderReport(dir: string, r: RunResult): string[] {
  mkdirSync(dir, { recursive: true });
  const files: [string, string][] = [
    ["e2e.hgrm", percentileDistribution(decodeHistogram(r.histograms.e2e))],
    ["e2e-uncorrected.hgrm", percentileDistribution(decodeHistogram(r.histograms.e2eUncorrected))],
    ["publish.hgrm", percentileDistribution(decodeHistogram(r.histograms.publish))],
    ["lateness.hgrm", percentileDistribution(decodeHistogram(r.histograms.lateness))],
    ["e2e.hlog", writeHlog(Date.parse(r.run.startedAt), r.intervalHistograms)],
    ["report.md", renderMarkdown(r)],
    ["report.html", renderHtml(r)],
  ];
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  return files.map(([n]) => join(dir, n));
}

export function readResult(pathOrDir: string): RunResult {
  const file = pathOrDir.endsWith(".json") ? pathOrDir : join(pathOrDir, "result.json");
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ReportError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const r = parsed as Partial<RunResult>;
  if (r.kind !== RESULT_KIND) throw new ReportError(`${file} is not a ratatoskr bench result (kind ${JSON.stringify(r.kind)})`);
  if (r.schemaVersion !== RESULT_SCHEMA_VERSION) throw new ReportError(`${file} has schemaVersion ${String(r.schemaVersion)}; this version reads ${RESULT_SCHEMA_VERSION}`);
  return parsed as RunResult;
}
