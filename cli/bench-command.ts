import type { Argv, CommandModule } from "yargs";
import { DRIVER_NAMES, EXIT_OK, listCatalog, runBench, type BenchArgs } from "../loadgen/index.js";

interface BenchCommandArgs extends Omit<BenchArgs, "scenario"> {
  scenario?: string;
  list: boolean;
}

// `ratatoskr bench <scenario.yaml>`: run a scenario and write a report. Exit 0 = every gate
// held, 1 = a gate failed, 2 = anything to fix first (usage, scenario, output, broker), 130 =
// interrupted (the report is written, marked interrupted).
export const benchCommand: CommandModule<object, BenchCommandArgs> = {
  command: "bench [scenario]",
  describe: "run a load scenario against a broker and write a report (default: an embedded broker)",
  builder: (y: Argv) =>
    y
      .positional("scenario", { type: "string", describe: "scenario YAML file (see scenarios/, or --list)" })
      .option("list", { type: "boolean", default: false, describe: "list the scenarios in scenarios/ and the drivers, then exit" })
      .option("target", { type: "string", describe: "host:port of a running broker; omitted = start the reference broker as a child process" })
      .option("driver", { type: "string", choices: DRIVER_NAMES, describe: "override the scenario's driver" })
      .option("out", { type: "string", describe: "report directory (default reports/<scenario>-<timestamp>/); created and probed before the run" })
      .option("set", { type: "string", array: true, default: [] as string[], describe: "override a scenario field: --set rate=5000 --set broker.storage=durable" })
      .option("shard", { type: "string", describe: "run shard i of N (i/N, 0-based); sharding is by topic" })
      .option("run-id", { type: "string", describe: "names topics and subscriptions; shards of one run must share it (default: random, or 'shared' with --shard)" })
      .option("start-at", { type: "number", describe: "epoch ms at which producers start (to line shards up); at most 1 h past, 24 h ahead" })
      .option("workers", { type: "number", describe: "generator worker threads (producers and consumers on separate event loops); overrides the scenario's workers; default one per core, 1 = one process" })
      .option("connect-timeout", { type: "number", default: 10, describe: "seconds to reach the broker before failing (refused, not gRPC/NATS and TLS fail at once)" })
      .middleware((a) => {
        if (typeof a.connectTimeout === "number") a.connectTimeoutMs = a.connectTimeout * 1000;
      })
      .option("junit", { type: "string", describe: "also write every gate as a JUnit XML testcase to this file (for CI)" })
      .option("summary-md", { type: "string", describe: "also write the headline and gates as Markdown to this file (a CI step summary)" })
      .option("quiet", { type: "boolean", default: false, describe: "no progress output" })
      .check((a) => (a["list"] === true || typeof a["scenario"] === "string" ? true : "missing the scenario file: ratatoskr bench <scenario.yaml>")) as unknown as Argv<BenchCommandArgs>,
  handler: async (args) => {
    if (args.list) {
      for (const line of listCatalog()) process.stdout.write(`${line}\n`);
      process.exitCode = EXIT_OK;
      return;
    }
    const { list: _list, ...bench } = args;
    process.exitCode = await runBench({ ...bench, scenario: args.scenario! });
  },
};
