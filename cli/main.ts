#!/usr/bin/env node
// The one `ratatoskr` binary. Each subcommand lives in its own module.
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { brokerCommand } from "./broker-command.js";
import { benchCommand } from "./bench-command.js";
import { reportCommand } from "./report-command.js";
import { suiteCommand } from "./suite-command.js";
import { EXIT_BAD_INPUT } from "../loadgen/index.js";

await yargs(hideBin(process.argv))
  .scriptName("ratatoskr")
  .command(brokerCommand)
  .command(benchCommand)
  .command(reportCommand)
  .command(suiteCommand)
  .demandCommand(1, "Name a command: broker, bench or report.")
  .strict()
  .help()
  // A usage error (unknown flag, a --driver that is not registered, ...) exits 2 like every
  // other could-not-run; exit 1 means a gate failed. Errors that are not usage errors surface.
  .fail((msg, err, y) => {
    if (err) throw err;
    y.showHelp();
    process.stderr.write(`\n${msg}\n`);
    process.exit(EXIT_BAD_INPUT);
  })
  .parseAsync();
