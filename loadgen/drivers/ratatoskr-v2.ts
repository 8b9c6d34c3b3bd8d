/**
 * Driver `ratatoskr`: the v2 API. Batches published as pre-encoded frames on one PublishStream
 * per connection (or, with `driverOptions.ratatoskr.publish: unary`, one Publish call each), one
 * Consume bidi stream per consumer with flow control, acks batched on the same stream (see
 * ACK_LINGER_MS in v2-consumer.ts). Publishes go through grpc-js channels; Consume streams and
 * CreateSubscription through the generator's own HTTP/2 client (h2-consume.ts, h2-unary.ts), on
 * connections of their own: `connections` of each.
 *
 * Under faults (`reconnect` on; docs/faults.md, "Drivers under faults"): at-least-once end to
 * end. Every message carries a producer message id (run nonce + producer, topic, sequence), so a
 * batch whose ack did not arrive (stream broke, no ack within PUBLISH_ACK_TIMEOUT_MS,
 * UNAVAILABLE) is sent again with the same ids and the broker's de-duplication window stores it
 * once (the window survives a kill -9 of the durable store; the memory store forgets it with
 * everything else). A broken Consume stream is re-opened on the same subscription; what the
 * old stream held unacked is redelivered by the broker. A topic or subscription the broker no
 * longer knows (a memory-store broker restarted) is created again, and what it lost shows as
 * lost. Retries and reconnects back off (reconnect.ts) and give up after `giveUpMs`.
 */
import * as grpc from "@grpc/grpc-js";
import { z } from "zod";
import { BrokerClient, BrokerService, CreateSubscriptionRequest, StartPosition, type BrokerStats } from "../../proto/gen/ratatoskr/v2/broker.js";
import { DriverError } from "../errors.js";
import { referenceBroker, referenceBrokerDurability, referenceBrokerStorage } from "./broker-process.js";
import { defineDriver, type BrokerSelfReport, type BrokerStatsSample, type Consumer, type DeliverySink, type Driver, type DriverOptions, type SubscriptionSpec } from "./driver.js";
import { ClientPool, isStatus, reconnectChannelOptions, unary } from "./grpc-pool.js";
import { driverConsumeClient } from "./h2-consume.js";
import { driverSessionOptions } from "./h2-grpc.js";
import { H2UnaryClient } from "./h2-unary.js";
import { Backoff, ReconnectGaveUpError, RetryTimers, type ReconnectPolicy, type RetryCounts } from "./reconnect.js";
import { inBatches, message, messageIdOf, runNonce } from "./util.js";
import { retryable, V2Consumer, type ConsumerContext } from "./v2-consumer.js";
import { decodePublishStreamAck, encodeV2Publish, encodeV2PublishStream, withRequestId, type PublishStreamAck } from "./wire.js";

const identity = (b: Buffer): Buffer => b;

/** `stream`: each batch one frame on a PublishStream per connection; `unary`: one Publish call per batch. */
export type V2PublishMode = "stream" | "unary";

export const ratatoskrDriver = defineDriver({
  name: "ratatoskr",
  summary: "ratatoskr v2 API: PublishStream (or unary Publish), Consume streams with flow control and acks; at-least-once",
  options: z.strictObject({
    /** How batches are published; see V2PublishMode. */
    publish: z.enum(["stream", "unary"]).default("stream"),
  }),
  movedFields: { v2Publish: "publish" },
  refusals: () => [],
  embeddedServer: referenceBroker,
  pausableConsumers: true,
  report: { peer: false, storage: referenceBrokerStorage },
  promises: (broker, options) => ({
    publishAck: `${options.publish === "stream" ? "PublishStream ack" : "Publish response"} after the store commit`,
    ...referenceBrokerDurability(broker),
    ackPolicy: "explicit per-message acks; an unacknowledged message is redelivered after its ack deadline (at-least-once)",
    ordering: "per topic in publish order for first deliveries of one consumer; redeliveries go ahead of new messages",
    notes: ["a retried publish with the same message id is not stored again within the de-duplication window (docs/api-v2.md)"],
  }),
  create: (context, options) => new RatatoskrV2Driver(context, options.publish),
});

/** With reconnect on: a publish whose ack has not arrived after this long is sent again. */
export const PUBLISH_ACK_TIMEOUT_MS = 5000;

export class RatatoskrV2Driver implements Driver {
  readonly name = "ratatoskr";
  readonly acks = true;
  private readonly pool: ClientPool<BrokerClient>;
  /** CreateSubscription's own connections (the generator's unary client). */
  private readonly unaryCalls: H2UnaryClient;
  /** What the consumers share, the Consume streams' own connections among it. */
  private readonly consumers: ConsumerContext;
  private readonly publishers: StreamPublisher | undefined;
  private readonly reconnect: ReconnectPolicy | undefined;
  private readonly timers = new RetryTimers();
  private readonly nonce = runNonce();
  private readonly counts: RetryCounts = { publishRetries: 0, reconnects: 0 };
  /** Topics this run created: created again when a restarted broker no longer knows them. */
  private readonly topics = new Set<string>();
  private readonly subscriptions = new Map<string, SubscriptionSpec>();

  constructor(private readonly options: DriverOptions, publish: V2PublishMode = "stream") {
    this.reconnect = options.reconnect;
    const channel = reconnectChannelOptions(options.reconnect);
    this.pool = new ClientPool((creds, o) => new BrokerClient(options.target, creds, { ...o, ...channel }), options.connections, options);
    this.consumers = {
      sessions: driverConsumeClient(options, this.pool),
      options,
      reconnect: this.reconnect,
      timers: this.timers,
      counts: this.counts,
      ackFlushAt: Math.max(1, Math.floor(options.maxOutstandingMessages / 2)),
      open: new Set(),
      recreate: (spec) => this.recreate(spec),
    };
    this.unaryCalls = new H2UnaryClient(driverSessionOptions(options, this.pool), options.connections);
    if (publish === "stream") this.publishers = new StreamPublisher(this.pool, this.reconnect ? PUBLISH_ACK_TIMEOUT_MS : undefined);
  }

  retryCounts(): RetryCounts {
    return { ...this.counts };
  }

  async connect(): Promise<void> {
    await this.pool.ready(this.options.target, this.options.connectTimeoutMs, this.options.clock);
  }

  async createTopics(names: readonly string[]): Promise<void> {
    await inBatches(names, 64, async (name, i) => {
      this.topics.add(name);
      try {
        await unary((cb) => this.pool.at(i).createTopic({ name, config: undefined }, cb));
      } catch (err) {
        if (!isStatus(err, grpc.status.ALREADY_EXISTS)) throw new DriverError(this.name, `CreateTopic ${name}: ${message(err)}`, { cause: err });
      }
    });
  }

  async createSubscription(spec: SubscriptionSpec): Promise<void> {
    this.subscriptions.set(spec.name, spec);
    const request = CreateSubscriptionRequest.encode({
      name: spec.name,
      topic: spec.topic,
      config: {
        start: StartPosition.START_POSITION_LATEST,
        startSequence: 0n,
        startTimestampMs: 0n,
        ackDeadlineMs: 0,
        maxDeliveries: 0,
        deadLetterTopic: "",
        retryBackoffMinMs: 0,
        retryBackoffMaxMs: 0,
      },
    }).finish();
    try {
      // On the generator's own unary client (h2-unary.ts), not a grpc-js unary call: a connect
      // phase makes one per subscription, with the generator's loop as its limit.
      await this.unaryCalls.unary(spec.slot, BrokerService.createSubscription.path, request);
    } catch (err) {
      if (!isStatus(err, grpc.status.ALREADY_EXISTS)) throw new DriverError(this.name, `CreateSubscription ${spec.name}: ${message(err)}`, { cause: err });
    }
  }

  async openConsumer(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink): Promise<Consumer> {
    return new V2Consumer(this.consumers, spec, consumerIndex, sink);
  }

  /** Create a topic and subscription again after a broker restart lost them (existing ones are fine). */
  private async recreate(spec: SubscriptionSpec): Promise<void> {
    await this.createTopics([spec.topic]);
    await this.createSubscription(spec);
  }

  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    if (this.reconnect) return this.publishRetrying(topic, payloads, channelHint, this.reconnect);
    if (this.publishers) return this.publishers.publish(topic, payloads, channelHint);
    return this.publishUnary(encodeV2Publish(topic, payloads), payloads.length, channelHint);
  }

  private publishUnary(request: Buffer, n: number, channelHint: number, timeoutMs?: number): Promise<number> {
    const options: grpc.CallOptions = timeoutMs === undefined ? {} : { deadline: this.options.clock.wallMs() + timeoutMs };
    return new Promise((resolve, reject) => {
      this.pool.at(channelHint).makeUnaryRequest(BrokerService.publish.path, identity, identity, request, new grpc.Metadata(), options, (err) => (err ? reject(err) : resolve(n)));
    });
  }

  /**
   * Reconnect on: the batch is encoded once with its message ids and sent until an ack arrives,
   * a final status (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...) rejects it, or the outage passes
   * the give-up deadline. A retry re-sends the same ids, so the broker stores the batch once.
   */
  private publishRetrying(topic: string, payloads: readonly Buffer[], channelHint: number, policy: ReconnectPolicy): Promise<number> {
    const ids = payloads.map((p) => messageIdOf(this.nonce, p));
    const request = encodeV2Publish(topic, payloads, ids);
    const n = payloads.length;
    const backoff = new Backoff(policy, () => this.options.clock.wallMs());
    const send = (): Promise<number> => (this.publishers ? this.publishers.publishEncoded(request, n, channelHint) : this.publishUnary(request, n, channelHint, PUBLISH_ACK_TIMEOUT_MS));
    return new Promise((resolve, reject) => {
      const attempt = (): void => {
        send().then(resolve, (err: unknown) => {
          if (this.timers.isClosed || !retryable(err)) return reject(err);
          const wait = backoff.failed();
          if (wait === undefined) return reject(new ReconnectGaveUpError(`publish to ${topic}`, backoff.outageMs(), { cause: err }));
          this.timers.after(wait, () => {
            this.counts.publishRetries++;
            if (!isStatus(err, grpc.status.NOT_FOUND)) return attempt();
            // A restarted memory-store broker forgot the topic: create it again, then retry.
            this.createTopics([topic]).then(attempt, (e: unknown) => reject(e));
          });
        });
      };
      attempt();
    });
  }

  async describeBroker(): Promise<BrokerSelfReport | undefined> {
    const s = await this.stats();
    return {
      source: "GetBrokerStats",
      ...(s.storage === "memory" || s.storage === "durable" ? { storage: s.storage } : {}),
      fsync: s.fsync,
      memoryBudgetBytes: Number(s.memoryBudgetBytes),
    };
  }

  private stats(): Promise<BrokerStats> {
    return unary<BrokerStats>((cb) => this.pool.at(0).getBrokerStats({}, new grpc.Metadata(), { deadline: this.options.clock.wallMs() + 2000 }, cb));
  }

  async brokerStats(): Promise<BrokerStatsSample | undefined> {
    const s = await this.stats();
    return {
      rssBytes: Number(s.rssBytes),
      cpuUserSeconds: s.cpuUserSeconds,
      cpuSystemSeconds: s.cpuSystemSeconds,
      heapUsedBytes: Number(s.heapUsedBytes),
      retainedMessages: Number(s.retainedMessages),
      backlog: Number(s.backlog),
    };
  }

  async cleanup(topics: readonly string[], subscriptions: readonly string[]): Promise<void> {
    await inBatches(subscriptions, 64, (name, i) => unary((cb) => this.pool.at(i).deleteSubscription({ name }, cb)).catch(() => undefined));
    await inBatches(topics, 64, (name, i) => unary((cb) => this.pool.at(i).deleteTopic({ name }, cb)).catch(() => undefined));
  }

  async close(): Promise<void> {
    this.timers.close();
    for (const c of this.consumers.open) c.close();
    this.consumers.sessions.close();
    this.unaryCalls.close();
    this.publishers?.close();
    this.pool.close();
  }
}

interface PendingPublish {
  resolve(n: number): void;
  reject(err: Error): void;
  n: number;
  channel: number;
  /** The stream it was written to: only that stream's end rejects it. */
  stream?: grpc.ClientDuplexStream<Buffer, PublishStreamAck>;
  timer?: NodeJS.Timeout;
}

/**
 * One PublishStream per connection, opened on first use. Requests carry increasing ids; each
 * response settles its request. A request the broker refused rejects with its status code; a
 * stream that ends rejects everything pending on it, and the next publish opens a new one.
 */
class StreamPublisher {
  private readonly streams = new Map<number, grpc.ClientDuplexStream<Buffer, PublishStreamAck>>();
  private readonly pending = new Map<bigint, PendingPublish>();
  private nextId = 1n;
  private closed = false;

  /** `ackTimeoutMs` (reconnect on): a request unanswered that long rejects with DEADLINE_EXCEEDED and its stream is dropped. */
  constructor(
    private readonly pool: ClientPool<BrokerClient>,
    private readonly ackTimeoutMs?: number,
  ) {}

  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    const channel = channelHint % this.pool.clients.length;
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      const stream = this.stream(channel);
      this.pending.set(requestId, { resolve, reject, n: payloads.length, channel, stream });
      stream.write(encodeV2PublishStream(requestId, topic, payloads));
    });
  }

  /** Send a pre-encoded PublishRequest (encodeV2Publish) under a fresh request id. */
  publishEncoded(request: Buffer, n: number, channelHint: number): Promise<number> {
    const channel = channelHint % this.pool.clients.length;
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      const stream = this.stream(channel);
      const p: PendingPublish = { resolve, reject, n, channel, stream };
      this.pending.set(requestId, p);
      if (this.ackTimeoutMs !== undefined) {
        p.timer = setTimeout(() => {
          if (!this.pending.delete(requestId)) return;
          reject(Object.assign(new Error(`no PublishStream ack within ${this.ackTimeoutMs} ms`), { code: grpc.status.DEADLINE_EXCEEDED }));
          // A stream that stopped answering is dropped; the next publish opens a new one.
          if (this.streams.get(channel) === stream) {
            this.streams.delete(channel);
            stream.cancel();
          }
        }, this.ackTimeoutMs);
      }
      stream.write(withRequestId(request, requestId));
    });
  }

  close(): void {
    this.closed = true;
    for (const s of this.streams.values()) s.cancel();
    this.streams.clear();
  }

  private stream(channel: number): grpc.ClientDuplexStream<Buffer, PublishStreamAck> {
    const open = this.streams.get(channel);
    if (open) return open;
    const stream = this.pool.clients[channel]!.makeBidiStreamRequest(BrokerService.publishStream.path, identity, decodePublishStreamAck);
    this.streams.set(channel, stream);
    stream.on("data", (ack: PublishStreamAck) => {
      const p = this.pending.get(ack.requestId);
      if (!p) return;
      this.pending.delete(ack.requestId);
      if (p.timer) clearTimeout(p.timer);
      if (ack.errorCode === 0) p.resolve(p.n);
      else p.reject(Object.assign(new Error(`${ack.errorCode} ${grpc.status[ack.errorCode] ?? ""}: ${ack.errorMessage}`), { code: ack.errorCode, details: ack.errorMessage }));
    });
    const ended = (err: Error): void => {
      if (this.streams.get(channel) === stream) this.streams.delete(channel);
      for (const [id, p] of this.pending) {
        if (p.stream !== stream) continue;
        this.pending.delete(id);
        if (p.timer) clearTimeout(p.timer);
        p.reject(err);
      }
    };
    stream.on("error", (err: grpc.ServiceError) => ended(this.closed ? new Error("driver closed") : err));
    stream.on("end", () => ended(Object.assign(new Error("PublishStream ended by the broker"), { code: grpc.status.UNAVAILABLE })));
    return stream;
  }
}
