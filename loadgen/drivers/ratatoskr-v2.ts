/**
 * Driver `ratatoskr`: the v2 API. Batched Publish (pre-encoded requests), one Consume bidi
 * stream per consumer with flow control, acks sent once per received frame on the same stream.
 */
import * as grpc from "@grpc/grpc-js";
import { BrokerClient, BrokerService, ConsumeRequest, StartPosition, type BrokerStats } from "../../proto/gen/ratatoskr/v2/broker.js";
import { DriverError } from "../errors.js";
import type { BrokerStatsSample, Consumer, DeliverySink, Driver, DriverOptions, SubscriptionSpec } from "./driver.js";
import { ClientPool, isStatus, unary } from "./grpc-pool.js";
import { decodeConsumeResponse, encodeAckRequest, encodeV2Publish, type DeliveryBatch } from "./wire.js";

const identity = (b: Buffer): Buffer => b;
const encodeConsumeRequest = (r: ConsumeRequest): Buffer => Buffer.from(ConsumeRequest.encode(r).finish());

export class RatatoskrV2Driver implements Driver {
  readonly name = "ratatoskr";
  readonly acks = true;
  private readonly pool: ClientPool<BrokerClient>;
  private readonly streams = new Set<grpc.ClientDuplexStream<Buffer, DeliveryBatch>>();

  constructor(private readonly options: DriverOptions) {
    this.pool = new ClientPool((o) => new BrokerClient(options.target, grpc.credentials.createInsecure(), o), options.connections);
  }

  async connect(): Promise<void> {
    await this.pool.ready(this.options.target, this.options.connectTimeoutMs);
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
              startSequence: 0,
              startTimestampMs: 0,
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
    stream.on("data", (batch: DeliveryBatch) => {
      sink.onDeliveries(spec.slot, batch.payloads, batch.attempts, batch.count);
      if (batch.count > 0 && !closing) stream.write(encodeAckRequest(batch.ackIds));
    });
    stream.on("error", (err: grpc.ServiceError) => {
      this.streams.delete(stream);
      if (!closing && err.code !== grpc.status.CANCELLED) sink.onStreamError(spec.slot, err);
    });
    stream.on("end", () => this.streams.delete(stream));
    stream.write(
      encodeConsumeRequest({
        start: {
          subscription: spec.name,
          maxOutstandingMessages: this.options.maxOutstandingMessages,
          maxOutstandingBytes: 0,
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
        stream.cancel();
        this.streams.delete(stream);
      },
    };
  }

  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    const request = encodeV2Publish(topic, payloads);
    const n = payloads.length;
    return new Promise((resolve, reject) => {
      this.pool.at(channelHint).makeUnaryRequest(BrokerService.publish.path, identity, identity, request, (err) => (err ? reject(err) : resolve(n)));
    });
  }

  async brokerStats(): Promise<BrokerStatsSample | undefined> {
    const s = await unary<BrokerStats>((cb) => this.pool.at(0).getBrokerStats({}, new grpc.Metadata(), { deadline: Date.now() + 2000 }, cb));
    return {
      rssBytes: s.rssBytes,
      cpuUserSeconds: s.cpuUserSeconds,
      cpuSystemSeconds: s.cpuSystemSeconds,
      heapUsedBytes: s.heapUsedBytes,
      retainedMessages: s.retainedMessages,
      backlog: s.backlog,
    };
  }

  async cleanup(topics: readonly string[], subscriptions: readonly string[]): Promise<void> {
    await inBatches(subscriptions, 64, (name, i) => unary((cb) => this.pool.at(i).deleteSubscription({ name }, cb)).catch(() => undefined));
    await inBatches(topics, 64, (name, i) => unary((cb) => this.pool.at(i).deleteTopic({ name }, cb)).catch(() => undefined));
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.cancel();
    this.streams.clear();
    this.pool.close();
  }
}

/** Run `fn` over items with at most `concurrency` in flight. */
export async function inBatches<T>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
