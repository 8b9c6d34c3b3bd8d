/**
 * One contract suite for every real driver, against real servers on loopback: the reference
 * broker (ratatoskr v2 and v1 drivers) and a nats-server with JetStream (nats and jetstream
 * drivers). No fakes. Needs `nats-server` on PATH (`apt-get install -y nats-server`; `npm test`
 * installs it as root): without it the nats and jetstream tests fail, each with that reason.
 * Each driver runs the contract twice: plaintext, and with TLS and a bearer token against a
 * broker started with --tls-cert/--tls-key/--token-file and a nats-server with a tls block and
 * a token (certificates from a throwaway CA made with openssl, test/support makeTestPki).
 * The redis-streams, mqtt and rabbitmq drivers run it against an embedded redis-server,
 * mosquitto and rabbitmq-server (`apt-get install -y redis-server mosquitto rabbitmq-server`),
 * plaintext only: without them their tests fail, each naming the package. RabbitMQ's own
 * behaviour (queue types, nack/requeue, dead-lettering, a reset mid-run) is in rabbitmq.test.ts.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { connect as amqpConnect, type ChannelModel } from "amqplib";
import { Redis } from "ioredis";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { makeTestPki, type TestPki } from "../../test/support/index.js";
import { BrokerClient, type Subscription } from "../../proto/gen/ratatoskr/v2/broker.js";
import { systemClock } from "../clock.js";
import { procSample, startEmbeddedBroker } from "./broker-process.js";
import type { BrokerSettings, Consumer, DeliverySink, Driver, EmbeddedBroker } from "./driver.js";
import { unary } from "./grpc-pool.js";
import { createDriver, type DriverName } from "./registry.js";
import { startNatsServer, type EmbeddedNatsServer } from "./nats-server.js";
import { startMosquitto } from "./mosquitto.js";
import { startRabbitMqServer, type EmbeddedRabbitMq } from "./rabbitmq-server.js";
import { startRedisServer } from "./redis-server.js";
import { bearerInterceptor, type DriverSecurity } from "./security.js";

interface Subject {
  name: Exclude<DriverName, "fake">;
  /** Test label when it differs from the driver name. */
  label?: string;
  /** The driver's `driverOptions` block. */
  options?: Record<string, unknown>;
  server: () => EmbeddedBroker;
  acks: boolean;
  statsViaProtocol: boolean;
  /** The broker settings the driver is given (default: memory, no fsync). */
  broker?: BrokerSettings;
  /**
   * Server-side count of acknowledged deliveries of a subscription (ack drivers), read while
   * `consumer` is open after it received `delivered` messages.
   */
  acked?: (topic: string, subscription: string, consumer: Consumer, delivered: number) => Promise<number>;
  /** TLS files and token the driver is given (the secure servers). */
  security?: () => DriverSecurity;
}

const TOKEN = `contract-${randomBytes(8).toString("hex")}`;

let ratatoskr: EmbeddedBroker;
let natsServer: EmbeddedNatsServer | undefined;
let natsMissing: unknown;
let v2Admin: BrokerClient;
let natsAdmin: NatsConnection;
let pki: TestPki;
let secureRatatoskr: EmbeddedBroker;
let secureNatsServer: EmbeddedNatsServer | undefined;
let secureV2Admin: BrokerClient;
let secureNatsAdmin: NatsConnection;
let redis: EmbeddedBroker | undefined;
let redisMissing: unknown;
let redisAdmin: Redis;
let mosquitto: EmbeddedBroker | undefined;
let mosquittoMissing: unknown;
let rabbit: EmbeddedRabbitMq | undefined;
let rabbitMissing: unknown;
let rabbitAdmin: ChannelModel;

beforeAll(async () => {
  // A nats-server that cannot start fails the nats and jetstream tests (in nats()), not the
  // whole file: a failing beforeAll would report every test here as skipped.
  const natsStarted = startNatsServer().then(
    (s) => (natsServer = s),
    (err: unknown) => (natsMissing = err),
  );
  const peersStarted = Promise.all([
    startRedisServer().then(
      (s) => (redis = s),
      (err: unknown) => (redisMissing = err),
    ),
    startMosquitto().then(
      (s) => (mosquitto = s),
      (err: unknown) => (mosquittoMissing = err),
    ),
    startRabbitMqServer().then(
      async (s) => {
        rabbit = s;
        rabbitAdmin = await amqpConnect(s.url);
      },
      (err: unknown) => (rabbitMissing = err),
    ),
  ]);
  ratatoskr = await startEmbeddedBroker({ storage: "memory", fsync: false, args: [] });
  v2Admin = new BrokerClient(ratatoskr.address, grpc.credentials.createInsecure());
  await natsStarted;
  await peersStarted;
  if (redis) redisAdmin = new Redis(`redis://${redis.address}`, { protocol: 2, lazyConnect: true });
  if (natsServer) natsAdmin = await connect({ servers: natsServer.address, reconnect: false });

  pki = makeTestPki();
  const tokenFile = join(pki.dir, "tokens.json");
  writeFileSync(tokenFile, JSON.stringify({ tokens: [{ name: "contract", token: TOKEN, admin: [""], publish: [""], consume: [""] }] }));
  secureRatatoskr = await startEmbeddedBroker({ storage: "memory", fsync: false, args: ["--tls-cert", pki.server.certFile, "--tls-key", pki.server.keyFile, "--token-file", tokenFile] });
  secureV2Admin = new BrokerClient(secureRatatoskr.address, grpc.credentials.createSsl(pki.ca.cert), { interceptors: [bearerInterceptor(TOKEN)] });
  if (natsServer) {
    secureNatsServer = await startNatsServer({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, token: TOKEN } });
    secureNatsAdmin = await connect({ servers: secureNatsServer.address, reconnect: false, token: TOKEN, tls: { caFile: pki.ca.certFile } });
  }
}, 120_000);

function secureNats(): EmbeddedNatsServer {
  if (!secureNatsServer) throw natsMissing;
  return secureNatsServer;
}

const secure = (): DriverSecurity => ({ tls: { caFile: pki.ca.certFile }, token: TOKEN });

function nats(): EmbeddedNatsServer {
  if (!natsServer) throw natsMissing;
  return natsServer;
}

function redisServer(): EmbeddedBroker {
  if (!redis) throw redisMissing;
  return redis;
}

function mosquittoServer(): EmbeddedBroker {
  if (!mosquitto) throw mosquittoMissing;
  return mosquitto;
}

function rabbitServer(): EmbeddedBroker {
  if (!rabbit) throw rabbitMissing;
  return rabbit;
}

afterAll(async () => {
  v2Admin?.close();
  secureV2Admin?.close();
  await natsAdmin?.close();
  await secureNatsAdmin?.close();
  redisAdmin?.disconnect();
  await rabbitAdmin?.close().catch(() => undefined);
  await Promise.all([ratatoskr?.stop(), natsServer?.stop(), secureRatatoskr?.stop(), secureNatsServer?.stop(), redis?.stop(), mosquitto?.stop(), rabbit?.stop()]);
  pki?.remove();
});

const v2AckedVia = (admin: () => BrokerClient) => async (_topic: string, name: string): Promise<number> =>
  Number((await unary<Subscription>((cb) => admin().getSubscription({ name }, cb))).stats?.acked ?? -1n);
const v2Acked = v2AckedVia(() => v2Admin);
const jsAckedVia = (admin: () => NatsConnection) => async (topic: string, name: string): Promise<number> => {
  const info = await (await admin().jetstreamManager()).consumers.info(topic, name);
  return info.num_ack_pending === 0 ? info.ack_floor.stream_seq : -1;
};

/** Entries the group read minus those still pending: what its consumers acked (XINFO GROUPS, Redis 7). */
const redisAcked = async (topic: string, name: string): Promise<number> => {
  const groups = (await redisAdmin.xinfo("GROUPS", topic)) as (string | number | null)[][];
  for (const g of groups) {
    const info = new Map<string, string | number | null>();
    for (let i = 0; i + 1 < g.length; i += 2) info.set(String(g[i]), g[i + 1]!);
    if (info.get("name") === name) return Number(info.get("entries-read")) - Number(info.get("pending"));
  }
  return -1;
};

/**
 * RabbitMQ counts no acks per queue without its management plugin. Unacked deliveries go back to
 * the queue when their consumer's channel closes, so: close the consumer, wait until the queue has
 * no consumer, and what is not back in the queue was acked.
 */
const rabbitAcked = async (_topic: string, name: string, consumer: Consumer, delivered: number): Promise<number> => {
  consumer.close();
  const ch = await rabbitAdmin.createChannel();
  try {
    let q = await ch.checkQueue(name);
    while (q.consumerCount > 0) {
      await new Promise((r) => setTimeout(r, 20)); // polling the server's count; vi.waitFor bounds the whole check
      q = await ch.checkQueue(name);
    }
    return delivered - q.messageCount;
  } finally {
    await ch.close().catch(() => undefined);
  }
};
const DURABLE: BrokerSettings = { storage: "durable", fsync: true, args: [] };

const subjects: Subject[] = [
  { name: "ratatoskr", label: "ratatoskr (PublishStream)", options: { publish: "stream" }, server: () => ratatoskr, acks: true, statsViaProtocol: true, acked: v2Acked },
  { name: "ratatoskr", label: "ratatoskr (unary Publish)", options: { publish: "unary" }, server: () => ratatoskr, acks: true, statsViaProtocol: true, acked: v2Acked },
  { name: "ratatoskr-v1", server: () => ratatoskr, acks: false, statsViaProtocol: false },
  { name: "nats", server: nats, acks: false, statsViaProtocol: false },
  {
    name: "jetstream",
    server: nats,
    acks: true,
    statsViaProtocol: false,
    acked: jsAckedVia(() => natsAdmin),
  },
  { name: "redis-streams", server: redisServer, acks: true, statsViaProtocol: false, acked: redisAcked },
  // Mosquitto counts no acks per subscription: mqtt-reconnect.test.ts checks PUBACKs another way.
  { name: "mqtt", label: "mqtt (QoS 1)", server: mosquittoServer, acks: true, statsViaProtocol: false },
  { name: "mqtt", label: "mqtt (QoS 0)", options: { qos: 0 }, server: mosquittoServer, acks: false, statsViaProtocol: false },
  { name: "rabbitmq", label: "rabbitmq (classic, memory)", server: rabbitServer, acks: true, statsViaProtocol: false, acked: rabbitAcked },
  { name: "rabbitmq", label: "rabbitmq (quorum, durable)", broker: DURABLE, server: rabbitServer, acks: true, statsViaProtocol: false, acked: rabbitAcked },
  { name: "rabbitmq", label: "rabbitmq (classic, durable)", broker: DURABLE, options: { queueType: "classic" }, server: rabbitServer, acks: true, statsViaProtocol: false, acked: rabbitAcked },
  // The same contract over TLS with a bearer token.
  { name: "ratatoskr", label: "ratatoskr (TLS + token)", options: { publish: "stream" }, server: () => secureRatatoskr, acks: true, statsViaProtocol: true, acked: v2AckedVia(() => secureV2Admin), security: secure },
  { name: "ratatoskr", label: "ratatoskr (unary Publish, TLS + token)", options: { publish: "unary" }, server: () => secureRatatoskr, acks: true, statsViaProtocol: true, acked: v2AckedVia(() => secureV2Admin), security: secure },
  { name: "ratatoskr-v1", label: "ratatoskr-v1 (TLS + token)", server: () => secureRatatoskr, acks: false, statsViaProtocol: false, security: secure },
  { name: "nats", label: "nats (TLS + token)", server: secureNats, acks: false, statsViaProtocol: false, security: secure },
  { name: "jetstream", label: "jetstream (TLS + token)", server: secureNats, acks: true, statsViaProtocol: false, acked: jsAckedVia(() => secureNatsAdmin), security: secure },
];

/** A sink that keeps copies of what each slot received and wakes waiters at a count. */
class Collector implements DeliverySink {
  readonly got = new Map<number, string[]>();
  readonly errors: Error[] = [];
  private waiters: { slot: number; n: number; resolve: () => void }[] = [];
  onDelivery(slot: number, buf: Uint8Array, start: number, end: number): void {
    const list = this.got.get(slot) ?? [];
    list.push(Buffer.from(buf.subarray(start, end)).toString("hex"));
    this.got.set(slot, list);
    this.waiters = this.waiters.filter((w) => {
      if ((this.got.get(w.slot)?.length ?? 0) < w.n) return true;
      w.resolve();
      return false;
    });
  }
  onStreamError(_slot: number, err: Error): void {
    this.errors.push(err);
  }
  /** Resolves once `slot` received at least `n` deliveries (the test timeout bounds the wait). */
  until(slot: number, n: number): Promise<void> {
    if ((this.got.get(slot)?.length ?? 0) >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ slot, n, resolve }));
  }
}

function payloads(n: number, tag: string): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.concat([Buffer.from(`${tag}-${i}-`), randomBytes(48)]));
}

const unique = () => randomBytes(4).toString("hex");

describe.each(subjects.map((s) => ({ ...s, label: s.label ?? s.name })))("driver contract: $label", (subject) => {
  let driver: Driver;
  const consumers: Consumer[] = [];

  const open = async () => {
    driver = createDriver(
      subject.name,
      { target: subject.server().address, connections: 2, maxOutstandingMessages: 100, connectTimeoutMs: 5000, broker: subject.broker ?? { storage: "memory", fsync: false, args: [] }, clock: systemClock, ...subject.security?.() },
      subject.options,
    );
    await driver.connect();
  };
  const close = async () => {
    for (const c of consumers.splice(0)) c.close();
    await driver?.close();
  };

  // An open that fails (no nats-server, say) fails each test with its reason; a failing
  // beforeAll would report them all as skipped.
  let openFailure: { err: unknown } | undefined;
  beforeAll(() => open().catch((err: unknown) => void (openFailure = { err })), 30_000);
  beforeEach(() => {
    if (openFailure) throw openFailure.err;
  });
  afterAll(close);

  it("delivers every published message to a subscription with its bytes unchanged", async () => {
    const topic = `ct-${unique()}`;
    const spec = { slot: 0, name: `${topic}-s0`, topic };
    const sink = new Collector();
    await driver.createTopics([topic]);
    await driver.createSubscription(spec);
    consumers.push(await driver.openConsumer(spec, 0, sink));
    const sent = [...payloads(10, "a"), ...payloads(10, "b"), ...payloads(10, "c")];
    const accepted = await Promise.all([0, 10, 20].map((o, i) => driver.publish(topic, sent.slice(o, o + 10), i)));
    expect(accepted).toEqual([10, 10, 10]);
    await sink.until(0, 30);
    expect([...(sink.got.get(0) ?? [])].sort()).toEqual(sent.map((b) => b.toString("hex")).sort());
    expect(sink.errors).toEqual([]);
  });

  it("fans out: each of three subscriptions of a topic gets every message once", async () => {
    const topic = `ct-${unique()}`;
    const specs = [0, 1, 2].map((slot) => ({ slot, name: `${topic}-s${slot}`, topic }));
    const sink = new Collector();
    await driver.createTopics([topic]);
    for (const s of specs) await driver.createSubscription(s);
    for (const s of specs) consumers.push(await driver.openConsumer(s, 0, sink));
    const sent = payloads(50, "f");
    expect(await driver.publish(topic, sent, 0)).toBe(50);
    await Promise.all(specs.map((s) => sink.until(s.slot, 50)));
    for (const s of specs) {
      const got = sink.got.get(s.slot)!;
      expect(got).toHaveLength(50);
      expect(new Set(got).size).toBe(50);
    }
  });

  // At-most-once drivers (v1, NATS core) have no acks and no competing consumers.
  if (subject.acked) it("acks every delivery: the server counts them all acknowledged", async () => {
    const topic = `ct-${unique()}`;
    const spec = { slot: 0, name: `${topic}-s0`, topic };
    const sink = new Collector();
    await driver.createTopics([topic]);
    await driver.createSubscription(spec);
    const consumer = await driver.openConsumer(spec, 0, sink);
    consumers.push(consumer);
    await driver.publish(topic, payloads(40, "k"), 0);
    await sink.until(0, 40);
    // Acks travel after the deliveries; wait until the server has counted them.
    await vi.waitFor(async () => expect(await subject.acked!(topic, spec.name, consumer, 40)).toBe(40), { timeout: 10_000, interval: 50 });
  });

  if (subject.acks) it("competing consumers of one subscription share its messages without duplicates", async () => {
    const topic = `ct-${unique()}`;
    const spec = { slot: 0, name: `${topic}-s0`, topic };
    const sink = new Collector();
    await driver.createTopics([topic]);
    await driver.createSubscription(spec);
    consumers.push(await driver.openConsumer(spec, 0, sink), await driver.openConsumer(spec, 1, sink));
    const sent = payloads(200, "q");
    await Promise.all([driver.publish(topic, sent.slice(0, 100), 0), driver.publish(topic, sent.slice(100), 1)]);
    await sink.until(0, 200);
    expect(new Set(sink.got.get(0)).size).toBe(200);
    expect(sink.got.get(0)).toHaveLength(200);
  });

  it("reports broker resources through its protocol or from /proc of the server process", async () => {
    const viaProtocol = await driver.brokerStats();
    expect(viaProtocol !== undefined).toBe(subject.statsViaProtocol);
    const s = viaProtocol ?? procSample(subject.server().pid);
    expect(s).toBeDefined();
    expect(s!.rssBytes).toBeGreaterThan(1024 * 1024);
    expect(Number.isFinite(s!.cpuUserSeconds + s!.cpuSystemSeconds)).toBe(true);
    // CPU comes in 10 ms ticks: an idle nats-server may still read 0.
    expect(s!.cpuUserSeconds + s!.cpuSystemSeconds).toBeGreaterThanOrEqual(0);
  });

  it("cleans up what a run created, so the same names can be created again", async () => {
    const topic = `ct-${unique()}`;
    const spec = { slot: 0, name: `${topic}-s0`, topic };
    await driver.createTopics([topic]);
    await driver.createSubscription(spec);
    await driver.cleanup([topic], [spec.name]);
    await driver.createTopics([topic]);
    await driver.createSubscription(spec);
    const sink = new Collector();
    consumers.push(await driver.openConsumer(spec, 0, sink));
    expect(await driver.publish(topic, payloads(5, "c"), 0)).toBe(5);
    await sink.until(0, 5);
    expect(sink.got.get(0)).toHaveLength(5);
  });
});

describe("drivers refuse a secure server's wrong credentials with the reason", () => {
  const context = (target: string, security: DriverSecurity) => ({
    target,
    connections: 1,
    maxOutstandingMessages: 10,
    connectTimeoutMs: 5000,
    broker: { storage: "memory" as const, fsync: false, args: [] },
    clock: systemClock,
    ...security,
  });
  const drivers: Driver[] = [];
  afterAll(async () => {
    for (const d of drivers) await d.close().catch(() => undefined);
  });
  const make = (name: Exclude<DriverName, "fake">, target: string, security: DriverSecurity): Driver => {
    const d = createDriver(name, context(target, security));
    drivers.push(d);
    return d;
  };

  it("ratatoskr: a certificate the CA did not issue fails the connect as a TLS handshake failure", async () => {
    const d = make("ratatoskr", secureRatatoskr.address, { tls: { caFile: pki.strangerClient.certFile }, token: TOKEN });
    await expect(d.connect()).rejects.toThrow(/TLS handshake failed/);
  });

  it("ratatoskr: plaintext against the TLS broker fails the connect naming TLS", async () => {
    const d = make("ratatoskr", secureRatatoskr.address, { token: TOKEN });
    await expect(d.connect()).rejects.toThrow(/speaks TLS|TLS server answered/);
  });

  it("ratatoskr: an unknown token is refused UNAUTHENTICATED on the first call", async () => {
    const d = make("ratatoskr", secureRatatoskr.address, { tls: { caFile: pki.ca.certFile }, token: "not-a-token" });
    await d.connect();
    await expect(d.createTopics([`ct-${unique()}`])).rejects.toThrow(/UNAUTHENTICATED|unknown token/);
  });

  it("ratatoskr: no token at all is refused with missing bearer token", async () => {
    const d = make("ratatoskr", secureRatatoskr.address, { tls: { caFile: pki.ca.certFile } });
    await d.connect();
    await expect(d.createTopics([`ct-${unique()}`])).rejects.toThrow(/missing bearer token/);
  });

  it("nats: a wrong token fails the connect with the server's authorization error", async () => {
    const d = make("nats", secureNats().address, { tls: { caFile: pki.ca.certFile }, token: "not-a-token" });
    await expect(d.connect()).rejects.toThrow(/authorization|AUTHORIZATION/i);
  });

  it("nats: plaintext against the TLS server fails the connect naming TLS", async () => {
    const d = make("nats", secureNats().address, { token: TOKEN });
    await expect(d.connect()).rejects.toThrow(/requires TLS/);
  });
});
