#!/usr/bin/env node
// The one `ratatoskr` binary. Each subcommand lives in its own module.
import yargs, { type CommandModule } from "yargs";
import { hideBin } from "yargs/helpers";
import { brokerCommand } from "./broker-command.js";
import { failUsage } from "./usage.js";

const args = hideBin(process.argv);

// `ratatoskr broker` loads the broker and nothing else: the other commands bring the load
// generator (drivers, peer clients, report charts), about 59 MiB of RSS and 2 s of start-up
// CPU that every broker process (the image, an embedded broker) would carry for nothing.
const others: CommandModule<object, never>[] =
  args[0] === "broker"
    ? []
    : await Promise.all([
        import("./bench-command.js").then((m) => m.benchCommand as CommandModule<object, never>),
        import("./calibrate-command.js").then((m) => m.calibrateCommand as CommandModule<object, never>),
        import("./report-command.js").then((m) => m.reportCommand as CommandModule<object, never>),
        import("./suite-command.js").then((m) => m.suiteCommand as CommandModule<object, never>),
      ]);

await yargs(args)
  .scriptName("ratatoskr")
  .command(brokerCommand)
  .command(others)
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
