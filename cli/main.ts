#!/usr/bin/env node
// The one `ratatoskr` binary. Each subcommand lives in its own module.
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { brokerCommand } from "./broker-command.js";
import { benchCommand } from "./bench-command.js";
import { calibrateCommand } from "./calibrate-command.js";
import { reportCommand } from "./report-command.js";
import { suiteCommand } from "./suite-command.js";
import { failUsage } from "./usage.js";

const args = hideBin(process.argv);

await yargs(args)
  .scriptName("ratatoskr")
  .command(brokerCommand)
  .command(benchCommand)
  .command(calibrateCommand)
  .command(reportCommand)
  .command(suiteCommand)
  .demandCommand(1, "name a command: broker, bench, bench-suite, calibrate or report")
  .strict()
  .help()
  // A usage error (unknown flag, missing positional, a --driver that is not registered, ...)
  // exits 2 like every other could-not-run, with one line; exit 1 means a gate failed. The
  // handlers catch their own errors; one that escapes is reported the same way, never as exit 1.
  .fail((msg: string | null, err: Error | undefined) => {
    failUsage(args, msg ?? err?.message ?? "invalid command line");
  })
  .parseAsync();
