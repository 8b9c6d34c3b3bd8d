import { Metadata, status, type Server } from "@grpc/grpc-js";
import { checkMessage, checkName, InvalidArgumentError, InvalidTopicNameError, MessageTooLargeError, ResourceExhaustedError, TopicExistsError, type TopicNameProblem, TopicNotFoundError, type TopicRegistry } from "../../core/index.js";
import { MessageBrokerService, type PublishBatchRequest, type PublishBatchResponse, type PublishRequest, type PublishResponse } from "../../../proto/gen/ratatoskr.js";
import { OPEN_ACCESS, type Access } from "../access.js";
import type { BrokerServerConfig } from "../config.js";
import { directUnary, type UnaryFn } from "../direct-unary.js";
import type { DirectHandler } from "../h2-call.js";
import { unary, type ServedHandlers } from "../handlers.js";
import type { Logger } from "../logger.js";
import { NO_METRICS, type BrokerObserver } from "../metrics.js";
import { statusError } from "../status.js";
import { subscribeHandler, V1Subscribers, type V1SubscribeOptions } from "./v1-subscribe.js";
import { isWellFormedRef, V1_SERVICE_DEFINITION } from "./v1-wire.js";

// v1 (`ratatoskr.MessageBroker`): the original broker's contract. Domain errors are status OK
// with an exact string in the response's `error` field (docs/design.md, "v1 wire contract"); only failures the
// original had no string for (shutdown, internal errors, budgets on single Publish) become
// gRPC status codes through toStatus. As in the original, every PublishResponse carries a
// Unix-ms `timestamp`, a failed one too (the time of the refusal); its `message_id` is empty.

const CREATE_ERRORS: Record<TopicNameProblem, string> = {
  empty: "empty_topic_name",
  too_long: "topic_name_too_long",
  invalid_format: "invalid_topic_name_format",
};
const PUBLISH_ERRORS: Record<TopicNameProblem, string> = {
  empty: "empty_topic",
  too_long: "topic_too_long",
  invalid_format: "invalid_topic_format",
};
export const INVALID_REF = "Invalid subscription reference";
/** PublishBatch item refused because the broker's memory/disk budget is full. */
export const BATCH_ITEM_BUDGET_ERROR = "resource_exhausted";
/** PublishBatch item over a per-field message limit (id, attribute count, key or value size). */
export const BATCH_ITEM_INVALID_ERROR = "invalid_argument";
/** PublishBatch item larger, as delivered, than the broker may send. */
export const BATCH_ITEM_TOO_LARGE_ERROR = "message_too_large";

/**
 * Response header of a v1 ListTopics that did not fit the message size limit: the number of
 * topics the broker holds. The list then holds the first names in sorted order
 * (docs/limits.md, "v1 ListTopics").
 */
export const TOPICS_TRUNCATED_HEADER = "ratatoskr-topics-total";

/** Room kept in a ListTopics response for the gRPC frame and anything the encoder adds. */
const LIST_TOPICS_MARGIN_BYTES = 1024;

/** The sorted names that fit one ListTopicsResponse under `maxMessageBytes`. */
export function boundedTopicList(names: readonly string[], maxMessageBytes: number): { topics: string[]; total: number } {
  const room = maxMessageBytes - LIST_TOPICS_MARGIN_BYTES;
  let bytes = 0;
  let n = 0;
  for (const name of names) {
    const len = Buffer.byteLength(name);
    const entry = 1 + varintSize(len) + len; // field 1, length-delimited
    if (bytes + entry > room) break;
    bytes += entry;
    n++;
  }
  return { topics: n === names.length ? [...names] : names.slice(0, n), total: names.length };
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n >>>= 7;
    size++;
  }
  return size;
}

/** Handle on the v1 service for statistics and tests, and what it leaves to the server that binds it. */
export interface V1Service {
  readonly subscribers: V1Subscribers;
  /** The methods served on HTTP/2 directly, by path: Publish and PublishBatch (direct-unary.ts, serveDirect). */
  readonly direct: ReadonlyMap<string, DirectHandler>;
}

export function addV1Service(
  server: Server,
  broker: TopicRegistry,
  config: BrokerServerConfig,
  log: Logger,
  options: Partial<V1SubscribeOptions> = {},
  access: Access = OPEN_ACCESS,
  observer: BrokerObserver = NO_METRICS,
): V1Service {
  const subscribers = new V1Subscribers();
  const subscribeOptions: V1SubscribeOptions = {
    bufferBytes: options.bufferBytes ?? config.v1SubscriberBufferBytes,
    resetGraceMs: options.resetGraceMs ?? 1_000,
    budget: options.budget,
  };

  const implementation = {
    // Permissions come first (docs/security.md): a refusal is a gRPC status, since v1's error
    // strings have none for it, and a caller without the permission learns nothing about the topic.
    createTopic: unary(log, async ({ name }, call) => {
      access.require(call.metadata, "admin", name);
      try {
        await broker.createTopic(name);
        return { topic: name, created: true, error: "" };
      } catch (err) {
        if (err instanceof TopicExistsError) return { topic: name, created: false, error: "already_exists" };
        if (err instanceof InvalidTopicNameError) return { topic: name, created: false, error: CREATE_ERRORS[err.problem] };
        throw err;
      }
    }),

    deleteTopic: unary(log, async ({ name }, call) => {
      access.require(call.metadata, "admin", name);
      try {
        await broker.deleteTopic(name);
        return { success: true, error: "" };
      } catch (err) {
        if (err instanceof TopicNotFoundError) return { success: false, error: "topic_not_found" };
        throw err;
      }
    }),

    listTopics: unary(log, (_request, call) => {
      const { topics, total } = boundedTopicList(broker.listTopics().filter(access.visible(call.metadata)), config.maxMessageBytes);
      if (topics.length < total) {
        // v1 has no paging: the response stays under the send limit and says it was cut.
        const headers = new Metadata();
        headers.set(TOPICS_TRUNCATED_HEADER, String(total));
        call.sendMetadata(headers);
        log.warn("v1 ListTopics truncated to fit the message size limit", { returned: topics.length, total, maxMessageBytes: config.maxMessageBytes });
      }
      return { topics };
    }),

    topicExists: unary(log, ({ name }, call) => {
      access.requireAny(call.metadata, name);
      return { exists: broker.hasTopic(name) };
    }),

    getStats: unary(log, ({ topic }, call) => {
      access.requireAny(call.metadata, topic);
      if (!broker.hasTopic(topic)) return { topic, messageCount: 0n, subscriberCount: 0, error: "topic_not_found" };
      const { stats } = broker.topicInfo(topic);
      return { topic, messageCount: BigInt(stats.published), subscriberCount: stats.liveSubscriberCount, error: "" };
    }),

    publish: unary(log, () => {
      throw statusError(status.INTERNAL, "Publish is served on HTTP/2 directly and this server was bound without serveDirect");
    }),

    publishBatch: unary(log, () => {
      throw statusError(status.INTERNAL, "PublishBatch is served on HTTP/2 directly and this server was bound without serveDirect");
    }),

    subscribe: subscribeHandler(broker, subscribers, subscribeOptions, log, access),

    unsubscribe: unary(log, ({ topic, subscriptionRef }, call) => {
      access.require(call.metadata, "consume", topic);
      if (!isWellFormedRef(subscriptionRef)) return { success: false, error: INVALID_REF };
      const result = broker.unsubscribeLive(topic, subscriptionRef);
      return result === "ok" ? { success: true, error: "" } : { success: false, error: result };
    }),
  } satisfies ServedHandlers<typeof V1_SERVICE_DEFINITION>;

  server.addService(V1_SERVICE_DEFINITION, implementation);

  // Publish and PublishBatch, one call per message or batch, are served on HTTP/2 directly
  // (direct-unary.ts): grpc-js's server call was most of what a v1 message cost.
  const publish: UnaryFn<PublishRequest, PublishResponse> = async ({ topic, payload, metadata }, call) => {
    access.require(call.metadata, "publish", topic);
    const problem = checkName(topic);
    if (problem) return failed(broker, PUBLISH_ERRORS[problem]);
    const started = observer.publishStart();
    try {
      const [outcome] = await broker.publish(topic, [{ payload, attributes: metadata }], { autoCreate: true });
      return { messageId: outcome!.id, timestamp: BigInt(outcome!.publishTimeMs), success: true, error: "" };
    } finally {
      observer.publishDone("v1", started);
    }
  };
  const publishBatchFn: UnaryFn<PublishBatchRequest, PublishBatchResponse> = async (request, call) => {
    // All or nothing: a batch naming one topic the token may not publish to is refused whole.
    for (const item of request.messages) access.require(call.metadata, "publish", item.topic || request.topic);
    const started = observer.publishStart();
    try {
      return await publishBatch(broker, request);
    } finally {
      observer.publishDone("v1", started);
    }
  };
  const direct = new Map<string, DirectHandler>([
    [MessageBrokerService.publish.path, directUnary(log, MessageBrokerService.publish, publish)],
    [MessageBrokerService.publishBatch.path, directUnary(log, MessageBrokerService.publishBatch, publishBatchFn)],
  ]);
  return { subscribers, direct };
}

/**
 * Items in order, each on `item.topic || request.topic`. Consecutive valid items for the same
 * topic go to the core as one publish (one commit, one fan-out pass); groups run one after
 * another so a topic's messages keep batch order. Not atomic: each item has its own result.
 */
async function publishBatch(broker: TopicRegistry, request: PublishBatchRequest): Promise<PublishBatchResponse> {
  const items = request.messages;
  const results = new Array<PublishResponse>(items.length);
  let i = 0;
  while (i < items.length) {
    const topic = items[i]!.topic || request.topic;
    const problem = checkName(topic);
    if (problem) {
      results[i] = failed(broker, PUBLISH_ERRORS[problem]);
      i++;
      continue;
    }
    // An item over a message limit is refused on its own (the core checks again, identically).
    const refusal = itemRefusal(broker, topic, items[i]!);
    if (refusal) {
      results[i] = failed(broker, refusal);
      i++;
      continue;
    }
    const start = i;
    i++;
    while (i < items.length && (items[i]!.topic || request.topic) === topic && itemRefusal(broker, topic, items[i]!) === undefined) i++;
    const group = items.slice(start, i);
    try {
      const outcomes = await broker.publish(topic, group.map((m) => ({ payload: m.payload, attributes: m.metadata })), { autoCreate: true });
      outcomes.forEach((o, k) => (results[start + k] = { messageId: o.id, timestamp: BigInt(o.publishTimeMs), success: true, error: "" }));
    } catch (err) {
      if (!(err instanceof ResourceExhaustedError)) throw err;
      const refused = failed(broker, BATCH_ITEM_BUDGET_ERROR);
      for (let k = start; k < i; k++) results[k] = { ...refused };
    }
  }
  const successCount = results.filter((r) => r.success).length;
  return { results, successCount, errorCount: results.length - successCount };
}

/** The error string of an item over a message limit; undefined when it is within them all. */
function itemRefusal(broker: TopicRegistry, topic: string, item: PublishRequest): string | undefined {
  try {
    checkMessage(broker.messageLimits, topic, { payload: item.payload, attributes: item.metadata }, 0);
    return undefined;
  } catch (err) {
    if (err instanceof MessageTooLargeError) return BATCH_ITEM_TOO_LARGE_ERROR;
    if (err instanceof InvalidArgumentError) return BATCH_ITEM_INVALID_ERROR;
    throw err;
  }
}

/** A refused publish as the original answered it: no id, the error string, and the broker's current Unix-ms time. */
function failed(broker: TopicRegistry, error: string): PublishResponse {
  return { messageId: "", timestamp: BigInt(broker.clock.nowMs()), success: false, error };
}
