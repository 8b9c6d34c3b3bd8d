import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findDriver, type EmbeddedBroker } from "../drivers/index.js";
import { parseScenario, scenarioForDriver } from "../run/index.js";
import { runBareClient, WARMUP_SHARE } from "./index.js";

// Small, but with everything a scenario shapes: two topics, two subscriptions each, two producers,
// partial last batches (1,050 messages per producer over batches of 100).
const yaml = (driver: string) =>
  `name: bare-${driver}\ndriver: ${driver}\ntopics: 2\nsubscriptions: {perTopic: 2}\nproducers: 2\nmessageSizeBytes: 64\nbatchSize: 100\nmessages: 2100\nconnections: 2\nmaxInFlightBatches: 2\ndrainTimeoutSeconds: 20\n`;

const servers: EmbeddedBroker[] = [];
const started = new Map<string, EmbeddedBroker>();

beforeAll(async () => {
  const nats = await findDriver("nats").embeddedServer!.start(scenarioForDriver(parseScenario(yaml("nats"), "x.yaml"), findDriver("nats")));
  servers.push(nats);
  started.set("nats", nats).set("jetstream", nats);
  const ratatoskr = await findDriver("ratatoskr").embeddedServer!.start(parseScenario(yaml("ratatoskr"), "x.yaml"));
  servers.push(ratatoskr);
  started.set("ratatoskr", ratatoskr);
  for (const driver of ["redis-streams", "mqtt"]) {
    const server = await findDriver(driver).embeddedServer!.start(parseScenario(yaml(driver), "x.yaml"));
    servers.push(server);
    started.set(driver, server);
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

describe("the bare clients", () => {
  for (const driver of ["nats", "jetstream", "ratatoskr", "redis-streams", "mqtt"]) {
    it(`${driver}: a publisher process and subscriber processes deliver every message to every subscription, and time the measured share`, async () => {
      const scenario = scenarioForDriver(parseScenario(yaml(driver), `${driver}.yaml`), findDriver(driver));
      const r = await runBareClient({ scenario, driver, target: started.get(driver)!.address, subscriberProcesses: 2 });
      // Measured and warmup messages, each delivered to both subscriptions of its topic.
      const total = 2100 + Math.ceil(2100 * WARMUP_SHARE);
      expect(r.expected).toBe(total * 2);
      expect(r.received).toBe(r.expected);
      // The measured share: every delivery but each subscriber process's warmup share (floored).
      const warm = Math.ceil(2100 * WARMUP_SHARE) / total;
      expect(r.deliveries).toBeGreaterThanOrEqual(Math.floor(r.expected * (1 - warm)));
      expect(r.deliveries).toBeLessThanOrEqual(Math.floor(r.expected * (1 - warm)) + 4);
      expect(r.seconds).toBeGreaterThan(0);
      expect(Number.isFinite(r.deliveriesPerSecond) && r.deliveriesPerSecond > 0).toBe(true);
    }, 60_000);
  }
});
