/**
 * The delivery accounting under faults, end to end against the embedded reference broker
 * (a real child process on loopback) through the fault proxy (loadgen/faults/proxy.ts):
 *
 *  - kill -9 five times at a fixed rate against the durable store (v2, at-least-once, publishes
 *    retried with their message ids): 0 lost;
 *  - the same against the memory store: lost > 0 (the broker forgets what it acknowledged, so
 *    the accounting can fail);
 *  - a cut with the v1 driver (at-most-once): the loss is reported and fails a `lostMax: 0` gate.
 *
 * Kills are made on conditions, not sleeps: each one once the broker restarted by the previous
 * one has delivered again. The test ends the measure phase (the run's interrupt signal) once the
 * last restarted broker delivered, so the run is as long as the restarts take on a busy machine.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Waiters } from "../support/index.js";
import { systemClock } from "../../loadgen/clock.js";
import { createDriver, startEmbeddedBroker, type Consumer, type DeliverySink, type Driver, type EmbeddedBroker, type SubscriptionSpec } from "../../loadgen/drivers/index.js";
import { hostPort, startFaultProxy, type FaultProxy } from "../../loadgen/faults/index.js";
import { buildResult, captureEnvironment } from "../../loadgen/report/index.js";
import { buildPlan, parseScenario, reconnectPolicyOf, runScenario, type Scenario } from "../../loadgen/run/index.js";

const KILLS = 5;

/** The driver, telling `onDelivered` of every delivery. */
function observed(inner: Driver, onDelivered: (count: number) => void): Driver {
  const wrap = (sink: DeliverySink): DeliverySink => ({
    onDelivery(slot, buf, start, end, attempt) {
      sink.onDelivery(slot, buf, start, end, attempt);
      onDelivered(1);
    },
    onStreamError: (slot, err) => sink.onStreamError(slot, err),
    onReconnect: (slot, cause) => sink.onReconnect?.(slot, cause),
  });
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === "openConsumer") return (spec: SubscriptionSpec, i: number, sink: DeliverySink): Promise<Consumer> => target.openConsumer(spec, i, wrap(sink));
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function scenario(name: string, driver: string, storage: "memory" | "durable"): Scenario {
  return parseScenario(
    `name: ${name}\ndriver: ${driver}\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\ndurationSeconds: 300\nrate: 300\nbatchSize: 10\nconnections: 1\n` +
      `drainTimeoutSeconds: 20\nbroker: {storage: ${storage}}\nreconnect: {enabled: true, giveUpSeconds: 60}\nslo: {lostMax: 0}\n`,
    `${name}.yaml`,
  );
}

let broker: EmbeddedBroker | undefined;
let proxy: FaultProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  await broker?.stop();
  proxy = undefined;
  broker = undefined;
});

/**
 * Run `s` through a proxy in front of a fresh embedded broker; `fault` is called with the
 * broker, the proxy and a wait for N more deliveries, and its end ends the measure phase.
 */
async function runWith(s: Scenario, drainMs: number, fault: (ctx: { b: EmbeddedBroker; p: FaultProxy; deliveries: (n: number, what: string) => Promise<void> }) => Promise<void>) {
  // Restarts of the broker under tsx took 14–20 s each on a busy 2-core machine: a wide start bound.
  broker = await startEmbeddedBroker(s.broker, 90_000);
  proxy = await startFaultProxy({ target: hostPort(broker.address) });
  const inner = createDriver(s.driver, { target: `${proxy.host}:${proxy.port}`, connections: 1, maxOutstandingMessages: 1000, connectTimeoutMs: 20_000, broker: s.broker, clock: systemClock, reconnect: reconnectPolicyOf(s) }, s.driverOptions[s.driver]);
  const waiters = new Waiters();
  let seen = 0;
  let started = false;
  const startedWaiter = new Waiters();
  const driver = observed(inner, (n) => {
    seen += n;
    started = true;
    waiters.notify();
    startedWaiter.notify();
  });
  const deliveries = (n: number, what: string) => {
    const target = seen + n;
    return waiters.until(() => seen >= target, () => `${what} (${seen} of ${target} deliveries)`, 120_000);
  };
  const end = new AbortController();
  const plan = buildPlan(s, s.name);
  const running = runScenario(s, plan, driver, { clock: systemClock, intervalMs: 500, signal: end.signal, interruptDrainMs: drainMs });
  let faultError: Error | undefined;
  await startedWaiter.until(() => started, "first deliveries", 60_000);
  await fault({ b: broker, p: proxy, deliveries }).catch((err: unknown) => (faultError = err instanceof Error ? err : new Error(String(err))));
  end.abort("the faults are done");
  // A fault that could not be made is the first thing to report (the run then fails after it).
  const outcome = await running.catch((err: unknown) => {
    throw faultError ?? (err instanceof Error ? err : new Error(String(err)));
  });
  if (faultError) throw faultError;
  const result = buildResult(s, plan, outcome, { runId: s.name, driver: s.driver, environment: captureEnvironment(), broker: { embedded: true, target: broker.address, args: broker.args, storage: s.broker.storage, fsync: false } });
  outcome.recorder.destroy();
  return { outcome, result };
}

/** Kill -9 the broker KILLS times, each once the previous restart delivered again. */
async function killRepeatedly({ b, p, deliveries }: { b: EmbeddedBroker; p: FaultProxy; deliveries: (n: number, what: string) => Promise<void> }): Promise<number> {
  const control = b.control!;
  let kills = 0;
  for (let i = 0; i < KILLS; i++) {
    await deliveries(100, `deliveries before kill ${i + 1}`);
    await control.kill();
    kills++;
    p.retarget(hostPort(await control.start()));
  }
  await deliveries(200, "deliveries after the last restart");
  return kills;
}

describe("accounting under kill -9 and cuts", () => {
  it("a durable broker killed 5 times at a fixed rate loses nothing the v2 driver saw acknowledged", async () => {
    let kills = 0;
    const { outcome, result } = await runWith(scenario(`kill-durable-${Date.now()}`, "ratatoskr", "durable"), 20_000, async (ctx) => {
      kills = await killRepeatedly(ctx);
    });
    expect(kills).toBe(KILLS);
    expect(outcome.accounting.expected).toBeGreaterThan(0);
    expect(outcome.accounting.lost, JSON.stringify(outcome.accounting)).toBe(0);
    expect(outcome.drainTimedOut).toBe(false);
    expect(outcome.publishRetries + outcome.reconnects).toBeGreaterThan(0);
    expect(result.counts.lost).toBe(0);
    expect(result.gates.find((g) => g.name.startsWith("lost"))?.passed).toBe(true);
  }, 600_000);

  it("the same kills against the memory store report lost > 0", async () => {
    let kills = 0;
    const { outcome, result } = await runWith(scenario(`kill-memory-${Date.now()}`, "ratatoskr", "memory"), 5_000, async (ctx) => {
      kills = await killRepeatedly(ctx);
    });
    expect(kills).toBe(KILLS);
    expect(outcome.accounting.lost, JSON.stringify(outcome.accounting)).toBeGreaterThan(0);
    expect(result.gates.find((g) => g.name.startsWith("lost"))?.passed).toBe(false);
    expect(result.passed).toBe(false);
  }, 600_000);

  it("a cut with the v1 driver (at-most-once) reports the loss and fails lostMax: 0", async () => {
    const { outcome, result } = await runWith(scenario(`cut-v1-${Date.now()}`, "ratatoskr-v1", "memory"), 2_000, async ({ p, deliveries }) => {
      await deliveries(200, "deliveries before the cut");
      p.cut();
      await deliveries(200, "deliveries after the cut");
    });
    expect(outcome.streamBreaks).toBeGreaterThan(0);
    expect(outcome.accounting.lost, JSON.stringify(outcome.accounting)).toBeGreaterThan(0);
    const gate = result.gates.find((g) => g.name.startsWith("lost"));
    expect(gate?.passed).toBe(false);
    expect(result.passed).toBe(false);
  }, 300_000);
});
