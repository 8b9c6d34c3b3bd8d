/**
 * The embedded RabbitMQ: Debian's `rabbitmq-server` (a shell script that starts the Erlang VM,
 * beam.smp) as a child process, with every listener on 127.0.0.1:
 * - AMQP: RABBITMQ_NODE_IP_ADDRESS=127.0.0.1, RABBITMQ_NODE_PORT=<free port>;
 * - the Erlang distribution port: RABBITMQ_DIST_PORT=<free port> and `-kernel
 *   inet_dist_use_interface {127,0,0,1}` (without it the VM binds 0.0.0.0);
 * - epmd, the Erlang port mapper, is a separate daemon that would outlive the server: this module
 *   starts its own `epmd -address 127.0.0.1 -port <free port>` in the foreground first (so the VM
 *   finds it running and never daemonises another) and stops it by PID after the server.
 * A unique node name, a temporary directory for the database, logs, config, cookie ($HOME) and an
 * empty enabled-plugins file (no management plugin, no other listener). Ready once a real AMQP
 * connection opens; stopped with SIGTERM to the script (which stops the VM), SIGKILL after a grace
 * period, then epmd. On a failed start the server's log is copied to `logDir` when given. CPU and
 * RSS come from /proc of beam.smp (`pid`), not of the script (`scriptPid`).
 * Ports are found free by binding port 0 and closing; another process can take one in between,
 * so a start that fails to listen is retried on fresh ports (START_ATTEMPTS times).
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as amqpConnect } from "amqplib";
import { systemClock } from "../clock.js";
import { BrokerUnreachableError } from "../errors.js";
import type { EmbeddedBroker, EmbeddedServerSpec } from "./driver.js";
import { freeLoopbackPort } from "./peer-server.js";
import { stopChild } from "./process-signals.js";

export const RABBITMQ_SERVER_BINARY = "/usr/lib/rabbitmq/bin/rabbitmq-server";
export const RABBITMQ_INSTALL_HINT = "install it with `apt-get install -y rabbitmq-server` (Debian package rabbitmq-server), or pass --target host:port of a running server";
const START_ATTEMPTS = 3;

/** Raised when rabbitmq-server or epmd is not installed. */
export class RabbitMqServerMissingError extends BrokerUnreachableError {
  constructor(missing: string) {
    super("embedded rabbitmq-server", `${missing} was not found; ${RABBITMQ_INSTALL_HINT}`);
  }
}

export interface RabbitMqServerOptions {
  /** The rabbitmq-server script (default RABBITMQ_SERVER_BINARY). */
  binary?: string;
  /** The epmd binary (default: epmd on PATH, /usr/bin/epmd). */
  epmd?: string;
  /** Deadline for the first AMQP connection. */
  timeoutMs?: number;
  /** Where the server's logs are copied when it fails to start (e.g. the report folder). */
  logDir?: string;
}

export interface EmbeddedRabbitMq extends EmbeddedBroker {
  /** beam.smp, the Erlang VM: the process whose CPU and RSS are the broker's. */
  pid: number;
  /** The rabbitmq-server script that was spawned (SIGTERM to it stops the VM). */
  scriptPid: number;
  epmdPid: number;
  epmdPort: number;
  distPort: number;
  nodeName: string;
  /** e.g. "3.10.8" */
  version: string;
  baseDir: string;
  /** The AMQP URL (guest/guest: the default user may log in from loopback). */
  url: string;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The rabbitmq-server script and epmd, or throws RabbitMqServerMissingError naming the package. */
export function findRabbitMqServer(binary = RABBITMQ_SERVER_BINARY, epmd?: string): { binary: string; epmd: string } {
  if (!executable(binary)) throw new RabbitMqServerMissingError(binary);
  const candidates = epmd !== undefined ? [epmd] : [...(process.env.PATH ?? "").split(":").filter((d) => d !== "").map((d) => join(d, "epmd")), "/usr/bin/epmd"];
  const found = candidates.find(executable);
  if (!found) throw new RabbitMqServerMissingError("epmd (Erlang, a dependency of rabbitmq-server)");
  return { binary, epmd: found };
}

/** The installed version, read from the release folder next to the script ("3.10.8"), or "unknown". */
export function rabbitMqVersion(binary = RABBITMQ_SERVER_BINARY): string {
  try {
    const lib = join(binary, "..", "..", "lib");
    const release = readdirSync(lib).find((d) => d.startsWith("rabbitmq_server-"));
    return release ? release.slice("rabbitmq_server-".length) : "unknown";
  } catch {
    return "unknown";
  }
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port, rejects at the deadline. */
async function waitForTcp(port: number, deadline: number, alive: () => string | undefined): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = tcpConnect({ host: "127.0.0.1", port });
      sock.once("connect", () => (sock.destroy(), resolve(true)));
      sock.once("error", () => resolve(false));
    });
    if (ok) return;
    const dead = alive();
    if (dead) throw new Error(dead);
    if (systemClock.wallMs() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 50)); // polling a port that is not open yet: no event to wait on
  }
}

/** The beam.smp child of the script (the script forks it as a background job). */
function beamPid(scriptPid: number): number | undefined {
  try {
    const children = readFileSync(`/proc/${scriptPid}/task/${scriptPid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    for (const c of children) {
      const comm = readFileSync(`/proc/${c}/comm`, "utf8").trim();
      if (comm.startsWith("beam")) return c;
    }
  } catch {
    // gone
  }
  return undefined;
}

export async function startRabbitMqServer(options: RabbitMqServerOptions = {}): Promise<EmbeddedRabbitMq> {
  const { binary, epmd } = findRabbitMqServer(options.binary, options.epmd);
  let last: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    try {
      return await startOnce(binary, epmd, options);
    } catch (err) {
      last = err;
      if (!(err instanceof PortTakenError)) throw err;
    }
  }
  throw last;
}

class PortTakenError extends BrokerUnreachableError {}

async function startOnce(binary: string, epmdBinary: string, options: RabbitMqServerOptions): Promise<EmbeddedRabbitMq> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = systemClock.wallMs() + timeoutMs;
  const version = rabbitMqVersion(binary);
  const baseDir = mkdtempSync(join(tmpdir(), "ratatoskr-rabbitmq-"));
  const [amqpPort, distPort, epmdPort] = [await freeLoopbackPort(), await freeLoopbackPort(), await freeLoopbackPort()];
  const nodeName = `ratatoskr-${amqpPort}-${process.pid}@localhost`;
  writeFileSync(join(baseDir, "enabled_plugins"), "[].\n");
  writeFileSync(join(baseDir, "rabbitmq-env.conf"), "");
  // guest may log in from loopback only, which is where the clients are.
  writeFileSync(join(baseDir, "rabbitmq.conf"), "log.console = true\nlog.console.level = warning\nlog.file.level = info\n");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: baseDir, // the Erlang cookie is written here, not to the user's home
    LANG: "C.UTF-8",
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
    RABBITMQ_NODE_PORT: String(amqpPort),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(baseDir, "mnesia"),
    RABBITMQ_LOG_BASE: join(baseDir, "log"),
    RABBITMQ_CONF_ENV_FILE: join(baseDir, "rabbitmq-env.conf"),
    RABBITMQ_CONFIG_FILE: join(baseDir, "rabbitmq"),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(baseDir, "advanced.config"),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(baseDir, "enabled_plugins"),
    RABBITMQ_PID_FILE: join(baseDir, "rabbitmq.pid"),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
    ERL_EPMD_ADDRESS: "127.0.0.1",
    ERL_EPMD_PORT: String(epmdPort),
  };
  let log = "";
  const keep = (d: Buffer): void => void (log = (log + d.toString("utf8")).slice(-8000));

  // epmd first, in the foreground (no -daemon): its PID is ours to stop.
  const epmdArgs = ["-address", "127.0.0.1", "-port", String(epmdPort)];
  const epmd = spawn(epmdBinary, epmdArgs, { stdio: ["ignore", "ignore", "pipe"], detached: true, env });
  epmd.stderr!.on("data", keep);
  // Set once the script is spawned; teardown (defined first, used by every failure) reads it.
  const started: { server?: ChildProcess } = {};
  const exited = (c: ChildProcess | undefined, what: string): string | undefined =>
    c && (c.exitCode !== null || c.signalCode !== null) ? `${what} exited (code ${c.exitCode}, signal ${c.signalCode})` : undefined;
  const teardown = async (): Promise<void> => {
    const server = started.server;
    if (server) {
      const beam = beamPid(server.pid!);
      await stopChild(server, 15_000);
      // The script waits for the VM; if it had to be killed, the VM may still run: end it by PID.
      if (beam !== undefined && alive(beam)) {
        process.kill(beam, "SIGKILL");
        await waitUntilGone(beam);
      }
    }
    await stopChild(epmd, 15_000);
  };
  const fail = async (why: string, cause?: unknown): Promise<never> => {
    await teardown();
    // The logs stay: copied to logDir, or left in the temporary folder (its database removed).
    const logs = saveLogs(baseDir, options.logDir) ?? join(baseDir, "log");
    if (logs === join(baseDir, "log")) rmSync(join(baseDir, "mnesia"), { recursive: true, force: true });
    else rmSync(baseDir, { recursive: true, force: true });
    const text = `${why}; logs kept in ${logs}${log ? `; output: ${log.trim().slice(-1500)}` : ""}`;
    if (/eaddrinuse|address already in use/i.test(log)) throw new PortTakenError("embedded rabbitmq-server", text, { cause });
    throw new BrokerUnreachableError("embedded rabbitmq-server", text, { cause });
  };
  try {
    await waitForTcp(epmdPort, deadline, () => exited(epmd, "epmd"));
  } catch (err) {
    return fail(`epmd did not start: ${(err as Error).message}`, err);
  }

  const server = spawn(binary, [], { stdio: ["ignore", "pipe", "pipe"], detached: true, env });
  started.server = server;
  server.stdout!.on("data", keep);
  server.stderr!.on("data", keep);
  const url = `amqp://guest:guest@127.0.0.1:${amqpPort}`;
  try {
    await waitForTcp(amqpPort, deadline, () => exited(server, "rabbitmq-server") ?? exited(epmd, "epmd"));
    // Readiness is a real AMQP connection (the port opens before the node accepts logins).
    for (;;) {
      try {
        const conn = await amqpConnect(url, { timeout: 5000 });
        await conn.close();
        break;
      } catch (err) {
        const dead = exited(server, "rabbitmq-server");
        if (dead) throw new Error(dead, { cause: err });
        if (systemClock.wallMs() > deadline) throw new Error(`no AMQP connection within ${timeoutMs} ms: ${(err as Error).message}`, { cause: err });
        await new Promise((r) => setTimeout(r, 100)); // the node is still booting; no event to wait on
      }
    }
  } catch (err) {
    return fail((err as Error).message, err);
  }
  const beam = beamPid(server.pid!);
  if (beam === undefined) return fail(`no beam.smp process under the rabbitmq-server script (pid ${server.pid})`);
  const script = server;
  return {
    address: `127.0.0.1:${amqpPort}`,
    url,
    pid: beam,
    scriptPid: script.pid!,
    epmdPid: epmd.pid!,
    epmdPort,
    distPort,
    nodeName,
    version,
    baseDir,
    dataDir: join(baseDir, "mnesia"),
    args: [binary, `RABBITMQ_NODE_IP_ADDRESS=127.0.0.1`, `RABBITMQ_NODE_PORT=${amqpPort}`, `RABBITMQ_DIST_PORT=${distPort}`, `ERL_EPMD_PORT=${epmdPort}`, `RABBITMQ_NODENAME=${nodeName}`, "-kernel inet_dist_use_interface {127,0,0,1}"],
    stop: async () => {
      await teardown();
      rmSync(baseDir, { recursive: true, force: true });
    },
  };
}

/** Copies the server's log folder to `<logDir>/rabbitmq-logs` and returns that path. */
function saveLogs(baseDir: string, logDir: string | undefined): string | undefined {
  const from = join(baseDir, "log");
  if (logDir === undefined || !existsSync(from)) return undefined;
  const to = join(logDir, "rabbitmq-logs");
  try {
    mkdirSync(to, { recursive: true });
    for (const f of readdirSync(from)) copyFileSync(join(from, f), join(to, f));
    return to;
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number, timeoutMs = 5_000): Promise<void> {
  const deadline = systemClock.wallMs() + timeoutMs;
  // Not our child (the script's): no exit event reaches us, so poll its /proc entry.
  while (alive(pid) && systemClock.wallMs() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** The installed rabbitmq-server's version, for the suite's version list. */
export function installedRabbitMqVersion(): string {
  try {
    findRabbitMqServer();
  } catch {
    return "not installed";
  }
  const v = rabbitMqVersion();
  try {
    const erts = execFileSync("erl", ["-noshell", "-eval", 'io:format("~s", [erlang:system_info(otp_release)]), halt().'], { encoding: "utf8", timeout: 10_000 });
    return `${v} (Erlang/OTP ${erts})`;
  } catch {
    return v;
  }
}

/** rabbitmq-server as the embedded server of the rabbitmq driver. */
export const rabbitMqServer: EmbeddedServerSpec = {
  name: "rabbitmq-server",
  start: () => startRabbitMqServer(),
  version: installedRabbitMqVersion,
};
