// Conformance, v1: the original Ratatoskr contract (docs/design.md, "v1 wire contract"), checked from outside
// against the broker image running in a container.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MessageBrokerClient } from "../proto/gen/ratatoskr.js";
import { startBrokerContainer, type BrokerContainer } from "./support/broker-container.js";
import { healthCheck, uniqueName, v1Api, v1Client, v1Subscribe, type V1Api } from "../test/support/index.js";
import { requireDockerAndImage } from "./support/docker-engine.js";

await requireDockerAndImage();

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let broker: BrokerContainer;
let client: MessageBrokerClient;
let api: V1Api;

beforeAll(async () => {
  broker = await startBrokerContainer();
  client = v1Client(broker.address);
  api = v1Api(client);
});

afterAll(async () => {
  client?.close();
  await broker?.container.stop();
});

describe("v1 in a container: topics", () => {
  it("answers the grpc.health.v1 check with SERVING", async () => {
    expect(await healthCheck(broker.address)).toBe("SERVING");
  });

  it("creates a topic, echoes its name and refuses a duplicate with already_exists", async () => {
    const name = uniqueName("create");
    expect(await api.createTopic({ name })).toEqual({ topic: name, created: true, error: "" });
    expect(await api.createTopic({ name })).toEqual({ topic: name, created: false, error: "already_exists" });
    expect(await api.topicExists({ name })).toEqual({ exists: true });
  });

  it("reports CreateTopic name errors with the original strings", async () => {
    expect(await api.createTopic({ name: "" })).toMatchObject({ created: false, error: "empty_topic_name" });
    expect(await api.createTopic({ name: "a".repeat(256) })).toMatchObject({ created: false, error: "topic_name_too_long" });
    expect(await api.createTopic({ name: "has space" })).toMatchObject({ created: false, error: "invalid_topic_name_format" });
    expect(await api.createTopic({ name: "dots.not.allowed" })).toMatchObject({ created: false, error: "invalid_topic_name_format" });
    const longest = "a".repeat(255);
    expect(await api.createTopic({ name: longest })).toMatchObject({ created: true, error: "" });
    await api.deleteTopic({ name: longest });
  });

  it("lists topics sorted and never errors on TopicExists", async () => {
    const prefix = uniqueName("list");
    const names = [`${prefix}-c`, `${prefix}-a`, `${prefix}-B`, `${prefix}-b`];
    for (const name of names) await api.createTopic({ name });
    const { topics } = await api.listTopics({});
    expect(topics).toEqual([...topics].sort());
    expect(topics.filter((t) => t.startsWith(prefix))).toEqual([...names].sort());
    expect(await api.topicExists({ name: "" })).toEqual({ exists: false });
    expect(await api.topicExists({ name: "no such topic!" })).toEqual({ exists: false });
  });

  it("deletes a topic, then reports topic_not_found for it", async () => {
    const name = uniqueName("delete");
    await api.createTopic({ name });
    expect(await api.deleteTopic({ name })).toEqual({ success: true, error: "" });
    expect(await api.topicExists({ name })).toEqual({ exists: false });
    expect(await api.deleteTopic({ name })).toEqual({ success: false, error: "topic_not_found" });
    expect(await api.getStats({ topic: name })).toMatchObject({ error: "topic_not_found" });
  });
});

describe("v1 in a container: publish", () => {
  it("auto-creates the topic and answers with a lowercase UUID v4 and a Unix-ms timestamp", async () => {
    const topic = uniqueName("auto");
    const before = Date.now();
    const res = await api.publish({ topic, payload: Buffer.from("hello"), metadata: {} });
    const after = Date.now();
    expect(res).toMatchObject({ success: true, error: "" });
    expect(res.messageId).toMatch(UUID_V4);
    // Container and host share the clock; allow a little skew between the two sides.
    expect(res.timestamp).toBeGreaterThanOrEqual(BigInt(before - 1_000));
    expect(res.timestamp).toBeLessThanOrEqual(BigInt(after + 1_000));
    expect(await api.topicExists({ name: topic })).toEqual({ exists: true });
    expect(await api.getStats({ topic })).toEqual({ topic, messageCount: 1n, subscriberCount: 0, error: "" });
  });

  it("reports Publish name errors with the original strings", async () => {
    const payload = Buffer.from("x");
    expect(await api.publish({ topic: "", payload, metadata: {} })).toMatchObject({ success: false, error: "empty_topic" });
    expect(await api.publish({ topic: "t".repeat(256), payload, metadata: {} })).toMatchObject({ success: false, error: "topic_too_long" });
    expect(await api.publish({ topic: "bad/topic", payload, metadata: {} })).toMatchObject({ success: false, error: "invalid_topic_format" });
  });

  it("processes PublishBatch items in order, each on its own topic or the request's, not atomically", async () => {
    const main = uniqueName("batch");
    const side = uniqueName("side");
    const res = await api.publishBatch({
      topic: main,
      messages: [
        { topic: "", payload: Buffer.from("0"), metadata: {} },
        { topic: side, payload: Buffer.from("1"), metadata: {} },
        { topic: "bad topic", payload: Buffer.from("2"), metadata: {} },
        { topic: "", payload: Buffer.from("3"), metadata: { k: "v" } },
      ],
    });
    expect(res.results.map((r) => [r.success, r.error])).toEqual([
      [true, ""],
      [true, ""],
      [false, "invalid_topic_format"],
      [true, ""],
    ]);
    expect(res.successCount).toBe(3);
    expect(res.errorCount).toBe(1);
    expect(new Set(res.results.filter((r) => r.success).map((r) => r.messageId)).size).toBe(3);
    expect((await api.getStats({ topic: main })).messageCount).toBe(2n);
    expect((await api.getStats({ topic: side })).messageCount).toBe(1n);
  });
});

describe("v1 in a container: subscribe", () => {
  it("fails with NOT_FOUND naming the topic when it does not exist", async () => {
    const topic = uniqueName("missing");
    await expect(v1Subscribe(client, topic)).rejects.toMatchObject({ code: status.NOT_FOUND, message: expect.stringContaining(topic) });
  });

  it("streams every message published after subscribing, in order, with id, timestamp, payload and metadata intact", async () => {
    const topic = uniqueName("stream");
    await api.createTopic({ name: topic });
    const a = await v1Subscribe(client, topic);
    const b = await v1Subscribe(v1Client(broker.address), topic);
    expect(a.ref).not.toBe("");
    expect((await api.getStats({ topic })).subscriberCount).toBe(2);

    const sent = [];
    for (let i = 0; i < 200; i++) {
      const payload = Buffer.from(Array.from({ length: i % 5 === 0 ? 0 : i }, (_, k) => (i * 13 + k) % 256));
      const metadata = { i: String(i), "ünï": "✓" };
      sent.push({ payload, metadata, res: await api.publish({ topic, payload, metadata }) });
    }
    const batch = await api.publishBatch({ topic, messages: [{ topic: "", payload: Buffer.from("batched"), metadata: {} }] });
    await Promise.all([a.received(201), b.received(201)]);
    for (const sub of [a, b]) {
      sent.forEach((want, i) => {
        const got = sub.messages[i]!;
        expect(got.id).toBe(want.res.messageId);
        expect(got.timestamp).toBe(want.res.timestamp);
        expect(got.topic).toBe(topic);
        expect(Buffer.compare(Buffer.from(got.payload), want.payload)).toBe(0);
        expect(got.metadata).toEqual(want.metadata);
      });
      expect(sub.messages[200]!.id).toBe(batch.results[0]!.messageId);
    }
    expect((await api.getStats({ topic })).messageCount).toBe(201n);
    a.stream.cancel();
    b.stream.cancel();
  });

  it("ends the stream with OK on Unsubscribe by header ref or by subscriber_id", async () => {
    const topic = uniqueName("unsub");
    await api.createTopic({ name: topic });
    const byRef = await v1Subscribe(client, topic);
    const byId = await v1Subscribe(client, topic, { subscriberId: "worker-7" });
    expect(await api.unsubscribe({ topic, subscriptionRef: byRef.ref })).toEqual({ success: true, error: "" });
    expect(await api.unsubscribe({ topic, subscriptionRef: "worker-7" })).toEqual({ success: true, error: "" });
    expect(await byRef.ended).toMatchObject({ code: status.OK });
    expect(await byId.ended).toMatchObject({ code: status.OK });
    expect(await api.unsubscribe({ topic, subscriptionRef: byRef.ref })).toEqual({ success: false, error: "subscription_not_found" });
    expect(await api.unsubscribe({ topic, subscriptionRef: "" })).toEqual({ success: false, error: "Invalid subscription reference" });
    expect((await api.getStats({ topic })).subscriberCount).toBe(0);
  });

  it("ends open streams with NOT_FOUND when the topic is deleted", async () => {
    const topic = uniqueName("deleted");
    await api.createTopic({ name: topic });
    const sub = await v1Subscribe(client, topic);
    expect(await api.deleteTopic({ name: topic })).toEqual({ success: true, error: "" });
    expect((await sub.ended).code).toBe(status.NOT_FOUND);
  });
});
