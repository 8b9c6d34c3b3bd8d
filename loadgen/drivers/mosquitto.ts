/**
 * The embedded MQTT broker: `mosquitto` from PATH or /usr/sbin (Debian package mosquitto) as a
 * child process with a config file in a temporary directory: one listener, `listener <port>
 * 127.0.0.1` on a free loopback port (mosquitto cannot bind port 0), `allow_anonymous true`, no
 * other listener (no websockets, no bridge). Persistence from the scenario:
 *   broker.storage memory  → persistence false (sessions and queued messages in memory only)
 *   broker.storage durable → persistence true, persistence_location <temp>/
 * Mosquitto has no per-message flush: with persistence on it writes its in-memory database to
 * disk every `autosave_interval` seconds (1800 by default) and at shutdown, never before a
 * PUBACK, so `broker.fsync: true` is refused by the mqtt driver.
 * Two settings differ from mosquitto's defaults, for the at-least-once guarantee and latency
 * (disclosed in docs/peers.md): `max_queued_messages 0` (the default 1000 silently drops QoS 1
 * messages for a consumer that is more than 1000 behind, which would be a loss, not
 * backpressure) and `set_tcp_nodelay true` (no Nagle delay on small messages; the driver sets
 * TCP_NODELAY on its side too).
 * Ready once it logs "running" and answers an MQTT CONNECT; its log is kept in the temporary
 * directory (copied to the report folder of a failed run); stopped with SIGTERM by PID.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectAsync } from "mqtt";
import type { BrokerSettings, EmbeddedBroker, EmbeddedServerSpec } from "./driver.js";
import { findPeerBinary, keepLogIn, startPeerServer } from "./peer-server.js";
import { stopChild } from "./process-signals.js";

export const MOSQUITTO_PACKAGE = "mosquitto";

export interface EmbeddedMosquitto extends EmbeddedBroker {
  /** e.g. "2.0.11". */
  version: string;
  dataDir: string;
  configFile: string;
  logFile: string;
}

export function findMosquitto(path?: string, fallbacks?: readonly string[]): string {
  return findPeerBinary("mosquitto", MOSQUITTO_PACKAGE, path, fallbacks);
}

export function mosquittoVersion(binary: string): string {
  // `mosquitto -h` prints its version and exits 3: read stdout whatever the exit code.
  const out = spawnSync(binary, ["-h"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).stdout ?? "";
  return /mosquitto version (\S+)/.exec(out)?.[1] ?? "unknown";
}

/** The config file for a port and a broker block. */
export function mosquittoConfig(port: number, dataDir: string, broker: Pick<BrokerSettings, "storage">): string {
  return [
    `listener ${port} 127.0.0.1`,
    "allow_anonymous true",
    `persistence ${broker.storage === "durable" ? "true" : "false"}`,
    `persistence_location ${dataDir}/`,
    "autosave_interval 1800",
    "max_queued_messages 0",
    "set_tcp_nodelay true",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "log_type notice",
    "log_type information",
    "",
  ].join("\n");
}

/** The storage column of an mqtt run. */
export function mosquittoStorageLabel(broker: Pick<BrokerSettings, "storage">): string {
  return broker.storage === "durable" ? "persistence file (autosave 1800 s, no per-message flush)" : "memory (persistence off)";
}

export async function startMosquitto(broker: Pick<BrokerSettings, "storage"> = { storage: "memory" }, timeoutMs = 20_000): Promise<EmbeddedMosquitto> {
  const binary = findMosquitto();
  const version = mosquittoVersion(binary);
  const dataDir = mkdtempSync(join(tmpdir(), "ratatoskr-mosquitto-"));
  const configFile = join(dataDir, "mosquitto.conf");
  const logFile = join(dataDir, "mosquitto.log");
  const cleanup = (): void => rmSync(dataDir, { recursive: true, force: true });
  const started = await startPeerServer({
    name: "mosquitto",
    binary,
    args: (port) => {
      writeFileSync(configFile, mosquittoConfig(port, dataDir, broker));
      return ["-c", configFile];
    },
    logFile,
    readyLine: /mosquitto version \S+ running/,
    portTakenLine: /Address already in use/,
    ready: (port) => mqttHandshake(port, timeoutMs),
    timeoutMs,
    cleanup,
  });
  return {
    address: `127.0.0.1:${started.port}`,
    pid: started.child.pid!,
    args: [binary, ...started.args],
    dataDir,
    configFile,
    logFile,
    version,
    keepLog: (dir) => keepLogIn(logFile, dir),
    stop: () => stopChild(started.child).finally(cleanup),
  };
}

/** One MQTT 5 CONNECT/CONNACK and DISCONNECT. */
async function mqttHandshake(port: number, timeoutMs: number): Promise<void> {
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, connectTimeout: timeoutMs, reconnectPeriod: 0, clientId: `ratatoskr-ready-${process.pid}` }, false);
  await client.endAsync();
}

/** mosquitto as the embedded server of the mqtt driver. */
export const mosquittoServer: EmbeddedServerSpec = {
  name: "mosquitto",
  start: (scenario) => startMosquitto(scenario.broker),
  version: () => {
    try {
      return mosquittoVersion(findMosquitto());
    } catch {
      return "not installed";
    }
  },
};
