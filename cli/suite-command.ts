import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Argv, CommandModule } from "yargs";
import {
  EXIT_INTERRUPTED,
  exitCodeFor,
  MANIFEST_FILE,
  prepareOutputDir,
  prepareOutputFile,
  readResult,
  renderJUnit,
  renderSummaryMarkdown,
  runSuite,
  writeSuiteComparison,
  type RunResult,
  type SuiteArgs,
  type SuiteManifest,
  type UnreportedRun,
} from "../loadgen/index.js";

interface SuiteCommandArgs extends SuiteArgs {
  renderOnly: boolean;
  junit?: string;
  summaryMd?: string;
}

const log = (s: string) => process.stdout.write(`${s}\n`);

// `ratatoskr bench-suite <set.yaml> --out DIR`: run every scenario × driver of a set (each as
// its own `ratatoskr bench` child with its own embedded server), then write DIR/compare.md and
// DIR/compare.html side by side. Exit 0 = all runs held their gates, 1 = a gate failed,
// 2 = a run could not run or the set is invalid, 130 = a run was interrupted.
export const suiteCommand: CommandModule<object, SuiteCommandArgs> = {
  command: "bench-suite <set>",
  describe: "run a set of scenarios × drivers (ratatoskr, NATS, JetStream) and compare them side by side",
  builder: (y: Argv) =>
    y
      .positional("set", { type: "string", demandOption: true, describe: "set file (e.g. scenarios/published/set.yaml)" })
      .option("out", { type: "string", demandOption: true, describe: "suite directory (e.g. reports/published/<date>-<machine>/); created and probed before the runs" })
      .option("only", { type: "string", array: true, describe: "run only these scenario names" })
      .option("repeat", { type: "number", default: 1, describe: "passes over the set; the comparison shows each run's median pass" })
      .option("keep-hlog", { type: "boolean", default: false, describe: "keep the per-second .hlog files (large)" })
      .option("render-only", { type: "boolean", default: false, describe: "do not run; re-render compare.md/html from DIR" })
      .option("junit", { type: "string", describe: "also write every gate of every run as JUnit XML to this file (for CI)" })
      .option("summary-md", { type: "string", describe: "also write each run's headline and gates as Markdown to this file (a CI step summary)" })
      .option("quiet", { type: "boolean", default: false, describe: "no progress output from the runs" }) as unknown as Argv<SuiteCommandArgs>,
  handler: async (args) => {
    try {
      // Every output is proven writable before the first run starts.
      prepareOutputDir(args.out);
      if (args.junit !== undefined) prepareOutputFile(args.junit);
      if (args.summaryMd !== undefined) prepareOutputFile(args.summaryMd);
      const interrupt = new AbortController();
      const stopListening = onInterrupt(interrupt);
      let code: number;
      try {
        code = args.renderOnly ? 0 : await runSuite({ ...args, signal: interrupt.signal }, log);
      } finally {
        stopListening();
      }
      const { files, view } = writeSuiteComparison(args.out);
      for (const t of view.targets) log(`target ${t.met === null ? "NOT MEASURED" : t.met ? "met" : "MISSED"}: ${t.name} (ratio ${t.ratio === null ? "n/a" : t.ratio.toFixed(2)})`);
      log(`comparison: ${files.join(", ")}`);
      if (args.junit !== undefined || args.summaryMd !== undefined) {
        const { results, unreported } = suiteResults(args.out);
        if (args.junit !== undefined) writeFileSync(args.junit, renderJUnit(results, `ratatoskr bench-suite ${args.set}`, unreported));
        if (args.summaryMd !== undefined) writeFileSync(args.summaryMd, renderSummaryMarkdown(results, unreported));
      }
      process.exitCode = code;
    } catch (err) {
      process.stderr.write(`ratatoskr bench-suite: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = exitCodeFor(err);
    }
  },
};

/**
 * Ctrl-C: the running `bench` child gets the terminal's signal itself and writes its interrupted
 * report; no further run starts, and the comparison, JUnit and summary cover what ran (exit 130).
 * A second signal exits at once.
 */
function onInterrupt(controller: AbortController): () => void {
  const handler = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    process.stderr.write(`ratatoskr bench-suite: ${signal}: no further run starts; the comparison covers the runs so far (again to exit at once)\n`);
    controller.abort(signal);
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

/** The result of each run in the suite's manifest; runs that left none, with their exit code. */
function suiteResults(out: string): { results: RunResult[]; unreported: UnreportedRun[] } {
  const manifestFile = join(out, MANIFEST_FILE);
  if (!existsSync(manifestFile)) return { results: [], unreported: [] };
  const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as SuiteManifest;
  const results: RunResult[] = [];
  const unreported: UnreportedRun[] = [];
  for (const run of manifest.runs) {
    const dir = join(out, run.dir);
    if (existsSync(join(dir, "result.json"))) results.push(readResult(dir));
    else unreported.push({ name: `${run.scenario} (${run.label})`, message: `no result: \`${run.command}\` exited ${run.exitCode}` });
  }
  return { results, unreported };
}
