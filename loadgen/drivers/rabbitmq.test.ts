/**
 * The rabbitmq driver's RabbitMQ-specific behaviour against a real rabbitmq-server started by
 * this file (one shared server, stopped at the end): queue types, cleanup, redelivery by
 * nack/requeue, dead-lettering, and a connection reset in the middle of a run (through a
 * loopback TCP relay this file controls). The driver contract (delivery, fan-out, acks,
 * competing consumers, /proc stats, cleanup) runs for rabbitmq in driver-contract.test.ts, for
 * classic and quorum queues, memory and durable. Needs rabbitmq-server
 * (`apt-get install -y rabbitmq-server`; `npm test` installs it as root): without it every test
 * here fails with that reason.
 * Also: the embedded server's listeners (AMQP, Erlang distribution, epmd) are all on loopback,
 * and stop() ends the VM, the script and epmd.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type ChannelModel } from "amqplib";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runBench } from "../bench.js";
import { systemClock } from "../clock.js";
import { readResult } from "../report/index.js";
import { procSample } from "./broker-process.js";
import type { BrokerSettings, DeliverySink, Driver } from "./driver.js";
import { RabbitMqDriver, rabbitMqRefusals } from "./rabbitmq.js";
import { alive, findRabbitMqServer, startRabbitMqServer, type EmbeddedRabbitMq } from "./rabbitmq-server.js";
import { createDriver, findDriver } from "./registry.js";

let server: EmbeddedRabbitMq | undefined;
let startFailure: unknown;
let admin: ChannelModel;

beforeAll(async () => {
  // A server that cannot start fails each test with the reason (a failing beforeAll would skip them).
  try {
    server = await startRabbitMqServer();
    admin = await connect(server.url);
  } catch (err) {
    startFailure = err;
  }
}, 120_000);

afterAll(async () => {
  await admin?.close().catch(() => undefined);
  await server?.stop();
});

function rabbit(): EmbeddedRabbitMq {
  if (!server) throw startFailure;
  return server;
}

/** Ready messages and consumers of a queue, as the server counts them. */
async function queueState(queue: string): Promise<{ messageCount: number; consumerCount: number }> {
  const ch = await admin.createChannel();
  ch.on("error", () => undefined); // a missing queue closes the channel with 404: the rejection says so
  try {
    return await ch.checkQueue(queue);
  } finally {
    await ch.close().catch(() => undefined);
  }
}

class Collector implements DeliverySink {
  readonly got = new Map<number, string[]>();
  readonly attempts = new Map<number, number[]>();
  readonly errors: Error[] = [];
  private waiters: { slot: number; n: number; resolve: () => void }[] = [];
  onDelivery(slot: number, buf: Uint8Array, start: number, end: number, attempt: number): void {
    const list = this.got.get(slot) ?? [];
    const at = this.attempts.get(slot) ?? [];
    list.push(Buffer.from(buf.subarray(start, end)).toString("hex"));
    at.push(attempt);
    this.got.set(slot, list);
    this.attempts.set(slot, at);
    this.waiters = this.waiters.filter((w) => {
      if ((this.got.get(w.slot)?.length ?? 0) < w.n) return true;
      w.resolve();
      return false;
    });
  }
  onStreamError(_slot: number, err: Error): void {
    this.errors.push(err);
  }
  until(slot: number, n: number): Promise<void> {
    if ((this.got.get(slot)?.length ?? 0) >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ slot, n, resolve }));
  }
}

function payloads(n: number, tag: string): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.concat([Buffer.from(`${tag}-${i}-`), randomBytes(48)]));
}
const unique = () => randomBytes(4).toString("hex");
const MEMORY: BrokerSettings = { storage: "memory", fsync: false, args: [] };
const DURABLE: BrokerSettings = { storage: "durable", fsync: true, args: [] };

function make(target: string, broker: BrokerSettings, options: Record<string, unknown> = {}, maxOutstandingMessages = 100): Driver {
  return createDriver("rabbitmq", { target, connections: 2, maxOutstandingMessages, connectTimeoutMs: 5000, broker, clock: systemClock }, options);
}

describe("rabbitmq driver: RabbitMQ's own behaviour", () => {
  const drivers: Driver[] = [];
  afterAll(async () => {
    for (const d of drivers) await d.close().catch(() => undefined);
  });
  const open = async (broker: BrokerSettings, options: Record<string, unknown> = {}, target = rabbit().address, prefetch = 100): Promise<Driver> => {
    const d = make(target, broker, options, prefetch);
    drivers.push(d);
    await d.connect();
    return d;
  };

  it("declares the queue type asked for: quorum by default when durable, stream on request", async () => {
    for (const [options, type] of [[{}, "quorum"], [{ queueType: "stream" }, "stream"]] as const) {
      const d = await open(DURABLE, options);
      const topic = `qt-${unique()}`;
      await d.createTopics([topic]);
      await d.createSubscription({ slot: 0, name: `${topic}-s0`, topic });
      // Declaring it again as a classic queue fails with the server's own inequivalence error, naming the type.
      const ch = await admin.createChannel();
      ch.on("error", () => undefined);
      await expect(ch.assertQueue(`${topic}-s0`, { durable: true })).rejects.toThrow(new RegExp(`x-queue-type.*${type}`));
      const sink = new Collector();
      drivers.push(d);
      await d.openConsumer({ slot: 0, name: `${topic}-s0`, topic }, 0, sink);
      expect(await d.publish(topic, payloads(20, "t"), 0)).toBe(20);
      await sink.until(0, 20);
      expect(sink.got.get(0)).toHaveLength(20);
    }
  });

  it("cleans up what a run created: the queue is gone from the server, and the same names can be created again", async () => {
    const d = await open(MEMORY);
    const topic = `cl-${unique()}`;
    const spec = { slot: 0, name: `${topic}-s0`, topic };
    await d.createTopics([topic]);
    await d.createSubscription(spec);
    await d.cleanup([topic], [spec.name]);
    await expect(queueState(spec.name)).rejects.toThrow(/NOT_FOUND|404/);
    await d.createTopics([topic]);
    await d.createSubscription(spec);
    expect((await queueState(spec.name)).messageCount).toBe(0);
  });

  it("redelivers what a closing consumer nacks to its competing consumer, counted as attempt 2", async () => {
    const d = await open(DURABLE, {}, rabbit().address, 1000);
    const topic = `nk-${unique()}`;
    const spec = { slot: 0, name: `${topic}-s0`, topic };
    await d.createTopics([topic]);
    await d.createSubscription(spec);
    // The first consumer takes deliveries, then closes while the rest are still arriving.
    const first1: { close?: () => void } = {};
    const first = new Collector();
    const firstSink: DeliverySink = {
      onDelivery: (slot, buf, start, end, attempt) => {
        first.onDelivery(slot, buf, start, end, attempt);
        if ((first.got.get(0)?.length ?? 0) === 5) first1.close?.();
      },
      onStreamError: (slot, err) => first.onStreamError(slot, err),
    };
    const c1 = await d.openConsumer(spec, 0, firstSink);
    first1.close = () => c1.close();
    await d.publish(topic, payloads(300, "r"), 0);
    await first.until(0, 5);
    await vi.waitFor(async () => expect((await queueState(spec.name)).consumerCount).toBe(0), { timeout: 10_000, interval: 50 });
    const second = new Collector();
    drivers.push(d);
    await d.openConsumer(spec, 1, second);
    const taken = first.got.get(0)!.length;
    await second.until(0, 300 - taken);
    const all = new Set([...first.got.get(0)!, ...second.got.get(0)!]);
    expect(all.size).toBe(300);
    // Prefetch 1000: the first consumer had received far more than it accounted; those came back as redeliveries.
    expect(second.attempts.get(0)!.filter((a) => a === 2).length).toBeGreaterThan(0);
  });

  it("dead-letters a message returned more than deliveryLimit times into <queue>.dead", async () => {
    const d = await open(DURABLE, { deadLetter: { deliveryLimit: 1 } });
    const topic = `dl-${unique()}`;
    const spec = { slot: 0, name: `${topic}-s0`, topic };
    await d.createTopics([topic]);
    await d.createSubscription(spec);
    expect(await d.publish(topic, payloads(1, "d"), 0)).toBe(1);
    // Return it twice (get without ack, nack with requeue): the second return passes the limit.
    const ch = await admin.createChannel();
    for (let i = 0; i < 2; i++) {
      let m: Awaited<ReturnType<typeof ch.get>> = false;
      await vi.waitFor(async () => expect((m = await ch.get(spec.name, { noAck: false }))).not.toBe(false), { timeout: 5000, interval: 20 });
      if (m) ch.nack(m, false, true);
    }
    await vi.waitFor(async () => expect((await queueState(`${spec.name}.dead`)).messageCount).toBe(1), { timeout: 10_000, interval: 50 });
    expect((await queueState(spec.name)).messageCount).toBe(0);
    await ch.close();
    await d.cleanup([topic], [spec.name]);
    await expect(queueState(`${spec.name}.dead`)).rejects.toThrow(/NOT_FOUND|404/);
  });

  it("reconnects after a connection reset, re-opens its consumer and re-sends unconfirmed publishes: every message arrives", async () => {
    const relay = await startRelay(rabbit().address);
    const d = make(relay.address, DURABLE) as RabbitMqDriver;
    try {
      await d.connect();
      const topic = `rc-${unique()}`;
      const spec = { slot: 0, name: `${topic}-s0`, topic };
      const sink = new Collector();
      await d.createTopics([topic]);
      await d.createSubscription(spec);
      await d.openConsumer(spec, 0, sink);
      const sent = payloads(2000, "x");
      const before = Promise.all([0, 1, 2, 3].map((i) => d.publish(topic, sent.slice(i * 250, (i + 1) * 250), i)));
      relay.cut(); // every connection reset mid-publish
      const after = Promise.all([4, 5, 6, 7].map((i) => d.publish(topic, sent.slice(i * 250, (i + 1) * 250), i)));
      expect([...(await before), ...(await after)]).toEqual(Array(8).fill(250));
      const want = new Set(sent.map((b) => b.toString("hex")));
      await vi.waitFor(() => expect(new Set(sink.got.get(0)).size).toBe(want.size), { timeout: 30_000, interval: 50 });
      expect([...new Set(sink.got.get(0))].every((h) => want.has(h))).toBe(true);
      expect(d.reconnects).toBeGreaterThanOrEqual(2);
      expect(relay.cuts).toBeGreaterThanOrEqual(2);
      expect(sink.errors).toEqual([]);
    } finally {
      await d.close();
      await relay.close();
    }
  }, 60_000);

  it("reports broker resources from /proc of beam.smp, the Erlang VM", async () => {
    const d = await open(MEMORY);
    expect(await d.brokerStats()).toBeUndefined();
    expect(readComm(rabbit().pid)).toMatch(/^beam/);
    const s = procSample(rabbit().pid);
    expect(s!.rssBytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(s!.cpuUserSeconds + s!.cpuSystemSeconds).toBeGreaterThan(0);
  });

  it("refuses, with reasons, what RabbitMQ cannot do as asked", () => {
    const scenario = (broker: Partial<BrokerSettings>, tls = false) => ({ consumersPerSubscription: 1, broker: { ...MEMORY, ...broker }, tls });
    expect(rabbitMqRefusals(scenario({}))).toEqual([]);
    expect(rabbitMqRefusals(scenario({ storage: "durable", fsync: true }))).toEqual([]);
    expect(rabbitMqRefusals(scenario({ storage: "durable", fsync: false })).join("\n")).toMatch(/broker\.fsync=false: RabbitMQ confirms .* only after it is synced/);
    expect(rabbitMqRefusals(scenario({ args: ["--x"] })).join("\n")).toMatch(/broker\.args/);
    expect(rabbitMqRefusals(scenario({}, true)).join("\n")).toMatch(/tls=true/);
    const ctx = { target: "127.0.0.1:1", connections: 1, maxOutstandingMessages: 1, connectTimeoutMs: 100, clock: systemClock };
    expect(() => findDriver("rabbitmq").create({ ...ctx, broker: MEMORY }, { queueType: "quorum" })).toThrow(/queueType=quorum: quorum queues always store on disk/);
    expect(() => findDriver("rabbitmq").create({ ...ctx, broker: DURABLE }, { queueType: "classic", deadLetter: { deliveryLimit: 2 } })).toThrow(/deadLetter: needs quorum/);
    expect(() => findDriver("rabbitmq").create({ ...ctx, broker: DURABLE }, { prefetch: 5 })).toThrow(/prefetch/);
  });
});

describe("embedded rabbitmq-server", () => {
  it("says which package to install when rabbitmq-server is missing", () => {
    const none = join(mkdtempSync(join(tmpdir(), "rt-normq-")), "rabbitmq-server");
    expect(() => findRabbitMqServer(none)).toThrow(/rabbitmq-server was not found; install it with `apt-get install -y rabbitmq-server`/);
  });

  it("listens only on loopback (AMQP, Erlang distribution, epmd), and stop() ends the VM, the script and epmd and removes its folder", async () => {
    const s = await startRabbitMqServer();
    let stopped = false;
    try {
      expect(s.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(s.version).toMatch(/^\d+\.\d+\.\d+/);
      const listeners = listening([s.pid, s.epmdPid]);
      const beam = listeners.filter((l) => l.pid === s.pid).map((l) => l.local);
      const epmd = listeners.filter((l) => l.pid === s.epmdPid).map((l) => l.local);
      expect(beam.sort()).toEqual([`127.0.0.1:${s.address.split(":")[1]}`, `127.0.0.1:${s.distPort}`].sort());
      expect(epmd).toContain(`127.0.0.1:${s.epmdPort}`);
      for (const l of epmd) expect(l).toMatch(/^(127\.0\.0\.1|\[::1\]):/);
      await s.stop();
      stopped = true;
      for (const pid of [s.pid, s.scriptPid, s.epmdPid]) expect(alive(pid)).toBe(false);
      expect(existsSync(s.baseDir)).toBe(false);
    } finally {
      if (!stopped) await s.stop();
    }
  }, 120_000);
});

function readComm(pid: number): string {
  return execFileSync("cat", [`/proc/${pid}/comm`], { encoding: "utf8" }).trim();
}

/** TCP listeners of these processes, from `ss -ltnp` (iproute2). */
function listening(pids: number[]): { pid: number; local: string }[] {
  const out = execFileSync("ss", ["-Hltnp"], { encoding: "utf8" });
  const rows: { pid: number; local: string }[] = [];
  for (const line of out.split("\n")) {
    const cols = line.trim().split(/\s+/);
    const pid = Number(/pid=(\d+)/.exec(line)?.[1]);
    if (pids.includes(pid)) rows.push({ pid, local: cols[3]! });
  }
  return rows;
}

/** A loopback TCP relay to `target`; cut() resets every relayed connection (both sides). */
async function startRelay(target: string): Promise<{ address: string; cut: () => void; cuts: number; close: () => Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const pairs = new Set<[Socket, Socket]>();
  const relay = { cuts: 0 };
  const srv: Server = createServer((client) => {
    const upstream = tcpConnect({ host, port });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream).pipe(client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    address: `127.0.0.1:${(srv.address() as { port: number }).port}`,
    cut: () => {
      for (const [a, b] of [...pairs]) {
        relay.cuts++;
        a.resetAndDestroy();
        b.resetAndDestroy();
      }
    },
    get cuts() {
      return relay.cuts;
    },
    close: () => {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      return new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

// End to end through `ratatoskr bench` with no --target: the driver starts its own rabbitmq-server.
describe("ratatoskr bench with the rabbitmq driver", () => {
  it("runs a scenario against an embedded rabbitmq-server, accounting every delivery and sampling beam.smp", async () => {
    findRabbitMqServer(); // without the package, fail naming it rather than with a missing result.json
    const dir = mkdtempSync(join(tmpdir(), "rt-rabbitmq-bench-"));
    const scenario = join(dir, "tiny.yaml");
    writeFileSync(
      scenario,
      "name: tiny\ntopics: 2\nsubscriptions: {perTopic: 2}\nconsumersPerSubscription: 2\nproducers: 2\nmessages: 2000\nbatchSize: 50\nrate: 2000\ndrainTimeoutSeconds: 30\nconnections: 2\nbroker: {storage: durable, fsync: true}\nslo: {deliveredRatioMin: 1, lostMax: 0, duplicatesMax: 0}\n",
    );
    const out = join(dir, "out");
    const code = await runBench({ scenario, driver: "rabbitmq", out, set: [], quiet: true }, () => undefined);
    const r = readResult(out);
    expect(r.counts).toMatchObject({ measuredPublished: 2000, expected: 4000, delivered: 4000, lost: 0, duplicates: 0, streamErrors: 0 });
    expect(r.broker.embedded).toBe(true);
    expect(r.broker.args[0]).toMatch(/rabbitmq-server$/);
    expect(r.broker.peakRssBytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(code).toBe(0);
  }, 180_000);
});
