/**
 * The redis-streams and mqtt drivers ride through a connection reset: every connection runs
 * through a loopback TCP relay the test can cut (all sockets destroyed, the listener stays), and
 * after a cut the drivers reconnect with backoff, resend what had no reply, and their consumers
 * resume (Redis: the consumer's pending history, then new entries; MQTT: the persistent session).
 * Also what each promises about acks: Redis XACKs (the group has nothing pending), MQTT PUBACKs
 * (receive-maximum holds back the rest until they arrive). Needs redis-server and mosquitto.
 */
import { randomBytes } from "node:crypto";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { systemClock } from "../clock.js";
import type { Consumer, DeliverySink, Driver, EmbeddedBroker } from "./driver.js";
import { startMosquitto } from "./mosquitto.js";
import { startRedisServer } from "./redis-server.js";
import { createDriver } from "./registry.js";

/** A TCP relay on 127.0.0.1 to `target`; cut() resets every connection through it. */
class CutRelay {
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  address = "";
  cuts = 0;

  async start(target: string): Promise<void> {
    const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
    this.server = createServer((down) => {
      const up = createConnection({ host, port });
      for (const s of [down, up]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => undefined);
      }
      down.pipe(up);
      up.pipe(down);
      down.on("close", () => up.destroy());
      up.on("close", () => down.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.address = `127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  /** Resets every relayed connection (RST where the kernel allows it). */
  cut(): number {
    const n = this.sockets.size;
    for (const s of this.sockets) s.resetAndDestroy();
    this.cuts++;
    return n;
  }

  get open(): number {
    return this.sockets.size;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

class Collector implements DeliverySink {
  readonly got: string[] = [];
  readonly attempts: number[] = [];
  readonly errors: Error[] = [];
  onDelivery(_slot: number, buf: Uint8Array, start: number, end: number, attempt: number): void {
    this.got.push(Buffer.from(buf.subarray(start, end)).toString("hex"));
    this.attempts.push(attempt);
  }
  onStreamError(_slot: number, err: Error): void {
    this.errors.push(err);
  }
  distinct(): number {
    return new Set(this.got).size;
  }
}

const payloads = (n: number, tag: string): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.concat([Buffer.from(`${tag}-${i}-`), randomBytes(24)]));
const unique = () => randomBytes(4).toString("hex");
const context = (target: string, maxOutstandingMessages = 100) => ({
  target,
  connections: 1,
  maxOutstandingMessages,
  connectTimeoutMs: 5000,
  broker: { storage: "memory" as const, fsync: false, args: [] },
  clock: systemClock,
});

let redis: EmbeddedBroker;
let mosquitto: EmbeddedBroker;
const relays: CutRelay[] = [];
const drivers: Driver[] = [];
const consumers: Consumer[] = [];

beforeAll(async () => {
  [redis, mosquitto] = await Promise.all([startRedisServer(), startMosquitto()]);
}, 60_000);

afterAll(async () => {
  try {
    for (const c of consumers) c.close();
    // A driver that never got its connection back must not keep the servers running: bounded.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, 10_000)));
    await Promise.race([Promise.all(drivers.map((d) => d.close().catch(() => undefined))), bound]);
    clearTimeout(timer);
    for (const r of relays) await r.stop();
  } finally {
    await Promise.all([redis?.stop(), mosquitto?.stop()]);
  }
}, 30_000);

async function through(server: EmbeddedBroker, name: "redis-streams" | "mqtt", maxOutstanding = 100, options: Record<string, unknown> = {}): Promise<{ relay: CutRelay; driver: Driver }> {
  const relay = new CutRelay();
  relays.push(relay);
  await relay.start(server.address);
  const driver = createDriver(name, context(relay.address, maxOutstanding), options);
  drivers.push(driver);
  await driver.connect();
  return { relay, driver };
}

describe.each(["redis-streams", "mqtt"] as const)("%s after a connection reset", (name) => {
  it("reconnects, delivers what was published before and after the cut, and reports no stream error", async () => {
    const server = name === "redis-streams" ? redis : mosquitto;
    const { relay, driver } = await through(server, name);
    const topic = `rc-${unique()}`;
    const spec = { slot: 0, name: `${topic}-s0`, topic };
    const sink = new Collector();
    await driver.createTopics([topic]);
    await driver.createSubscription(spec);
    consumers.push(await driver.openConsumer(spec, 0, sink));
    const before = payloads(50, "before");
    expect(await driver.publish(topic, before, 0)).toBe(50);
    await vi.waitFor(() => expect(sink.distinct()).toBe(50), { timeout: 10_000, interval: 20 });

    expect(relay.cut()).toBeGreaterThanOrEqual(4); // publisher and consumer connections, both sides
    const after = payloads(50, "after");
    // Published while the connections are down: held and sent (again) once reconnected.
    expect(await driver.publish(topic, after, 0)).toBe(50);
    await vi.waitFor(() => expect(sink.distinct()).toBe(100), { timeout: 20_000, interval: 20 });
    const sent = new Set([...before, ...after].map((b) => b.toString("hex")));
    for (const g of sink.got) expect(sent.has(g)).toBe(true);
    expect(sink.errors).toEqual([]);
    expect(relay.open).toBeGreaterThanOrEqual(4); // the connections came back through the relay
  }, 40_000);
});

describe("acks", () => {
  it("redis-streams: every delivery is XACKed, so the group holds nothing pending", async () => {
    const { driver } = await through(redis, "redis-streams");
    const topic = `ack-${unique()}`;
    const spec = { slot: 0, name: `${topic}-s0`, topic };
    const sink = new Collector();
    await driver.createSubscription(spec);
    consumers.push(await driver.openConsumer(spec, 0, sink));
    await driver.publish(topic, payloads(120, "a"), 0);
    await vi.waitFor(() => expect(sink.got.length).toBe(120), { timeout: 10_000, interval: 20 });
    const admin = new Redis(`redis://${redis.address}`, { protocol: 2 });
    try {
      await vi.waitFor(async () => expect(((await admin.xpending(topic, spec.name)) as [number])[0]).toBe(0), { timeout: 10_000, interval: 50 });
    } finally {
      admin.disconnect();
    }
  });

  it("redis-streams: an entry left pending by a consumer that went away is claimed and delivered again (XAUTOCLAIM) with its delivery count", async () => {
    const { driver } = await through(redis, "redis-streams", 100, { claimIdleMs: 200, claimIntervalMs: 100 });
    const topic = `claim-${unique()}`;
    const group = `${topic}-s0`;
    await driver.createSubscription({ slot: 0, name: group, topic });
    const admin = new Redis(`redis://${redis.address}`, { protocol: 2 });
    try {
      const sent = payloads(5, "p");
      for (const p of sent) await admin.xadd(topic, "*", "d", p);
      // A consumer that read the entries and died before acking them.
      await admin.xreadgroup("GROUP", group, "gone", "COUNT", 10, "STREAMS", topic, ">");
      const sink = new Collector();
      consumers.push(await driver.openConsumer({ slot: 0, name: group, topic }, 0, sink));
      await vi.waitFor(() => expect(sink.got.length).toBe(5), { timeout: 10_000, interval: 20 });
      expect([...sink.got].sort()).toEqual(sent.map((b) => b.toString("hex")).sort());
      expect(sink.attempts).toEqual([2, 2, 2, 2, 2]);
      await vi.waitFor(async () => expect(((await admin.xpending(topic, group)) as [number])[0]).toBe(0), { timeout: 10_000, interval: 50 });
    } finally {
      admin.disconnect();
    }
  });

  it("mqtt QoS 1: with receive-maximum 10, 60 messages arrive only because each delivery is PUBACKed", async () => {
    const { driver } = await through(mosquitto, "mqtt", 10);
    const topic = `ack-${unique()}`;
    const spec = { slot: 0, name: `${topic}-s0`, topic };
    const sink = new Collector();
    consumers.push(await driver.openConsumer(spec, 0, sink));
    expect(await driver.publish(topic, payloads(60, "m"), 0)).toBe(60);
    await vi.waitFor(() => expect(sink.distinct()).toBe(60), { timeout: 10_000, interval: 20 });
    expect(sink.attempts.every((a) => a === 1)).toBe(true);
  });
});
