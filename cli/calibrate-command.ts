import type { Argv, CommandModule } from "yargs";
import { DRIVER_NAMES, EXIT_OK, exitCodeFor, runCalibration } from "../loadgen/index.js";

interface CalibrateCommandArgs {
  scenario: string;
  driver?: string;
  target?: string;
  set: string[];
  passes: number;
  benchArg: string[];
  out?: string;
}

// `ratatoskr calibrate <scenario.yaml>`: the bare client against the harness for the scenario's
// driver, alternating on one server (loadgen/calibrate.ts). Exit 0 when every run completed,
// 2 when one could not run.
export const calibrateCommand: CommandModule<object, CalibrateCommandArgs> = {
  command: "calibrate <scenario>",
  describe: "measure the harness against a bare client (same connections, sizes, batches; no accounting) for the scenario's driver",
  builder: (y: Argv) =>
    y
      .positional("scenario", { type: "string", demandOption: true, describe: "scenario YAML file with a message count (messages:)" })
      .option("driver", { type: "string", choices: DRIVER_NAMES, describe: "override the scenario's driver" })
      .option("target", { type: "string", describe: "host:port of a running server; omitted = start the driver's embedded server once for all runs" })
      .option("set", { type: "string", array: true, default: [] as string[], describe: "override a scenario field, for both the bare and the harness runs" })
      .option("passes", { type: "number", default: 3, describe: "bare + harness pairs, alternating which runs first" })
      .option("bench-arg", { type: "string", array: true, default: [] as string[], describe: "an extra argument for each harness run, repeatable (e.g. --bench-arg=--workers --bench-arg=2)" })
      .option("out", { type: "string", describe: "JSON file for the figures (default calibrate-<scenario>-<driver>.json)" }) as unknown as Argv<CalibrateCommandArgs>,
  handler: async (args) => {
    try {
      await runCalibration({ scenario: args.scenario, driver: args.driver, target: args.target, set: args.set, passes: args.passes, benchArgs: args.benchArg, out: args.out });
      process.exitCode = EXIT_OK;
    } catch (err) {
      process.stderr.write(`ratatoskr calibrate: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = exitCodeFor(err);
    }
  },
};
