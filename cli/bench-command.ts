import type { Argv, CommandModule } from "yargs";
import { DRIVER_NAMES, runBench, type BenchArgs } from "../loadgen/index.js";

// `ratatoskr bench <scenario.yaml>`: run a scenario and write a report. Exit 0 = every gate
// held, 1 = a gate failed, 2 = bad scenario / usage / unreachable broker.
export const benchCommand: CommandModule<object, BenchArgs> = {
  command: "bench <scenario>",
  describe: "run a load scenario against a broker and write a report (default: an embedded broker)",
  builder: (y: Argv) =>
    y
      .positional("scenario", { type: "string", demandOption: true, describe: "scenario YAML file (see scenarios/)" })
      .option("target", { type: "string", describe: "host:port of a running broker; omitted = start the reference broker as a child process" })
      .option("driver", { type: "string", choices: DRIVER_NAMES, describe: "override the scenario's driver" })
      .option("out", { type: "string", describe: "report directory (default reports/<scenario>-<timestamp>/)" })
      .option("set", { type: "string", array: true, default: [] as string[], describe: "override a scenario field: --set rate=5000 --set broker.storage=durable" })
      .option("shard", { type: "string", describe: "run shard i of N (i/N, 0-based); sharding is by topic" })
      .option("run-id", { type: "string", describe: "names topics and subscriptions; shards of one run must share it (default: random, or 'shared' with --shard)" })
      .option("start-at", { type: "number", describe: "epoch ms at which producers start (to line shards up)" })
      .option("connect-timeout", { type: "number", default: 10, describe: "seconds to reach the broker before failing (refused, not gRPC/NATS and TLS fail at once)" })
      .middleware((a) => {
        if (typeof a.connectTimeout === "number") a.connectTimeoutMs = a.connectTimeout * 1000;
      })
      .option("quiet", { type: "boolean", default: false, describe: "no progress output" }) as unknown as Argv<BenchArgs>,
  handler: async (args) => {
    process.exitCode = await runBench(args);
  },
};
