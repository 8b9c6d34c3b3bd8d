// Black-box gRPC clients for the broker in a container: only the generated proto code and
// grpc-js, nothing from broker/ (the suites test the image, not the source tree).
import { randomUUID } from "node:crypto";
import {
  credentials,
  makeGenericClientConstructor,
  type Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  type Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import {
  MessageBrokerClient,
  type CreateTopicRequest as V1CreateTopicRequest,
  type CreateTopicResponse as V1CreateTopicResponse,
  type DeleteTopicRequest as V1DeleteTopicRequest,
  type DeleteTopicResponse as V1DeleteTopicResponse,
  type GetStatsRequest,
  type GetStatsResponse,
  type ListTopicsRequest as V1ListTopicsRequest,
  type ListTopicsResponse as V1ListTopicsResponse,
  type Message as V1Message,
  type PublishBatchRequest as V1PublishBatchRequest,
  type PublishBatchResponse as V1PublishBatchResponse,
  type PublishRequest as V1PublishRequest,
  type PublishResponse as V1PublishResponse,
  type TopicExistsRequest,
  type TopicExistsResponse,
  type UnsubscribeRequest,
  type UnsubscribeResponse,
} from "../../proto/gen/ratatoskr.js";
import {
  BrokerClient,
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
  type Subscription,
  type Topic,
} from "../../proto/gen/ratatoskr/v2/broker.js";

const CHANNEL_OPTIONS = {
  // Each client on its own connection, as separate processes would be.
  "grpc.use_local_subchannel_pool": 1,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  "grpc.max_send_message_length": 64 * 1024 * 1024,
};

/** A name no other test (or earlier run on the same volume) uses. */
export function uniqueName(prefix = "t"): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
/**
 * Promise form of one unary method of a generated client. The types are spelled out: inference
 * from the generated overloads picks the wrong one.
 */
export function unary<Req, Res>(client: Client, method: unknown): (req: Req) => Promise<Res> {
  const fn = method as (req: Req, cb: Callback<Res>) => unknown;
  return (req) => new Promise((resolve, reject) => fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res))));
}

// ------------------------------------------------------------------------------------- v1

export function v1Client(address: string): MessageBrokerClient {
  return new MessageBrokerClient(address, credentials.createInsecure(), CHANNEL_OPTIONS);
}

export function v1Api(c: MessageBrokerClient) {
  return {
    createTopic: unary<V1CreateTopicRequest, V1CreateTopicResponse>(c, c.createTopic),
    deleteTopic: unary<V1DeleteTopicRequest, V1DeleteTopicResponse>(c, c.deleteTopic),
    listTopics: unary<V1ListTopicsRequest, V1ListTopicsResponse>(c, c.listTopics),
    topicExists: unary<TopicExistsRequest, TopicExistsResponse>(c, c.topicExists),
    getStats: unary<GetStatsRequest, GetStatsResponse>(c, c.getStats),
    publish: unary<V1PublishRequest, V1PublishResponse>(c, c.publish),
    publishBatch: unary<V1PublishBatchRequest, V1PublishBatchResponse>(c, c.publishBatch),
    unsubscribe: unary<UnsubscribeRequest, UnsubscribeResponse>(c, c.unsubscribe),
  };
}
export type V1Api = ReturnType<typeof v1Api>;

/** A v1 Subscribe stream: its ref, the messages so far, and how it ended. */
export interface V1Subscription {
  stream: ClientReadableStream<V1Message>;
  ref: string;
  messages: V1Message[];
  ended: Promise<{ code: status; details: string }>;
  received(n: number, timeoutMs?: number): Promise<void>;
}

/** Subscribes and resolves once the response headers (with the ref) arrive; rejects if the call fails first. */
export async function v1Subscribe(c: MessageBrokerClient, topic: string, subscriberId = ""): Promise<V1Subscription> {
  const stream = c.subscribe({ topic, subscriberId });
  const messages: V1Message[] = [];
  const changed = new Set<() => void>();
  stream.on("data", (m: V1Message) => {
    messages.push(m);
    for (const f of [...changed]) f();
  });
  stream.on("error", () => undefined); // the status event carries the outcome
  const ended = new Promise<{ code: status; details: string }>((resolve) =>
    stream.on("status", (s: { code: status; details: string }) => {
      resolve({ code: s.code, details: s.details });
      for (const f of [...changed]) f();
    }),
  );
  const ref = await new Promise<string>((resolve, reject) => {
    stream.once("metadata", (md: Metadata) => resolve(String(md.get("x-subscription-ref")[0] ?? "")));
    void ended.then((s) => reject(Object.assign(new Error(s.details), { code: s.code })));
  });
  let done = false;
  void ended.then(() => (done = true));
  const received = (n: number, timeoutMs = 10_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (messages.length >= n) {
          changed.delete(check);
          clearTimeout(timer);
          resolve();
        } else if (done) {
          changed.delete(check);
          clearTimeout(timer);
          reject(new Error(`stream ended after ${messages.length} of ${n} messages`));
        }
      };
      const timer = setTimeout(() => {
        changed.delete(check);
        reject(new Error(`timed out with ${messages.length} of ${n} messages`));
      }, timeoutMs);
      changed.add(check);
      check();
    });
  return { stream, ref, messages, ended, received };
}

// ------------------------------------------------------------------------------------- v2

export function v2Client(address: string): BrokerClient {
  return new BrokerClient(address, credentials.createInsecure(), CHANNEL_OPTIONS);
}

type SubscriptionConfigInput = Partial<NonNullable<CreateSubscriptionRequest["config"]>>;

export function v2Api(c: BrokerClient) {
  const createTopic = unary<CreateTopicRequest, Topic>(c, c.createTopic);
  const publish = unary<PublishRequest, PublishResponse>(c, c.publish);
  const createSubscription = unary<CreateSubscriptionRequest, Subscription>(c, c.createSubscription);
  const listTopics = unary<ListTopicsRequest, ListTopicsResponse>(c, c.listTopics);
  const listSubscriptions = unary<ListSubscriptionsRequest, ListSubscriptionsResponse>(c, c.listSubscriptions);
  return {
    createTopic: (name: string, config?: CreateTopicRequest["config"]) => createTopic({ name, config }),
    getTopic: (name: string) => unary<GetTopicRequest, Topic>(c, c.getTopic)({ name }),
    listTopics: () => listTopics({ pageSize: 0, pageToken: "" }),
    deleteTopic: (name: string) => unary<DeleteTopicRequest, DeleteTopicResponse>(c, c.deleteTopic)({ name }),
    publish: (topic: string, messages: Array<Partial<PublishMessage>>) =>
      publish({ topic, messages: messages.map((m) => ({ payload: Buffer.alloc(0), attributes: {}, messageId: "", ...m })) }),
    /** Publishes text payloads in one batch; resolves with their sequences. */
    publishText: async (topic: string, texts: string[]): Promise<bigint[]> =>
      (await publish({ topic, messages: texts.map((t) => ({ payload: Buffer.from(t), attributes: {}, messageId: "" })) })).results.map((r) => r.sequence),
    createSubscription: (name: string, topic: string, config: SubscriptionConfigInput = {}) =>
      createSubscription({
        name,
        topic,
        config: {
          start: 0,
          startSequence: 0n,
          startTimestampMs: 0n,
          ackDeadlineMs: 0,
          maxDeliveries: 0,
          deadLetterTopic: "",
          retryBackoffMinMs: 0,
          retryBackoffMaxMs: 0,
          ...config,
        },
      }),
    getSubscription: (name: string) => unary<GetSubscriptionRequest, Subscription>(c, c.getSubscription)({ name }),
    listSubscriptions: (topic = "") => listSubscriptions({ topic, pageSize: 0, pageToken: "" }),
    deleteSubscription: (name: string) => unary<DeleteSubscriptionRequest, DeleteSubscriptionResponse>(c, c.deleteSubscription)({ name }),
    brokerStats: () => unary<GetBrokerStatsRequest, BrokerStats>(c, c.getBrokerStats)({}),
  };
}
export type V2Api = ReturnType<typeof v2Api>;

export interface ConsumerOptions {
  maxOutstandingMessages?: number;
  /** int64 on the wire; a number is converted. */
  maxOutstandingBytes?: number | bigint;
  /** Ack each delivery as it arrives. */
  autoAck?: boolean;
}

/** One v2 Consume stream: records deliveries and its end; waits on conditions, never on time. */
export class Consumer {
  readonly deliveries: Delivery[] = [];
  readonly outstanding = new Map<bigint, Delivery>();
  maxOutstanding = 0;
  error: ServiceError | undefined;
  ended = false;
  private readonly stream: ClientDuplexStream<ConsumeRequest, ConsumeResponse>;
  private readonly waiters = new Set<() => void>();

  constructor(client: BrokerClient, subscription: string, private readonly options: ConsumerOptions = {}) {
    this.stream = client.consume();
    this.stream.on("data", (res: ConsumeResponse) => {
      for (const d of res.deliveries) {
        this.deliveries.push(d);
        this.outstanding.set(d.ackId, d);
      }
      this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding.size);
      if (this.options.autoAck) this.ack(res.deliveries.map((d) => d.ackId));
      this.notify();
    });
    this.stream.on("error", (err: ServiceError) => {
      this.error = err;
      this.ended = true;
      this.notify();
    });
    this.stream.on("end", () => {
      this.ended = true;
      this.notify();
    });
    this.send({
      start: {
        subscription,
        maxOutstandingMessages: options.maxOutstandingMessages ?? 0,
        maxOutstandingBytes: BigInt(options.maxOutstandingBytes ?? 0),
        consumerName: "e2e",
      },
    });
  }

  send(req: Partial<ConsumeRequest>): void {
    if (this.ended) return;
    this.stream.write({ start: undefined, ackIds: [], nackIds: [], extend: undefined, ...req });
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

  texts(): string[] {
    return this.deliveries.map((d) => Buffer.from(d.message?.payload ?? []).toString());
  }

  /** Cancels the stream abruptly, as a crashed client would. */
  cut(): void {
    this.stream.cancel();
  }

  waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!condition()) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}: ${this.deliveries.length} deliveries, error=${this.error?.message ?? "none"}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  waitForDeliveries(n: number, timeoutMs?: number): Promise<void> {
    return this.waitFor(() => this.deliveries.length >= n, `${n} deliveries`, timeoutMs);
  }

  waitForEnd(timeoutMs?: number): Promise<void> {
    return this.waitFor(() => this.ended, "the end of the stream", timeoutMs);
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }
}

// ------------------------------------------------------------------------------------- health

const HealthClient = makeGenericClientConstructor(
  {
    check: {
      path: "/grpc.health.v1.Health/Check",
      requestStream: false,
      responseStream: false,
      // HealthCheckRequest { service = 1 }: "" (the whole server) encodes to no bytes.
      requestSerialize: (service: string) => (service === "" ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(service)]), Buffer.from(service)])),
      requestDeserialize: (b: Buffer) => b.toString(),
      responseSerialize: (s: number) => Buffer.from([0x08, s]),
      // HealthCheckResponse { status = 1 }: 08 <enum>; absent = UNKNOWN (0).
      responseDeserialize: (b: Buffer) => (b.length >= 2 && b[0] === 0x08 ? b[1]! : 0),
    },
  },
  "grpc.health.v1.Health",
);

/** grpc.health.v1 Check for the whole server: "SERVING", "NOT_SERVING", … or the error. */
export async function healthCheck(address: string, timeoutMs = 3_000): Promise<string> {
  const client = new HealthClient(address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  try {
    const s = await new Promise<number>((resolve, reject) =>
      (client as unknown as { check: (r: string, o: object, cb: Callback<number>) => void }).check("", { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
    return ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"][s] ?? `status ${s}`;
  } finally {
    client.close();
  }
}

/** The status code a call ended with: status.OK when it resolved. */
export async function codeOf(p: Promise<unknown>): Promise<status> {
  try {
    await p;
    return status.OK;
  } catch (err) {
    return (err as ServiceError).code;
  }
}
