import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import yargs, { type Argv } from "yargs";
import { DEFAULT_CONFIG, type BrokerServerConfig } from "../broker/index.js";
import { httpGet, parseOpenMetrics, pollUntil, sampleValue, uniqueName, v1Api, v1Client, v1Subscribe } from "../test/support/index.js";
import { BROKER_SETTINGS, brokerCommand, resolveBrokerConfig } from "./broker-command.js";

// `ratatoskr broker` as other tools use it: a child process that prints the listening line,
// takes its settings from flags and RATATOSKR_* variables, and stops cleanly on SIGTERM.

const repo = join(import.meta.dirname, "..");
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

interface Cli {
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  stderr: () => string;
  exit: Promise<number | null>;
  /** Resolves with the address of the listening line, or rejects if the process exits first. */
  listening: Promise<string>;
}

function runCli(args: string[], env: Record<string, string> = {}): Cli {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("RATATOSKR_")));
  const proc = spawn(process.execPath, ["--import", "tsx", "cli/main.ts", "broker", ...args], {
    cwd: repo,
    env: { ...clean, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(proc);
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const lines: Array<Record<string, unknown>> = [];
  const exit = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        entry = { unparsed: line }; // stdout must be JSON lines only
      }
      lines.push(entry);
      if (entry["msg"] === "listening") resolve(String(entry["address"]));
    });
    void exit.then((code) => reject(new Error(`broker exited (${code}) before listening: ${err}`)));
  });
  listening.catch(() => undefined);
  return { proc, lines, stderr: () => err, exit, listening };
}

// Each case starts node + tsx (seconds on a busy machine), hence the long timeout.
describe("ratatoskr broker (CLI)", { timeout: 60_000 }, () => {
  it("prints the listening line, serves, and on SIGTERM ends open streams with UNAVAILABLE and exits 0", async () => {
    const cli = runCli(["--port", "0"]);
    const address = await cli.listening;
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(address).not.toBe("127.0.0.1:0");
    const client = v1Client(address);
    const api = v1Api(client);
    const topic = uniqueName("cli");
    await api.createTopic({ name: topic });
    const sub = await v1Subscribe(client, topic);

    cli.proc.kill("SIGTERM");
    const end = await sub.ended;
    expect(end.code).toBe(status.UNAVAILABLE);
    expect(await cli.exit).toBe(0);
    expect(cli.lines.map((l) => l["msg"])).toEqual(expect.arrayContaining(["listening", "shutting down", "stopped"]));
    expect(cli.lines.filter((l) => "unparsed" in l)).toEqual([]);
    client.close();
  });

  it("takes its settings from RATATOSKR_* variables, with flags winning", async () => {
    const cli = runCli(["--port", "0"], { RATATOSKR_PORT: "1", RATATOSKR_HOST: "127.0.0.1", RATATOSKR_MAX_MESSAGE_BYTES: "4096", RATATOSKR_LOG_LEVEL: "debug" });
    const address = await cli.listening; // port 1 from the environment lost to --port 0
    const client = v1Client(address);
    const api = v1Api(client);
    // The environment's 4 KiB limit is in force.
    expect((await api.publish({ topic: uniqueName(), payload: Buffer.alloc(1024), metadata: {} })).success).toBe(true);
    await expect(api.publish({ topic: uniqueName(), payload: Buffer.alloc(8192), metadata: {} })).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    client.close();
    cli.proc.kill("SIGINT");
    expect(await cli.exit).toBe(0);
  });

  it("exits non-zero with one clear line when the port is taken", async () => {
    const first = runCli(["--port", "0"]);
    const port = (await first.listening).split(":")[1]!;
    const second = runCli(["--port", port]);
    expect(await second.exit).toBe(1);
    expect(second.stderr().trim().split("\n")).toEqual([`ratatoskr broker: cannot start on 127.0.0.1:${port}: the address is already in use`]);
    first.proc.kill("SIGTERM");
    expect(await first.exit).toBe(0);
  });

  it("exits non-zero with one clear line on an unusable data directory", async () => {
    const cli = runCli(["--port", "0", "--data-dir", "/dev/null/not-a-directory"]);
    expect(await cli.exit).not.toBe(0);
    const lines = cli.stderr().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ratatoskr broker: cannot start on 127\.0\.0\.1:0: /);
  });

  it("refuses an invalid value with one line naming its source", async () => {
    const cli = runCli([], { RATATOSKR_PORT: "seventy" });
    expect(await cli.exit).toBe(2);
    expect(cli.stderr().trim()).toBe('ratatoskr broker: invalid configuration: RATATOSKR_PORT must be an integer in 0..65535; got "seventy"');
  });
});

describe("ratatoskr broker (CLI): what it says is what it does", { timeout: 60_000 }, () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("takes --fsync=1 as fsync on, and the listening line states the effective settings", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "ratatoskr-cli-"));
    dirs.push(dataDir);
    const cli = runCli(["--port", "0", "--data-dir", dataDir, "--fsync=1", "--disk-budget-bytes", "5000000", "--memory-budget-bytes=1000", "--max-message-bytes", "65536", "--v1-subscriber-buffer-bytes", "4096", "--heap-growth-percent", "100"]);
    await cli.listening;
    expect(cli.lines.find((l) => l["msg"] === "listening")).toMatchObject({
      store: "durable",
      fsync: true,
      dataDir,
      memoryBudgetBytes: 1000,
      diskBudgetBytes: 5_000_000,
      budgetBytes: 5_000_000,
      maxMessageBytes: 65536,
      v1SubscriberBufferBytes: 4096,
      heapGrowthPercent: 100,
    });
    cli.proc.kill("SIGTERM");
    expect(await cli.exit).toBe(0);
  });

  it("with --metrics-port 0 states the metrics URL on the listening line and serves it on 127.0.0.1 until SIGTERM", async () => {
    const cli = runCli(["--port", "0", "--metrics-port", "0"]);
    await cli.listening;
    const url = String(cli.lines.find((l) => l["msg"] === "listening")?.["metrics"]);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const scrape = await httpGet(url, { accept: "application/openmetrics-text" });
    expect(scrape.status).toBe(200);
    expect(sampleValue(parseOpenMetrics(scrape.body), "ratatoskr_topics")).toBe(0);
    cli.proc.kill("SIGTERM");
    expect(await cli.exit).toBe(0);
    await expect(httpGet(url)).rejects.toThrow(/ECONNREFUSED/);
  });

  it("states fsync off for the memory store, whatever --fsync says", async () => {
    const cli = runCli(["--port", "0", "--fsync"]);
    await cli.listening;
    expect(cli.lines.find((l) => l["msg"] === "listening")).toMatchObject({ store: "memory", fsync: false, dataDir: null });
    cli.proc.kill("SIGTERM");
    expect(await cli.exit).toBe(0);
  });

  it("refuses --fsync=maybe with one line naming the flag and the value, exit 2", async () => {
    const cli = runCli(["--port", "0", "--fsync=maybe"]);
    expect(await cli.exit).toBe(2);
    expect(cli.stderr().trim().split("\n")).toEqual(['ratatoskr broker: invalid configuration: --fsync must be true/false, 1/0, yes/no or on/off; got "maybe"']);
  });

  it("refuses a data directory under /proc at once, with one line", async () => {
    const cli = runCli(["--port", "0", "--data-dir", "/proc/x"]);
    expect(await cli.exit).toBe(1);
    expect(cli.stderr().trim().split("\n")).toEqual([
      "ratatoskr broker: cannot start on 127.0.0.1:0: cannot open data directory /proc/x: /proc/x is under /proc, a kernel pseudo-filesystem; use a directory on a real disk",
    ]);
  });

  it("keeps serving when its stdout is closed (| head -1), and still exits 0 on SIGTERM", async () => {
    const cli = runCli(["--port", "0", "--log-level", "debug"]);
    const address = await cli.listening;
    cli.proc.stdout!.destroy(); // the reader goes away, as `head -1` does after one line
    const client = v1Client(address);
    const api = v1Api(client);
    const topic = uniqueName("epipe");
    await api.createTopic({ name: topic });
    // A v1 Subscribe logs "v1 subscribed" at debug: a write into the closed pipe.
    const sub = await v1Subscribe(client, topic);
    await pollUntil(() => cli.stderr().includes("stdout is closed"), "the broker noticed its stdout closed");
    expect((await api.publish({ topic, payload: Buffer.from("still here"), metadata: {} })).success).toBe(true);
    cli.proc.kill("SIGTERM");
    expect((await sub.ended).code).toBe(status.UNAVAILABLE);
    expect(await cli.exit).toBe(0);
    expect(cli.stderr().trim().split("\n")).toEqual(["ratatoskr: stdout is closed (EPIPE); log lines are dropped from now on, the broker keeps serving"]);
    client.close();
  });
});

describe("broker flags and variables: one parser, the same spellings", () => {
  const builder = brokerCommand.builder as (y: Argv) => Argv;
  /** Through yargs, as the CLI parses it; the error message, or the value. */
  async function viaFlag(flag: string, key: string, value: string): Promise<unknown> {
    const argv = (await builder(yargs([`--${flag}=${value}`]).strict()).parseAsync()) as Record<string, unknown>;
    return outcome(() => resolveBrokerConfig(argv, {}), key);
  }
  function viaEnv(env: string, key: string, value: string): unknown {
    return outcome(() => resolveBrokerConfig({}, { [env]: value }), key);
  }
  function outcome(run: () => BrokerServerConfig, key: string): unknown {
    try {
      return (run() as unknown as Record<string, unknown>)[key];
    } catch (err) {
      return { refused: (err as Error).message };
    }
  }

  const booleans = BROKER_SETTINGS.filter((s) => s.kind === "boolean");
  const integers = BROKER_SETTINGS.filter((s) => s.kind === "integer");
  it("covers every boolean and integer setting", () => {
    expect(booleans.map((s) => s.flag)).toEqual(["fsync", "insecure"]);
    expect(integers.map((s) => s.flag)).toEqual(["port", "max-message-bytes", "memory-budget-bytes", "disk-budget-bytes", "v1-subscriber-buffer-bytes", "shutdown-grace-ms", "heap-growth-percent", "max-message-id-bytes", "max-attributes", "max-attribute-key-bytes", "max-attribute-value-bytes", "max-dedup-entries", "disk-reserve-bytes",
      "outbound-budget-bytes", "stream-outbound-bytes", "consumer-stuck-timeout-ms", "max-topics", "max-subscriptions", "max-subscriptions-per-topic",
      "max-consumers-per-subscription", "max-connections", "max-streams-per-connection", "handshake-timeout-ms", "idle-connection-timeout-ms",
      "message-receive-timeout-ms", "metrics-port"]);
  });

  const TRUE = ["true", "TRUE", "True", "1", "yes", "YES", "on", "On", " on "];
  const FALSE = ["false", "FALSE", "0", "no", "No", "off", "OFF"];
  const NOT_BOOLEAN = ["maybe", "2", "y", "n", "t", "enabled", "-1", "1.0", "truee"];
  for (const s of booleans) {
    it.each(TRUE.map((v) => [v, true]).concat(FALSE.map((v) => [v, false])))(`--${s.flag}=%j and ${s.env} alike mean %s`, async (v, expected) => {
      expect(await viaFlag(s.flag, s.key, v as string)).toBe(expected);
      expect(viaEnv(s.env, s.key, v as string)).toBe(expected);
    });
    it.each(NOT_BOOLEAN)(`refuses --${s.flag}=%j and the same in ${s.env}, naming each`, async (v) => {
      expect(await viaFlag(s.flag, s.key, v)).toEqual({ refused: `--${s.flag} must be true/false, 1/0, yes/no or on/off; got ${JSON.stringify(v)}` });
      expect(viaEnv(s.env, s.key, v)).toEqual({ refused: `${s.env} must be true/false, 1/0, yes/no or on/off; got ${JSON.stringify(v)}` });
    });
    it(`takes a bare --${s.flag} as true and --no-${s.flag} as false, over the variable`, async () => {
      const bare = (await builder(yargs([`--${s.flag}`, "--port", "0"])).parseAsync()) as Record<string, unknown>;
      expect(outcome(() => resolveBrokerConfig(bare, { [s.env]: "false" }), s.key)).toBe(true);
      const negated = (await builder(yargs([`--no-${s.flag}`])).parseAsync()) as Record<string, unknown>;
      expect(outcome(() => resolveBrokerConfig(negated, { [s.env]: "true" }), s.key)).toBe(false);
    });
  }

  for (const s of integers) {
    const min = s.min ?? 0;
    const max = s.max ?? Number.MAX_SAFE_INTEGER;
    const accepted: Array<[string, number]> = [[String(min), min], [String(max), max], [" 4096 ", 4096], ["04096", 4096]];
    it.each(accepted)(`--${s.flag}=%j and ${s.env} alike give %d`, async (v, expected) => {
      expect(await viaFlag(s.flag, s.key, v)).toBe(expected);
      expect(viaEnv(s.env, s.key, v)).toBe(expected);
    });
    const refused = ["1e3", "0x10", "12abc", "1.5", "4096.0", "+5", "Infinity", "NaN", "one", String(min - 1), String(max + 1), "99999999999999999999"];
    it.each(refused)(`refuses --${s.flag}=%j and the same in ${s.env}, naming each`, async (v) => {
      const range = `${min}..${max}`;
      expect(await viaFlag(s.flag, s.key, v)).toEqual({ refused: `--${s.flag} must be an integer in ${range}; got ${JSON.stringify(v)}` });
      expect(viaEnv(s.env, s.key, v)).toEqual({ refused: `${s.env} must be an integer in ${range}; got ${JSON.stringify(v)}` });
    });
    it(`refuses a bare --${s.flag}, --no-${s.flag} and --${s.flag} given twice`, async () => {
      const parse = async (args: string[]): Promise<unknown> => outcome(() => resolveBrokerConfig(builder(yargs(args)).parseSync() as Record<string, unknown>, {}), s.key);
      expect(await parse([`--${s.flag}`])).toEqual({ refused: `--${s.flag} must be an integer in ${min}..${max}; got ""` });
      expect(await parse([`--no-${s.flag}`])).toEqual({ refused: `--no-${s.flag} is not a setting; give --${s.flag} a value` });
      expect(await parse([`--${s.flag}=1`, `--${s.flag}=2`])).toEqual({ refused: `--${s.flag} is given more than once` });
    });
  }
});

describe("resolveBrokerConfig", () => {
  it("uses the defaults when nothing is set", () => {
    expect(resolveBrokerConfig({}, {})).toEqual(DEFAULT_CONFIG);
  });

  it("reads every RATATOSKR_* variable", () => {
    const config = resolveBrokerConfig(
      {},
      {
        RATATOSKR_HOST: "::1",
        RATATOSKR_PORT: "7000",
        RATATOSKR_MAX_MESSAGE_BYTES: "100000",
        RATATOSKR_LOG_LEVEL: "warn",
        RATATOSKR_DATA_DIR: "/var/lib/ratatoskr",
        RATATOSKR_FSYNC: "true",
        RATATOSKR_MEMORY_BUDGET_BYTES: "0",
        RATATOSKR_DISK_BUDGET_BYTES: "5000",
        RATATOSKR_V1_SUBSCRIBER_BUFFER_BYTES: "65536",
        RATATOSKR_SHUTDOWN_GRACE_MS: "100",
        RATATOSKR_HEAP_GROWTH_PERCENT: "100",
        RATATOSKR_MAX_MESSAGE_ID_BYTES: "64",
        RATATOSKR_MAX_ATTRIBUTES: "10",
        RATATOSKR_MAX_ATTRIBUTE_KEY_BYTES: "32",
        RATATOSKR_MAX_ATTRIBUTE_VALUE_BYTES: "256",
        RATATOSKR_MAX_DEDUP_ENTRIES: "1000",
        RATATOSKR_DISK_RESERVE_BYTES: "0",
        RATATOSKR_METRICS_PORT: "9100",
        RATATOSKR_METRICS_HOST: "::1",
        RATATOSKR_TLS_CERT: "/etc/r/server.crt",
        RATATOSKR_TLS_KEY: "/etc/r/server.key",
        RATATOSKR_TLS_CLIENT_CA: "/etc/r/ca.crt",
        RATATOSKR_TOKEN_FILE: "/etc/r/tokens.json",
        RATATOSKR_INSECURE: "yes",
        RATATOSKR_OUTBOUND_BUDGET_BYTES: "1001",
        RATATOSKR_STREAM_OUTBOUND_BYTES: "1002",
        RATATOSKR_CONSUMER_STUCK_TIMEOUT_MS: "1003",
        RATATOSKR_MAX_TOPICS: "1004",
        RATATOSKR_MAX_SUBSCRIPTIONS: "1005",
        RATATOSKR_MAX_SUBSCRIPTIONS_PER_TOPIC: "1006",
        RATATOSKR_MAX_CONSUMERS_PER_SUBSCRIPTION: "1007",
        RATATOSKR_MAX_CONNECTIONS: "1008",
        RATATOSKR_MAX_STREAMS_PER_CONNECTION: "1009",
        RATATOSKR_HANDSHAKE_TIMEOUT_MS: "1010",
        RATATOSKR_IDLE_CONNECTION_TIMEOUT_MS: "1011",
        RATATOSKR_MESSAGE_RECEIVE_TIMEOUT_MS: "1012",
      },
    );
    expect(config).toEqual({
      host: "::1",
      port: 7000,
      maxMessageBytes: 100000,
      logLevel: "warn",
      dataDir: "/var/lib/ratatoskr",
      fsync: true,
      memoryBudgetBytes: 0,
      diskBudgetBytes: 5000,
      v1SubscriberBufferBytes: 65536,
      shutdownGraceMs: 100,
      heapGrowthPercent: 100,
      maxMessageIdBytes: 64,
      maxAttributes: 10,
      maxAttributeKeyBytes: 32,
      maxAttributeValueBytes: 256,
      maxDedupEntries: 1000,
      diskReserveBytes: 0,
      metricsPort: 9100,
      metricsHost: "::1",
      tlsCertFile: "/etc/r/server.crt",
      tlsKeyFile: "/etc/r/server.key",
      tlsClientCaFile: "/etc/r/ca.crt",
      tokenFile: "/etc/r/tokens.json",
      insecure: true,
      outboundBudgetBytes: 1001,
      streamOutboundBytes: 1002,
      consumerStuckTimeoutMs: 1003,
      maxTopics: 1004,
      maxSubscriptions: 1005,
      maxSubscriptionsPerTopic: 1006,
      maxConsumersPerSubscription: 1007,
      maxConnections: 1008,
      maxStreamsPerConnection: 1009,
      handshakeTimeoutMs: 1010,
      idleConnectionTimeoutMs: 1011,
      messageReceiveTimeoutMs: 1012,
    });
  });

  it("refuses a --max-message-bytes that leaves no room for a message after the delivery reserve", () => {
    expect(() => resolveBrokerConfig({ "max-message-bytes": "4096", "max-message-id-bytes": "4096" }, {})).toThrow(/--max-message-bytes 4096 leaves 0 bytes per message after the 5154-byte reserve/);
    expect(() => resolveBrokerConfig({}, { RATATOSKR_MAX_MESSAGE_BYTES: "4500", RATATOSKR_MAX_MESSAGE_ID_BYTES: "2500" })).toThrow(/--max-message-bytes 4500 leaves 942 bytes per message.*give at least 4582/);
    expect(resolveBrokerConfig({ "max-message-bytes": "4096", "max-message-id-bytes": "36" }, {}).maxMessageBytes).toBe(4096);
  });

  it("sees unset flags as unset after yargs parsing, so the environment applies (including --fsync)", async () => {
    const builder = brokerCommand.builder as (y: Argv) => Argv;
    const argv = (await builder(yargs(["--port", "0"])).parseAsync()) as Record<string, unknown>;
    const config = resolveBrokerConfig(argv, { RATATOSKR_FSYNC: "true", RATATOSKR_PORT: "9", RATATOSKR_DATA_DIR: "/d" });
    expect(config).toMatchObject({ fsync: true, port: 0, dataDir: "/d" });
  });

  it("lets flags win over the environment", () => {
    const config = resolveBrokerConfig({ port: "0", fsync: false, "log-level": "error" }, { RATATOSKR_PORT: "9", RATATOSKR_FSYNC: "1", RATATOSKR_LOG_LEVEL: "debug" });
    expect(config).toMatchObject({ port: 0, fsync: false, logLevel: "error" });
  });

  it.each([
    [{ port: "65536" }, {}, /--port must be an integer in 0\.\.65535/],
    [{ port: "1.5" }, {}, /--port must be an integer/],
    [{ "max-message-bytes": "0" }, {}, /--max-message-bytes must be an integer in 4096\.\./],
    [{}, { RATATOSKR_FSYNC: "maybe" }, /RATATOSKR_FSYNC must be true\/false, 1\/0, yes\/no or on\/off; got "maybe"/],
    [{}, { RATATOSKR_LOG_LEVEL: "loud" }, /RATATOSKR_LOG_LEVEL must be one of debug, info, warn, error, silent/],
    [{ host: " " }, {}, /--host must not be empty/],
  ])("refuses %j %j", (flags, env, message) => {
    expect(() => resolveBrokerConfig(flags, env)).toThrow(message);
  });
});
