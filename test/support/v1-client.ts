// A v1 (ratatoskr.MessageBroker) client over the wire: the generated client, promise forms of
// the unary RPCs, and a Subscribe stream that collects its messages. Only grpc-js and
// generated code, so unit tests (in-process server) and e2e tests (the image) share it.
import { status, type ClientReadableStream, type Metadata } from "@grpc/grpc-js";
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
import { clientSetup, unary, type ClientSecurity } from "./grpc-client.js";

/** The response header Subscribe sends its reference in (docs/protocol-v1.md), spelled out here so the tests hold the server to the documented name. */
const SUBSCRIPTION_REF_HEADER = "x-subscription-ref";

/** A v1 client on its own HTTP/2 connection. */
export function v1Client(address: string, security?: ClientSecurity): MessageBrokerClient {
  const { credentials, options } = clientSetup(security);
  return new MessageBrokerClient(address, credentials, options);
}

/** Promise forms of the unary v1 RPCs on a generated client. */
export function v1Api(c: MessageBrokerClient) {
  return {
    createTopic: unary<CreateTopicRequest, CreateTopicResponse>(c, c.createTopic),
    deleteTopic: unary<DeleteTopicRequest, DeleteTopicResponse>(c, c.deleteTopic),
    listTopics: unary<ListTopicsRequest, ListTopicsResponse>(c, c.listTopics),
    topicExists: unary<TopicExistsRequest, TopicExistsResponse>(c, c.topicExists),
    getStats: unary<GetStatsRequest, GetStatsResponse>(c, c.getStats),
    publish: unary<PublishRequest, PublishResponse>(c, c.publish),
    publishBatch: unary<PublishBatchRequest, PublishBatchResponse>(c, c.publishBatch),
    unsubscribe: unary<UnsubscribeRequest, UnsubscribeResponse>(c, c.unsubscribe),
  };
}
export type V1Api = ReturnType<typeof v1Api>;

/** An open Subscribe stream: its ref, the messages so far, and how it ended. */
export interface V1Subscription {
  stream: ClientReadableStream<Message>;
  ref: string;
  messages: Message[];
  /** Resolves with the status code and details the stream ended with. */
  ended: Promise<{ code: status; details: string }>;
  /** Resolves once `n` messages have arrived; rejects if the stream ends first or after `timeoutMs`. */
  received(n: number, timeoutMs?: number): Promise<void>;
}

export interface V1SubscriptionOptions {
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

/** Subscribes and resolves once the response headers (with the ref) arrive; rejects if the call fails first. */
export async function v1Subscribe(c: MessageBrokerClient, topic: string, options: V1SubscriptionOptions = {}): Promise<V1Subscription> {
  const stream = c.subscribe({ topic, subscriberId: options.subscriberId ?? "" });
  const messages: Message[] = [];
  const changed = new Set<() => void>();
  const light = options.mode === "light";
  stream.on("data", (m: Message) => {
    messages.push(light ? { ...m, payload: Buffer.alloc(0) } : m);
    for (const f of [...changed]) f();
  });
  stream.on("error", () => undefined); // the status event carries the outcome
  let done = false;
  const ended = new Promise<{ code: status; details: string }>((resolve) =>
    stream.on("status", (s: { code: status; details: string }) => {
      done = true;
      resolve({ code: s.code, details: s.details });
      for (const f of [...changed]) f();
    }),
  );
  const ref = await new Promise<string>((resolve, reject) => {
    stream.once("metadata", (md: Metadata) => resolve(String(md.get(SUBSCRIPTION_REF_HEADER)[0] ?? "")));
    void ended.then((s) => reject(Object.assign(new Error(s.details), { code: s.code })));
  });
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
        reject(new Error(`timed out after ${timeoutMs} ms with ${messages.length} of ${n} messages`));
      }, timeoutMs);
      changed.add(check);
      check();
    });
  return { stream, ref, messages, ended, received };
}
