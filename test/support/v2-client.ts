// Test support for the v2 service (not a test file itself): a real broker from startBroker on
// 127.0.0.1:0, a generated-code client with promise wrappers, and a Consume stream driver that
// records deliveries and lets tests wait for conditions (events, never fixed sleeps).
import { credentials, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import {
  BrokerClient,
  BrokerService,
  ConsumeRequest,
  PublishStreamRequest,
  type BrokerStats,
  type ConsumeResponse,
  type CreateSubscriptionRequest,
  type CreateTopicRequest,
  type Delivery,
  type ListSubscriptionsRequest,
  type ListSubscriptionsResponse,
  type ListTopicsRequest,
  type ListTopicsResponse,
  type PublishMessage,
  type PublishResponse,
  type PublishStreamResponse,
  type Subscription,
  type Topic,
} from "../../proto/gen/ratatoskr/v2/broker.js";
import type { BrokerServerConfig } from "../../broker/server/index.js";
import { startBroker, type RunningBroker } from "../../broker/server/index.js";

export interface V2TestServer {
  running: RunningBroker;
  client: BrokerClient;
  api: V2Api;
  close(): Promise<void>;
}

export async function startV2TestServer(config: Partial<BrokerServerConfig> = {}): Promise<V2TestServer> {
  const running = await startBroker({ host: "127.0.0.1", port: 0, logLevel: "silent", ...config });
  const client = new BrokerClient(running.address, credentials.createInsecure());
  return {
    running,
    client,
    api: new V2Api(client),
    close: async () => {
      client.close();
      await running.close();
    },
  };
}

type Unary<Req, Res> = (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown;

function call<Req, Res>(fn: Unary<Req, Res>, client: BrokerClient, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res))));
}

/** Promise wrappers over the generated client. */
export class V2Api {
  constructor(readonly client: BrokerClient) {}
  createTopic(req: Partial<CreateTopicRequest> & { name: string }): Promise<Topic> {
    return call(this.client.createTopic as Unary<CreateTopicRequest, Topic>, this.client, { config: undefined, ...req });
  }
  getTopic(name: string): Promise<Topic> {
    return call(this.client.getTopic as Unary<{ name: string }, Topic>, this.client, { name });
  }
  listTopics(req: Partial<ListTopicsRequest> = {}): Promise<ListTopicsResponse> {
    return call(this.client.listTopics as Unary<ListTopicsRequest, ListTopicsResponse>, this.client, { pageSize: 0, pageToken: "", ...req });
  }
  deleteTopic(name: string): Promise<unknown> {
    return call(this.client.deleteTopic as Unary<{ name: string }, unknown>, this.client, { name });
  }
  publish(topic: string, messages: Array<Partial<PublishMessage>>): Promise<PublishResponse> {
    const full = messages.map((m) => ({ payload: Buffer.alloc(0), attributes: {}, messageId: "", ...m }));
    return call(this.client.publish as Unary<{ topic: string; messages: PublishMessage[] }, PublishResponse>, this.client, { topic, messages: full });
  }
  /** Publishes `payloads` (strings) in one batch; returns the sequences. */
  async publishText(topic: string, payloads: string[]): Promise<bigint[]> {
    const res = await this.publish(topic, payloads.map((p) => ({ payload: Buffer.from(p) })));
    return res.results.map((r) => r.sequence);
  }
  createSubscription(req: { name: string; topic: string; config?: Partial<NonNullable<CreateSubscriptionRequest["config"]>> }): Promise<Subscription> {
    const config = {
      start: 0,
      startSequence: 0n,
      startTimestampMs: 0n,
      ackDeadlineMs: 0,
      maxDeliveries: 0,
      deadLetterTopic: "",
      retryBackoffMinMs: 0,
      retryBackoffMaxMs: 0,
      ...req.config,
    };
    return call(this.client.createSubscription as Unary<CreateSubscriptionRequest, Subscription>, this.client, { name: req.name, topic: req.topic, config });
  }
  getSubscription(name: string): Promise<Subscription> {
    return call(this.client.getSubscription as Unary<{ name: string }, Subscription>, this.client, { name });
  }
  listSubscriptions(req: Partial<ListSubscriptionsRequest> = {}): Promise<ListSubscriptionsResponse> {
    return call(this.client.listSubscriptions as Unary<ListSubscriptionsRequest, ListSubscriptionsResponse>, this.client, { topic: "", pageSize: 0, pageToken: "", ...req });
  }
  deleteSubscription(name: string): Promise<unknown> {
    return call(this.client.deleteSubscription as Unary<{ name: string }, unknown>, this.client, { name });
  }
  brokerStats(): Promise<BrokerStats> {
    return call(this.client.getBrokerStats as Unary<object, BrokerStats>, this.client, {});
  }
}

export interface ConsumeOptions {
  maxOutstandingMessages?: number;
  /** int64 on the wire; a number is converted. */
  maxOutstandingBytes?: number | bigint;
  /** Ack every delivery as it arrives. */
  autoAck?: boolean;
}

/**
 * Drives one Consume stream. Records every delivery and the stream's end; `waitFor` resolves
 * when a condition over the recorded state holds (checked after every event).
 */
export class TestConsumer {
  readonly deliveries: Delivery[] = [];
  /** Ack ids delivered and neither acked nor nacked by this consumer. */
  readonly outstanding = new Map<bigint, Delivery>();
  /** Largest number of outstanding deliveries (and bytes) seen after any frame. */
  maxOutstanding = 0;
  maxOutstandingBytes = 0;
  frames = 0;
  error: ServiceError | undefined;
  ended = false;
  private readonly stream: ClientDuplexStream<ConsumeRequest | Buffer, ConsumeResponse>;
  private readonly waiters = new Waiters();

  private readonly options: ConsumeOptions;

  constructor(client: BrokerClient, subscription: string | undefined, options: ConsumeOptions = {}) {
    this.options = { ...options };
    const c = BrokerService.consume;
    this.stream = client.makeBidiStreamRequest(c.path, encodeOrPass(c.requestSerialize), c.responseDeserialize);
    this.stream.on("data", (res: ConsumeResponse) => {
      this.frames++;
      for (const d of res.deliveries) {
        this.deliveries.push(d);
        this.outstanding.set(d.ackId, d);
      }
      this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding.size);
      this.maxOutstandingBytes = Math.max(this.maxOutstandingBytes, this.outstandingBytes());
      if (this.options.autoAck) this.ack(res.deliveries.map((d) => d.ackId));
      this.waiters.notify();
    });
    this.stream.on("error", (err: ServiceError) => {
      this.error = err;
      this.ended = true;
      this.waiters.notify();
    });
    this.stream.on("end", () => {
      this.ended = true;
      this.waiters.notify();
    });
    if (subscription !== undefined) {
      this.send({
        start: {
          subscription,
          maxOutstandingMessages: options.maxOutstandingMessages ?? 0,
          maxOutstandingBytes: BigInt(options.maxOutstandingBytes ?? 0),
          consumerName: "test",
        },
      });
    }
  }

  /** Switches acking of every delivery on or off; switching on acks what is outstanding. */
  setAutoAck(on: boolean): void {
    this.options.autoAck = on;
    if (on) this.ackAll();
  }

  send(req: Partial<ConsumeRequest>): void {
    this.stream.write({ start: undefined, ackIds: [], nackIds: [], extend: undefined, ...req });
  }

  /** Writes `frame` as one ConsumeRequest message, byte for byte (values or garbage the generated encoder would refuse). */
  sendRaw(frame: Buffer): void {
    this.stream.write(frame);
  }

  ack(ids: bigint[]): void {
    if (ids.length === 0) return;
    for (const id of ids) this.outstanding.delete(id);
    this.send({ ackIds: ids });
  }

  nack(ids: bigint[]): void {
    for (const id of ids) this.outstanding.delete(id);
    this.send({ nackIds: ids });
  }

  ackAll(): void {
    this.ack([...this.outstanding.keys()]);
  }

  /** Payloads received, in order, as text. */
  texts(): string[] {
    return this.deliveries.map((d) => d.message!.payload.toString());
  }

  /** Stops reading from the stream (the transport's flow control then pushes back on the server). */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  /** Cuts the stream abruptly (as a crashed client would). */
  cut(): void {
    this.stream.cancel();
  }

  /** Half-closes; the server ends the stream. */
  finish(): void {
    this.stream.end();
  }

  waitFor(condition: () => boolean, what = "condition", timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(condition, () => `${what}; got ${this.deliveries.length} deliveries, error=${this.error?.message ?? "none"}`, timeoutMs);
  }

  waitForDeliveries(n: number): Promise<void> {
    return this.waitFor(() => this.deliveries.length >= n, `${n} deliveries`);
  }

  waitForEnd(): Promise<void> {
    return this.waitFor(() => this.ended, "end of stream");
  }

  private outstandingBytes(): number {
    let n = 0;
    for (const d of this.outstanding.values()) {
      const m = d.message!;
      n += m.payload.length;
      for (const [k, v] of Object.entries(m.attributes)) n += k.length + v.length;
    }
    return n;
  }

}

let counter = 0;
/** A unique name per test (topics and subscriptions are global). */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${++counter}`;
}

/** Polls a condition over RPCs until it holds (bounded): waits for an outcome, not for a fixed time. */
export async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((r) => setTimeout(r, 5));
  }
}

/** Conditions waited on until an event makes them true: no polling, no sleeps. */
export class Waiters {
  private list: Array<() => void> = [];

  /** Re-checks every pending condition; call after each event that may change one. */
  notify(): void {
    for (const w of [...this.list]) w();
  }

  until(condition: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.list = this.list.filter((w) => w !== check);
        reject(new Error(`timed out waiting for ${what()}`));
      }, timeoutMs);
      const check = (): void => {
        if (!condition()) return;
        clearTimeout(timer);
        this.list = this.list.filter((w) => w !== check);
        resolve();
      };
      this.list.push(check);
    });
  }
}

/** A PublishStream call that records every response and how the stream ended. */
export class TestPublisher {
  readonly responses: PublishStreamResponse[] = [];
  error: ServiceError | undefined;
  ended = false;
  private readonly stream: ClientDuplexStream<PublishStreamRequest | Buffer, PublishStreamResponse>;
  private readonly waiters = new Waiters();

  constructor(client: BrokerClient) {
    const p = BrokerService.publishStream;
    this.stream = client.makeBidiStreamRequest(p.path, encodeOrPass(p.requestSerialize), p.responseDeserialize);
    this.stream.on("data", (r: PublishStreamResponse) => {
      this.responses.push(r);
      this.waiters.notify();
    });
    this.stream.on("error", (err: ServiceError) => {
      this.error = err;
      this.ended = true;
      this.waiters.notify();
    });
    this.stream.on("end", () => {
      this.ended = true;
      this.waiters.notify();
    });
  }

  send(requestId: bigint, topic: string, payloads: string[], messageId = ""): void {
    this.stream.write({ requestId, topic, messages: payloads.map((p) => ({ payload: Buffer.from(p), attributes: {}, messageId })) });
  }

  /** Writes `frame` as one PublishStreamRequest message, byte for byte (e.g. a malformed one). */
  sendRaw(frame: Buffer): void {
    this.stream.write(frame);
  }

  finish(): void {
    this.stream.end();
  }

  waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(condition, () => `${what}: ${this.responses.length} responses, ended=${this.ended}`, timeoutMs);
  }

  byId(requestId: bigint): PublishStreamResponse {
    const r = this.responses.find((x) => x.requestId === requestId);
    if (!r) throw new Error(`no response for request ${requestId}`);
    return r;
  }
}

/** A request serializer that encodes messages with the generated code and writes Buffers as they are. */
function encodeOrPass<T>(encode: (value: T) => Buffer): (value: T | Buffer) => Buffer {
  return (value) => (Buffer.isBuffer(value) ? value : encode(value));
}
