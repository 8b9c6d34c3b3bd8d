import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { buildPlan, parseScenario, Progress, runScenario } from "../run/index.js";
import { startEmbeddedBroker } from "./broker-process.js";
import type { BrokerSettings, EmbeddedBroker } from "./driver.js";
import { startNatsServer, type EmbeddedNatsServer } from "./nats-server.js";
import { createDriver } from "./registry.js";
import { effectiveStorage, selfReportWarnings } from "./self-report.js";

const durableFsync: BrokerSettings = { storage: "durable", fsync: true, args: [] };

describe("labels from what the broker reports", () => {
  it("labels a memory broker memory, without fsync, and warns about both fields", () => {
    const reported = { source: "GetBrokerStats", storage: "memory" as const };
    expect(effectiveStorage(durableFsync, reported)).toEqual({ storage: "memory", fsync: false });
    const w = selfReportWarnings("127.0.0.1:9", durableFsync, reported);
    expect(w).toHaveLength(2);
    expect(w[0]).toMatch(/^broker\.storage: .*durable.*127\.0\.0\.1:9.*memory/);
    expect(w[1]).toMatch(/^broker\.fsync: /);
  });

  it("says when the broker does not report fsync, and keeps the scenario's label for it", () => {
    const reported = { source: "GetBrokerStats", storage: "durable" as const };
    expect(effectiveStorage(durableFsync, reported)).toEqual({ storage: "durable", fsync: true });
    expect(selfReportWarnings("t", durableFsync, reported)).toEqual([expect.stringMatching(/does not report whether it flushes/)]);
  });

  it("has no warning when the broker agrees, or says nothing", () => {
    expect(selfReportWarnings("t", durableFsync, { source: "x", storage: "durable", fsync: true })).toEqual([]);
    expect(selfReportWarnings("t", durableFsync, undefined)).toEqual([]);
    expect(effectiveStorage(durableFsync, undefined)).toEqual({ storage: "durable", fsync: true });
  });
});

describe("drivers report the broker's own storage", () => {
  let broker: EmbeddedBroker;
  let nats: EmbeddedNatsServer;
  beforeAll(async () => {
    [broker, nats] = await Promise.all([startEmbeddedBroker({ storage: "memory", fsync: false, args: [] }), startNatsServer()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([broker?.stop(), nats?.stop()]);
  });

  it("a run against a memory broker with a durable+fsync scenario is labelled memory and warns", async () => {
    const s = parseScenario("name: label\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 100\nbatchSize: 10\ndrainTimeoutSeconds: 5\n", "label.yaml", ["broker.storage=durable", "broker.fsync=true"]);
    const plan = buildPlan(s, `lbl${process.pid}`);
    const driver = createDriver("ratatoskr", { target: broker.address, connections: 1, maxOutstandingMessages: 100, connectTimeoutMs: 5000, broker: s.broker, clock: systemClock });
    const outcome = await runScenario(s, plan, driver, { clock: systemClock, target: broker.address, cleanup: true, progress: new Progress(process.stderr, true) });
    outcome.recorder.destroy();
    expect(outcome.brokerReport).toMatchObject({ storage: "memory" });
    expect(effectiveStorage(s.broker, outcome.brokerReport)).toEqual({ storage: "memory", fsync: false });
    expect(outcome.warnings.some((w) => w.startsWith("broker.storage:") && w.includes(broker.address))).toBe(true);
  }, 30_000);

  it("the jetstream driver reads the storage of the stream it created", async () => {
    const context = { target: nats.address, connections: 1, maxOutstandingMessages: 100, connectTimeoutMs: 5000, clock: systemClock };
    for (const storage of ["durable", "memory"] as const) {
      const driver = createDriver("jetstream", { ...context, broker: { storage, fsync: false, args: [] } });
      await driver.connect();
      const topic = `label-${storage}-${process.pid}`;
      await driver.createTopics([topic]);
      expect(await driver.describeBroker!()).toMatchObject({ storage, fsync: false });
      await driver.cleanup([topic], []);
      await driver.close();
    }
  }, 30_000);
});
