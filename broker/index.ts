// The broker package's public surface. Everything else under broker/ is internal: import from
// here (the load generator embeds the broker through startBroker; tools drive the core
// through Broker).

export { startBroker, type RunningBroker } from "./server/server.js";
export { DEFAULT_CONFIG, type BrokerServerConfig } from "./server/config.js";
export { createLogger, silentLogger, type Logger, type LogLevel } from "./server/logger.js";
export { SERVICE_NAMES } from "./server/discovery.js";
export { SUBSCRIPTION_REF_HEADER } from "./server/v1-wire.js";

export { Broker, type BrokerOptions, type TopicInfo, type TopicStats, type UnsubscribeResult } from "./core/broker.js";
export { systemClock, FakeClock, type Clock } from "./core/clock.js";
export {
  BrokerError,
  FailedPreconditionError,
  InvalidArgumentError,
  InvalidTopicNameError,
  ResourceExhaustedError,
  SubscriptionExistsError,
  SubscriptionNotFoundError,
  TopicExistsError,
  TopicNotFoundError,
  UnavailableError,
  type TopicNameProblem,
} from "./core/errors.js";
export { checkName, MAX_NAME_LENGTH } from "./core/names.js";
export type { LiveEndReason, LiveSink, LiveSubscription } from "./core/live-subscriber.js";
export type { PublishInput, PublishOutcome, StoredMessage, TopicConfig, RetentionPolicy } from "./core/types.js";
export type { Store } from "./store/store.js";
export { openStore, StoreOpenError, type StoreConfig } from "./store/open-store.js";
export type { StoreOpenProblem } from "./store/store-errors.js";
