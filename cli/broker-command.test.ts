import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import yargs, { type Argv } from "yargs";
import { DEFAULT_CONFIG } from "../broker/index.js";
import { uniqueName, v1Api, v1Client, v1Subscribe } from "../test/support/index.js";
import { brokerCommand, resolveBrokerConfig } from "./broker-command.js";

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
        RATATOSKR_MAX_MESSAGE_BYTES: "1000",
        RATATOSKR_LOG_LEVEL: "warn",
        RATATOSKR_DATA_DIR: "/var/lib/ratatoskr",
        RATATOSKR_FSYNC: "true",
        RATATOSKR_MEMORY_BUDGET_BYTES: "0",
        RATATOSKR_DISK_BUDGET_BYTES: "5000",
        RATATOSKR_V1_SUBSCRIBER_BUFFER_BYTES: "65536",
        RATATOSKR_SHUTDOWN_GRACE_MS: "100",
      },
    );
    expect(config).toEqual({
      host: "::1",
      port: 7000,
      maxMessageBytes: 1000,
      logLevel: "warn",
      dataDir: "/var/lib/ratatoskr",
      fsync: true,
      memoryBudgetBytes: 0,
      diskBudgetBytes: 5000,
      v1SubscriberBufferBytes: 65536,
      shutdownGraceMs: 100,
    });
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
    [{ "max-message-bytes": "0" }, {}, /--max-message-bytes must be an integer in 1\.\./],
    [{}, { RATATOSKR_FSYNC: "maybe" }, /RATATOSKR_FSYNC must be true or false/],
    [{}, { RATATOSKR_LOG_LEVEL: "loud" }, /RATATOSKR_LOG_LEVEL must be one of debug, info, warn, error, silent/],
    [{ host: " " }, {}, /--host must not be empty/],
  ])("refuses %j %j", (flags, env, message) => {
    expect(() => resolveBrokerConfig(flags, env)).toThrow(message);
  });
});
