import type { Argv, CommandModule } from "yargs";
import { exitCodeFor, runSuite, writeSuiteComparison, type SuiteArgs } from "../loadgen/index.js";

interface SuiteCommandArgs extends SuiteArgs {
  renderOnly: boolean;
}

const log = (s: string) => process.stdout.write(`${s}\n`);

// `ratatoskr bench-suite <set.yaml> --out DIR`: run every scenario × driver of a set (each as
// its own `ratatoskr bench` child with its own embedded server), then write DIR/compare.md and
// DIR/compare.html side by side. Exit 0 = all runs held their gates, 1 = a gate failed,
// 2 = a run could not run or the set is invalid.
export const suiteCommand: CommandModule<object, SuiteCommandArgs> = {
  command: "bench-suite <set>",
  describe: "run a set of scenarios × drivers (ratatoskr, NATS, JetStream) and compare them side by side",
  builder: (y: Argv) =>
    y
      .positional("set", { type: "string", demandOption: true, describe: "set file (e.g. scenarios/published/set.yaml)" })
      .option("out", { type: "string", demandOption: true, describe: "suite directory (e.g. reports/published/<date>-<machine>/)" })
      .option("only", { type: "string", array: true, describe: "run only these scenario names" })
      .option("repeat", { type: "number", default: 1, describe: "passes over the set; the comparison shows each run's median pass" })
      .option("keep-hlog", { type: "boolean", default: false, describe: "keep the per-second .hlog files (large)" })
      .option("render-only", { type: "boolean", default: false, describe: "do not run; re-render compare.md/html from DIR" })
      .option("quiet", { type: "boolean", default: false, describe: "no progress output from the runs" }) as unknown as Argv<SuiteCommandArgs>,
  handler: async (args) => {
    try {
      const code = args.renderOnly ? 0 : await runSuite(args, log);
      const { files, view } = writeSuiteComparison(args.out);
      for (const t of view.targets) log(`target ${t.met === null ? "NOT MEASURED" : t.met ? "met" : "MISSED"}: ${t.name} (ratio ${t.ratio === null ? "n/a" : t.ratio.toFixed(2)})`);
      log(`comparison: ${files.join(", ")}`);
      process.exitCode = code;
    } catch (err) {
      process.stderr.write(`ratatoskr bench-suite: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = exitCodeFor(err);
    }
  },
};
