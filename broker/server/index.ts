// The server package's door: start the broker (store + core + gRPC services), its settings
// and logging. Everything else in broker/server/ is internal.

export { startBroker, type BrokerResources, type EffectiveSettings, type RunningBroker } from "./server.js";
export { BrokerConfigError, DEFAULT_CONFIG, messageLimitsOf, type BrokerServerConfig } from "./config.js";
export { isLoopbackHost } from "./exposure.js";
export type { TlsMode } from "./tls.js";
export { createLogger, silentLogger, type Logger, type LogLevel } from "./logger.js";
export { SERVICE_NAMES } from "./discovery.js";
export { BrokerMetrics, NO_METRICS, type BrokerObserver } from "./metrics.js";
export { SUBSCRIPTION_REF_HEADER } from "./v1/index.js";
