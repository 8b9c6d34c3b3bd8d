import { describe, expect, it } from "vitest";
import { buildPlan, expectedPerTopic, parseShard } from "./plan.js";
import { parseScenario } from "./scenario.js";

const scn = (overrides: string[]) =>
  parseScenario("name: p\ntopics: 10\nsubscriptions: {total: 4}\nproducers: 3\nmessages: 1000\n", "p.yaml", overrides);

describe("plan", () => {
  it("covers every topic when there are fewer subscribers than topics", () => {
    const plan = buildPlan(scn([]), "x");
    expect(plan.subscriptions.map((s) => s.topic)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(new Set(plan.subscriptions.map((s) => s.name.replace(/^.*-(sub\d+)$/, "$1")))).toEqual(new Set(["sub0", "sub1", "sub2", "sub3"]));
  });

  it("spreads a larger total round-robin over the topics", () => {
    const plan = buildPlan(scn(["subscriptions.total=25"]), "x");
    expect(plan.subscriptions).toHaveLength(25);
    expect(plan.subscriptions.filter((s) => s.topic === 0)).toHaveLength(3);
    expect(plan.subscriptions.filter((s) => s.topic === 9)).toHaveLength(2);
  });

  it("splits messages over producers and their topics without losing any", () => {
    const plan = buildPlan(scn([]), "x");
    const perTopic = expectedPerTopic(plan, 10);
    expect(perTopic.reduce((a, b) => a + b, 0)).toBe(1000);
    const many = buildPlan(scn(["producers=25"]), "x");
    expect(expectedPerTopic(many, 10).reduce((a, b) => a + b, 0)).toBe(1000);
    expect(many.producersPerTopic(0)).toBe(3);
    expect(many.producerSlot(20, 0)).toBe(2);
  });

  it("partitions topics, producers and subscriptions across shards", () => {
    const s = scn(["subscriptions.total=20"]);
    const shards = [0, 1, 2].map((i) => buildPlan(s, "x", { index: i, count: 3 }));
    expect(shards.flatMap((p) => p.subscriptions.map((x) => x.id)).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const total = shards.reduce((a, p) => a + expectedPerTopic(p, 10).reduce((x, y) => x + y, 0), 0);
    expect(total).toBe(1000);
    expect(parseShard("2/3")).toEqual({ index: 2, count: 3 });
    expect(() => parseShard("3/3")).toThrow(/0 <= i < N/);
  });

  it("gives a producer whose topics fall in several shards only each shard's share of its rate", () => {
    // 3 producers over 10 topics: producer 0 has topics 0, 3, 6, 9, split over 2 shards as 0, 6 | 3, 9.
    const s = scn([]);
    const shards = [0, 1].map((i) => buildPlan(s, "x", { index: i, count: 2 }));
    for (let p = 0; p < 3; p++) {
      const share = shards.reduce((sum, plan) => sum + (plan.producers.find((x) => x.id === p)?.rateShare ?? 0), 0);
      expect(share, `producer ${p}`).toBeCloseTo(1, 12);
    }
    expect(shards[0]!.producers.find((x) => x.id === 0)!.rateShare).toBe(0.5);
    expect(buildPlan(s, "x").producers.every((p) => p.rateShare === 1)).toBe(true);
  });
});
