/**
 * The embedded Redis: `redis-server` from PATH (Debian package redis-server) as a child process,
 * bound to 127.0.0.1 only (`--bind 127.0.0.1`, no unix socket, protected mode on) on a free port
 * (redis cannot bind port 0: `--port 0` turns TCP off), with a temporary `--dir` and no RDB
 * snapshots (`--save ''`). Durability comes from the append-only file, mapped from the scenario:
 *   broker.storage memory            → appendonly no
 *   broker.storage durable, fsync    → appendonly yes, appendfsync always (fsync before the reply)
 *   broker.storage durable, no fsync → appendonly yes, appendfsync everysec (up to ~1 s lost on a crash)
 * Ready once it logs "Ready to accept connections" and answers a PING; its log is kept in the
 * temporary directory (copied to the report folder of a failed run); stopped with SIGTERM by PID.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrokerSettings, EmbeddedBroker, EmbeddedServerSpec } from "./driver.js";
import { findPeerBinary, keepLogIn, startPeerServer } from "./peer-server.js";
import { stopChild } from "./process-signals.js";

export const REDIS_PACKAGE = "redis-server";

export interface EmbeddedRedisServer extends EmbeddedBroker {
  /** `redis-server --version`, e.g. "7.0.15". */
  version: string;
  dataDir: string;
  logFile: string;
}

export function findRedisServer(path?: string, fallbacks?: readonly string[]): string {
  return findPeerBinary("redis-server", REDIS_PACKAGE, path, fallbacks);
}

export function redisServerVersion(binary: string): string {
  try {
    const out = execFileSync(binary, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return /v=(\S+)/.exec(out)?.[1] ?? out.trim();
  } catch {
    return "unknown";
  }
}

/** The durability arguments for a broker block (see the table at the top). */
export function redisDurabilityArgs(broker: Pick<BrokerSettings, "storage" | "fsync">): string[] {
  if (broker.storage !== "durable") return ["--appendonly", "no"];
  return ["--appendonly", "yes", "--appendfsync", broker.fsync ? "always" : "everysec"];
}

/** The storage column of a redis-streams run. */
export function redisStorageLabel(broker: Pick<BrokerSettings, "storage" | "fsync">): string {
  if (broker.storage !== "durable") return "memory (no AOF)";
  return broker.fsync ? "AOF, appendfsync always" : "AOF, appendfsync everysec";
}

export async function startRedisServer(broker: Pick<BrokerSettings, "storage" | "fsync"> = { storage: "memory", fsync: false }, timeoutMs = 20_000): Promise<EmbeddedRedisServer> {
  const binary = findRedisServer();
  const version = redisServerVersion(binary);
  const dataDir = mkdtempSync(join(tmpdir(), "ratatoskr-redis-"));
  const logFile = join(dataDir, "redis-server.log");
  const cleanup = (): void => rmSync(dataDir, { recursive: true, force: true });
  const args = (port: number): string[] => [
    "--bind", "127.0.0.1",
    "--port", String(port),
    "--protected-mode", "yes",
    "--dir", dataDir,
    "--save", "",
    "--daemonize", "no",
    "--logfile", "", // stdout, which startPeerServer appends to logFile
    ...redisDurabilityArgs(broker),
  ];
  const started = await startPeerServer({
    name: "redis-server",
    binary,
    args,
    logFile,
    readyLine: /Ready to accept connections/,
    portTakenLine: /Address already in use/,
    ready: (port) => redisPing(port, timeoutMs),
    timeoutMs,
    cleanup,
  });
  return {
    address: `127.0.0.1:${started.port}`,
    pid: started.child.pid!,
    args: [binary, ...started.args],
    dataDir,
    logFile,
    version,
    keepLog: (dir) => keepLogIn(logFile, dir),
    stop: () => stopChild(started.child).finally(cleanup),
  };
}

/** One PING over a plain socket (RESP), resolved on +PONG. */
export function redisPing(port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: "127.0.0.1", port });
    const timer = setTimeout(() => done(new Error(`no PONG within ${timeoutMs} ms`)), timeoutMs);
    let got = "";
    const done = (err?: Error): void => {
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve();
    };
    s.once("error", (err) => done(err));
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (got.includes("\r\n")) done(got.startsWith("+PONG") ? undefined : new Error(`unexpected reply ${JSON.stringify(got.trim())}`));
    });
    s.write("PING\r\n");
  });
}

/** redis-server as the embedded server of the redis-streams driver. */
export const redisServer: EmbeddedServerSpec = {
  name: "redis-server",
  start: (scenario) => startRedisServer(scenario.broker),
  version: () => {
    try {
      return redisServerVersion(findRedisServer());
    } catch {
      return "not installed";
    }
  },
};
