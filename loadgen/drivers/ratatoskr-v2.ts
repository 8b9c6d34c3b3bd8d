/**
 * Driver `ratatoskr`: the v2 API. Batches published as pre-encoded frames on one PublishStream
 * per connection (or, with `driverOptions.ratatoskr.publish: unary`, one Publish call each), one
 * Consume bidi stream per consumer with flow control, acks batched on the same stream (see
 * ACK_LINGER_MS).
 */
import * as grpc from "@grpc/grpc-js";
import { z } from "zod";
import { BrokerClient, BrokerService, ConsumeRequest, StartPosition, type BrokerStats } from "../../proto/gen/ratatoskr/v2/broker.js";
import { DriverError } from "../errors.js";
import { referenceBroker, referenceBrokerDurability, referenceBrokerStorage } from "./broker-process.js";
import { defineDriver, type BrokerSelfReport, type BrokerStatsSample, type Consumer, type DeliverySink, type Driver, type DriverOptions, type SubscriptionSpec } from "./driver.js";
import { ClientPool, isStatus, unary } from "./grpc-pool.js";
import { inBatches, message } from "./util.js";
import {
  decodeConsumeResponse,
  decodePublishStreamAck,
  encodeAckRequest,
  encodeV2Publish,
  encodeV2PublishStream,
  type DeliveryBatch,
  type PublishStreamAck,
} from "./wire.js";

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

/**
 * Acks of a consumer are sent together: at once when they reach half its flow-control window
 * (so the broker never waits on them), otherwise within ACK_LINGER_MS. At low rates every
 * delivery frame carries one message; an ack frame per delivery cost both processes more CPU
 * than the deliveries themselves.
 */
export const ACK_LINGER_MS = 2;
const encodeConsumeRequest = (r: ConsumeRequest): Buffer => Buffer.from(ConsumeRequest.encode(r).finish());

export class RatatoskrV2Driver implements Driver {
  readonly name = "ratatoskr";
  readonly acks = true;
  private readonly pool: ClientPool<BrokerClient>;
  private readonly streams = new Set<grpc.ClientDuplexStream<Buffer, DeliveryBatch>>();
  private readonly publishers: StreamPublisher | undefined;

  constructor(private readonly options: DriverOptions, publish: V2PublishMode = "stream") {
    this.pool = new ClientPool((creds, o) => new BrokerClient(options.target, creds, o), options.connections, options);
    if (publish === "stream") this.publishers = new StreamPublisher(this.pool);
  }

  async connect(): Promise<void> {
    await this.pool.ready(this.options.target, this.options.connectTimeoutMs, this.options.clock);
  }

  async createTopics(names: readonly string[]): Promise<void> {
    await inBatches(names, 64, async (name, i) => {
      try {
        await unary((cb) => this.pool.at(i).createTopic({ name, config: undefined }, cb));
      } catch (err) {
        if (!isStatus(err, grpc.status.ALREADY_EXISTS)) throw new DriverError(this.name, `CreateTopic ${name}: ${message(err)}`, { cause: err });
      }
    });
  }

  async createSubscription(spec: SubscriptionSpec): Promise<void> {
    try {
      await unary((cb) =>
        this.pool.at(spec.slot).createSubscription(
          {
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
          },
          cb,
        ),
      );
    } catch (err) {
      if (!isStatus(err, grpc.status.ALREADY_EXISTS)) throw new DriverError(this.name, `CreateSubscription ${spec.name}: ${message(err)}`, { cause: err });
    }
  }

  async openConsumer(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink): Promise<Consumer> {
    const client = this.pool.at(spec.slot + consumerIndex);
    // Requests are pre-encoded: the start with the generated code, acks by hand (hot path).
    const stream = client.makeBidiStreamRequest(BrokerService.consume.path, identity, decodeConsumeResponse);
    this.streams.add(stream);
    let closing = false;
    let ended = false;
    let pending: bigint[] = [];
    let timer: NodeJS.Timeout | undefined;
    const flushNow = Math.max(1, Math.floor(this.options.maxOutstandingMessages / 2));
    const flush = (): void => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (pending.length === 0 || closing || ended) return;
      stream.write(encodeAckRequest(pending));
      pending = [];
    };
    stream.on("data", (batch: DeliveryBatch) => {
      sink.onDeliveries(spec.slot, batch.payloads, batch.attempts, batch.count);
      if (batch.count === 0 || closing || ended) return;
      for (let i = 0; i < batch.count; i++) pending.push(batch.ackIds[i]!);
      if (pending.length >= flushNow) flush();
      else timer ??= setTimeout(flush, ACK_LINGER_MS);
    });
    stream.on("error", (err: grpc.ServiceError) => {
      ended = true;
      if (timer) clearTimeout(timer);
      this.streams.delete(stream);
      if (!closing && err.code !== grpc.status.CANCELLED) sink.onStreamError(spec.slot, err);
    });
    stream.on("end", () => {
      ended = true;
      if (timer) clearTimeout(timer);
      this.streams.delete(stream);
    });
    stream.write(
      encodeConsumeRequest({
        start: {
          subscription: spec.name,
          maxOutstandingMessages: this.options.maxOutstandingMessages,
          maxOutstandingBytes: 0n,
          consumerName: `bench-${consumerIndex}`,
        },
        ackIds: [],
        nackIds: [],
        extend: undefined,
      }),
    );
    return {
      close: () => {
        closing = true;
        if (timer) clearTimeout(timer);
        stream.cancel();
        this.streams.delete(stream);
      },
    };
  }

  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    if (this.publishers) return this.publishers.publish(topic, payloads, channelHint);
    const request = encodeV2Publish(topic, payloads);
    const n = payloads.length;
    return new Promise((resolve, reject) => {
      this.pool.at(channelHint).makeUnaryRequest(BrokerService.publish.path, identity, identity, request, (err) => (err ? reject(err) : resolve(n)));
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
    for (const s of this.streams) s.cancel();
    this.streams.clear();
    this.publishers?.close();
    this.pool.close();
  }
}

interface PendingPublish {
  resolve(n: number): void;
  reject(err: Error): void;
  n: number;
  channel: number;
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

  constructor(private readonly pool: ClientPool<BrokerClient>) {}

  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    const channel = channelHint % this.pool.clients.length;
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject, n: payloads.length, channel });
      this.stream(channel).write(encodeV2PublishStream(requestId, topic, payloads));
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
      if (ack.errorCode === 0) p.resolve(p.n);
      else p.reject(Object.assign(new Error(`${ack.errorCode} ${grpc.status[ack.errorCode] ?? ""}: ${ack.errorMessage}`), { code: ack.errorCode, details: ack.errorMessage }));
    });
    const ended = (err: Error): void => {
      if (this.streams.get(channel) === stream) this.streams.delete(channel);
      for (const [id, p] of this.pending) {
        if (p.channel !== channel) continue;
        this.pending.delete(id);
        p.reject(err);
      }
    };
    stream.on("error", (err: grpc.ServiceError) => ended(this.closed ? new Error("driver closed") : err));
    stream.on("end", () => ended(new Error("PublishStream ended by the broker")));
    return stream;
  }
}
