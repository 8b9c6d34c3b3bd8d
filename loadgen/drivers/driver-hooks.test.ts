import { describe, expect, it } from "vitest";
import { parseScenario } from "../scenario.js";
import { assertDriverAccepts, driverRefusals, embeddedServerKind } from "./driver-hooks.js";

const base = "name: t\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 10\n";
const scenario = (extra = "") => parseScenario(base + extra, "t.yaml");

describe("driver refusals", () => {
  it("accepts the plain memory scenario for every driver", () => {
    for (const d of ["ratatoskr", "ratatoskr-v1", "nats", "jetstream"] as const) expect(driverRefusals(d, scenario())).toEqual([]);
  });

  it("NATS core refuses storage, fsync, broker options and competing consumers", () => {
    const s = scenario("consumersPerSubscription: 2\nbroker: {storage: durable, fsync: true, memoryBudgetBytes: 1000, args: [--x]}\n");
    const r = driverRefusals("nats", s).join("\n");
    for (const field of ["consumersPerSubscription=2", "broker.storage=durable", "broker.fsync=true", "broker.memoryBudgetBytes", "broker.args"]) expect(r).toContain(field);
  });

  it("JetStream takes durable storage (file) but refuses fsync, which it cannot do before acking", () => {
    expect(driverRefusals("jetstream", scenario("broker: {storage: durable}\nconsumersPerSubscription: 3\n"))).toEqual([]);
    expect(driverRefusals("jetstream", scenario("broker: {storage: durable, fsync: true}\n")).join()).toMatch(/broker\.fsync=true: .*acks before it syncs/);
  });

  it("ratatoskr-v1 refuses competing consumers; ratatoskr (v2) takes them", () => {
    expect(driverRefusals("ratatoskr-v1", scenario("consumersPerSubscription: 2\n"))).toHaveLength(1);
    expect(driverRefusals("ratatoskr", scenario("consumersPerSubscription: 2\nbroker: {storage: durable, fsync: true}\n"))).toEqual([]);
  });

  it("only the ratatoskr (v2) driver takes v2Publish: unary", () => {
    const s = scenario("v2Publish: unary\n");
    expect(driverRefusals("ratatoskr", s)).toEqual([]);
    for (const d of ["ratatoskr-v1", "nats", "jetstream"] as const) expect(driverRefusals(d, s).join()).toMatch(/^v2Publish=unary: /);
  });

  it("assertDriverAccepts names the driver, the file and every reason", () => {
    expect(() => assertDriverAccepts("nats", scenario("broker: {storage: durable}\n"), "x.yaml")).toThrow(/driver nats refuses scenario x\.yaml:\n {2}- broker\.storage=durable/);
  });

  it("the driver decides which server to embed", () => {
    expect(embeddedServerKind("ratatoskr")).toBe("ratatoskr");
    expect(embeddedServerKind("ratatoskr-v1")).toBe("ratatoskr");
    expect(embeddedServerKind("nats")).toBe("nats-server");
    expect(embeddedServerKind("jetstream")).toBe("nats-server");
    expect(embeddedServerKind("fake")).toBeUndefined();
  });
});
