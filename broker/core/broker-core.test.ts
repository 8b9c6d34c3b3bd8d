import { describe, expect, it } from "vitest";
import { MemoryStore } from "../store/index.js";
import { createBrokerCore, DEFAULT_CORE_CONFIG } from "./broker-core.js";
import { FakeClock, ManualTimers } from "./clock.js";
import { UnavailableError } from "./errors.js";
import { defaultTopicConfig } from "./types.js";

const msg = (text: string) => ({ payload: Buffer.from(text) });

function newCore(store = new MemoryStore()) {
  const clock = new FakeClock();
  const timers = new ManualTimers();
  const errors: Array<[string, unknown]> = [];
  const core = createBrokerCore({ store, clock, timers, defer: (fn) => fn(), onTimerError: (job, err) => errors.push([job, err]) });
  return { core, clock, timers, errors, store };
}

describe("the broker core object", () => {
  it("owns two periodic jobs: the lease/ack tick and the retention sweep", () => {
    const { timers } = newCore();
    expect(timers.size).toBe(2);
  });

  it("its retention sweep drops messages past their age", async () => {
    const { core, clock, timers, store } = newCore();
    await core.topics.createTopic("aged", { ...defaultTopicConfig(), retention: "limits", maxAgeMs: 1_000 });
    await core.topics.publish("aged", [msg("a"), msg("b")]);
    clock.advance(1_500);
    timers.runAll(DEFAULT_CORE_CONFIG.tickMs); // the tick alone does not age messages out
    expect(store.bounds("aged").first).toBe(1);
    timers.runAll(DEFAULT_CORE_CONFIG.retentionSweepMs);
    expect(store.bounds("aged").first).toBe(3);
  });

  it("its tick expires leases, so an unacked delivery comes again", async () => {
    const { core, clock, timers } = newCore();
    await core.topics.createTopic("t");
    await core.subscriptions.create("s", "t", { start: { kind: "earliest" }, ackDeadlineMs: 1_000 });
    const attempts: number[] = [];
    core.subscriptions.attach("s", { maxOutstandingMessages: 10, maxOutstandingBytes: 1 << 20 }, {
      send: (batch) => {
        for (const lease of batch) attempts.push(lease.attempt);
        return true;
      },
      end: () => undefined,
    });
    await core.topics.publish("t", [msg("x")]);
    expect(attempts).toEqual([1]);
    clock.advance(1_100);
    timers.runAll(DEFAULT_CORE_CONFIG.tickMs);
    expect(attempts).toEqual([1, 2]);
  });

  it("reports a job that throws and keeps the job registered", async () => {
    const store = new MemoryStore();
    const { core, clock, timers, errors } = newCore(store);
    await core.topics.createTopic("aged", { ...defaultTopicConfig(), retention: "limits", maxAgeMs: 10 });
    await core.topics.publish("aged", [msg("a")]);
    clock.advance(100);
    const boom = new Error("disk on fire");
    store.sequenceAtTime = () => {
      throw boom;
    };
    timers.runAll(DEFAULT_CORE_CONFIG.retentionSweepMs);
    expect(errors).toEqual([["retention sweep", boom]]);
    expect(timers.size).toBe(2);
  });

  it("close() stops its jobs, refuses new work and is idempotent", async () => {
    const { core, timers } = newCore();
    await core.topics.createTopic("t");
    await Promise.all([core.close(), core.close()]);
    expect(timers.size).toBe(0);
    await expect(core.topics.publish("t", [msg("late")])).rejects.toBeInstanceOf(UnavailableError);
    await expect(core.subscriptions.create("s", "t", { start: { kind: "latest" } })).rejects.toBeInstanceOf(UnavailableError);
  });

  it("recovers topics and subscriptions with their ack state from the store it is given", async () => {
    const store = new MemoryStore();
    const first = newCore(store).core;
    await first.topics.createTopic("t");
    await first.subscriptions.create("s", "t", { start: { kind: "earliest" } });
    await first.topics.publish("t", [msg("1"), msg("2")]);
    // The memory store outlives the core object here, as the LMDB store outlives a process.
    const second = createBrokerCore({ store, timers: new ManualTimers() });
    expect(second.topics.listTopics()).toEqual(["t"]);
    expect(second.subscriptions.get("s").stats.backlog).toBe(2);
  });
});
