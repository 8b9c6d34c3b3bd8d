// A v2 (ratatoskr.v2.Broker) client over the wire: the generated client, promise forms of the
// unary RPCs, a Consume stream driver and a PublishStream driver that record what they receive
// and let tests wait on conditions (events, never fixed sleeps). Only grpc-js and generated
// code, so unit tests (in-process server) and e2e tests (the image) share it.
import { type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import {
  BrokerClient,
  BrokerService,
  type BrokerStats,
  type ConsumeRequest,
  type ConsumeResponse,
  type CreateSubscriptionRequest,
  type CreateTopicRequest,
  type Delivery,
  type DeleteSubscriptionRequest,
  type DeleteSubscriptionResponse,
  type DeleteTopicRequest,
  type DeleteTopicResponse,
  type GetBrokerStatsRequest,
  type GetSubscriptionRequest,
  type GetTopicRequest,
  type ListSubscriptionsRequest,
  type ListSubscriptionsResponse,
  type ListTopicsRequest,
  type ListTopicsResponse,
  type PublishMessage,
  type PublishRequest,
  type PublishResponse,
  type PublishStreamRequest,
  type PublishStreamResponse,
  SubscriptionConfig,
  type Subscription,
  type Topic,
} from "../../proto/gen/ratatoskr/v2/broker.js";
import { clientSetup, unary, type ClientSecurity } from "./grpc-client.js";
import { uniqueName } from "./names.js";
import { pollUntil, Waiters } from "./waits.js";

/** A v2 client on its own HTTP/2 connection. */
export function v2Client(address: string, security?: ClientSecurity): BrokerClient {
  const { credentials, options } = clientSetup(security);
  return new BrokerClient(address, credentials, options);
}

/** A subscription's configuration; fields left out take their proto defaults. */
export type SubscriptionConfigInput = Partial<NonNullable<CreateSubscriptionRequest["config"]>>;

/** Promise forms of the unary v2 RPCs, with the proto defaults filled in for fields left out. */
export function v2Api(c: BrokerClient) {
  const publish = unary<PublishRequest, PublishResponse>(c, c.publish);
  return {
    createTopic: (req: Partial<CreateTopicRequest> & { name: string }) => unary<CreateTopicRequest, Topic>(c, c.createTopic)({ config: undefined, ...req }),
    getTopic: (name: string) => unary<GetTopicRequest, Topic>(c, c.getTopic)({ name }),
    listTopics: (req: Partial<ListTopicsRequest> = {}) => unary<ListTopicsRequest, ListTopicsResponse>(c, c.listTopics)({ pageSize: 0, pageToken: "", ...req }),
    deleteTopic: (name: string) => unary<DeleteTopicRequest, DeleteTopicResponse>(c, c.deleteTopic)({ name }),
    publish: (topic: string, messages: Array<Partial<PublishMessage>>) =>
      publish({ topic, messages: messages.map((m) => ({ payload: Buffer.alloc(0), attributes: {}, messageId: "", ...m })) }),
    /** Publishes text payloads in one batch; resolves with their sequences. */
    publishText: async (topic: string, texts: string[]): Promise<bigint[]> =>
      (await publish({ topic, messages: texts.map((t) => ({ payload: Buffer.from(t), attributes: {}, messageId: "" })) })).results.map((r) => r.sequence),
    createSubscription: (req: { name: string; topic: string; config?: SubscriptionConfigInput }) =>
      unary<CreateSubscriptionRequest, Subscription>(c, c.createSubscription)({ name: req.name, topic: req.topic, config: SubscriptionConfig.fromPartial(req.config ?? {}) }),
    getSubscription: (name: string) => unary<GetSubscriptionRequest, Subscription>(c, c.getSubscription)({ name }),
    listSubscriptions: (req: Partial<ListSubscriptionsRequest> = {}) =>
      unary<ListSubscriptionsRequest, ListSubscriptionsResponse>(c, c.listSubscriptions)({ topic: "", pageSize: 0, pageToken: "", ...req }),
    deleteSubscription: (name: string) => unary<DeleteSubscriptionRequest, DeleteSubscriptionResponse>(c, c.deleteSubscription)({ name }),
    brokerStats: () => unary<GetBrokerStatsRequest, BrokerStats>(c, c.getBrokerStats)({}),
  };
}
export type V2Api = ReturnType<typeof v2Api>;

/** A new topic (unique name) with one subscription on it, `<topic>-sub`, configured by `config` (by default it starts at the latest message). */
export async function topicWithSubscription(api: V2Api, config: SubscriptionConfigInput = {}): Promise<{ topic: string; sub: string }> {
  const topic = uniqueName("t");
  const sub = `${topic}-sub`;
  await api.createTopic({ name: topic });
  await api.createSubscription({ name: sub, topic, config });
  return { topic, sub };
}

/** Resolves once the broker reports `n` consumers attached to `subscription` (the count is in its statistics, not in any event the client sees). */
export function consumersAttached(api: V2Api, subscription: string, n: number, timeoutMs?: number): Promise<void> {
  return pollUntil(async () => (await api.getSubscription(subscription)).stats?.consumerCount === n, `${n} consumers on ${subscription}`, timeoutMs);
}

export interface ConsumeOptions {
  maxOutstandingMessages?: number;
  /** int64 on the wire; a number is converted. */
  maxOutstandingBytes?: number | bigint;
  /** Ack every delivery (true), or those the function selects, as they arrive. */
  autoAck?: boolean | ((d: Delivery) => boolean);
  /** The consumer name sent in the start frame (default "test"). */
  consumerName?: string;
}

/**
 * Drives one Consume stream. Records every delivery and the stream's end; `waitFor` resolves
 * when a condition over the recorded state holds (checked after every event of this stream).
 * Once the stream has ended, nothing more is written to it.
 */
export class TestConsumer {
  readonly deliveries: Delivery[] = [];
  /** Ack ids delivered and neither acked nor nacked by this consumer. */
  readonly outstanding = new Map<bigint, Delivery>();
  /** Largest number of outstanding deliveries (and bytes) seen after any frame. */
  maxOutstanding = 0;
  maxOutstandingBytes = 0;
  frames = 0;
  /** The error the stream ended with (the first one). */
  error: ServiceError | undefined;
  ended = false;
  private readonly stream: ClientDuplexStream<ConsumeRequest | Buffer, ConsumeResponse>;
  private readonly waiters = new Waiters();
  private readonly options: ConsumeOptions;

  /** Opens the stream and, unless `subscription` is undefined, sends the start frame. */
  constructor(client: BrokerClient, subscription: string | undefined, options: ConsumeOptions = {}) {
    this.options = { ...options };
    this.stream = openRecorded(client, BrokerService.consume, this, this.waiters, (res) => {
      this.frames++;
      for (const d of res.deliveries) {
        this.deliveries.push(d);
        this.outstanding.set(d.ackId, d);
      }
      this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding.size);
      this.maxOutstandingBytes = Math.max(this.maxOutstandingBytes, this.outstandingBytes());
      const auto = this.options.autoAck;
      if (auto) this.ack((auto === true ? res.deliveries : res.deliveries.filter(auto)).map((d) => d.ackId));
    });
    if (subscription !== undefined) {
      this.send({
        start: {
          subscription,
          maxOutstandingMessages: options.maxOutstandingMessages ?? 0,
          maxOutstandingBytes: BigInt(options.maxOutstandingBytes ?? 0),
          consumerName: options.consumerName ?? "test",
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
    this.write({ start: undefined, ackIds: [], nackIds: [], extend: undefined, ...req });
  }

  /** Writes `frame` as one ConsumeRequest message, byte for byte (values or garbage the generated encoder would refuse). */
  sendRaw(frame: Buffer): void {
    this.write(frame);
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
    return this.deliveries.map((d) => {
      if (!d.message) throw new Error(`delivery ${d.ackId} carries no message`);
      return Buffer.from(d.message.payload).toString();
    });
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

  waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(condition, () => `${what}; got ${this.deliveries.length} deliveries, error=${this.error?.message ?? "none"}`, timeoutMs);
  }

  waitForDeliveries(n: number, timeoutMs?: number): Promise<void> {
    return this.waitFor(() => this.deliveries.length >= n, `${n} deliveries`, timeoutMs);
  }

  waitForEnd(timeoutMs?: number): Promise<void> {
    return this.waitFor(() => this.ended, "the end of the stream", timeoutMs);
  }

  private write(frame: ConsumeRequest | Buffer): void {
    if (this.ended) return;
    this.stream.write(frame);
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

/** A PublishStream call that records every response and how the stream ended. */
export class TestPublisher {
  readonly responses: PublishStreamResponse[] = [];
  /** The error the stream ended with (the first one). */
  error: ServiceError | undefined;
  ended = false;
  private readonly stream: ClientDuplexStream<PublishStreamRequest | Buffer, PublishStreamResponse>;
  private readonly waiters = new Waiters();

  constructor(client: BrokerClient) {
    this.stream = openRecorded(client, BrokerService.publishStream, this, this.waiters, (r) => this.responses.push(r));
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

/** How a recorded stream ended: the first error, and whether it has. */
interface StreamEnd {
  error: ServiceError | undefined;
  ended: boolean;
}

/**
 * Opens a bidi stream of `method` that writes requests (encoded by the generated code) or raw
 * Buffers as they are. Hands every response to `onData`, records the end on `end`, and
 * notifies `waiters` after each event.
 */
function openRecorded<Req, Res>(
  client: BrokerClient,
  method: { path: string; requestSerialize: (value: Req) => Buffer; responseDeserialize: (bytes: Buffer) => Res },
  end: StreamEnd,
  waiters: Waiters,
  onData: (res: Res) => void,
): ClientDuplexStream<Req | Buffer, Res> {
  const encode = (value: Req | Buffer): Buffer => (Buffer.isBuffer(value) ? value : method.requestSerialize(value));
  const stream = client.makeBidiStreamRequest(method.path, encode, method.responseDeserialize);
  stream.on("data", (res: Res) => {
    onData(res);
    waiters.notify();
  });
  stream.on("error", (err: ServiceError) => {
    end.error ??= err;
    end.ended = true;
    waiters.notify();
  });
  stream.on("end", () => {
    end.ended = true;
    waiters.notify();
  });
  return stream;
}
