/** Driver registry: name → constructor. */
import type { Driver, DriverOptions } from "./driver.js";
import { FakeDriver } from "./fake.js";
import { JetStreamDriver } from "./jetstream.js";
import { NatsCoreDriver } from "./nats.js";
import { RatatoskrV1Driver } from "./ratatoskr-v1.js";
import { RatatoskrV2Driver } from "./ratatoskr-v2.js";

export const DRIVER_NAMES = ["ratatoskr", "ratatoskr-v1", "nats", "jetstream", "fake"] as const;
export type DriverName = (typeof DRIVER_NAMES)[number];

/** `storage` picks JetStream's stream storage (memory, or file for `durable`); others ignore it. */
export function createDriver(name: DriverName, options: DriverOptions, storage: "memory" | "durable" = "memory"): Driver {
  switch (name) {
    case "ratatoskr":
      return new RatatoskrV2Driver(options);
    case "ratatoskr-v1":
      return new RatatoskrV1Driver(options);
    case "nats":
      return new NatsCoreDriver(options);
    case "jetstream":
      return new JetStreamDriver(options, storage === "durable" ? "file" : "memory");
    case "fake":
      return new FakeDriver();
  }
}

