import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PublishResponse } from "../../../proto/gen/ratatoskr.js";
import { pollUntil, startV1TestServer, uniqueName, v1Subscribe, type V1TestServer } from "../../../test/support/index.js";

let s: V1TestServer;
beforeAll(async () => {
  s = await startV1TestServer();
});
afterAll(async () => {
  await s.close();
});

const create = (name: string) => s.api.createTopic({ name });
const publish = (topic: string, payload: Buffer, metadata: Record<string, string> = {}) => s.api.publish({ topic, payload, metadata });
const stats = (topic: string) => s.api.getStats({ topic });
const unsubscribe = (topic: string, subscriptionRef: string) => s.api.unsubscribe({ topic, subscriptionRef });

describe("v1 Subscribe", () => {
  it("fails with NOT_FOUND and a readable message when the topic does not exist", async () => {
    const topic = uniqueName("missing");
    await expect(v1Subscribe(s.client, topic)).rejects.toMatchObject({ code: status.NOT_FOUND, message: expect.stringContaining(topic) });
  });

  it("sends the x-subscription-ref header before any message is published", async () => {
    const topic = uniqueName();
    await create(topic);
    const sub = await v1Subscribe(s.client, topic);
    expect(sub.ref).toMatch(/^ref-[0-9a-f-]{36}$/);
    expect((await stats(topic)).subscriberCount).toBe(1);
    sub.stream.cancel();
  });

  it("delivers 1,000 messages in publish order to two subscribers with payload, metadata, id and timestamp intact", async () => {
    const topic = uniqueName("fanout");
    const other = uniqueName("other");
    await create(topic);
    await create(other);
    const a = await v1Subscribe(s.client, topic);
    const b = await v1Subscribe(s.client, topic);
    const bystander = await v1Subscribe(s.client, other);

    const sent: Array<{ res: PublishResponse; payload: Buffer; metadata: Record<string, string> }> = [];
    for (let i = 0; i < 1_000; i++) {
      // Varied payloads, including empty and non-UTF-8 bytes.
      const payload = Buffer.from(Array.from({ length: i % 7 === 0 ? 0 : 1 + (i % 50) }, (_, k) => (i * 31 + k * 7) % 256));
      const metadata = { seq: String(i), kind: i % 2 ? "odd" : "even", "ünïcode": "✓" };
      sent.push({ res: await publish(topic, payload, metadata), payload, metadata });
    }
    await Promise.all([a.received(1_000), b.received(1_000)]);
    for (const sub of [a, b]) {
      expect(sub.messages).toHaveLength(1_000);
      sub.messages.forEach((m, i) => {
        const want = sent[i]!;
        expect(m.id).toBe(want.res.messageId);
        expect(m.timestamp).toBe(want.res.timestamp);
        expect(m.topic).toBe(topic);
        expect(Buffer.compare(m.payload, want.payload)).toBe(0);
        expect(m.metadata).toEqual(want.metadata);
      });
    }
    // The bystander's topic saw nothing: a marker published there afterwards is its first message.
    const marker = await publish(other, Buffer.from("marker"));
    await bystander.received(1);
    expect(bystander.messages.map((m) => m.id)).toEqual([marker.messageId]);
    for (const sub of [a, b, bystander]) sub.stream.cancel();
  });

  it("keeps publish order through write back-pressure (batches far above the stream's write window)", async () => {
    const topic = uniqueName("burst");
    await create(topic);
    const a = await v1Subscribe(s.client, topic, { mode: "light" });
    const b = await v1Subscribe(s.client, topic, { mode: "light" });
    const ids: string[] = [];
    for (let batch = 0; batch < 20; batch++) {
      // 500 messages fan out in one synchronous pass: most wait in the server's queue for 'drain'.
      const messages = Array.from({ length: 500 }, (_, i) => ({ topic: "", payload: Buffer.alloc(100, i % 256), metadata: { n: String(batch * 500 + i) } }));
      const res = await s.api.publishBatch({ topic, messages });
      ids.push(...res.results.map((r) => r.messageId));
    }
    await Promise.all([a.received(10_000), b.received(10_000)]);
    for (const sub of [a, b]) {
      expect(sub.messages.map((m) => m.id)).toEqual(ids);
      expect(sub.messages.every((m, i) => m.metadata["n"] === String(i))).toBe(true);
    }
    expect(s.v1.subscribers.cutOffCount).toBe(0);
    for (const sub of [a, b]) sub.stream.cancel();
  });

  it("ends the stream with OK when unsubscribed by the header ref", async () => {
    const topic = uniqueName();
    await create(topic);
    const keep = await v1Subscribe(s.client, topic);
    const sub = await v1Subscribe(s.client, topic);
    expect(await unsubscribe(topic, sub.ref)).toEqual({ success: true, error: "" });
    expect(await sub.ended).toMatchObject({ code: status.OK });
    expect((await stats(topic)).subscriberCount).toBe(1);
    // The other subscription is untouched and still receives.
    await publish(topic, Buffer.from("after"));
    await keep.received(1);
    expect(sub.messages).toHaveLength(0);
    keep.stream.cancel();
  });

  it("ends the stream when unsubscribed by its non-empty subscriber_id", async () => {
    const topic = uniqueName();
    await create(topic);
    const sub = await v1Subscribe(s.client, topic, { subscriberId: "worker-7" });
    expect(await unsubscribe(topic, "worker-7")).toEqual({ success: true, error: "" });
    expect(await sub.ended).toMatchObject({ code: status.OK });
    expect(await unsubscribe(topic, "worker-7")).toEqual({ success: false, error: "subscription_not_found" });
  });

  it("ends open streams with NOT_FOUND when the topic is deleted", async () => {
    const topic = uniqueName();
    await create(topic);
    const sub = await v1Subscribe(s.client, topic);
    expect(await s.api.deleteTopic({ name: topic })).toEqual({ success: true, error: "" });
    expect(await sub.ended).toMatchObject({ code: status.NOT_FOUND, details: expect.stringContaining("deleted") });
  });

  it("removes the subscription when the client cancels", async () => {
    const topic = uniqueName();
    await create(topic);
    const sub = await v1Subscribe(s.client, topic);
    sub.stream.cancel();
    expect(await sub.ended).toMatchObject({ code: status.CANCELLED });
    await pollUntil(() => s.broker.topicInfo(topic).stats.liveSubscriberCount === 0, "the server to drop the subscription", 5_000);
    expect(await unsubscribe(topic, sub.ref)).toEqual({ success: false, error: "subscription_not_found" });
  });

  it("refuses a malformed subscriber_id with INVALID_ARGUMENT", async () => {
    const topic = uniqueName();
    await create(topic);
    await expect(v1Subscribe(s.client, topic, { subscriberId: "x".repeat(256) })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(v1Subscribe(s.client, topic, { subscriberId: "bad\nid" })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });
});
