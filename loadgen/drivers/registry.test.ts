import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { ScenarioError, UnknownDriverError, UsageError } from "../errors.js";
import { parseScenario, scenarioForDriver } from "../run/index.js";
import { loadSet } from "../suite/index.js";
import { referenceBroker } from "./broker-process.js";
import type { BrokerSettings, DriverContext } from "./driver.js";
import { mosquittoServer } from "./mosquitto.js";
import { natsServer } from "./nats-server.js";
import { rabbitMqServer } from "./rabbitmq-server.js";
import { redisServer } from "./redis-server.js";
import { assertDriverAccepts, createDriver, DEFAULT_DRIVER, DRIVER_NAMES, DRIVERS, findDriver, movedScenarioFields } from "./registry.js";

const base = "name: t\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 10\n";
const scenario = (extra = "") => parseScenario(base + extra, "t.yaml");
const memory: BrokerSettings = { storage: "memory", fsync: false, args: [] };
// Loopback port 1: nothing listens there, and creating a driver connects to nothing.
const context: DriverContext = { target: "127.0.0.1:1", connections: 1, maxOutstandingMessages: 10, connectTimeoutMs: 1000, broker: memory, clock: systemClock };

function issuesOf(text: string) {
  try {
    parseScenario(text, "bad.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return (err as ScenarioError).issues;
  }
  throw new Error("expected a ScenarioError");
}

describe("driver registry", () => {
  it("has every registered driver say what a run promises (the durability disclosure), for every storage", () => {
    const missing = DRIVERS.filter((d) => typeof d.promises !== "function").map((d) => d.name);
    expect(missing, `drivers without promises(settings, options) in their module (see DriverModule.promises): ${missing.join(", ")}`).toEqual([]);
    for (const d of DRIVERS) {
      const said = new Set<string>();
      for (const broker of [memory, { ...memory, storage: "durable" as const }, { ...memory, storage: "durable" as const, fsync: true }]) {
        const p = d.promises!(broker, {});
        for (const k of ["publishAck", "storage", "flush", "ackPolicy", "ordering"] as const) expect(p[k].length, `${d.name}.${k}`).toBeGreaterThan(3);
        expect(Number.isInteger(p.replicas) && p.replicas >= 1, `${d.name}.replicas`).toBe(true);
        said.add(`${p.storage} / ${p.flush}`);
      }
      // A driver whose server stores messages durably says so differently from memory.
      if (d.name === "ratatoskr" || d.name === "ratatoskr-v1") expect(said.size, d.name).toBe(3);
      if (d.name === "jetstream") expect(said.size, d.name).toBe(2); // fsync is refused: durable is file + background sync either way
    }
    // Options are validated and applied: the v2 publish mode names its ack.
    expect(findDriver("ratatoskr").promises!(memory, { publish: "unary" }).publishAck).toMatch(/^Publish response/);
    expect(() => findDriver("ratatoskr").promises!(memory, { publish: "carrier-pigeon" })).toThrow();
  });

  it("has every driver once, and each describes itself completely", async () => {
    expect(new Set(DRIVER_NAMES).size).toBe(DRIVERS.length);
    expect(DRIVER_NAMES).toContain(DEFAULT_DRIVER);
    for (const d of DRIVERS) {
      expect(d.name).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(d.summary.length, d.name).toBeGreaterThan(10);
      // Options: every field has a default, and the block is strict.
      expect(d.options.safeParse({}).success, d.name).toBe(true);
      expect(d.options.safeParse({ noSuchOption: 1 }).success, d.name).toBe(false);
      for (const to of Object.values(d.movedFields)) expect(Object.keys(d.options.parse({})), `${d.name}: moved field target ${to}`).toContain(to);
      // Refusals: the plain memory scenario runs everywhere.
      expect(d.refusals(scenario()), d.name).toEqual([]);
      // Report labels for every storage the broker block can say.
      for (const broker of [memory, { ...memory, storage: "durable" as const }, { ...memory, storage: "durable" as const, fsync: true }]) {
        expect(d.report.storage(broker).length, d.name).toBeGreaterThan(0);
      }
      expect(typeof d.report.peer).toBe("boolean");
      if (d.embeddedServer) {
        expect(d.embeddedServer.name.length).toBeGreaterThan(0);
        expect(typeof d.embeddedServer.start).toBe("function");
      }
      const driver = d.create(context, {});
      expect(driver.name).toBe(d.name);
      await driver.close();
    }
  });

  it("refuses an unknown driver name with an error listing the known ones", () => {
    expect(() => findDriver("bogus")).toThrow(UnknownDriverError);
    expect(() => findDriver("bogus")).toThrow(`unknown driver "bogus"; the known drivers are ${DRIVER_NAMES.join(", ")}`);
    expect(() => createDriver("bogus", context)).toThrow(UnknownDriverError);
    expect(new UnknownDriverError("x", DRIVER_NAMES)).toBeInstanceOf(UsageError); // exit 2
  });

  it("validates a driver's own options when it creates one", () => {
    expect(() => createDriver("ratatoskr", context, { publish: "carrier-pigeon" })).toThrow();
    expect(() => createDriver("nats", context, { publish: "unary" })).toThrow();
  });
});

describe("what reads the registry's list", () => {
  const choices = DRIVER_NAMES.map((n) => JSON.stringify(n)).join(" | ");

  it("scenario `driver:` takes exactly the registered names", () => {
    for (const name of DRIVER_NAMES) expect(scenario(`driver: ${name}\n`).driver).toBe(name);
    expect(scenario().driver).toBe(DEFAULT_DRIVER);
    expect(issuesOf(`${base}driver: bogus\n`)).toEqual([{ path: "driver", expected: `one of ${choices}`, got: '"bogus"' }]);
  });

  it("scenario `driverOptions:` has one block per registered driver and no other", () => {
    for (const name of DRIVER_NAMES) expect(Object.keys(scenario(`driverOptions: {${name}: {}}\n`).driverOptions)).toEqual([name]);
    expect(issuesOf(`${base}driverOptions: {bogus: {}}\n`)).toEqual([{ path: "driverOptions.bogus", expected: `a driver name (${DRIVER_NAMES.join(", ")})`, got: "a mapping" }]);
  });

  it("set files take exactly the registered names", () => {
    const dir = mkdtempSync(join(tmpdir(), "rt-registry-"));
    writeFileSync(join(dir, "s.yaml"), base);
    for (const name of DRIVER_NAMES) {
      writeFileSync(join(dir, "set.yaml"), `name: x\nruns:\n  - scenario: s.yaml\n    drivers: [${name}]\n`);
      expect(loadSet(join(dir, "set.yaml")).runs.map((r) => r.driver)).toEqual([name]);
    }
    writeFileSync(join(dir, "bad.yaml"), "name: x\nruns:\n  - scenario: s.yaml\n    drivers: [bogus]\n");
    let message = "";
    try {
      loadSet(join(dir, "bad.yaml"));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/runs\.0\.drivers\.0/);
    for (const name of DRIVER_NAMES) expect(message).toContain(JSON.stringify(name));
  });

  it("result.schema.json documents exactly the registered names for run.driver", () => {
    const schema = JSON.parse(readFileSync(join(import.meta.dirname, "..", "report", "result.schema.json"), "utf8")) as {
      properties: { run: { properties: { driver: { enum: string[] } } } };
    };
    expect(schema.properties.run.properties.driver.enum).toEqual([...DRIVER_NAMES]);
  });
});

describe("driver refusals", () => {
  it("NATS core refuses storage, fsync, broker options and competing consumers", () => {
    const s = scenario("consumersPerSubscription: 2\nbroker: {storage: durable, fsync: true, memoryBudgetBytes: 1000, args: [--x]}\n");
    const r = findDriver("nats").refusals(s).join("\n");
    for (const field of ["consumersPerSubscription=2", "broker.storage=durable", "broker.fsync=true", "broker.memoryBudgetBytes", "broker.args"]) expect(r).toContain(field);
  });

  it("JetStream takes durable storage (file) but refuses fsync, which it cannot do before acking", () => {
    const js = findDriver("jetstream");
    expect(js.refusals(scenario("broker: {storage: durable}\nconsumersPerSubscription: 3\n"))).toEqual([]);
    expect(js.refusals(scenario("broker: {storage: durable, fsync: true}\n")).join()).toMatch(/broker\.fsync=true: .*acks before it syncs/);
  });

  it("rabbitmq takes durable storage with fsync and competing consumers, and refuses durable without fsync", () => {
    const rmq = findDriver("rabbitmq");
    expect(rmq.refusals(scenario("broker: {storage: durable, fsync: true}\nconsumersPerSubscription: 3\n"))).toEqual([]);
    expect(rmq.refusals(scenario("broker: {storage: durable, fsync: false}\n")).join()).toMatch(/broker\.fsync=false: RabbitMQ confirms/);
  });

  it("redis-streams takes every storage and fsync setting (AOF) and competing consumers, but refuses ratatoskr broker options and TLS", () => {
    const rs = findDriver("redis-streams");
    expect(rs.refusals(scenario("consumersPerSubscription: 3\nbroker: {storage: durable, fsync: true}\n"))).toEqual([]);
    const r = rs.refusals(scenario("tls: true\nbroker: {memoryBudgetBytes: 1000, args: [--x]}\n")).join("\n");
    for (const field of ["broker.memoryBudgetBytes", "broker.args", "tls=true"]) expect(r).toContain(field);
  });

  it("mqtt takes durable storage (persistence) and competing consumers but refuses fsync, which mosquitto never does before a PUBACK", () => {
    const mq = findDriver("mqtt");
    expect(mq.refusals(scenario("consumersPerSubscription: 3\nbroker: {storage: durable}\n"))).toEqual([]);
    expect(mq.refusals(scenario("broker: {storage: durable, fsync: true}\n")).join()).toMatch(/broker\.fsync=true: mosquitto never flushes before a PUBACK/);
    const r = mq.refusals(scenario("tls: true\nbroker: {memoryBudgetBytes: 1000, args: [--x]}\n")).join("\n");
    for (const field of ["broker.memoryBudgetBytes", "broker.args", "tls=true"]) expect(r).toContain(field);
  });

  it("the mqtt and redis-streams options have defaults and validate their values", () => {
    expect(findDriver("mqtt").options.parse({})).toEqual({ qos: 1, sessionExpirySeconds: 300, keepaliveSeconds: 30, reconnectMaxMs: 5000 });
    expect(() => createDriver("mqtt", context, { qos: 2 })).toThrow();
    expect(findDriver("redis-streams").options.parse({})).toEqual({ blockMs: 2000, claimIdleMs: 30_000, claimIntervalMs: 5000, reconnectForSeconds: 60 });
    expect(() => createDriver("redis-streams", context, { blockMs: 0 })).toThrow();
  });

  it("ratatoskr-v1 refuses competing consumers; ratatoskr (v2) takes them", () => {
    expect(findDriver("ratatoskr-v1").refusals(scenario("consumersPerSubscription: 2\n"))).toHaveLength(1);
    expect(findDriver("ratatoskr").refusals(scenario("consumersPerSubscription: 2\nbroker: {storage: durable, fsync: true}\n"))).toEqual([]);
  });

  it("the in-process fake refuses every broker setting it cannot honour", () => {
    const r = findDriver("fake").refusals(scenario("broker: {storage: durable, fsync: true, memoryBudgetBytes: 1000, args: [--x]}\n")).join("\n");
    for (const field of ["broker.storage=durable", "broker.fsync=true", "broker.memoryBudgetBytes", "broker.args"]) expect(r).toContain(field);
  });

  it("assertDriverAccepts names the driver, the file and every reason", () => {
    expect(() => assertDriverAccepts(findDriver("nats"), scenario("broker: {storage: durable}\n"), "x.yaml")).toThrow(/driver nats refuses scenario x\.yaml:\n {2}- broker\.storage=durable/);
    expect(() => assertDriverAccepts(findDriver("ratatoskr"), scenario("broker: {storage: durable}\n"), "x.yaml")).not.toThrow();
  });

  it("each driver's own options block is read by it alone", () => {
    const s = scenario("driverOptions: {ratatoskr: {publish: unary}}\n");
    expect(scenarioForDriver(s, findDriver("ratatoskr")).driverOptions.ratatoskr).toEqual({ publish: "unary" });
    expect(scenarioForDriver(scenario(), findDriver("ratatoskr")).driverOptions.ratatoskr).toEqual({ publish: "stream" });
    const asNats = scenarioForDriver(s, findDriver("nats"));
    expect(asNats.driver).toBe("nats");
    expect(asNats.driverOptions.nats).toEqual({});
    expect(findDriver("nats").refusals(asNats)).toEqual([]);
  });
});

describe("embedded servers and report labels", () => {
  it("the driver decides which server to embed", () => {
    expect(findDriver("ratatoskr").embeddedServer).toBe(referenceBroker);
    expect(findDriver("ratatoskr-v1").embeddedServer).toBe(referenceBroker);
    expect(findDriver("nats").embeddedServer).toBe(natsServer);
    expect(findDriver("jetstream").embeddedServer).toBe(natsServer);
    expect(findDriver("rabbitmq").embeddedServer).toBe(rabbitMqServer);
    expect(findDriver("redis-streams").embeddedServer).toBe(redisServer);
    expect(findDriver("mqtt").embeddedServer).toBe(mosquittoServer);
    expect(findDriver("fake").embeddedServer).toBeUndefined();
  });

  it("labels storage by what the driver's server did with the broker block", () => {
    const durable: BrokerSettings = { ...memory, storage: "durable" };
    expect(findDriver("ratatoskr").report.storage({ ...durable, fsync: true })).toBe("durable, fsync");
    expect(findDriver("ratatoskr").report.storage(durable)).toBe("durable, no fsync");
    expect(findDriver("ratatoskr-v1").report.storage(memory)).toBe("memory (at-most-once)");
    expect(findDriver("nats").report.storage(memory)).toBe("none (core)");
    expect(findDriver("jetstream").report.storage(durable)).toBe("file (background sync)");
    expect(findDriver("rabbitmq").report.storage(memory)).toBe("memory (classic, transient)");
    expect(findDriver("rabbitmq").report.storage({ ...durable, fsync: true })).toBe("durable queues (quorum default), fsync before confirm");
        expect(findDriver("redis-streams").report.storage(memory)).toBe("memory (no AOF)");
    expect(findDriver("redis-streams").report.storage(durable)).toBe("AOF, appendfsync everysec");
    expect(findDriver("redis-streams").report.storage({ ...durable, fsync: true })).toBe("AOF, appendfsync always");
    expect(findDriver("mqtt").report.storage(memory)).toBe("memory (persistence off)");
    expect(findDriver("mqtt").report.storage(durable)).toMatch(/^persistence file \(autosave 1800 s/);
    expect(DRIVERS.filter((d) => d.report.peer).map((d) => d.name)).toEqual(["nats", "jetstream", "rabbitmq", "redis-streams", "mqtt"]);
  });

  it("names where each moved top-level field went", () => {
    expect([...movedScenarioFields()]).toEqual([["v2Publish", "driverOptions.ratatoskr.publish"]]);
  });
});
