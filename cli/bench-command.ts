import { readFileSync } from "node:fs";
import type { Argv, CommandModule } from "yargs";
import { DRIVER_NAMES, EXIT_BAD_INPUT, EXIT_OK, listCatalog, runBench, setGeneratorHeapGrowth, type BenchArgs } from "../loadgen/index.js";

interface BenchCommandArgs extends Omit<BenchArgs, "scenario" | "tls" | "token"> {
  scenario?: string;
  list: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
  token?: string;
  tokenFile?: string;
}

/** The TLS files and token of the command line; throws an Error naming the flag. */
export function securityFlags(a: Pick<BenchCommandArgs, "tlsCa" | "tlsCert" | "tlsKey" | "tlsServerName" | "token" | "tokenFile">): Pick<BenchArgs, "tls" | "token"> {
  const out: Pick<BenchArgs, "tls" | "token"> = {};
  if (a.tlsCa !== undefined || a.tlsCert !== undefined || a.tlsKey !== undefined || a.tlsServerName !== undefined) {
    if ((a.tlsCert === undefined) !== (a.tlsKey === undefined)) throw new Error("--tls-cert and --tls-key go together (a client certificate needs its key)");
    out.tls = {
      ...(a.tlsCa !== undefined ? { caFile: a.tlsCa } : {}),
      ...(a.tlsCert !== undefined ? { certFile: a.tlsCert } : {}),
      ...(a.tlsKey !== undefined ? { keyFile: a.tlsKey } : {}),
      ...(a.tlsServerName !== undefined ? { serverName: a.tlsServerName } : {}),
    };
  }
  if (a.token !== undefined && a.tokenFile !== undefined) throw new Error("give --token or --token-file, not both");
  if (a.token !== undefined) {
    if (a.token.trim() === "") throw new Error("--token must not be empty");
    out.token = a.token;
  }
  if (a.tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(a.tokenFile, "utf8");
    } catch (err) {
      throw new Error(`--token-file ${a.tokenFile}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const token = text.trim();
    if (token === "" || /\s/.test(token)) throw new Error(`--token-file ${a.tokenFile}: expected one token (a single line without spaces)`);
    out.token = token;
  }
  return out;
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
      .option("tls-ca", { type: "string", describe: "--target: PEM CA bundle to verify the broker's certificate (speaks TLS; default roots: the system's)" })
      .option("tls-cert", { type: "string", describe: "--target: PEM client certificate (mTLS; with --tls-key)" })
      .option("tls-key", { type: "string", describe: "--target: PEM private key of --tls-cert" })
      .option("tls-server-name", { type: "string", describe: "--target: the name the broker's certificate must carry, when not the target's host" })
      .option("token", { type: "string", describe: "--target: bearer token (gRPC authorization metadata, NATS connect token)" })
      .option("token-file", { type: "string", describe: "--target: read the bearer token from this file (one line)" })
      .option("broker-metrics", { type: "string", describe: "--target: the broker's Prometheus endpoint (http://host:port/metrics), read for its CPU and RSS" })
      .option("junit", { type: "string", describe: "also write every gate as a JUnit XML testcase to this file (for CI)" })
      .option("summary-md", { type: "string", describe: "also write the headline and gates as Markdown to this file (a CI step summary)" })
      .option("quiet", { type: "boolean", default: false, describe: "no progress output" })
      .check((a) => (a["list"] === true || typeof a["scenario"] === "string" ? true : "missing the scenario file: ratatoskr bench <scenario.yaml>")) as unknown as Argv<BenchCommandArgs>,
  handler: async (args) => {
    // The generator's own heap growth (docs/loadgen.md, "Garbage collection in the generator"), recorded in result.json.
    setGeneratorHeapGrowth();
    if (args.list) {
      for (const line of listCatalog()) process.stdout.write(`${line}\n`);
      process.exitCode = EXIT_OK;
      return;
    }
    const { list: _list, tlsCa: _ca, tlsCert: _cert, tlsKey: _key, tlsServerName: _name, token: _token, tokenFile: _file, ...bench } = args;
    let security: Pick<BenchArgs, "tls" | "token">;
    try {
      security = securityFlags(args);
    } catch (err) {
      process.stderr.write(`ratatoskr bench: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = EXIT_BAD_INPUT;
      return;
    }
    process.exitCode = await runBench({ ...bench, ...security, scenario: args.scenario! });
  },
};
