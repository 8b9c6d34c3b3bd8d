/** Driver registry: name → constructor. */
import type { Driver, DriverOptions } from "./driver.js";
import { FakeDriver } from "./fake.js";
import { RatatoskrV1Driver } from "./ratatoskr-v1.js";
import { RatatoskrV2Driver } from "./ratatoskr-v2.js";

export const DRIVER_NAMES = ["ratatoskr", "ratatoskr-v1", "fake"] as const;
export type DriverName = (typeof DRIVER_NAMES)[number];

export function createDriver(name: DriverName, options: DriverOptions): Driver {
  switch (name) {
    case "ratatoskr":
      return new RatatoskrV2Driver(options);
    case "ratatoskr-v1":
      return new RatatoskrV1Driver(options);
    case "fake":
      return new FakeDriver();
  }
}

export type { Driver, DriverOptions, DeliverySink, BrokerStatsSample, SubscriptionSpec, Consumer } from "./driver.js";
