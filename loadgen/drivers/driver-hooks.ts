/**
 * Per-driver decisions the runner's caller needs before a run: whether the driver can honour
 * the scenario at all (a field with no meaning for it refuses the scenario, it is never run
 * differently), and, with no --target, which server to start: the reference broker for the
 * ratatoskr drivers, a nats-server for nats and jetstream.
 */
import { startEmbeddedBroker, type EmbeddedBroker } from "./broker-process.js";
import { UsageError } from "../errors.js";
import type { DriverScenario } from "./driver.js";
import type { DriverName } from "./registry.js";
import { jetStreamRefusals } from "./jetstream.js";
import { natsCoreRefusals } from "./nats.js";
import { startNatsServer } from "./nats-server.js";

type Scenario = DriverScenario & { name: string; v2Publish: "stream" | "unary" };

/** Why `driver` cannot run `scenario` (empty when it can). */
export function driverRefusals(driver: DriverName, scenario: Scenario): string[] {
  const out = driverSpecificRefusals(driver, scenario);
  if (scenario.v2Publish !== "stream" && driver !== "ratatoskr" && driver !== "fake") {
    out.push(`v2Publish=${scenario.v2Publish}: chooses how the ratatoskr (v2) driver publishes; it means nothing to ${driver}`);
  }
  return out;
}

function driverSpecificRefusals(driver: DriverName, scenario: Scenario): string[] {
  switch (driver) {
    case "nats":
      return natsCoreRefusals(scenario);
    case "jetstream":
      return jetStreamRefusals(scenario);
    case "ratatoskr-v1": {
      const out: string[] = [];
      if (scenario.consumersPerSubscription !== 1) {
        out.push(`consumersPerSubscription=${scenario.consumersPerSubscription}: a v1 Subscribe stream is one at-most-once subscriber; v1 has no competing consumers`);
      }
      return out;
    }
    default:
      return [];
  }
}

/** Throws a UsageError naming every refused field. */
export function assertDriverAccepts(driver: DriverName, scenario: Scenario, file = scenario.name): void {
  const problems = driverRefusals(driver, scenario);
  if (problems.length === 0) return;
  throw new UsageError(`driver ${driver} refuses scenario ${file}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
}

/** Which embedded server a driver runs against when no --target is given (undefined: none). */
export function embeddedServerKind(driver: DriverName): "ratatoskr" | "nats-server" | undefined {
  if (driver === "fake") return undefined;
  return driver === "nats" || driver === "jetstream" ? "nats-server" : "ratatoskr";
}

/** Start the server the driver talks to; stop it with `stop()` (by PID). */
export async function startServerFor(driver: DriverName, scenario: Scenario): Promise<EmbeddedBroker & { version?: string }> {
  if (embeddedServerKind(driver) === "nats-server") return startNatsServer();
  return startEmbeddedBroker(scenario.broker);
}
