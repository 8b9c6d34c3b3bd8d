import { describe, expect, it } from "vitest";
import { collectBrokerStats, type ProcessProbe } from "./broker-stats.js";
import { EngineHarness } from "../../test/support/index.js";

const probe: ProcessProbe = {
  memoryUsage: () => ({ rss: 123_000_000, heapUsed: 45_000_000 }),
  cpuUsage: () => ({ user: 2_500_000, system: 500_000 }),
};

describe("broker statistics", () => {
  it("sums counts, backlog, in-flight and retained bytes over topics and subscriptions", async () => {
    const h = new EngineHarness({ memoryBudgetBytes: 10_000 });
    const started = h.clock.nowMs();
    await h.topic("a");
    await h.topic("b");
    await h.subscribe("a1", "a");
    await h.subscribe("a2", "a");
    await h.subscribe("b1", "b");
    const c = h.consume("a1", { messages: 2 });
    await h.publish("a", ["xx", "yy", "zz"]);
    await h.publish("b", ["q"]);
    h.ack(c.consumer, c.sink.takeNew().slice(0, 1));
    h.clock.advance(1500);
    const s = collectBrokerStats(h.broker, h.registry, started, probe);
    expect(s).toMatchObject({
      uptimeMs: 1500,
      storage: "memory",
      topics: 2,
      subscriptions: 3,
      consumers: 1,
      published: 4,
      delivered: 3, // 2 at first (limit 2), 1 more after the ack
      acked: 1,
      redelivered: 0,
      deadLettered: 0,
      // a1: 2 of 3 unacked; a2: 3; b1: 1
      backlog: 6,
      inFlight: 2,
      retainedMessages: 4,
      retainedBytes: 7,
      memoryBudgetBytes: 10_000,
      rssBytes: 123_000_000,
      heapUsedBytes: 45_000_000,
      cpuUserSeconds: 2.5,
      cpuSystemSeconds: 0.5,
      diskBytes: 0,
    });
  });
});
