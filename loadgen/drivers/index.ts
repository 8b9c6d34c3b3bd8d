/**
 * drivers/: everything that speaks to a broker. The registry lists the drivers, each described
 * by its own module (name, options, refusals, embedded server, report labels); the driver
 * interface is what the runner needs from one. Other folders enter here.
 */
export { DRIVERS, DRIVER_NAMES, DEFAULT_DRIVER, findDriver, isDriverName, createDriver, assertDriverAccepts, movedScenarioFields, type DriverName } from "./registry.js";
export { FakeDriver, type FakeFaults } from "./fake.js";
export { startEmbeddedBroker, procSample } from "./broker-process.js";
export { startNatsServer } from "./nats-server.js";
export { effectiveStorage, selfReportWarnings } from "./self-report.js";
export { checkMetricsUrl, scrapeBrokerMetrics } from "./broker-metrics.js";
export { tlsLabel, type DriverSecurity, type DriverTls } from "./security.js";
export { H2UnaryClient } from "./h2-unary.js";
export { readsHandedOver, turnReads, TURN_READ_BYTES } from "./read-budget.js";
export { Backoff, backoffDelayMs, DEFAULT_RECONNECT, ReconnectGaveUpError, type ReconnectPolicy, type RetryCounts } from "./reconnect.js";
export type {
  BrokerSelfReport,
  BrokerSettings,
  BrokerStatsSample,
  Consumer,
  DeliverySink,
  Driver,
  DriverContext,
  DriverModule,
  DriverOptions,
  DriverScenario,
  DurabilityPromise,
  EmbeddedBroker,
  EmbeddedServerSpec,
  ProcessLog,
  SubscriptionSpec,
} from "./driver.js";
