/**
 * Driver `ratatoskr-v1`: only the v1 `ratatoskr.MessageBroker` RPCs, so the original broker can
 * be measured the same way. PublishBatch (pre-encoded) for publishing, one Subscribe server
 * stream per subscriber (at-most-once: no acks). A Subscribe stream is ready once its response
 * headers (with `x-subscription-ref`) arrive; from then on the broker delivers.
 */
import * as grpc from "@grpc/grpc-js";
import { z } from "zod";
import { MessageBrokerClient, MessageBrokerService, PublishBatchResponse, SubscribeRequest } from "../../proto/gen/ratatoskr.js";
import { DriverError } from "../errors.js";
import { referenceBroker, referenceBrokerDurability, referenceBrokerStorage } from "./broker-process.js";
import { defineDriver, type BrokerStatsSample, type Consumer, type DeliverySink, type Driver, type DriverOptions, type SubscriptionSpec } from "./driver.js";
import { ClientPool, unary } from "./grpc-pool.js";
import { inBatches, message } from "./util.js";
import { decodeV1MessagePayload, encodeV1PublishBatch } from "./wire.js";

const identity = (b: Buffer): Buffer => b;
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
  private readonly streams = new Set<grpc.ClientReadableStream<Buffer>>();
  private readonly attemptsNone = undefined;

  constructor(private readonly options: DriverOptions) {
    this.pool = new ClientPool((creds, o) => new MessageBrokerClient(options.target, creds, o), options.connections, options);
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
    const client = this.pool.at(spec.slot + consumerIndex);
    const stream = client.makeServerStreamRequest(
      MessageBrokerService.subscribe.path,
      encodeSubscribe,
      decodeV1MessagePayload,
      { topic: spec.topic, subscriberId: "" },
    );
    this.streams.add(stream);
    let closing = false;
    const one: Buffer[] = [Buffer.alloc(0)];
    stream.on("data", (payload: Buffer) => {
      one[0] = payload;
      sink.onDeliveries(spec.slot, one, this.attemptsNone, 1);
    });
    return new Promise((resolve, reject) => {
      let ready = false;
      stream.on("metadata", () => {
        ready = true;
        resolve({
          close: () => {
            closing = true;
            stream.cancel();
            this.streams.delete(stream);
          },
        });
      });
      stream.on("error", (err: grpc.ServiceError) => {
        this.streams.delete(stream);
        if (!ready) reject(new DriverError(this.name, `Subscribe ${spec.topic}: ${err.message}`, { cause: err }));
        else if (!closing && err.code !== grpc.status.CANCELLED) sink.onStreamError(spec.slot, err);
      });
      stream.on("end", () => this.streams.delete(stream));
    });
  }

  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    const request = encodeV1PublishBatch(topic, payloads);
    return new Promise((resolve, reject) => {
      this.pool.at(channelHint).makeUnaryRequest(MessageBrokerService.publishBatch.path, identity, (b: Buffer) => b, request, (err, res) => {
        if (err || !res) return reject(err ?? new Error("empty response"));
        const decoded = PublishBatchResponse.decode(res);
        if (decoded.errorCount > 0) {
          // Results are in order; accepted = the successes (not atomic: docs/design.md, "v1 wire contract").
          return resolve(decoded.successCount);
        }
        resolve(payloads.length);
      });
    });
  }

  async brokerStats(): Promise<BrokerStatsSample | undefined> {
    return undefined; // v1 has no resource statistics; the runner samples /proc for an embedded broker.
  }

  async cleanup(topics: readonly string[], _subscriptions: readonly string[]): Promise<void> {
    await inBatches(topics, 64, (name, i) => unary((cb) => this.pool.at(i).deleteTopic({ name }, cb)).catch(() => undefined));
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.cancel();
    this.streams.clear();
    this.pool.close();
  }
}
