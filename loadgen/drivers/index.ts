/**
 * drivers/: everything that speaks to a broker. The registry lists the drivers; the driver
 * interface is what the runner needs from one. Other folders enter here.
 */
export { createDriver, DRIVER_NAMES, type DriverName } from "./registry.js";
export { assertDriverAccepts, driverRefusals, embeddedServerKind, startServerFor } from "./driver-hooks.js";
export { FakeDriver, type FakeFaults } from "./fake.js";
export { startEmbeddedBroker, procSample, type EmbeddedBroker } from "./broker-process.js";
export { findNatsServer, natsServerVersion } from "./nats-server.js";
export type { Driver, DriverOptions, DeliverySink, BrokerStatsSample, SubscriptionSpec, Consumer } from "./driver.js";
