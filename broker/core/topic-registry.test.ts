import { describe, expect, it } from "vitest";
import { MemoryStore } from "../store/index.js";
import { createBrokerCore } from "./broker-core.js";
import { FakeClock, ManualTimers } from "./clock.js";
import type { TopicRegistry } from "./topic-registry.js";
import { InvalidTopicNameError, TopicExistsError, TopicNotFoundError, UnavailableError } from "./errors.js";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const newBroker = (clock = new FakeClock()): TopicRegistry => createBrokerCore({ store: new MemoryStore(), clock, timers: new ManualTimers() }).topics;
const msg = (text: string) => ({ payload: Buffer.from(text) });

describe("topic registry", () => {
  it("creates topics and lists them sorted", async () => {
    const broker = newBroker();
    for (const name of ["orders", "Alpha", "beta", "_x", "9"]) await broker.createTopic(name);
    expect(broker.listTopics()).toEqual(["9", "Alpha", "_x", "beta", "orders"]);
    expect(broker.hasTopic("orders")).toBe(true);
    expect(broker.hasTopic("nope")).toBe(false);
  });

  it("refuses a duplicate with TopicExistsError", async () => {
    const broker = newBroker();
    await broker.createTopic("dup");
    await expect(broker.createTopic("dup")).rejects.toBeInstanceOf(TopicExistsError);
  });

  it.each([
    ["", "empty"],
    ["n".repeat(256), "too_long"],
    ["a b", "invalid_format"],
  ] as const)("refuses the name %j as %s and registers nothing", async (name, problem) => {
    const broker = newBroker();
    const err = await broker.createTopic(name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidTopicNameError);
    expect((err as InvalidTopicNameError).problem).toBe(problem);
    expect(broker.listTopics()).toEqual([]);
  });

  it("deletes a topic; deleting it again is TopicNotFoundError", async () => {
    const broker = newBroker();
    await broker.createTopic("gone");
    await broker.deleteTopic("gone");
    expect(broker.hasTopic("gone")).toBe(false);
    await expect(broker.deleteTopic("gone")).rejects.toBeInstanceOf(TopicNotFoundError);
  });

  it("counts messages since the topic was (re)created", async () => {
    const broker = newBroker();
    await broker.publish("count", [msg("a"), msg("b")], { autoCreate: true });
    expect(broker.topicInfo("count").stats.published).toBe(2);
    await broker.deleteTopic("count");
    await broker.createTopic("count");
    expect(broker.topicInfo("count").stats.published).toBe(0);
    await broker.publish("count", [msg("c")]);
    expect(broker.topicInfo("count").stats.published).toBe(1);
  });

  it("publishes to a missing topic only with autoCreate", async () => {
    const broker = newBroker();
    await expect(broker.publish("later", [msg("x")])).rejects.toBeInstanceOf(TopicNotFoundError);
    expect(broker.hasTopic("later")).toBe(false);
    await broker.publish("later", [msg("x")], { autoCreate: true });
    expect(broker.hasTopic("later")).toBe(true);
  });

  it("gives each message a lowercase UUID v4, a sequence and the clock's time", async () => {
    const clock = new FakeClock(1_750_000_000_123);
    const broker = newBroker(clock);
    const outcomes = await broker.publish("ids", [msg("a"), msg("b"), msg("c")], { autoCreate: true });
    expect(outcomes.map((o) => o.sequence)).toEqual([1, 2, 3]);
    for (const o of outcomes) {
      expect(o.id).toMatch(UUID_V4);
      expect(o.publishTimeMs).toBe(1_750_000_000_123);
      expect(o.duplicate).toBe(false);
    }
    expect(new Set(outcomes.map((o) => o.id)).size).toBe(3);
  });

  it("lets concurrent auto-creating publishes share one topic with gap-free sequences", async () => {
    const broker = newBroker();
    const all = await Promise.all(Array.from({ length: 20 }, (_, i) => broker.publish("race", [msg(String(i))], { autoCreate: true })));
    expect(broker.listTopics()).toEqual(["race"]);
    expect(all.map((o) => o[0]!.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(broker.topicInfo("race").stats.published).toBe(20);
  });

  it("refuses work once closed", async () => {
    const broker = newBroker();
    await broker.createTopic("t");
    await broker.close();
    await expect(broker.createTopic("u")).rejects.toBeInstanceOf(UnavailableError);
    await expect(broker.publish("t", [msg("x")])).rejects.toBeInstanceOf(UnavailableError);
  });
});
