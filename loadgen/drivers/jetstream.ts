/**
 * Driver `jetstream`: NATS JetStream, at-least-once. A topic is a stream of its own (subject =
 * stream name = topic name) with interest retention (a message is kept until every consumer
 * acked it, like ratatoskr's default); `broker.storage: memory` gives a memory stream, `durable`
 * a file stream. A subscription is a durable pull consumer (deliver new, explicit acks); each
 * runner consumer is one `consume()` loop on it, pulling up to `maxOutstandingMessages`, so
 * several consumers of one subscription compete. Every delivery is acked (`+ACK`, one per
 * message: explicit ack policy has no batched form) right after the runner accounted it.
 *
 * Publishing is a core PUB with a reply subject per batch (see jetstream-publisher.ts); a batch
 * resolves when every message has its PubAck, so `maxInFlightBatches × batchSize` is the
 * publish window.
 *
 * Not the same work as ratatoskr durable + fsync: nats-server 2.9's file store acknowledges
 * before syncing and syncs in the background (every 2 minutes by default), so `broker.fsync:
 * true` is refused here; run JetStream file storage with `broker.fsync: false` and say so.
 *
 * Under faults (`reconnect` on; docs/faults.md, "Drivers under faults"): at-least-once. The
 * connections reconnect with backoff (nats-pool.ts); a `consume()` loop that ends with an error
 * is opened again on the same durable consumer, which redelivers what was not acked; publishes
 * carry `Nats-Msg-Id` and unanswered ones are retried with the same id (jetstream-publisher.ts),
 * de-duplicated by the stream's duplicate window (2 minutes by default). A memory stream does not
 * survive a server restart, so faults that restart nats-server need `broker.storage: durable`.
 */
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "nats";
import { z } from "zod";
import { DriverError } from "../errors.js";
import { defineDriver, type BrokerSelfReport, type BrokerStatsSample, type Consumer, type DeliverySink, type Driver, type DriverOptions, type DriverScenario, type SubscriptionSpec } from "./driver.js";
import { NatsPool } from "./nats-pool.js";
import { natsServer } from "./nats-server.js";
import { PubAckMux } from "./jetstream-publisher.js";
import { Backoff, ReconnectGaveUpError, RetryTimers, type RetryCounts } from "./reconnect.js";
import { inBatches, message, runNonce } from "./util.js";

/** Scenario fields JetStream cannot honour; an empty list means the scenario may run. */
export function jetStreamRefusals(s: DriverScenario): string[] {
  const out: string[] = [];
  if (s.broker.fsync) {
    out.push(
      "broker.fsync=true: nats-server 2.9's file store acks before it syncs (background sync every 2 minutes), so it cannot flush before acking; " +
        "run JetStream with broker.fsync=false (set entry `set: [broker.fsync=false]`) and disclose it",
    );
  }
  if (s.broker.memoryBudgetBytes !== undefined) out.push("broker.memoryBudgetBytes: a ratatoskr broker option (JetStream limits are per stream)");
  if (s.broker.args.length > 0) out.push("broker.args: ratatoskr broker command-line arguments cannot be passed to nats-server");
  return out;
}

export const jetStreamDriver = defineDriver({
  name: "jetstream",
  summary: "NATS JetStream: a stream per topic (interest retention), durable pull consumers, explicit acks; at-least-once",
  options: z.strictObject({}),
  movedFields: {},
  refusals: jetStreamRefusals,
  embeddedServer: natsServer,
  report: { peer: true, storage: (broker) => (broker.storage === "durable" ? "file (background sync)" : "memory") },
  promises: (broker) => ({
    publishAck: "PubAck after the stream stored the message",
    storage: broker.storage === "durable" ? "file store (stream per topic, interest retention)" : "memory store (lost when nats-server stops or is killed)",
    flush: broker.storage === "durable" ? "background sync (nats-server's sync interval, 2 minutes by default): acknowledged messages are in the page cache, so they survive a process kill but not an OS crash or power loss before the sync" : "none",
    ackPolicy: "explicit acks (AckPolicy.Explicit) on durable pull consumers; redelivered after ack_wait (at-least-once)",
    replicas: 1,
    ordering: "per stream in publish order for one consumer",
    notes: ["a publish retried with the same Nats-Msg-Id is de-duplicated within the stream's duplicate window"],
  }),
  create: (context) => new JetStreamDriver(context, context.broker.storage === "durable" ? "file" : "memory"),
});

export class JetStreamDriver implements Driver {
  readonly name = "jetstream";
  readonly acks = true;
  private readonly pool: NatsPool;
  private jsm: JetStreamManager | undefined;
  private readonly js: JetStreamClient[] = [];
  private readonly publishers: PubAckMux[] = [];
  private readonly consumers = new Set<ConsumerMessages>();
  private readonly streams: string[] = [];
  private readonly counts: RetryCounts = { publishRetries: 0, reconnects: 0 };
  private readonly timers = new RetryTimers();

  constructor(
    private readonly options: DriverOptions,
    private readonly storage: "memory" | "file" = "memory",
  ) {
    this.pool = new NatsPool(options.target, options.connections, "ratatoskr-bench-jetstream", options, options.reconnect, () => options.clock.wallMs());
  }

  retryCounts(): RetryCounts {
    return { publishRetries: this.counts.publishRetries, reconnects: this.counts.reconnects + this.pool.counts.reconnects };
  }

  async connect(): Promise<void> {
    await this.pool.open(this.options.connectTimeoutMs);
    try {
      this.jsm = await this.pool.at(0).jetstreamManager({ timeout: 10_000 });
    } catch (err) {
      throw new DriverError(this.name, `JetStream is not enabled on ${this.options.target} (start nats-server with -js): ${message(err)}`, { cause: err });
    }
    for (let i = 0; i < this.pool.length; i++) {
      this.js.push(this.pool.at(i).jetstream({ timeout: 10_000 }));
      const retry = this.options.reconnect ? { policy: this.options.reconnect, nonce: runNonce(), counts: this.counts } : undefined;
      this.publishers.push(new PubAckMux(this.pool.at(i), this.options.clock, undefined, retry));
    }
  }

  private manager(): JetStreamManager {
    if (!this.jsm) throw new DriverError(this.name, "not connected");
    return this.jsm;
  }

  async createTopics(names: readonly string[]): Promise<void> {
    const jsm = this.manager();
    const storage = this.storage === "file" ? StorageType.File : StorageType.Memory;
    await inBatches(names, 16, async (name) => {
      try {
        await jsm.streams.add({ name, subjects: [name], storage, retention: RetentionPolicy.Interest, num_replicas: 1 });
        this.streams.push(name);
      } catch (err) {
        // "stream name already in use" with the same configuration is fine; anything else is not.
        const existing = await jsm.streams.info(name).catch(() => undefined);
        if (!existing) throw new DriverError(this.name, `add stream ${name}: ${message(err)}`, { cause: err });
        this.streams.push(name);
      }
    });
  }

  async createSubscription(spec: SubscriptionSpec): Promise<void> {
    try {
      await this.manager().consumers.add(spec.topic, {
        durable_name: spec.name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        // Outstanding deliveries are bounded per puller by max_messages (below).
        max_ack_pending: -1,
      });
    } catch (err) {
      throw new DriverError(this.name, `add consumer ${spec.name} on ${spec.topic}: ${message(err)}`, { cause: err });
    }
  }

  async openConsumer(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink): Promise<Consumer> {
    const policy = this.options.reconnect;
    const backoff = policy ? new Backoff(policy, () => this.options.clock.wallMs()) : undefined;
    let closing = false;
    let current: ConsumerMessages | undefined;
    const broke = (err: Error): void => {
      current = undefined;
      if (closing || this.timers.isClosed) return;
      if (!backoff) return sink.onStreamError(spec.slot, err);
      const wait = backoff.failed();
      if (wait === undefined) return sink.onStreamError(spec.slot, new ReconnectGaveUpError(`JetStream consumer ${spec.name}`, backoff.outageMs(), { cause: err }));
      if (backoff.failures === 1) sink.onReconnect?.(spec.slot, err);
      this.timers.after(wait, () => {
        this.consume(spec, consumerIndex, sink, () => closing, broke).then(
          (m) => {
            if (closing) return void m.close().catch(() => undefined);
            current = m;
            backoff.succeeded();
            this.counts.reconnects++;
          },
          (e: unknown) => broke(e instanceof Error ? e : new Error(String(e))),
        );
      });
    };
    current = await this.consume(spec, consumerIndex, sink, () => closing, broke);
    return {
      close: () => {
        closing = true;
        if (!current) return;
        this.consumers.delete(current);
        void current.close().catch(() => undefined);
      },
    };
  }

  /** One `consume()` loop on the durable consumer; `broke` hears if it ends with an error. */
  private async consume(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink, closing: () => boolean, broke: (err: Error) => void): Promise<ConsumerMessages> {
    const js = this.js[(spec.slot + consumerIndex) % this.js.length]!;
    const consumer = await js.consumers.get(spec.topic, spec.name);
    // Reply subjects are `$JS.ACK.<stream>.<consumer>.<delivery count>.…`: read the count
    // without nats.js's full parse (split + five parseInt per message).
    const countAt = `$JS.ACK.${spec.topic}.${spec.name}.`.length;
    const messages = await consumer.consume({
      max_messages: this.options.maxOutstandingMessages,
      callback: (m) => {
        // JsMsgImpl exposes `reply` (not in the JsMsg type); fall back to the full parse.
        const reply = (m as JsMsg & { reply?: string }).reply;
        const attempt = reply !== undefined && reply.charCodeAt(countAt + 1) === 46 ? reply.charCodeAt(countAt) - 48 : m.info.deliveryCount;
        sink.onDelivery(spec.slot, m.data, 0, m.data.length, attempt);
        if (!closing()) m.ack();
      },
    });
    this.consumers.add(messages);
    void messages.closed().then((err) => {
      this.consumers.delete(messages);
      if (err && !closing()) broke(err);
    });
    return messages;
  }

  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    const p = this.publishers[channelHint % this.publishers.length];
    if (!p) return Promise.reject(new DriverError(this.name, "not connected"));
    return p.publish(topic, payloads);
  }

  /** The storage of a stream as the server reports it (an existing stream may differ from what we asked). */
  async describeBroker(): Promise<BrokerSelfReport | undefined> {
    const name = this.streams[0];
    if (name === undefined) return undefined;
    const info = await this.manager().streams.info(name);
    return { source: `JetStream stream info of ${name}`, storage: info.config.storage === StorageType.File ? "durable" : "memory", fsync: false };
  }

  async brokerStats(): Promise<BrokerStatsSample | undefined> {
    return undefined; // sampled from /proc/<pid> of the embedded nats-server
  }

  async cleanup(topics: readonly string[], subscriptions: readonly string[]): Promise<void> {
    const jsm = this.manager();
    const streamOf = new Map<string, string>();
    for (const t of topics) for (const s of subscriptions) if (s.startsWith(`${t}-`)) streamOf.set(s, t);
    await inBatches(subscriptions, 16, (s) => jsm.consumers.delete(streamOf.get(s) ?? "", s).catch(() => undefined));
    await inBatches(topics, 16, (t) => jsm.streams.delete(t).catch(() => undefined));
  }

  async close(): Promise<void> {
    this.timers.close();
    for (const c of this.consumers) await c.close().catch(() => undefined);
    this.consumers.clear();
    for (const p of this.publishers) p.close();
    this.publishers.length = 0;
    await this.pool.close();
  }
}
