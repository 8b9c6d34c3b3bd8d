/**
 * Driver `rabbitmq`: RabbitMQ over AMQP 0-9-1 (amqplib), at-least-once.
 * - A topic is a fan-out exchange of that name; each subscription is a queue of its name bound to
 *   it, so a topic with k subscriptions gets k copies of every message. Competing consumers of a
 *   subscription consume from the one queue (RabbitMQ spreads deliveries over them).
 * - Queue type (`driverOptions.rabbitmq.queueType`): `quorum` (the default for durable storage:
 *   RabbitMQ's recommended type for data safety), `classic`, or `stream`. Memory storage runs
 *   classic non-durable queues with transient messages; quorum and stream queues always write to
 *   disk, so they are refused there. Durable storage: durable exchanges and queues, persistent
 *   messages (delivery mode 2).
 * - Publish ack = publisher confirm: a batch resolves when every message has its basic.ack; the
 *   window is `maxInFlightBatches × batchSize` confirms. Each message carries a `messageId`
 *   (`<link>.<batch>.<index>`) that stays the same when it is re-sent (rabbitmq-link.ts).
 * - Consumers: manual acks, `basic.qos` prefetch = `maxOutstandingMessages` per consumer (the
 *   flow control). Deliveries are acked with one `multiple` ack per ACK_EVERY deliveries or at the
 *   end of the event-loop turn, whichever is first. A consumer being closed nacks with requeue what
 *   still arrives, so RabbitMQ redelivers it to a competing consumer (attempt 2: the `redelivered`
 *   flag, or quorum's `x-delivery-count` + 1).
 * - Dead-lettering (`deadLetter: { deliveryLimit }`, quorum only): each queue gets a dead-letter
 *   exchange `<queue>.dlx` and a queue `<queue>.dead`; a message returned more than deliveryLimit
 *   times is moved there (quorum's `x-delivery-limit`).
 * - Connections drop and come back (rabbitmq-link.ts): the driver re-declares what it created and
 *   re-opens the consumers that lived on the dropped connection; unconfirmed publishes are
 *   re-sent. RabbitMQ does not de-duplicate, so a message whose confirm was lost is stored twice:
 *   the run counts such duplicates, it does not hide them.
 */
import type { Channel, ConsumeMessage } from "amqplib";
import { z } from "zod";
import { DriverError, UsageError } from "../errors.js";
import { defineDriver, type BrokerSettings, type BrokerStatsSample, type Consumer, type DeliverySink, type Driver, type DriverContext, type DriverScenario, type SubscriptionSpec } from "./driver.js";
import type { RetryCounts } from "./reconnect.js";
import { AmqpLink, type OutgoingBatch } from "./rabbitmq-link.js";
import { rabbitMqServer } from "./rabbitmq-server.js";
import { inBatches, message } from "./util.js";

/** Deliveries per `multiple` ack at most (else the ack goes at the end of the event-loop turn). */
export const ACK_EVERY = 100;

export type RabbitQueueType = "quorum" | "classic" | "stream";

export const rabbitMqOptions = z.strictObject({
  /** Default: quorum for durable storage, classic (non-durable) for memory. */
  queueType: z.enum(["quorum", "classic", "stream"]).optional(),
  /** Quorum queues only: dead-letter a message after it was returned more than deliveryLimit times. */
  deadLetter: z.strictObject({ deliveryLimit: z.number().int().positive() }).optional(),
});

export type RabbitMqOptions = z.output<typeof rabbitMqOptions>;

/**
 * What a rabbitmq run promises, for the "what each run promises" table (a plain constant until
 * DriverModule has a place for it). Keys: publish ack, storage, flush, consumer ack, replicas, ordering.
 */
export const RABBITMQ_PROMISES = {
  publishAck: "publisher confirm (basic.ack) per message; a batch resolves on all of them",
  storage: {
    memory: "classic non-durable queues, transient messages (may be paged to disk under memory pressure)",
    durable: "durable queues (quorum by default), persistent messages",
  },
  flush: {
    memory: "none",
    durable: "quorum: confirmed after the Raft WAL write is fsynced; classic: confirmed after the message store synced to disk",
  },
  consumerAck: `manual acks, one multiple-ack per ${ACK_EVERY} deliveries or per event-loop turn; prefetch = maxOutstandingMessages per consumer`,
  replicas: "1 (a single node; a quorum queue of one member)",
  ordering: "per queue FIFO for a single consumer; redeliveries and competing consumers reorder",
  duplicates: "possible after a connection cut: unconfirmed messages are re-sent with the same messageId and RabbitMQ does not de-duplicate",
} as const;

/** The queue type a run uses. */
export function queueTypeFor(broker: BrokerSettings, options: RabbitMqOptions): RabbitQueueType {
  return options.queueType ?? (broker.storage === "durable" ? "quorum" : "classic");
}

/** Scenario fields RabbitMQ cannot honour as asked; an empty list means the scenario may run. */
export function rabbitMqRefusals(s: DriverScenario): string[] {
  const out: string[] = [];
  if (s.broker.storage === "durable" && !s.broker.fsync) {
    out.push(
      "broker.fsync=false: RabbitMQ confirms a persistent message on a durable queue only after it is synced to disk (quorum: the WAL fsync; classic: the message store sync); " +
        "there is no setting that confirms before syncing, so a durable rabbitmq run is always fsync=true",
    );
  }
  if (s.broker.memoryBudgetBytes !== undefined) out.push("broker.memoryBudgetBytes: a ratatoskr broker option with no RabbitMQ equivalent the driver sets");
  if (s.broker.args.length > 0) out.push("broker.args: ratatoskr broker command-line arguments cannot be passed to rabbitmq-server");
  if (s.tls === true) out.push("tls=true: the embedded rabbitmq-server is started without TLS (not built yet for this driver)");
  return out;
}

/** Option combinations RabbitMQ cannot run; checked when the driver is created. */
export function rabbitMqOptionRefusals(broker: BrokerSettings, consumersPerSubscription: number, options: RabbitMqOptions): string[] {
  const out: string[] = [];
  const type = queueTypeFor(broker, options);
  if (broker.storage === "memory" && type !== "classic") out.push(`driverOptions.rabbitmq.queueType=${type}: ${type} queues always store on disk; broker.storage=memory runs classic non-durable queues`);
  if (type === "stream" && consumersPerSubscription > 1) out.push(`driverOptions.rabbitmq.queueType=stream with consumersPerSubscription=${consumersPerSubscription}: every consumer of a stream reads all of it (no competing consumers)`);
  if (options.deadLetter && type !== "quorum") out.push(`driverOptions.rabbitmq.deadLetter: needs quorum queues (x-delivery-limit), not ${type}`);
  return out;
}

export const rabbitMqDriver = defineDriver({
  name: "rabbitmq",
  summary: "RabbitMQ (AMQP 0-9-1): a fan-out exchange per topic, a queue per subscription, publisher confirms, manual acks; at-least-once",
  options: rabbitMqOptions,
  movedFields: {},
  refusals: rabbitMqRefusals,
  embeddedServer: rabbitMqServer,
  promises: (broker, o) => ({
    publishAck: RABBITMQ_PROMISES.publishAck,
    storage: `${RABBITMQ_PROMISES.storage[broker.storage]} (queue type ${queueTypeFor(broker, o)})`,
    flush: RABBITMQ_PROMISES.flush[broker.storage],
    ackPolicy: RABBITMQ_PROMISES.consumerAck,
    replicas: 1,
    ordering: RABBITMQ_PROMISES.ordering,
    notes: [RABBITMQ_PROMISES.duplicates],
  }),
  report: { peer: true, storage: (broker) => (broker.storage === "durable" ? "durable queues (quorum default), fsync before confirm" : "memory (classic, transient)") },
  create: (context, options) => new RabbitMqDriver(context, options),
});

interface OpenConsumer {
  spec: SubscriptionSpec;
  link: AmqpLink;
  sink: DeliverySink;
  channel: Channel | undefined;
  closing: boolean;
  /** Highest delivery tag accounted and not yet acked (0: none). */
  ackTag: number;
  unacked: number;
  ackScheduled: boolean;
}

export class RabbitMqDriver implements Driver {
  readonly name = "rabbitmq";
  readonly acks = true;
  private readonly links: AmqpLink[] = [];
  private readonly queueType: RabbitQueueType;
  private readonly durable: boolean;
  private readonly exchanges = new Set<string>();
  private readonly queues = new Map<string, string>();
  private readonly consumers = new Set<OpenConsumer>();
  private batchSeq = 0;
  private cleaningUp = false;

  constructor(
    private readonly context: DriverContext,
    private readonly options: RabbitMqOptions = {},
  ) {
    this.queueType = queueTypeFor(context.broker, options);
    this.durable = context.broker.storage === "durable";
    const problems = rabbitMqOptionRefusals(context.broker, 1, options);
    if (problems.length > 0) throw new UsageError(`driver rabbitmq: ${problems.join("; ")}`);
  }

  /** Reconnects over all links so far (for reports and tests). */
  get reconnects(): number {
    return this.links.reduce((n, l) => n + l.reconnects, 0);
  }

  /** Messages re-sent after a failed or lost confirm. */
  get republished(): number {
    return this.links.reduce((n, l) => n + l.republished, 0);
  }

  /** For the run's accounting (docs/faults.md, "Drivers under faults"): messages re-sent, connections re-established. */
  retryCounts(): RetryCounts {
    return { publishRetries: this.republished, reconnects: this.reconnects };
  }

  async connect(): Promise<void> {
    if (this.context.tls || this.context.token !== undefined) throw new DriverError(this.name, "TLS and tokens are not supported by the rabbitmq driver yet (guest over plaintext loopback)");
    const url = `amqp://guest:guest@${this.context.target}`;
    for (let i = 0; i < Math.max(1, this.context.connections); i++) {
      const link = new AmqpLink(i, url, this.context.target, this.context.connectTimeoutMs, (l, first) => this.linkUp(l, first));
      link.onDown(() => {
        for (const c of this.consumers) if (c.link === link) c.channel = undefined;
      });
      this.links.push(link);
      await link.open();
    }
  }

  /** After a reconnect: declare again what this driver created, then re-open that link's consumers. */
  private async linkUp(link: AmqpLink, first: boolean): Promise<void> {
    if (first) return;
    const ch = await link.connection.createChannel();
    ch.on("error", () => undefined);
    try {
      for (const e of this.exchanges) await this.declareExchange(ch, e);
      for (const [q, topic] of this.queues) await this.declareQueue(ch, q, topic);
    } finally {
      await ch.close().catch(() => undefined);
    }
    for (const c of this.consumers) if (c.link === link && !c.closing) await this.startConsumer(c);
  }

  private link(hint: number): AmqpLink {
    const l = this.links[hint % this.links.length];
    if (!l) throw new DriverError(this.name, "not connected");
    return l;
  }

  /** A short-lived channel for declarations (a failed declare closes its channel, not the connection). */
  private async admin<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
    const link = this.link(0);
    await link.ready();
    const ch = await link.connection.createChannel();
    ch.on("error", () => undefined); // a failed call rejects with the server's reason
    try {
      return await fn(ch);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  private declareExchange(ch: Channel, name: string): Promise<unknown> {
    return ch.assertExchange(name, "fanout", { durable: this.durable });
  }

  private async declareQueue(ch: Channel, queue: string, topic: string): Promise<void> {
    const args: Record<string, unknown> = {};
    if (this.queueType !== "classic") args["x-queue-type"] = this.queueType;
    if (this.options.deadLetter) {
      await ch.assertExchange(`${queue}.dlx`, "fanout", { durable: true });
      await ch.assertQueue(`${queue}.dead`, { durable: true, arguments: { "x-queue-type": "quorum" } });
      await ch.bindQueue(`${queue}.dead`, `${queue}.dlx`, "");
      args["x-dead-letter-exchange"] = `${queue}.dlx`;
      args["x-delivery-limit"] = this.options.deadLetter.deliveryLimit;
    }
    // Quorum and stream queues are durable by definition; classic queues follow the storage.
    await ch.assertQueue(queue, { durable: this.queueType !== "classic" || this.durable, arguments: args });
    await ch.bindQueue(queue, topic, "");
  }

  async createTopics(names: readonly string[]): Promise<void> {
    try {
      await this.admin((ch) => inBatches(names, 1, async (n) => {
        await this.declareExchange(ch, n);
        this.exchanges.add(n);
      }));
    } catch (err) {
      throw new DriverError(this.name, `declare exchanges: ${message(err)}`, { cause: err });
    }
  }

  async createSubscription(spec: SubscriptionSpec): Promise<void> {
    try {
      await this.admin((ch) => this.declareQueue(ch, spec.name, spec.topic));
      this.queues.set(spec.name, spec.topic);
    } catch (err) {
      throw new DriverError(this.name, `declare queue ${spec.name} (${this.queueType}) bound to ${spec.topic}: ${message(err)}`, { cause: err });
    }
  }

  async openConsumer(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink): Promise<Consumer> {
    if (this.queueType === "stream" && consumerIndex > 0) throw new UsageError(`driver rabbitmq: ${rabbitMqOptionRefusals(this.context.broker, consumerIndex + 1, this.options).join("; ")}`);
    const link = this.link(spec.slot + consumerIndex);
    await link.ready();
    const c: OpenConsumer = { spec, link, sink, channel: undefined, closing: false, ackTag: 0, unacked: 0, ackScheduled: false };
    await this.startConsumer(c);
    this.consumers.add(c);
    return { close: () => this.closeConsumer(c) };
  }

  private async startConsumer(c: OpenConsumer): Promise<void> {
    const ch = await c.link.connection.createChannel();
    ch.on("error", () => undefined);
    c.channel = ch;
    c.ackTag = 0;
    c.unacked = 0;
    await ch.prefetch(this.context.maxOutstandingMessages);
    const isQuorum = this.queueType === "quorum";
    // Resolves on basic.consume-ok: the queue exists and delivers to this consumer from now on.
    await ch.consume(
      c.spec.name,
      (m: ConsumeMessage | null) => {
        if (m === null) {
          // basic.cancel from the server: the queue was deleted under us.
          if (!c.closing && !this.cleaningUp) c.sink.onStreamError(c.spec.slot, new DriverError(this.name, `queue ${c.spec.name} cancelled the consumer (deleted?)`));
          return;
        }
        if (c.closing) {
          ch.nack(m, false, true);
          return;
        }
        const count: unknown = isQuorum ? m.properties.headers?.["x-delivery-count"] : undefined;
        const attempt = typeof count === "number" ? count + 1 : m.fields.redelivered ? 2 : 1;
        c.sink.onDelivery(c.spec.slot, m.content, 0, m.content.length, attempt);
        c.ackTag = m.fields.deliveryTag;
        if (++c.unacked >= ACK_EVERY) this.flushAcks(c);
        else if (!c.ackScheduled) {
          c.ackScheduled = true;
          setImmediate(() => this.flushAcks(c));
        }
      },
      { noAck: false, ...(this.queueType === "stream" ? { arguments: { "x-stream-offset": "next" } } : {}) },
    );
  }

  private flushAcks(c: OpenConsumer): void {
    c.ackScheduled = false;
    const ch = c.channel;
    if (c.unacked === 0 || !ch) return;
    try {
      ch.ack({ fields: { deliveryTag: c.ackTag } } as ConsumeMessage, true);
    } catch {
      // The channel is closing: unacked deliveries are requeued by the broker and redelivered.
    }
    c.unacked = 0;
  }

  private closeConsumer(c: OpenConsumer): void {
    if (c.closing) return;
    this.flushAcks(c);
    c.closing = true;
    this.consumers.delete(c);
    const ch = c.channel;
    c.channel = undefined;
    void ch?.close().catch(() => undefined);
  }

  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    if (payloads.length === 0) return Promise.resolve(0);
    const link = this.link(channelHint);
    return new Promise<number>((resolve, reject) => {
      const batch: OutgoingBatch = {
        exchange: topic,
        payloads,
        idPrefix: `${link.index}.${this.batchSeq++}.`,
        persistent: this.durable,
        left: payloads.length,
        attempts: new Uint8Array(payloads.length),
        resolve,
        reject,
      };
      link.publish(batch);
    });
  }

  async brokerStats(): Promise<BrokerStatsSample | undefined> {
    return undefined; // sampled from /proc/<pid> of the embedded server's beam.smp
  }

  async cleanup(topics: readonly string[], subscriptions: readonly string[]): Promise<void> {
    this.cleaningUp = true; // deleting a queue cancels its consumers: not a stream error
    await this.admin(async (ch0) => {
      let ch = ch0;
      // A failed delete closes the channel: use a fresh one for the rest.
      const each = async (fn: (c: Channel) => Promise<unknown>) => {
        try {
          await fn(ch);
        } catch {
          ch = await this.link(0).connection.createChannel();
          ch.on("error", () => undefined);
        }
      };
      for (const q of subscriptions) {
        await each((c) => c.deleteQueue(q));
        if (this.options.deadLetter) {
          await each((c) => c.deleteQueue(`${q}.dead`));
          await each((c) => c.deleteExchange(`${q}.dlx`));
        }
        this.queues.delete(q);
      }
      for (const t of topics) {
        await each((c) => c.deleteExchange(t));
        this.exchanges.delete(t);
      }
      if (ch !== ch0) await ch.close().catch(() => undefined);
    })
      .catch(() => undefined)
      .finally(() => (this.cleaningUp = false));
  }

  async close(): Promise<void> {
    for (const c of [...this.consumers]) this.closeConsumer(c);
    await Promise.all(this.links.map((l) => l.close()));
    this.links.length = 0;
  }
}
