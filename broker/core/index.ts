// The broker core's door: everything the server layer, tools and other packages may use.
// The core imports no gRPC and no generated code (test/boundaries.test.ts, npm run lint).

export { BrokerCore, createBrokerCore, DEFAULT_CORE_CONFIG, type BrokerCoreConfig, type BrokerCoreOptions } from "./broker-core.js";
export {
  checkMessage,
  DEFAULT_MESSAGE_LIMITS,
  deadLetterReserveBytes,
  deliveryBytes,
  maxPublishDeliveryBytes,
  STORE_FIELD_LIMIT,
  type MessageLimits,
} from "./message-limits.js";
export { DEFAULT_MAX_DEDUP_ENTRIES, defaultDiskReserveBytes, TopicRegistry, type TopicInfo, type TopicStats, type UnsubscribeResult } from "./topic-registry.js";
export {
  resolveFlowLimits,
  SubscriptionRegistry,
  type SubscriptionInfo,
  type SubscriptionStore,
  type SubscriptionTopics,
  type TopicPositions,
} from "./subscription-registry.js";
export type { BrokerStatsSnapshot, ProcessProbe } from "./broker-stats.js";
export { FakeClock, ManualTimers, systemClock, systemTimers, type Clock, type Timers } from "./clock.js";
export type { Consumer, ConsumerCommands, ConsumerEndReason, ConsumerSink } from "./consumer.js";
export { DEAD_LETTER_ATTRIBUTES } from "./dead-letter.js";
export {
  BrokerError,
  FailedPreconditionError,
  InvalidArgumentError,
  InvalidTopicNameError,
  MessageTooLargeError,
  ResourceExhaustedError,
  SubscriptionExistsError,
  SubscriptionNotFoundError,
  TopicExistsError,
  TopicNotFoundError,
  UnavailableError,
  type TopicNameProblem,
} from "./errors.js";
export { DEFAULT_MAX_OUTSTANDING_BYTES, DEFAULT_MAX_OUTSTANDING_MESSAGES, type FlowLimits } from "./flow-control.js";
export { Lease, snapshotLease, type DeliveredLease, type LeaseHolder } from "./lease-table.js";
export type { LiveEndReason, LiveSink, LiveSubscription } from "./live-subscriber.js";
export { checkName, MAX_NAME_LENGTH } from "./names.js";
export { MAX_DEADLINE_MS, type SubscriptionRequest } from "./subscription-config.js";
export type { DeliveryTotals, SubscriptionStatsSnapshot } from "./subscription.js";
export {
  DEFAULT_ACK_DEADLINE_MS,
  DEFAULT_DEDUP_WINDOW_MS,
  defaultTopicConfig,
  messageBytes,
  type PublishInput,
  type PublishOutcome,
  type RetentionPolicy,
  type StartPosition,
  type StoredMessage,
  type SubscriptionConfig,
  type TopicConfig,
} from "./types.js";
