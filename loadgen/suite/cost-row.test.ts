import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { buildResult, captureEnvironment } from "../report/index.js";
import { buildPlan, parseScenario, runScenario } from "../run/index.js";
import { rowOf } from "./compare.js";

describe("the broker cost in a comparison row", () => {
  it("is the result's cost, or for an older result the same figure from its samples", async () => {
    const scenario = parseScenario("name: cost-test\ntopics: 2\nsubscriptions: {perTopic: 2}\nproducers: 1\nrate: 20000\nmessages: 4000\nbatchSize: 20\nmessageSizeBytes: 64\n", "cost-test.yaml");
    const plan = buildPlan(scenario, "cost1", { index: 0, count: 1 });
    const driver = new FakeDriver();
    const outcome = await runScenario(scenario, plan, driver, { clock: systemClock, intervalMs: 100, sampleBroker: () => driver.brokerStats() });
    const r = buildResult(scenario, plan, outcome, { runId: "cost1", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "x", args: [], storage: "memory", fsync: false } });
    outcome.recorder.destroy();
    const c = r.broker.cost!;
    expect(c).not.toBeNull();
    expect(c.cpuUsPerDelivery).not.toBeNull();
    const row = rowOf(r, { label: "fake", exitCode: 0 });
    expect(row.brokerCpuUsPerDelivery).toBe(c.cpuUsPerDelivery);
    expect(row.brokerCpuUsPerPublish).toBe(c.cpuUsPerPublish);
    // A result written before the cost existed gets the same figure from its samples.
    const { cost: _omit, ...old } = r.broker;
    expect(rowOf({ ...r, broker: old }, { label: "fake", exitCode: 0 }).brokerCpuUsPerDelivery).toBe(c.cpuUsPerDelivery);
  });
});
