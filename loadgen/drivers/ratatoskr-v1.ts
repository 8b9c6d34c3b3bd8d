/**
 * Driver `ratatoskr-v1`: only the v1 `ratatoskr.MessageBroker` RPCs, so the original broker can
 * be measured the same way. PublishBatch (pre-encoded) for publishing, one Subscribe server
 * stream per subscriber (at-most-once: no acks). A Subscribe stream is ready once its response
 * headers (with `x-subscription-ref`) arrive; from then on the broker delivers.
 *
 * PublishBatch calls go over the generator's own HTTP/2 client, on connections of their own
 * (h2-unary.ts, docs/loadgen.md, "The unary client"): a grpc-js unary call cost this generator
 * about twice what the broker spent on it (docs/performance.md, "The v1 unary path served
 * directly"), and a node:http2 stream per call made it pause for GC at 5,000 calls/s.
 * Subscribe, CreateTopic and DeleteTopic stay on grpc-js.
 *
 * Under faults (`reconnect` on; docs/faults.md, "Drivers under faults"): at-most-once. A broken
 * Subscribe stream is re-opened with backoff (reconnect.ts); what was published while it was
 * down is never delivered to it and counts as lost. Publishes are not retried: v1 has no
 * producer message ids, so the broker could not tell a retry from a new message; a PublishBatch
 * that failed is a publish error and its messages count as unacknowledged.
 */
import * as grpc from "@grpc/grpc-js";
import { z } from "zod";
import { MessageBrokerClient, MessageBrokerService, PublishBatchResponse, SubscribeRequest } from "../../proto/gen/ratatoskr.js";
import { DriverError } from "../errors.js";
import { referenceBroker, referenceBrokerDurability, referenceBrokerStorage } from "./broker-process.js";
import { defineDriver, type BrokerStatsSample, type Consumer, type DeliverySink, type Driver, type DriverOptions, type SubscriptionSpec } from "./driver.js";
import { ClientPool, isStatus, reconnectChannelOptions, unary } from "./grpc-pool.js";
import { driverSessionOptions } from "./h2-grpc.js";
import { H2UnaryClient } from "./h2-unary.js";
import { Backoff, ReconnectGaveUpError, RetryTimers, type RetryCounts } from "./reconnect.js";
import { inBatches, message } from "./util.js";
import { decodeV1MessagePayload, encodeV1PublishBatch } from "./wire.js";

const encodeSubscribe = (r: SubscribeRequest): Buffer => Buffer.from(SubscribeRequest.encode(r).finish());

export const ratatoskrV1Driver = defineDriver({
  name: "ratatoskr-v1",
  summary: "ratatoskr v1 API: PublishBatch, one Subscribe stream per subscriber; at-most-once",
  options: z.strictObject({}),
  movedFields: {},
  refusals: (s) =>
    s.consumersPerSubscription === 1
      ? []
      : [`consumersPerSubscription=${s.consumersPerSubscription}: a v1 Subscribe stream is one at-most-once subscriber; v1 has no competing consumers`],
  embeddedServer: referenceBroker,
  pausableConsumers: true,
  report: { peer: false, storage: (broker) => `${referenceBrokerStorage(broker)} (at-most-once)` },
  promises: (broker) => ({
    publishAck: "PublishBatch result per message, after the store commit",
    ...referenceBrokerDurability(broker),
    ackPolicy: "none: a Subscribe stream is at-most-once; what is published while it is closed is not delivered to it",
    ordering: "per topic in publish order on one stream",
  }),
  create: (context) => new RatatoskrV1Driver(context),
});

export class RatatoskrV1Driver implements Driver {
  readonly name = "ratatoskr-v1";
  readonly acks = false;
  private readonly pool: ClientPool<MessageBrokerClient>;
  /** The PublishBatch calls' own connections. */
  private readonly publishCalls: H2UnaryClient;
  private readonly streams = new Set<grpc.ClientReadableStream<Buffer>>();
  private readonly timers = new RetryTimers();
  private readonly counts: RetryCounts = { publishRetries: 0, reconnects: 0 };

  constructor(private readonly options: DriverOptions) {
    const channel = reconnectChannelOptions(options.reconnect);
    this.pool = new ClientPool((creds, o) => new MessageBrokerClient(options.target, creds, { ...o, ...channel }), options.connections, options);
    this.publishCalls = new H2UnaryClient(driverSessionOptions(options, this.pool), options.connections);
  }

  retryCounts(): RetryCounts {
    return { ...this.counts };
  }

  async connect(): Promise<void> {
    await this.pool.ready(this.options.target, this.options.connectTimeoutMs, this.options.clock);
  }

  async createTopics(names: readonly string[]): Promise<void> {
    await inBatches(names, 64, async (name, i) => {
      const res = await unary<{ error: string }>((cb) => this.pool.at(i).createTopic({ name }, cb)).catch((err: unknown) => {
        throw new DriverError(this.name, `CreateTopic ${name}: ${message(err)}`, { cause: err });
      });
      if (res.error && res.error !== "already_exists") throw new DriverError(this.name, `CreateTopic ${name}: ${res.error}`);
    });
  }

  async createSubscription(_spec: SubscriptionSpec): Promise<void> {
    // v1 has no named subscriptions: a Subscribe stream is the subscription.
  }

  openConsumer(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink): Promise<Consumer> {
    const policy = this.options.reconnect;
    const backoff = policy ? new Backoff(policy, () => this.options.clock.wallMs()) : undefined;
    let closing = false;
    let current: grpc.ClientReadableStream<Buffer> | undefined;
    let reading = true;
    const consumer: Consumer = {
      close: () => {
        closing = true;
        current?.cancel();
        if (current) this.streams.delete(current);
      },
      // A paused Subscribe stream fills the HTTP/2 window; the v1 broker then queues up to its
      // --v1-subscriber-buffer-bytes and cuts the subscriber off as slow (docs/protocol-v1.md).
      setReading: (on) => {
        reading = on;
        if (on) current?.resume();
        else current?.pause();
      },
    };
    const broke = (err: Error): void => {
      if (closing || this.timers.isClosed) return;
      if (!backoff) return sink.onStreamError(spec.slot, err);
      const wait = backoff.failed();
      if (wait === undefined) return sink.onStreamError(spec.slot, new ReconnectGaveUpError(`Subscribe ${spec.topic}`, backoff.outageMs(), { cause: err }));
      if (backoff.failures === 1) sink.onReconnect?.(spec.slot, err);
      this.timers.after(wait, () => {
        // Subscribe to a topic a restarted memory-store broker forgot is NOT_FOUND: create it again.
        const again = isStatus(err, grpc.status.NOT_FOUND) ? this.createTopics([spec.topic]) : Promise.resolve();
        void again
          .then(() => this.subscribe(spec, consumerIndex, sink, () => closing, broke))
          .then(
            (stream) => {
              if (closing) return stream.cancel();
              current = stream;
              if (!reading) stream.pause();
              backoff.succeeded();
              this.counts.reconnects++;
            },
            (e: unknown) => broke(e instanceof Error ? e : new Error(String(e))),
          );
      });
    };
    return this.subscribe(spec, consumerIndex, sink, () => closing, broke).then(
      (stream) => {
        current = stream;
        return consumer;
      },
      (err: unknown) => {
        throw new DriverError(this.name, `Subscribe ${spec.topic}: ${message(err)}`, { cause: err });
      },
    );
  }

  /**
   * One Subscribe stream: resolves once its response headers arrived (the broker delivers from
   * then on), rejects with the status if it fails before; `broke` hears of a failure after.
   */
  private subscribe(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink, closing: () => boolean, broke: (err: Error) => void): Promise<grpc.ClientReadableStream<Buffer>> {
    const client = this.pool.at(spec.slot + consumerIndex);
    const stream = client.makeServerStreamRequest(
      MessageBrokerService.subscribe.path,
      encodeSubscribe,
      decodeV1MessagePayload,
      { topic: spec.topic, subscriberId: "" },
    );
    this.streams.add(stream);
    stream.on("data", (payload: Buffer) => {
      sink.onDelivery(spec.slot, payload, 0, payload.length, 1);
    });
    return new Promise((resolve, reject) => {
      let ready = false;
      let done = false;
      stream.on("metadata", () => {
        ready = true;
        resolve(stream);
      });
      stream.on("error", (err: grpc.ServiceError) => {
        this.streams.delete(stream);
        done = true;
        if (!ready) reject(err);
        else if (!closing() && (this.options.reconnect || err.code !== grpc.status.CANCELLED)) broke(err);
      });
      stream.on("end", () => {
        this.streams.delete(stream);
        if (done || !ready || closing() || !this.options.reconnect) return;
        broke(Object.assign(new Error("Subscribe stream ended by the broker"), { code: grpc.status.UNAVAILABLE }));
      });
    });
  }

  async publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    const answer = await this.publishCalls.unary(channelHint, MessageBrokerService.publishBatch.path, encodeV1PublishBatch(topic, payloads));
    const decoded = PublishBatchResponse.decode(answer);
    // Results are in order; accepted = the successes (not atomic: docs/design.md, "v1 wire contract").
    return decoded.errorCount > 0 ? decoded.successCount : payloads.length;
  }

  async brokerStats(): Promise<BrokerStatsSample | undefined> {
    return undefined; // v1 has no resource statistics; the runner samples /proc for an embedded broker.
  }

  async cleanup(topics: readonly string[], _subscriptions: readonly string[]): Promise<void> {
    await inBatches(topics, 64, (name, i) => unary((cb) => this.pool.at(i).deleteTopic({ name }, cb)).catch(() => undefined));
  }

  async close(): Promise<void> {
    this.timers.close();
    for (const s of this.streams) s.cancel();
    this.streams.clear();
    this.pool.close();
    this.publishCalls.close();
  }
}
