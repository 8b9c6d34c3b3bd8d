import { describe, expect, it, vi } from "vitest";
import { MemoryStore } from "../store/store-memory.js";
import { ResourceExhaustedError } from "./errors.js";
import { EngineHarness } from "../../test/support/index.js";

const texts = (n: number): string[] => Array.from({ length: n }, (_, i) => `m${i + 1}`);

describe("interest retention", () => {
  it("keeps messages until every subscription acked them, then frees them on the next tick", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("a", "t");
    await h.subscribe("b", "t");
    const a = h.consume("a");
    const b = h.consume("b");
    await h.publish("t", texts(10));
    const full = h.usage();
    expect(full).toBeGreaterThan(0);
    h.ack(a.consumer, a.sink.takeNew());
    h.tick();
    expect(h.usage()).toBe(full); // b has not acked yet
    const bl = b.sink.takeNew();
    h.ack(b.consumer, bl.slice(0, 5));
    h.tick();
    expect(h.broker.store.bounds("t").first).toBe(6);
    h.ack(b.consumer, bl.slice(5));
    h.tick();
    expect(h.usage()).toBe(0);
  });

  it("holds everything above a gap until the gap is acked", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    const { consumer, sink } = h.consume("s");
    await h.publish("t", texts(5));
    const leases = sink.takeNew();
    h.ack(consumer, leases.slice(1));
    h.tick();
    expect(h.broker.store.bounds("t").first).toBe(1);
    expect(h.registry.get("s").stats.backlog).toBe(1);
    h.ack(consumer, leases.slice(0, 1));
    h.tick();
    expect(h.usage()).toBe(0);
    expect(h.registry.get("s").stats.ackFloor).toBe(5);
  });

  it("refuses publishes when the memory budget is full and accepts them again once consumers ack", async () => {
    const h = new EngineHarness({ memoryBudgetBytes: 100 });
    await h.topic("t");
    await h.subscribe("s", "t");
    const { consumer, sink } = h.consume("s");
    await h.publish("t", Array.from({ length: 10 }, () => "x".repeat(10)));
    await expect(h.publish("t", ["y"])).rejects.toBeInstanceOf(ResourceExhaustedError);
    h.ack(consumer, sink.takeNew());
    h.tick();
    await expect(h.publish("t", ["y"])).resolves.toEqual([11]);
  });

  it("frees a deleted subscription's hold on the topic", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    await h.publish("t", texts(3));
    expect(h.usage()).toBeGreaterThan(0);
    await h.registry.delete("s");
    expect(h.usage()).toBe(0);
  });
});

describe("limits retention", () => {
  it("lets a subscription skip messages discarded before it got to them", async () => {
    const h = new EngineHarness();
    await h.topic("t", { retention: "limits", maxMessages: 3 });
    await h.subscribe("s", "t");
    await h.publish("t", texts(10));
    const { sink } = h.consume("s");
    expect(sink.sequences).toEqual([8, 9, 10]);
    expect(h.broker.topicInfo("t").stats.discarded).toBe(7);
  });

  it("drops messages past their age on the retention sweep", async () => {
    const h = new EngineHarness();
    await h.topic("t", { retention: "limits", maxAgeMs: 1000 });
    await h.publish("t", texts(2));
    h.clock.advance(600);
    await h.publish("t", ["m3"]);
    h.clock.advance(500);
    h.core.sweepRetention();
    expect(h.broker.store.bounds("t").first).toBe(3);
  });
});

describe("start positions", () => {
  async function withHistory(): Promise<{ h: EngineHarness; middleMs: number }> {
    const h = new EngineHarness();
    await h.topic("t", { retention: "limits" });
    await h.publish("t", texts(3));
    h.clock.advance(1000);
    const middleMs = h.clock.nowMs();
    await h.publish("t", ["m4", "m5"]);
    return { h, middleMs };
  }

  it("starts after the newest message with latest", async () => {
    const { h } = await withHistory();
    await h.subscribe("s", "t", { start: { kind: "latest" } });
    const { sink } = h.consume("s");
    await h.publish("t", ["m6"]);
    expect(sink.sequences).toEqual([6]);
  });

  it("replays everything retained with earliest", async () => {
    const { h } = await withHistory();
    await h.subscribe("s", "t", { start: { kind: "earliest" } });
    expect(h.consume("s").sink.sequences).toEqual([1, 2, 3, 4, 5]);
  });

  it("replays from a sequence number", async () => {
    const { h } = await withHistory();
    await h.subscribe("s", "t", { start: { kind: "sequence", sequence: 4 } });
    expect(h.consume("s").sink.sequences).toEqual([4, 5]);
  });

  it("replays from a timestamp", async () => {
    const { h, middleMs } = await withHistory();
    await h.subscribe("s", "t", { start: { kind: "timestamp", timestampMs: middleMs } });
    expect(h.consume("s").sink.sequences).toEqual([4, 5]);
  });
});

describe("ack state persistence and recovery", () => {
  it("writes ack state once per tick however many acks arrived", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    const { consumer, sink } = h.consume("s");
    await h.publish("t", texts(50));
    const spy = vi.spyOn(h.store, "putAckState");
    for (const lease of sink.takeNew()) h.ack(consumer, [lease]);
    expect(spy).not.toHaveBeenCalled();
    h.tick();
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy).toHaveBeenLastCalledWith("s", { floor: 50, above: [] });
  });

  it("recovers subscriptions with their ack state and redelivers what was not acked", async () => {
    const store = new MemoryStore();
    const first = new EngineHarness({ store });
    await first.topic("t");
    await first.subscribe("s", "t");
    const { consumer, sink } = first.consume("s");
    await first.publish("t", texts(5));
    const leases = sink.takeNew();
    first.ack(consumer, [leases[0]!, leases[1]!, leases[3]!]);
    first.registry.close();

    const second = new EngineHarness({ store });
    const again = second.consume("s");
    expect(again.sink.sequences).toEqual([3, 5]);
    expect(second.registry.get("s").stats.ackFloor).toBe(2);
  });
});

describe("subscription lifecycle", () => {
  it("ends consumers when their subscription or topic is deleted", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("a", "t");
    await h.subscribe("b", "t");
    const a = h.consume("a");
    const b = h.consume("b");
    await h.registry.delete("a");
    expect(a.sink.ended).toBe("subscription_deleted");
    await h.broker.deleteTopic("t");
    expect(b.sink.ended).toBe("topic_deleted");
    expect(h.registry.list()).toEqual([]);
  });

  it("ends every consumer on close", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    const c = h.consume("s");
    h.registry.close();
    expect(c.sink.ended).toBe("shutdown");
    expect(() => h.consume("s")).toThrow(/shutting down/);
  });
});
