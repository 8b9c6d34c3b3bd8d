/**
 * The embedded redis-server and mosquitto (redis-server.ts, mosquitto.ts, peer-server.ts): found
 * or named by package, bound to 127.0.0.1 only, durability from the broker block, ready when a
 * client can talk to them, stopped by PID with their directory removed, log copied out on demand.
 * Needs `redis-server` and `mosquitto` (`apt-get install -y redis-server mosquitto`; `npm test`
 * installs them as root): without them these tests fail naming the package.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runBench } from "../bench.js";
import { systemClock } from "../clock.js";
import { readResult } from "../report/index.js";
import { startMosquitto, findMosquitto, mosquittoConfig } from "./mosquitto.js";
import { PeerServerMissingError } from "./peer-server.js";
import { createDriver } from "./registry.js";
import { findRedisServer, redisDurabilityArgs, startRedisServer } from "./redis-server.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every TCP socket a process listens on, as "address:port" (from /proc/net/tcp{,6} and the process's fds). */
function listenersOf(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const out: string[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== "0A" || !inodes.has(f[9]!)) continue; // 0A = LISTEN
      const [hex, port] = f[1]!.split(":");
      const addr = hex!.length === 8 ? hex!.match(/../g)!.reverse().map((b) => parseInt(b, 16)).join(".") : `[${hex}]`;
      out.push(`${addr}:${parseInt(port!, 16)}`);
    }
  }
  return out;
}

const context = (target: string, storage: "memory" | "durable" = "memory", fsync = false) => ({
  target,
  connections: 1,
  maxOutstandingMessages: 10,
  connectTimeoutMs: 5000,
  broker: { storage, fsync, args: [] },
  clock: systemClock,
});

describe("embedded peer servers: a missing binary", () => {
  const empty = mkdtempSync(join(tmpdir(), "rt-nopath-"));
  it("names the Debian package to install", () => {
    expect(() => findRedisServer(empty, [])).toThrow(PeerServerMissingError);
    expect(() => findRedisServer(empty, [])).toThrow(/redis-server was not found on PATH .*apt-get install -y redis-server/);
    expect(() => findMosquitto(empty, [])).toThrow(/mosquitto was not found on PATH .*apt-get install -y mosquitto/);
  });
});

describe("embedded redis-server", () => {
  it("maps the broker block to appendonly/appendfsync", () => {
    expect(redisDurabilityArgs({ storage: "memory", fsync: false })).toEqual(["--appendonly", "no"]);
    expect(redisDurabilityArgs({ storage: "durable", fsync: false })).toEqual(["--appendonly", "yes", "--appendfsync", "everysec"]);
    expect(redisDurabilityArgs({ storage: "durable", fsync: true })).toEqual(["--appendonly", "yes", "--appendfsync", "always"]);
  });

  it("listens on 127.0.0.1 only, without RDB snapshots, and stop() ends it and removes its directory", async () => {
    const s = await startRedisServer({ storage: "memory", fsync: false });
    try {
      expect(s.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(listenersOf(s.pid)).toEqual([s.address]);
      expect(s.args).toEqual(expect.arrayContaining(["--bind", "127.0.0.1", "--save", "", "--dir", s.dataDir]));
      expect(s.version).toMatch(/^\d+\.\d+\.\d+/);
      const d = createDriver("redis-streams", context(s.address));
      await d.connect();
      expect(await d.describeBroker!()).toMatchObject({ storage: "memory", fsync: false });
      await d.close();
    } finally {
      await s.stop();
    }
    expect(alive(s.pid)).toBe(false);
    expect(existsSync(s.dataDir)).toBe(false);
  });

  it("runs durable with fsync as appendonly + appendfsync always (the server says so), its AOF in the temporary directory", async () => {
    const s = await startRedisServer({ storage: "durable", fsync: true });
    try {
      const d = createDriver("redis-streams", context(s.address, "durable", true));
      await d.connect();
      expect(await d.describeBroker!()).toEqual({ source: "CONFIG GET appendonly/appendfsync", storage: "durable", fsync: true });
      await d.close();
      expect(readdirSync(s.dataDir)).toContain("appendonlydir");
      const out = mkdtempSync(join(tmpdir(), "rt-keeplog-"));
      const kept = s.keepLog!(out);
      expect(kept).toBe(join(out, "redis-server.log"));
      expect(readFileSync(kept!, "utf8")).toMatch(/Ready to accept connections/);
    } finally {
      await s.stop();
    }
  });
});

describe("embedded mosquitto", () => {
  it("writes a config with one 127.0.0.1 listener and persistence from the broker block", () => {
    const c = mosquittoConfig(1883, "/tmp/x", { storage: "durable" });
    expect(c.split("\n").filter((l) => l.startsWith("listener"))).toEqual(["listener 1883 127.0.0.1"]);
    expect(c).toContain("allow_anonymous true\n");
    expect(c).toContain("persistence true\n");
    expect(c).toContain("persistence_location /tmp/x/\n");
    expect(mosquittoConfig(1883, "/tmp/x", { storage: "memory" })).toContain("persistence false\n");
  });

  it("listens on 127.0.0.1 only, answers MQTT, and stop() ends it and removes its directory", async () => {
    const s = await startMosquitto({ storage: "durable" });
    try {
      expect(s.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(listenersOf(s.pid)).toEqual([s.address]);
      expect(s.args).toEqual([expect.stringMatching(/mosquitto$/), "-c", s.configFile]);
      expect(readFileSync(s.configFile, "utf8")).toContain("persistence true\n");
      expect(s.version).toMatch(/^\d+\.\d+\.\d+/);
      const out = mkdtempSync(join(tmpdir(), "rt-keeplog-"));
      expect(readFileSync(s.keepLog!(out)!, "utf8")).toMatch(/mosquitto version \S+ running/);
    } finally {
      await s.stop();
    }
    expect(alive(s.pid)).toBe(false);
    expect(existsSync(s.dataDir)).toBe(false);
  });
});

// End to end through `ratatoskr bench` with no --target: the driver decides to start its server.
describe("ratatoskr bench with the redis-streams and mqtt drivers", () => {
  const dir = mkdtempSync(join(tmpdir(), "rt-peer-bench-"));
  const scenario = join(dir, "tiny.yaml");
  writeFileSync(
    scenario,
    "name: tiny\ntopics: 2\nsubscriptions: {perTopic: 2}\nconsumersPerSubscription: 2\nproducers: 2\nmessages: 2000\nbatchSize: 50\nrate: 2000\ndrainTimeoutSeconds: 15\nconnections: 2\nslo: {deliveredRatioMin: 1, lostMax: 0}\n",
  );
  const quiet = () => undefined;

  for (const [driver, set] of [
    ["redis-streams", ["broker.storage=durable", "broker.fsync=true"]],
    ["mqtt", ["broker.storage=durable"]],
    ["mqtt", ["driverOptions.mqtt.qos=0", "consumersPerSubscription=1"]],
  ] as const) {
    it(`runs a scenario through ${driver} (${set.join(", ")}) against its embedded server, accounting every delivery`, async () => {
      const out = join(dir, `${driver}-${set.length}-${set[0]}`);
      const code = await runBench({ scenario, driver, out, set: [...set], quiet: true }, quiet);
      const r = readResult(out);
      expect(r.counts).toMatchObject({ measuredPublished: 2000, expected: 4000, delivered: 4000, lost: 0, streamErrors: 0 });
      expect(r.broker.embedded).toBe(true);
      expect(r.broker.args[0]).toMatch(driver === "mqtt" ? /mosquitto$/ : /redis-server$/);
      expect(r.broker.peakRssBytes).toBeGreaterThan(0);
      expect(code).toBe(0);
      // A run that passed keeps no server log in its report folder.
      expect(readdirSync(out).filter((f) => f.endsWith(".log"))).toEqual([]);
    }, 90_000);
  }

  it("keeps the server's log in the report folder of a run that fails its gates", async () => {
    const out = join(dir, "failed");
    // No messages can meet an e2e p50 of 0 µs: the gate fails, the run happened.
    const code = await runBench({ scenario, driver: "redis-streams", out, set: ["messages=200", "slo.e2eP50MaxMs=0"], quiet: true }, quiet);
    expect(code).toBe(1);
    expect(readFileSync(join(out, "redis-server.log"), "utf8")).toMatch(/Ready to accept connections/);
  }, 90_000);

  it("refuses, with exit 2 and the reason, fsync for mqtt", async () => {
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (lines.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await runBench({ scenario, driver: "mqtt", out: join(dir, "refused"), set: ["broker.storage=durable", "broker.fsync=true"], quiet: true }, quiet)).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(lines.join("")).toMatch(/driver mqtt refuses scenario .*broker\.fsync=true: mosquitto never flushes before a PUBACK/s);
    expect(existsSync(join(dir, "refused"))).toBe(false);
  });
});
