import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startV1TestServer, uniqueName, v1Subscribe, type V1TestServer } from "../../../test/support/index.js";

let s: V1TestServer;
beforeAll(async () => {
  s = await startV1TestServer();
});
afterAll(async () => {
  await s.close();
});

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const payload = (text: string) => Buffer.from(text);

describe("v1 CreateTopic", () => {
  it("creates a topic and echoes its name", async () => {
    const name = uniqueName("Create_ok");
    expect(await s.api.createTopic({ name })).toEqual({ topic: name, created: true, error: "" });
    expect(await s.api.topicExists({ name })).toEqual({ exists: true });
  });

  it("answers already_exists for a duplicate, still echoing the name", async () => {
    const name = uniqueName();
    await s.api.createTopic({ name });
    expect(await s.api.createTopic({ name })).toEqual({ topic: name, created: false, error: "already_exists" });
  });

  it.each([
    ["", "empty_topic_name"],
    ["x".repeat(256), "topic_name_too_long"],
    ["has space", "invalid_topic_name_format"],
    ["dots.not.allowed", "invalid_topic_name_format"],
    ["ümlaut", "invalid_topic_name_format"],
  ])("refuses the name %j with %s", async (name, error) => {
    expect(await s.api.createTopic({ name })).toEqual({ topic: name, created: false, error });
    expect(await s.api.topicExists({ name })).toEqual({ exists: false });
  });

  it("accepts a 255-character name of every allowed character class", async () => {
    const name = `Az09_-${uniqueName()}`.padEnd(255, "z");
    expect(await s.api.createTopic({ name })).toMatchObject({ created: true, error: "" });
  });
});

describe("v1 DeleteTopic, ListTopics, TopicExists", () => {
  it("deletes a topic, then answers topic_not_found", async () => {
    const name = uniqueName();
    await s.api.createTopic({ name });
    expect(await s.api.deleteTopic({ name })).toEqual({ success: true, error: "" });
    expect(await s.api.topicExists({ name })).toEqual({ exists: false });
    expect(await s.api.deleteTopic({ name })).toEqual({ success: false, error: "topic_not_found" });
  });

  it("lists topics sorted", async () => {
    const base = uniqueName("list");
    for (const suffix of ["c", "A", "b", "_"]) await s.api.createTopic({ name: `${base}-${suffix}` });
    const { topics } = await s.api.listTopics({});
    const mine = topics.filter((t) => t.startsWith(base));
    expect(mine).toEqual([`${base}-A`, `${base}-_`, `${base}-b`, `${base}-c`]);
    expect(topics).toEqual([...topics].sort());
  });

  it("never errors on TopicExists, whatever the name", async () => {
    for (const name of ["", "x".repeat(1000), "bad name", "\u0000"]) {
      expect(await s.api.topicExists({ name })).toEqual({ exists: false });
    }
  });
});

describe("v1 Publish", () => {
  it("auto-creates the topic and returns a lowercase UUID v4 and a millisecond timestamp", async () => {
    const topic = uniqueName("auto");
    const before = Date.now();
    const res = await s.api.publish({ topic, payload: payload("hello"), metadata: { k: "v" } });
    expect(res.success).toBe(true);
    expect(res.error).toBe("");
    expect(res.messageId).toMatch(UUID_V4);
    expect(res.timestamp).toBeGreaterThanOrEqual(BigInt(before));
    expect(res.timestamp).toBeLessThanOrEqual(BigInt(Date.now()));
    expect(await s.api.topicExists({ name: topic })).toEqual({ exists: true });
  });

  it("accepts an empty payload", async () => {
    const topic = uniqueName();
    await s.api.createTopic({ name: topic });
    const sub = await v1Subscribe(s.client, topic);
    const res = await s.api.publish({ topic, payload: Buffer.alloc(0), metadata: {} });
    expect(res.success).toBe(true);
    await sub.received(1);
    expect(sub.messages[0]!.payload.length).toBe(0);
    sub.stream.cancel();
  });

  it.each([
    ["", "empty_topic"],
    ["y".repeat(256), "topic_too_long"],
    ["a/b", "invalid_topic_format"],
  ])("refuses the topic %j with %s, stamped with the broker's current time as the original did, and creates nothing", async (topic, error) => {
    const before = BigInt(Date.now());
    const res = await s.api.publish({ topic, payload: payload("x"), metadata: {} });
    const after = BigInt(Date.now());
    expect(res).toMatchObject({ messageId: "", success: false, error });
    // The broker runs in this process on the system clock, so its "now" lies between ours.
    expect(res.timestamp).toBeGreaterThanOrEqual(before);
    expect(res.timestamp).toBeLessThanOrEqual(after);
    expect(await s.api.topicExists({ name: topic })).toEqual({ exists: false });
  });
});

describe("v1 PublishBatch", () => {
  it("uses each item's topic, else the request's, keeping results in item order and counts consistent", async () => {
    const main = uniqueName("main");
    const side = uniqueName("side");
    const res = await s.api.publishBatch({
      topic: main,
      messages: [
        { topic: "", payload: payload("0"), metadata: {} },
        { topic: side, payload: payload("1"), metadata: {} },
        { topic: "bad topic", payload: payload("2"), metadata: {} },
        { topic: "", payload: payload("3"), metadata: {} },
        { topic: "z".repeat(300), payload: payload("4"), metadata: {} },
        { topic: main, payload: payload("5"), metadata: {} },
      ],
    });
    expect(res.results.map((r) => [r.success, r.error])).toEqual([
      [true, ""],
      [true, ""],
      [false, "invalid_topic_format"],
      [true, ""],
      [false, "topic_too_long"],
      [true, ""],
    ]);
    expect(res.successCount).toBe(4);
    expect(res.errorCount).toBe(2);
    for (const r of res.results.filter((x) => x.success)) expect(r.messageId).toMatch(UUID_V4);
    expect(new Set(res.results.filter((x) => x.success).map((r) => r.messageId)).size).toBe(4);
    expect((await s.api.getStats({ topic: main })).messageCount).toBe(3n);
    expect((await s.api.getStats({ topic: side })).messageCount).toBe(1n);
  });

  it("reports empty_topic for an item when neither it nor the request names a topic", async () => {
    const res = await s.api.publishBatch({ topic: "", messages: [{ topic: "", payload: payload("x"), metadata: {} }] });
    expect(res).toMatchObject({ results: [{ messageId: "", success: false, error: "empty_topic" }], successCount: 0, errorCount: 1 });
  });

  it("stamps every refused item with the broker's current time, as the original did", async () => {
    const before = BigInt(Date.now());
    const res = await s.api.publishBatch({
      topic: uniqueName("stamp"),
      messages: [
        { topic: "bad topic", payload: payload("0"), metadata: {} },
        { topic: "", payload: payload("1"), metadata: {} },
        { topic: "y".repeat(256), payload: payload("2"), metadata: {} },
      ],
    });
    const after = BigInt(Date.now());
    expect(res.results.map((r) => [r.success, r.error, r.messageId === ""])).toEqual([
      [false, "invalid_topic_format", true],
      [true, "", false],
      [false, "topic_too_long", true],
    ]);
    for (const r of res.results) {
      expect(r.timestamp).toBeGreaterThanOrEqual(before);
      expect(r.timestamp).toBeLessThanOrEqual(after);
    }
  });

  it("delivers a batch that alternates topics in item order on each topic", async () => {
    const a = uniqueName("alt-a");
    const b = uniqueName("alt-b");
    await s.api.createTopic({ name: a });
    await s.api.createTopic({ name: b });
    const subA = await v1Subscribe(s.client, a);
    const subB = await v1Subscribe(s.client, b);
    const items = Array.from({ length: 30 }, (_, i) => ({ topic: i % 3 === 0 ? b : a, payload: payload(String(i)), metadata: {} }));
    const res = await s.api.publishBatch({ topic: "", messages: items });
    await subA.received(20);
    await subB.received(10);
    const idsFor = (t: string) => res.results.filter((_, i) => items[i]!.topic === t).map((r) => r.messageId);
    expect(subA.messages.map((m) => m.id)).toEqual(idsFor(a));
    expect(subB.messages.map((m) => m.id)).toEqual(idsFor(b));
    subA.stream.cancel();
    subB.stream.cancel();
  });
});

describe("v1 GetStats", () => {
  it("counts messages since the topic was (re)created and live subscribers", async () => {
    const topic = uniqueName();
    await s.api.createTopic({ name: topic });
    expect(await s.api.getStats({ topic })).toEqual({ topic, messageCount: 0n, subscriberCount: 0, error: "" });
    const sub = await v1Subscribe(s.client, topic);
    for (let i = 0; i < 3; i++) await s.api.publish({ topic, payload: payload(String(i)), metadata: {} });
    expect(await s.api.getStats({ topic })).toEqual({ topic, messageCount: 3n, subscriberCount: 1, error: "" });
    await s.api.deleteTopic({ name: topic });
    await sub.ended;
    await s.api.createTopic({ name: topic });
    expect(await s.api.getStats({ topic })).toEqual({ topic, messageCount: 0n, subscriberCount: 0, error: "" });
  });

  it("answers topic_not_found for a missing topic", async () => {
    const topic = uniqueName("nope");
    expect(await s.api.getStats({ topic })).toEqual({ topic, messageCount: 0n, subscriberCount: 0, error: "topic_not_found" });
  });
});

describe("v1 Unsubscribe errors", () => {
  it.each([
    ["an empty reference", ""],
    ["a reference over 255 characters", "r".repeat(256)],
    ["a reference with control characters", "ref-\u0007"],
  ])("answers Invalid subscription reference for %s", async (_what, subscriptionRef) => {
    const topic = uniqueName();
    await s.api.createTopic({ name: topic });
    expect(await s.api.unsubscribe({ topic, subscriptionRef })).toEqual({ success: false, error: "Invalid subscription reference" });
  });

  it("answers topic_not_found for a missing topic", async () => {
    expect(await s.api.unsubscribe({ topic: uniqueName("gone"), subscriptionRef: "ref-x" })).toEqual({ success: false, error: "topic_not_found" });
  });

  it("answers subscription_not_found for an unknown reference on an existing topic", async () => {
    const topic = uniqueName();
    await s.api.createTopic({ name: topic });
    expect(await s.api.unsubscribe({ topic, subscriptionRef: "ref-00000000-0000-4000-8000-000000000000" })).toEqual({
      success: false,
      error: "subscription_not_found",
    });
  });

  it("does not accept another topic's reference", async () => {
    const a = uniqueName();
    const b = uniqueName();
    await s.api.createTopic({ name: a });
    await s.api.createTopic({ name: b });
    const sub = await v1Subscribe(s.client, a);
    expect(await s.api.unsubscribe({ topic: b, subscriptionRef: sub.ref })).toEqual({ success: false, error: "subscription_not_found" });
    sub.stream.cancel();
  });
});
