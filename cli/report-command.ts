import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { Argv, CommandModule } from "yargs";
import {
  compareMarkdown,
  exitCodeFor,
  EXIT_GATE_FAILED,
  EXIT_OK,
  isSuiteDir,
  mergeResults,
  OutputError,
  prepareOutputDir,
  prepareOutputFile,
  printSummary,
  REPORT_FILES,
  readResult,
  renderReport,
  renderSuiteMarkdown,
  writeReport,
  writeSuiteComparison,
} from "../loadgen/index.js";

interface ReportArgs {
  results: string[];
  out?: string;
  force?: boolean;
  allowPartial?: boolean;
  noise?: number;
}

const out = (s: string) => process.stdout.write(`${s}\n`);

async function guarded(command: string, fn: () => number): Promise<void> {
  try {
    process.exitCode = fn();
  } catch (err) {
    process.stderr.write(`ratatoskr report ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
}

const resultDir = (p: string) => (p.endsWith(".json") ? join(p, "..") : p);

/**
 * Where `report render` writes each result: beside it, or in --out (with several results,
 * --out/<name of the result's directory>/). Refuses, before anything is written, to overwrite
 * a report already in an --out directory unless `force`, and two results landing in one place.
 */
export function renderTargets(results: readonly string[], outDir: string | undefined, force: boolean): string[] {
  if (outDir === undefined) return results.map(resultDir);
  const dirs = results.length === 1 ? [outDir] : results.map((p) => join(outDir, basename(resolve(resultDir(p)))));
  const seen = new Set<string>();
  for (const d of dirs) {
    if (seen.has(resolve(d))) throw new OutputError(d, "two of the results would be rendered into it; render them one at a time");
    seen.add(resolve(d));
    const existing = REPORT_FILES.filter((f) => f !== "result.json" && existsSync(join(d, f)));
    if (existing.length > 0 && !force) throw new OutputError(d, `it already holds a report (${existing.join(", ")}); pass --force to overwrite it`);
    prepareOutputDir(d);
  }
  return dirs;
}

/**
 * `report merge` inputs: result.json files, report directories, or a directory of shard report
 * directories (each immediate subdirectory holding a result.json, in name order) — what the
 * Kubernetes and Compose runs leave behind (docs/deploy.md, "Shards and the merge").
 */
export function shardInputs(paths: readonly string[]): string[] {
  return paths.flatMap((p) => {
    if (p.endsWith(".json") || !existsSync(p) || !statSync(p).isDirectory() || existsSync(join(p, "result.json"))) return [p];
    const shards = readdirSync(p)
      .filter((name) => existsSync(join(p, name, "result.json")))
      .sort()
      .map((name) => join(p, name));
    if (shards.length === 0) throw new OutputError(p, "it holds no result.json and no subdirectory with one");
    return shards;
  });
}

export const reportMergeCommand: CommandModule<object, ReportArgs> = {
  command: "merge <results..>",
  describe: "merge the result.json files (or report dirs, or one dir of shard report dirs) of a run's shards into one report",
  builder: (y: Argv) =>
    y
      .positional("results", { type: "string", array: true, demandOption: true })
      .option("out", { type: "string", demandOption: true, describe: "directory for the merged report" })
      .option("allow-partial", { type: "boolean", default: false, describe: "merge a set that lacks shards; the result is marked partial and fails" }) as unknown as Argv<ReportArgs>,
  handler: (args) =>
    guarded("merge", () => {
      const inputs = shardInputs(args.results).map(readResult);
      prepareOutputDir(args.out!);
      const merged = mergeResults(inputs, { allowPartial: args.allowPartial === true });
      writeReport(args.out!, merged);
      printSummary(merged, args.out!, out);
      return merged.passed ? EXIT_OK : EXIT_GATE_FAILED;
    }),
};

const compare: CommandModule<object, ReportArgs> = {
  command: "compare <results..>",
  describe: "put runs side by side (the first is the baseline), or a bench-suite directory scenario by scenario with ratios to the best peer (writes its compare.md/html); markdown on stdout",
  builder: (y: Argv) =>
    y
      .positional("results", { type: "string", array: true, demandOption: true })
      .option("out", { type: "string", describe: "also write the comparison to this .md file" })
      .option("noise", { type: "number", default: 5, describe: "changes within ±this many percent of the baseline are called noise, not better or worse" }) as unknown as Argv<ReportArgs>,
  handler: (args) =>
    guarded("compare", () => {
      if (args.out) prepareOutputFile(args.out);
      // A bench-suite directory: the set side by side (per scenario, ratio to the best peer, targets).
      if (args.results.length === 1 && isSuiteDir(args.results[0]!)) {
        const { files, view } = writeSuiteComparison(args.results[0]!);
        const suiteMd = renderSuiteMarkdown(view);
        if (args.out) writeFileSync(args.out, suiteMd);
        out(suiteMd);
        out(`wrote ${files.join(", ")}`);
        return EXIT_OK;
      }
      const md = compareMarkdown(args.results.map(readResult), { noisePercent: args.noise ?? 5 });
      if (args.out) writeFileSync(args.out, md);
      out(md);
      return EXIT_OK;
    }),
};

const render: CommandModule<object, ReportArgs> = {
  command: "render <results..>",
  describe: "re-render report.md, report.html, .hgrm and .hlog from result.json",
  builder: (y: Argv) =>
    y
      .positional("results", { type: "string", array: true, demandOption: true })
      .option("out", { type: "string", describe: "output directory (default: beside each result.json; several results: one subdirectory each); an existing report there is not overwritten" })
      .option("force", { type: "boolean", default: false, describe: "overwrite a report already in --out" }) as unknown as Argv<ReportArgs>,
  handler: (args) =>
    guarded("render", () => {
      const inputs = args.results.map(readResult);
      const dirs = renderTargets(args.results, args.out, args.force === true);
      inputs.forEach((r, i) => {
        const files = renderReport(dirs[i]!, r);
        out(`rendered ${files.length} files in ${dirs[i]}/`);
      });
      return EXIT_OK;
    }),
};

// `ratatoskr report merge|compare|render`.
export const reportCommand: CommandModule = {
  command: "report",
  describe: "work with bench reports: merge shards, compare runs, re-render",
  builder: (y: Argv) => y.command(reportMergeCommand).command(compare).command(render).demandCommand(1, "Name a report command: merge, compare or render."),
  handler: () => undefined,
};
