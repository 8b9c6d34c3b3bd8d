import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { ScenarioError } from "../errors.js";
import { buildResult, captureEnvironment, renderMarkdown } from "../report/index.js";
import { buildPlan } from "./plan.js";
import { runScenario } from "./runner.js";
import { parseScenario } from "./scenario.js";

const meta = { runId: "o1", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "in-process", args: [], storage: "memory" as const, fsync: false } };
const base = "name: only-test\ntopics: 3\nsubscriptions: {perTopic: 2}\nproducers: 2\nmessages: 3000\nbatchSize: 50\ndrainTimeoutSeconds: 5\n";

describe("producer-only and consumer-only runs", () => {
  it("a producer-only run publishes and accounts nothing as delivered; a consumer-only run of the same plan reads exactly that backlog", async () => {
    // One fake broker for both runs, as one durable broker outlives two bench runs.
    const broker = new FakeDriver();
    const producer = parseScenario(base + "only: producers\nslo: {publishErrorsMax: 0}\n", "only.yaml");
    const plan = buildPlan(producer, "o1");
    const p = await runScenario(producer, plan, broker, { clock: systemClock, intervalMs: 200, cleanup: true });
    const pr = buildResult(producer, plan, p, meta);
    expect(pr.only).toBe("producers");
    expect(pr.counts).toMatchObject({ published: 3000, measuredPublished: 3000, expected: 0, delivered: 0, lost: 0, consumers: 0 });
    expect(pr.latency.e2e.count).toBe(0);
    expect(pr.passed).toBe(true);
    // The backlog is still there, for both subscriptions of every topic (cleanup was asked for and not done).
    expect(broker.queued).toBe(6000);
    expect(renderMarkdown(pr)).toMatch(/Producer-only run: nothing was consumed/);

    const consumer = parseScenario(base + "only: consumers\nslo: {lostMax: 0, duplicatesMax: 0}\n", "only.yaml");
    const c = await runScenario(consumer, buildPlan(consumer, "o1"), broker, { clock: systemClock, intervalMs: 200, cleanup: true });
    const cr = buildResult(consumer, buildPlan(consumer, "o1"), c, meta);
    expect(cr.only).toBe("consumers");
    expect(broker.published).toBe(3000); // the consumer-only run published nothing
    expect(cr.counts).toMatchObject({ published: 0, expected: 6000, delivered: 6000, lost: 0, duplicates: 0, producers: 0, consumers: 6 });
    expect(cr.throughput.offeredRate).toBeNull();
    expect(cr.latency.e2e.count).toBe(6000); // each message's age at delivery
    expect(cr.throughput.deliveryRate).toBeGreaterThan(0);
    expect(cr.passed).toBe(true);
    expect(renderMarkdown(cr)).toMatch(/Consumer-only run: nothing was published/);
  }, 30_000);

  it("a consumer-only run with nothing to read counts it all lost when its drain times out", async () => {
    const consumer = parseScenario(base.replace("drainTimeoutSeconds: 5", "drainTimeoutSeconds: 0.5") + "only: consumers\nslo: {lostMax: 0}\n", "only.yaml");
    const plan = buildPlan(consumer, "o2");
    const c = await runScenario(consumer, plan, new FakeDriver(), { clock: systemClock, intervalMs: 200 });
    const cr = buildResult(consumer, plan, c, meta);
    expect(cr.counts).toMatchObject({ expected: 6000, delivered: 0, lost: 6000 });
    expect(cr.run.drainTimedOut).toBe(true);
    expect(cr.passed).toBe(false);
  });

  it("refuses the combinations that mean nothing, naming the field", () => {
    const refused = (extra: string, path: RegExp) => {
      let err: unknown;
      try {
        parseScenario(base + extra, "bad.yaml");
      } catch (e) {
        err = e;
      }
      expect(err, extra).toBeInstanceOf(ScenarioError);
      expect(String((err as Error).message), extra).toMatch(path);
    };
    refused("only: producers\nslo: {lostMax: 0}\n", /slo\.lostMax.*nothing is consumed/);
    refused("only: consumers\nwarmupSeconds: 1\n", /warmupSeconds.*a warmup's count is not known/);
    refused("only: consumers\nrate: 100\n", /rate.*nothing is published/);
    refused("only: consumers\nbacklog: {messages: 10}\n", /only.*a backlog run publishes/);
    refused("backlog: {messages: 10}\nwarmupSeconds: 1\n", /warmupSeconds.*build phase takes warmup's place/);
    refused("search: {stepSeconds: 2}\n", /search.*only with rate: max/);
    refused("backlog: {count: 10}\n", /backlog/);
    expect(() => parseScenario(base.replace("messages: 3000\n", "") + "rate: max\nbacklog: {messages: 5}\n", "bad.yaml")).toThrow(/no backlog with rate: max/);
    expect(() => parseScenario(base + "rate: max\n", "bad.yaml")).toThrow(/no messages \/ durationSeconds with rate: max/);
  });
});
