/**
 * Driver `redis-streams`: Redis Streams with consumer groups (ioredis), at-least-once. A topic is
 * a stream (key = topic name), a subscription is a consumer group on it created at `$` (new
 * entries only), so k subscriptions of a topic each get every entry, like ratatoskr fan-out;
 * competing consumers of one subscription are consumers of one group. An entry carries the
 * payload in one field, `d`; the generator's message id (producer, sequence) is inside the
 * payload, as with every driver.
 *
 * Publishing: a batch is one pipeline of XADDs (`XADD <topic> * d <payload>`); each XADD's reply
 * (the entry id) is its ack, and the call resolves with how many leading XADDs were stored, so
 * `maxInFlightBatches × batchSize` is the pipelining depth. Consuming: each consumer has its own
 * connection (XREADGROUP BLOCK holds it) and loops `XREADGROUP GROUP <sub> <consumer> COUNT
 * <maxOutstandingMessages> BLOCK <blockMs> STREAMS <topic> >`: COUNT is the flow control, since
 * the next read is sent only after the batch was handed to the generator. The batch's ids are
 * acked with one XACK, written right before that next read (pipelined on the same socket).
 * Redelivery: entries pending longer than `claimIdleMs` (a consumer died, an XACK was lost) are
 * taken over every `claimIntervalMs` with XAUTOCLAIM and delivered again, with their delivery
 * count (XPENDING) as the attempt number.
 *
 * Faults: every connection reconnects with exponential backoff (50 ms doubling to 2 s, jittered)
 * for up to `reconnectForSeconds`; ioredis resends the commands that had no reply when the
 * connection broke. A resent XADD whose first copy was stored is stored twice (Redis has no
 * idempotent XADD: entry ids are server-assigned), so a cut can cause duplicates, never a loss of
 * an acknowledged publish. After a reconnect a consumer first reads its own pending entries
 * again (`XREADGROUP … 0`, the delivered-but-unacked history) and then resumes with `>`.
 * Durability is the server's: see redis-server.ts (appendonly / appendfsync).
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { z } from "zod";
import { BrokerUnreachableError, DriverError } from "../errors.js";
import { defineDriver, type BrokerSelfReport, type BrokerStatsSample, type Consumer, type DeliverySink, type Driver, type DriverContext, type DriverScenario, type SubscriptionSpec } from "./driver.js";
import type { RetryCounts } from "./reconnect.js";
import { splitTarget } from "./nats-pool.js";
import { redisServer, redisStorageLabel } from "./redis-server.js";
import { inBatches, message } from "./util.js";

/** The field of a stream entry that holds the payload. */
export const PAYLOAD_FIELD = "d";

/**
 * What a redis-streams run promises (to be wired into the run's "what it promises" table):
 * acks, storage, flush, ack policy, replicas, ordering.
 */
export const REDIS_STREAMS_PROMISES = {
  publishAck: "XADD reply (entry id) per message, pipelined per batch",
  storage: "memory; with broker.storage=durable the append-only file (AOF)",
  flush: "broker.fsync=true: appendfsync always (written and fsynced before the reply); false: appendfsync everysec (up to about 1 s of acknowledged entries lost on a host crash)",
  ackPolicy: "explicit: one XACK per read batch, after the generator accounted it; unacked entries redelivered by XAUTOCLAIM after claimIdleMs",
  replicas: 1,
  ordering: "per stream (topic) in entry-id order for one consumer; competing consumers and redeliveries break it",
  underFaults: "connections reconnect with backoff and resend unanswered commands: a resent XADD may be stored twice (duplicates), an acknowledged XADD is not lost (with AOF and fsync, not even on a crash)",
} as const;

export const redisStreamsOptions = z.strictObject({
  /** XREADGROUP BLOCK, ms: how long a read waits on an empty stream before it is sent again. */
  blockMs: z.number().int().positive().default(2000),
  /** An entry pending (delivered, unacked) longer than this is claimed and delivered again. */
  claimIdleMs: z.number().int().positive().default(30_000),
  /** How often each consumer runs XAUTOCLAIM. */
  claimIntervalMs: z.number().int().positive().default(5_000),
  /** How long a broken connection keeps trying to reconnect before its commands fail. */
  reconnectForSeconds: z.number().positive().default(60),
});
export type RedisStreamsOptions = z.output<typeof redisStreamsOptions>;

/** Scenario fields Redis Streams cannot honour; an empty list means the scenario may run. */
export function redisStreamsRefusals(s: DriverScenario): string[] {
  const out: string[] = [];
  if (s.broker.memoryBudgetBytes !== undefined) out.push("broker.memoryBudgetBytes: a ratatoskr broker option; Redis maxmemory evicts keys (loses data) rather than pushing back");
  if (s.broker.args.length > 0) out.push("broker.args: ratatoskr broker command-line arguments cannot be passed to redis-server");
  if (s.tls) out.push("tls=true: the redis-streams driver speaks plaintext only (its embedded redis-server has no TLS listener)");
  return out;
}

export const redisStreamsDriver = defineDriver({
  name: "redis-streams",
  summary: "Redis Streams: a stream per topic, a consumer group per subscription, pipelined XADD, XREADGROUP + XACK; at-least-once",
  options: redisStreamsOptions,
  movedFields: {},
  refusals: redisStreamsRefusals,
  embeddedServer: redisServer,
  promises: (broker) => ({
    publishAck: REDIS_STREAMS_PROMISES.publishAck,
    storage: broker.storage === "durable" ? "the append-only file (AOF) beside memory" : "memory only (no AOF, no RDB snapshots: lost when redis-server stops or is killed)",
    flush: broker.storage !== "durable" ? "none" : broker.fsync ? "appendfsync always: written and fsynced before the reply" : "appendfsync everysec: written before the reply, fsynced once a second (a host crash can lose about 1 s of acknowledged entries; a process kill loses none)",
    ackPolicy: REDIS_STREAMS_PROMISES.ackPolicy,
    replicas: REDIS_STREAMS_PROMISES.replicas,
    ordering: REDIS_STREAMS_PROMISES.ordering,
    notes: [REDIS_STREAMS_PROMISES.underFaults],
  }),
  report: { peer: true, storage: redisStorageLabel },
  create: (context, options) => new RedisStreamsDriver(context, options),
});

type Entry = [id: Buffer, fields: Buffer[] | null];

export class RedisStreamsDriver implements Driver {
  readonly name = "redis-streams";
  readonly acks = true;
  private readonly pool: Redis[] = [];
  private readonly consumers = new Set<RedisConsumer>();
  /** Consumer names are unique per driver instance: the bare client opens consumers in other processes. */
  private readonly instance = randomBytes(3).toString("hex");

  /** Connections (publishers' and consumers') re-established after a break. */
  private reconnects = 0;

  constructor(
    private readonly context: DriverContext,
    private readonly options: RedisStreamsOptions = redisStreamsOptions.parse({}),
  ) {}

  /**
   * For the run's accounting (docs/faults.md, "Drivers under faults"). ioredis resends unanswered
   * commands itself after a reconnect and does not say how many, so publish retries are not counted.
   */
  retryCounts(): RetryCounts {
    return { publishRetries: 0, reconnects: this.reconnects };
  }

  async connect(): Promise<void> {
    for (let i = 0; i < this.context.connections; i++) this.pool.push(await this.open(`ratatoskr-bench-redis-${i}`));
  }

  /** One connection: connected (or BrokerUnreachableError), then reconnecting with backoff. */
  async open(name: string): Promise<Redis> {
    const [host, port] = splitTarget(this.context.target);
    const clock = this.context.clock;
    let everReady = false;
    let downSinceMs: number | undefined;
    const reconnectForMs = this.options.reconnectForSeconds * 1000;
    const r = new Redis({
      host,
      port,
      connectionName: name,
      lazyConnect: true,
      connectTimeout: this.context.connectTimeoutMs,
      enableAutoPipelining: false,
      // RESP2: stream replies as plain arrays (RESP3's HELLO buys nothing here).
      protocol: 2,
      // A silent, dead connection (a stalled proxy) must not hold a blocking read forever.
      blockingTimeout: this.options.blockMs + 10_000,
      // Commands wait for the reconnect (and are resent) rather than fail after 20 tries.
      maxRetriesPerRequest: null,
      retryStrategy: (times) => {
        if (!everReady) return null; // the first connect fails at once, with its reason
        const nowMs = clock.nowUs() / 1000;
        downSinceMs ??= nowMs;
        if (nowMs - downSinceMs > reconnectForMs) return null;
        return Math.round(Math.min(2000, 50 * 2 ** Math.min(times - 1, 6)) * (0.5 + Math.random() / 2));
      },
    });
    r.on("ready", () => {
      if (everReady) this.reconnects++;
      everReady = true;
      downSinceMs = undefined;
    });
    r.on("error", () => undefined); // reported through the commands that fail; ioredis logs unhandled ones
    try {
      await r.connect();
    } catch (err) {
      r.disconnect();
      throw new BrokerUnreachableError(this.context.target, `Redis: ${message(err)}`, { cause: err });
    }
    return r;
  }

  private at(hint: number): Redis {
    const r = this.pool[hint % this.pool.length];
    if (!r) throw new DriverError(this.name, "not connected");
    return r;
  }

  async createTopics(_names: readonly string[]): Promise<void> {
    // A stream is created with its first group (XGROUP CREATE … MKSTREAM) or entry.
  }

  async createSubscription(spec: SubscriptionSpec): Promise<void> {
    try {
      await this.at(spec.slot).xgroup("CREATE", spec.topic, spec.name, "$", "MKSTREAM");
    } catch (err) {
      // BUSYGROUP is Redis's error code for "this group exists": fine, as for every driver.
      if (message(err).startsWith("BUSYGROUP")) return;
      throw new DriverError(this.name, `XGROUP CREATE ${spec.topic} ${spec.name}: ${message(err)}`, { cause: err });
    }
  }

  async openConsumer(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink): Promise<Consumer> {
    const conn = await this.open(`ratatoskr-bench-redis-${spec.name}-c${consumerIndex}`);
    const c = new RedisConsumer(conn, this.at(spec.slot + consumerIndex), spec, `${spec.name}-c${consumerIndex}-${this.instance}`, this.context.maxOutstandingMessages, this.options, sink);
    this.consumers.add(c);
    c.start(() => this.consumers.delete(c));
    return { close: () => c.close() };
  }

  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    let r: Redis;
    try {
      r = this.at(channelHint);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const p = r.pipeline();
    for (let i = 0; i < payloads.length; i++) p.xadd(topic, "*", PAYLOAD_FIELD, payloads[i]!);
    return p.exec().then((replies) => {
      let stored = 0;
      while (stored < payloads.length && replies?.[stored] && replies[stored]![0] === null) stored++;
      if (stored === 0) {
        const err = replies?.find((x) => x[0] !== null)?.[0];
        throw new DriverError(this.name, `XADD ${topic}: ${err ? err.message : "no reply"}`, { cause: err });
      }
      return stored;
    });
  }

  /** The AOF settings as the server reports them (CONFIG GET), which may differ from what the scenario asked. */
  async describeBroker(): Promise<BrokerSelfReport | undefined> {
    const got = (await this.at(0).config("GET", "append*")) as string[];
    const config = new Map<string, string>();
    for (let i = 0; i + 1 < got.length; i += 2) config.set(got[i]!, got[i + 1]!);
    const aof = config.get("appendonly") === "yes";
    return { source: "CONFIG GET appendonly/appendfsync", storage: aof ? "durable" : "memory", fsync: aof && config.get("appendfsync") === "always" };
  }

  async brokerStats(): Promise<BrokerStatsSample | undefined> {
    return undefined; // sampled from /proc/<pid> of the embedded redis-server
  }

  async cleanup(topics: readonly string[], _subscriptions: readonly string[]): Promise<void> {
    // Deleting a stream deletes its consumer groups.
    await inBatches(topics, 16, (t) => this.at(0).del(t).catch(() => undefined));
  }

  async close(): Promise<void> {
    for (const c of this.consumers) c.close();
    this.consumers.clear();
    await Promise.all(this.pool.map((r) => r.quit().catch(() => r.disconnect())));
    this.pool.length = 0;
  }
}

/** One consumer of a group: its read loop on its own connection, and its XAUTOCLAIM timer on a shared one. */
class RedisConsumer {
  private closing = false;
  /** After a reconnect: read this consumer's pending history (id 0) before new entries (>). */
  private recovering = false;
  private claimTimer: NodeJS.Timeout | undefined;
  private readonly ones: number[] = [];

  constructor(
    private readonly conn: Redis,
    private readonly shared: Redis,
    private readonly spec: SubscriptionSpec,
    private readonly consumer: string,
    private readonly count: number,
    private readonly options: RedisStreamsOptions,
    private readonly sink: DeliverySink,
  ) {
    // The connection was ready when it was handed over, so any later 'ready' is a reconnect.
    conn.on("ready", () => (this.recovering = true));
  }

  start(onEnd: () => void): void {
    this.claimTimer = setInterval(() => void this.claim(), this.options.claimIntervalMs);
    this.claimTimer.unref();
    void this.loop().finally(() => {
      clearInterval(this.claimTimer);
      onEnd();
    });
  }

  private async loop(): Promise<void> {
    const { topic, name } = this.spec;
    while (!this.closing) {
      let reply: unknown;
      const from = this.recovering ? "0" : ">";
      try {
        reply = await this.conn.callBuffer("XREADGROUP", "GROUP", name, this.consumer, "COUNT", this.count, "BLOCK", this.options.blockMs, "STREAMS", topic, from);
      } catch (err) {
        if (!this.closing) this.sink.onStreamError(this.spec.slot, new DriverError("redis-streams", `XREADGROUP ${topic} ${name}: ${message(err)}`, { cause: err }));
        return;
      }
      const entries = entriesOf(reply);
      if (from === "0" && entries.length === 0) this.recovering = false;
      if (entries.length === 0 || this.closing) continue;
      const attempts = from === "0" ? await this.deliveryCounts(entries) : this.fresh(entries.length);
      this.deliver(entries, attempts);
      // Acked after the generator accounted the batch; written just before the next read.
      this.conn.xack(topic, name, ...entries.map((e) => e[0])).catch(() => undefined);
    }
  }

  /** XAUTOCLAIM: entries of the group idle longer than claimIdleMs become this consumer's and are delivered again. */
  private async claim(): Promise<void> {
    if (this.closing || this.recovering) return;
    const { topic, name } = this.spec;
    try {
      const reply = await this.shared.callBuffer("XAUTOCLAIM", topic, name, this.consumer, this.options.claimIdleMs, "0-0", "COUNT", this.count);
      const entries = (Array.isArray(reply) ? (reply[1] as Entry[] | undefined) : undefined)?.filter((e) => e[1] !== null) ?? [];
      if (entries.length === 0 || this.closing) return;
      this.deliver(entries, await this.deliveryCounts(entries));
      await this.shared.xack(topic, name, ...entries.map((e) => e[0]));
    } catch {
      // The next interval tries again; the entries stay pending.
    }
  }

  private deliver(entries: Entry[], attempts: readonly number[]): void {
    for (let i = 0; i < entries.length; i++) {
      const fields = entries[i]![1];
      if (!fields) continue; // deleted while pending
      for (let f = 0; f + 1 < fields.length; f += 2) {
        if (fields[f]!.length === 1 && fields[f]![0] === 0x64 /* "d" */) {
          const payload = fields[f + 1]!;
          this.sink.onDelivery(this.spec.slot, payload, 0, payload.length, attempts[i]!);
          break;
        }
      }
    }
  }

  private fresh(n: number): number[] {
    while (this.ones.length < n) this.ones.push(1);
    return this.ones;
  }

  /** Delivery counts of entries now pending on this consumer (XPENDING, extended form), 2 where unknown. */
  private async deliveryCounts(entries: Entry[]): Promise<number[]> {
    const first = entries[0]![0].toString("latin1");
    const last = entries[entries.length - 1]![0].toString("latin1");
    const byId = new Map<string, number>();
    try {
      const rows = (await this.shared.xpending(this.spec.topic, this.spec.name, first, last, entries.length, this.consumer)) as [string, string, number, number][];
      for (const [id, , , count] of rows) byId.set(id, count);
    } catch {
      // counts unknown: at least the second delivery
    }
    return entries.map((e) => byId.get(e[0].toString("latin1")) ?? 2);
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.claimTimer);
    this.conn.disconnect();
  }
}

function entriesOf(reply: unknown): Entry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const stream = reply[0] as [Buffer, Entry[]] | undefined;
  return stream?.[1] ?? [];
}
