import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Argv, CommandModule } from "yargs";
import {
  compareMarkdown,
  exitCodeFor,
  EXIT_GATE_FAILED,
  EXIT_OK,
  isSuiteDir,
  mergeResults,
  printSummary,
  readResult,
  renderReport,
  renderSuiteMarkdown,
  writeReport,
  writeSuiteComparison,
} from "../loadgen/index.js";

interface ReportArgs {
  results: string[];
  out?: string;
  allowPartial?: boolean;
  noise?: number;
}

const out = (s: string) => process.stdout.write(`${s}\n`);

async function guarded(fn: () => number): Promise<void> {
  try {
    process.exitCode = fn();
  } catch (err) {
    process.stderr.write(`ratatoskr report: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
}

const merge: CommandModule<object, ReportArgs> = {
  command: "merge <results..>",
  describe: "merge the result.json files (or report dirs) of a run's shards into one report",
  builder: (y: Argv) =>
    y
      .positional("results", { type: "string", array: true, demandOption: true })
      .option("out", { type: "string", demandOption: true, describe: "directory for the merged report" })
      .option("allow-partial", { type: "boolean", default: false, describe: "merge a set that lacks shards; the result is marked partial and fails" }) as unknown as Argv<ReportArgs>,
  handler: (args) =>
    guarded(() => {
      const merged = mergeResults(args.results.map(readResult), { allowPartial: args.allowPartial === true });
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
    guarded(() => {
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
      .option("out", { type: "string", describe: "output directory (default: beside each result.json)" }) as unknown as Argv<ReportArgs>,
  handler: (args) =>
    guarded(() => {
      for (const p of args.results) {
        const dir = args.out ?? (p.endsWith(".json") ? join(p, "..") : p);
        const files = renderReport(dir, readResult(p));
        out(`rendered ${files.length} files in ${dir}/`);
      }
      return EXIT_OK;
    }),
};

// `ratatoskr report merge|compare|render`.
export const reportCommand: CommandModule = {
  command: "report",
  describe: "work with bench reports: merge shards, compare runs, re-render",
  builder: (y: Argv) => y.command(merge).command(compare).command(render).demandCommand(1, "Name a report command: merge, compare or render."),
  handler: () => undefined,
};
