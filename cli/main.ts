#!/usr/bin/env node
// The one `ratatoskr` binary. Each subcommand lives in its own module.
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { brokerCommand } from "./broker-command.js";
import { benchCommand } from "./bench-command.js";
import { reportCommand } from "./report-command.js";
import { suiteCommand } from "./suite-command.js";

await yargs(hideBin(process.argv))
  .scriptName("ratatoskr")
  .command(brokerCommand)
  .command(benchCommand)
  .command(reportCommand)
  .command(suiteCommand)
  .demandCommand(1, "Name a command: broker, bench or report.")
  .strict()
  .help()
  .parseAsync();
