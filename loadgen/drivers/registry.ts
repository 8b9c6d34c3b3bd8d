/**
 * The driver registry: the one list of drivers. The scenario schema (`driver:` choices and the
 * `driverOptions:` block), `--driver`, bench-suite set files and the comparison's labels all
 * read it. A name that is not here is an error listing the names that are, never a fallback.
 */
import { UnknownDriverError, UsageError } from "../errors.js";
import type { DriverContext, DriverModule, DriverScenario, Driver } from "./driver.js";
import { fakeDriver } from "./fake.js";
import { jetStreamDriver } from "./jetstream.js";
import { mqttDriver } from "./mqtt.js";
import { natsDriver } from "./nats.js";
import { rabbitMqDriver } from "./rabbitmq.js";
import { ratatoskrV1Driver } from "./ratatoskr-v1.js";
import { ratatoskrDriver } from "./ratatoskr-v2.js";
import { redisStreamsDriver } from "./redis-streams.js";

export const DRIVERS = [ratatoskrDriver, ratatoskrV1Driver, natsDriver, jetStreamDriver, rabbitMqDriver, redisStreamsDriver, mqttDriver, fakeDriver] as const;

export type DriverName = (typeof DRIVERS)[number]["name"];

export const DRIVER_NAMES: readonly DriverName[] = DRIVERS.map((d) => d.name);

/** The driver of a scenario that names none: the reference broker's own (v2) API. */
export const DEFAULT_DRIVER: DriverName = "ratatoskr";

export function isDriverName(name: string): name is DriverName {
  return (DRIVER_NAMES as readonly string[]).includes(name);
}

/** The registered driver of that name; throws UnknownDriverError (listing the known names) otherwise. */
export function findDriver(name: string): DriverModule<DriverName> {
  const found = DRIVERS.find((d) => d.name === name);
  if (!found) throw new UnknownDriverError(name, DRIVER_NAMES);
  return found;
}

/** A driver for one run by name; `options` is its `driverOptions.<name>` block (default `{}`). */
export function createDriver(name: string, context: DriverContext, options: unknown = {}): Driver {
  return findDriver(name).create(context, options);
}

/** Throws a UsageError naming the driver, the scenario file and every refused field. */
export function assertDriverAccepts(driver: DriverModule, scenario: DriverScenario, file: string): void {
  const problems = driver.refusals(scenario);
  if (problems.length === 0) return;
  throw new UsageError(`driver ${driver.name} refuses scenario ${file}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
}

/** Top-level scenario fields that moved into a driver's options: field → its new path. */
export function movedScenarioFields(): Map<string, string> {
  const out = new Map<string, string>();
  for (const d of DRIVERS) for (const [from, to] of Object.entries(d.movedFields)) out.set(from, `driverOptions.${d.name}.${to}`);
  return out;
}
