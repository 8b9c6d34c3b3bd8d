// Test support for the v1 service (not a test file itself): a real gRPC server on
// 127.0.0.1:0 with the v1 service, a generated-code client, and small promise helpers.
import { randomUUID } from "node:crypto";
import { credentials, Metadata, Server, ServerCredentials, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { createBrokerCore, type TopicRegistry } from "../../broker/core/index.js";
import { MemoryStore } from "../../broker/store/index.js";
import {
  MessageBrokerClient,
  type CreateTopicRequest,
  type CreateTopicResponse,
  type DeleteTopicRequest,
  type DeleteTopicResponse,
  type GetStatsRequest,
  type GetStatsResponse,
  type ListTopicsRequest,
  type ListTopicsResponse,
  type Message,
  type PublishBatchRequest,
  type PublishBatchResponse,
  type PublishRequest,
  type PublishResponse,
  type TopicExistsRequest,
  type TopicExistsResponse,
  type UnsubscribeRequest,
  type UnsubscribeResponse,
} from "../../proto/gen/ratatoskr.js";
import { DEFAULT_CONFIG, type BrokerServerConfig } from "../../broker/server/index.js";
import { silentLogger } from "../../broker/server/index.js";
import { addV1Service, SUBSCRIPTION_REF_HEADER, type V1Service, type V1SubscribeOptions } from "../../broker/server/v1/index.js";

export interface V1TestServer {
  address: string;
  broker: TopicRegistry;
  v1: V1Service;
  client: MessageBrokerClient;
  api: V1Api;
  close(): Promise<void>;
}

export async function startV1TestServer(
  options: { config?: Partial<BrokerServerConfig>; v1?: Partial<V1SubscribeOptions> } = {},
): Promise<V1TestServer> {
  const config: BrokerServerConfig = { ...DEFAULT_CONFIG, port: 0, logLevel: "silent", ...options.config };
  const core = createBrokerCore({ store: new MemoryStore(), config: { memoryBudgetBytes: config.memoryBudgetBytes } });
  const broker = core.topics;
  const server = new Server({
    "grpc.max_receive_message_length": config.maxMessageBytes,
    "grpc.max_send_message_length": config.maxMessageBytes,
  });
  const v1 = addV1Service(server, broker, config, silentLogger, options.v1);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const address = `127.0.0.1:${port}`;
  const client = newClient(address);
  return {
    address,
    broker,
    v1,
    client,
    api: v1Api(client),
    close: async () => {
      client.close();
      await core.close();
      server.forceShutdown();
    },
  };
}

/**
 * A client on its own HTTP/2 connection (grpc-js otherwise shares one connection per target
 * across clients), so each test client behaves like a separate process would.
 */
export function newClient(address: string): MessageBrokerClient {
  return new MessageBrokerClient(address, credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    "grpc.max_send_message_length": 64 * 1024 * 1024,
  });
}

type Unary<Req, Res> = (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown;
const promised =
  <Req, Res>(client: MessageBrokerClient, method: Unary<Req, Res>) =>
  (request: Req): Promise<Res> =>
    new Promise((resolve, reject) => method.call(client, request, (err, res) => (err ? reject(err) : resolve(res))));

/** Promise forms of the unary v1 RPCs on a generated client. */
export function v1Api(client: MessageBrokerClient) {
  return {
    createTopic: promised<CreateTopicRequest, CreateTopicResponse>(client, client.createTopic),
    deleteTopic: promised<DeleteTopicRequest, DeleteTopicResponse>(client, client.deleteTopic),
    listTopics: promised<ListTopicsRequest, ListTopicsResponse>(client, client.listTopics),
    topicExists: promised<TopicExistsRequest, TopicExistsResponse>(client, client.topicExists),
    getStats: promised<GetStatsRequest, GetStatsResponse>(client, client.getStats),
    publish: promised<PublishRequest, PublishResponse>(client, client.publish),
    publishBatch: promised<PublishBatchRequest, PublishBatchResponse>(client, client.publishBatch),
    unsubscribe: promised<UnsubscribeRequest, UnsubscribeResponse>(client, client.unsubscribe),
  };
}
export type V1Api = ReturnType<typeof v1Api>;

/** A topic name no other test uses. */
export function uniqueTopic(prefix = "t"): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** An open Subscribe stream with its collected messages and its end. */
export interface OpenSubscription {
  stream: ClientReadableStream<Message>;
  ref: string;
  messages: Message[];
  /** Resolves with the status code and details the stream ended with. */
  ended: Promise<{ code: status; details: string }>;
  /** Resolves once `n` messages have arrived. */
  received(n: number): Promise<void>;
}

export interface SubscribeOptions {
  subscriberId?: string;
  /**
   * collect: keep every message; light: keep messages without their payload (bulk tests that
   * must not hold payload memory). There is deliberately no "don't read" mode: a grpc-js
   * stream left unread in this process is still drained by Node's HTTP/2 session, so the
   * server never sees it as slow. Slow-consumer tests SIGSTOP a child process instead
   * (v1-stall-child.ts).
   */
  mode?: "collect" | "light";
}

/** Subscribes and waits for the response headers (the ref); rejects if the call fails first. */
export async function subscribe(client: MessageBrokerClient, topic: string, options: SubscribeOptions = {}): Promise<OpenSubscription> {
  const stream = client.subscribe({ topic, subscriberId: options.subscriberId ?? "" });
  const messages: Message[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const ended = new Promise<{ code: status; details: string }>((resolve) => {
    stream.on("status", (s: { code: status; details: string }) => resolve({ code: s.code, details: s.details }));
    stream.on("error", () => undefined); // the status event carries the outcome
  });
  const light = options.mode === "light";
  stream.on("data", (m: Message) => {
    messages.push(light ? { ...m, payload: Buffer.alloc(0) } : m);
    for (const w of waiters.filter((x) => messages.length >= x.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const ref = await new Promise<string>((resolve, reject) => {
    stream.once("metadata", (md: Metadata) => resolve(String(md.get(SUBSCRIPTION_REF_HEADER)[0] ?? "")));
    void ended.then((s) => reject(Object.assign(new Error(s.details), { code: s.code })));
  });
  return {
    stream,
    ref,
    messages,
    ended,
    received: (n) => (messages.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

/** Resolves once `predicate` holds, checking every few milliseconds; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
