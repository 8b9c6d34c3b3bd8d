import type { Server, UntypedServiceImplementation } from "@grpc/grpc-js";
import type { Broker } from "../core/broker.js";
import { InvalidTopicNameError, ResourceExhaustedError, TopicExistsError, TopicNotFoundError } from "../core/errors.js";
import { checkName } from "../core/names.js";
import type { TopicNameProblem } from "../core/errors.js";
import type {
  CreateTopicRequest,
  CreateTopicResponse,
  DeleteTopicRequest,
  DeleteTopicResponse,
  GetStatsRequest,
  GetStatsResponse,
  ListTopicsRequest,
  ListTopicsResponse,
  PublishBatchRequest,
  PublishBatchResponse,
  PublishRequest,
  PublishResponse,
  TopicExistsRequest,
  TopicExistsResponse,
  UnsubscribeRequest,
  UnsubscribeResponse,
} from "../../proto/gen/ratatoskr.js";
import type { BrokerServerConfig } from "./config.js";
import { unary } from "./handlers.js";
import type { Logger } from "./logger.js";
import { subscribeHandler, V1Subscribers, type V1SubscribeOptions } from "./v1-subscribe.js";
import { isWellFormedRef, V1_SERVICE_DEFINITION } from "./v1-wire.js";

// v1 (`ratatoskr.MessageBroker`): the original broker's contract. Domain errors are status OK
// with an exact string in the response's `error` field (DESIGN §2.1); only failures the
// original had no string for (shutdown, internal errors, budgets on single Publish) become
// gRPC status codes through toStatus.

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

/** Handle on the v1 service for statistics and tests. */
export interface V1Service {
  readonly subscribers: V1Subscribers;
}

export function addV1Service(
  server: Server,
  broker: Broker,
  config: BrokerServerConfig,
  log: Logger,
  options: Partial<V1SubscribeOptions> = {},
): V1Service {
  const subscribers = new V1Subscribers();
  const subscribeOptions: V1SubscribeOptions = {
    bufferBytes: options.bufferBytes ?? config.v1SubscriberBufferBytes,
    resetGraceMs: options.resetGraceMs ?? 1_000,
  };

  const implementation: UntypedServiceImplementation = {
    createTopic: unary<CreateTopicRequest, CreateTopicResponse>(log, async ({ name }) => {
      try {
        await broker.createTopic(name);
        return { topic: name, created: true, error: "" };
      } catch (err) {
        if (err instanceof TopicExistsError) return { topic: name, created: false, error: "already_exists" };
        if (err instanceof InvalidTopicNameError) return { topic: name, created: false, error: CREATE_ERRORS[err.problem] };
        throw err;
      }
    }),

    deleteTopic: unary<DeleteTopicRequest, DeleteTopicResponse>(log, async ({ name }) => {
      try {
        await broker.deleteTopic(name);
        return { success: true, error: "" };
      } catch (err) {
        if (err instanceof TopicNotFoundError) return { success: false, error: "topic_not_found" };
        throw err;
      }
    }),

    listTopics: unary<ListTopicsRequest, ListTopicsResponse>(log, () => ({ topics: broker.listTopics() })),

    topicExists: unary<TopicExistsRequest, TopicExistsResponse>(log, ({ name }) => ({ exists: broker.hasTopic(name) })),

    getStats: unary<GetStatsRequest, GetStatsResponse>(log, ({ topic }) => {
      if (!broker.hasTopic(topic)) return { topic, messageCount: 0, subscriberCount: 0, error: "topic_not_found" };
      const { stats } = broker.topicInfo(topic);
      return { topic, messageCount: stats.published, subscriberCount: stats.liveSubscriberCount, error: "" };
    }),

    publish: unary<PublishRequest, PublishResponse>(log, async ({ topic, payload, metadata }) => {
      const problem = checkName(topic);
      if (problem) return { messageId: "", timestamp: 0, success: false, error: PUBLISH_ERRORS[problem] };
      const [outcome] = await broker.publish(topic, [{ payload, attributes: metadata }], { autoCreate: true });
      return { messageId: outcome!.id, timestamp: outcome!.publishTimeMs, success: true, error: "" };
    }),

    publishBatch: unary<PublishBatchRequest, PublishBatchResponse>(log, (request) => publishBatch(broker, request)),

    subscribe: subscribeHandler(broker, subscribers, subscribeOptions, log),

    unsubscribe: unary<UnsubscribeRequest, UnsubscribeResponse>(log, ({ topic, subscriptionRef }) => {
      if (!isWellFormedRef(subscriptionRef)) return { success: false, error: INVALID_REF };
      const result = broker.unsubscribeLive(topic, subscriptionRef);
      return result === "ok" ? { success: true, error: "" } : { success: false, error: result };
    }),
  };

  server.addService(V1_SERVICE_DEFINITION, implementation);
  return { subscribers };
}

/**
 * Items in order, each on `item.topic || request.topic`. Consecutive valid items for the same
 * topic go to the core as one publish (one commit, one fan-out pass); groups run one after
 * another so a topic's messages keep batch order. Not atomic: each item has its own result.
 */
async function publishBatch(broker: Broker, request: PublishBatchRequest): Promise<PublishBatchResponse> {
  const items = request.messages;
  const results = new Array<PublishResponse>(items.length);
  let i = 0;
  while (i < items.length) {
    const topic = items[i]!.topic || request.topic;
    const problem = checkName(topic);
    if (problem) {
      results[i] = { messageId: "", timestamp: 0, success: false, error: PUBLISH_ERRORS[problem] };
      i++;
      continue;
    }
    const start = i;
    while (i < items.length && (items[i]!.topic || request.topic) === topic) i++;
    const group = items.slice(start, i);
    try {
      const outcomes = await broker.publish(topic, group.map((m) => ({ payload: m.payload, attributes: m.metadata })), { autoCreate: true });
      outcomes.forEach((o, k) => (results[start + k] = { messageId: o.id, timestamp: o.publishTimeMs, success: true, error: "" }));
    } catch (err) {
      if (!(err instanceof ResourceExhaustedError)) throw err;
      for (let k = start; k < i; k++) results[k] = { messageId: "", timestamp: 0, success: false, error: BATCH_ITEM_BUDGET_ERROR };
    }
  }
  const successCount = results.filter((r) => r.success).length;
  return { results, successCount, errorCount: results.length - successCount };
}
