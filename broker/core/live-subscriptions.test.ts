import { describe, expect, it } from "vitest";
import { MemoryStore } from "../store/index.js";
import { createBrokerCore } from "./broker-core.js";
import { FakeClock, ManualTimers } from "./clock.js";
import type { TopicRegistry } from "./topic-registry.js";
import { TopicNotFoundError } from "./errors.js";
import type { LiveEndReason, LiveSink } from "./live-subscriber.js";
import type { StoredMessage } from "./types.js";

/** A sink that records what the broker hands it. */
class Recorder implements LiveSink {
  readonly messages: StoredMessage[] = [];
  readonly ends: LiveEndReason[] = [];
  deliver(message: StoredMessage): void {
    this.messages.push(message);
  }
  end(reason: LiveEndReason): void {
    this.ends.push(reason);
  }
  get texts(): string[] {
    return this.messages.map((m) => m.payload.toString());
  }
}

const msg = (text: string, attributes: Record<string, string> = {}) => ({ payload: Buffer.from(text), attributes });

async function brokerWith(...topics: string[]): Promise<TopicRegistry> {
  const broker = createBrokerCore({ store: new MemoryStore(), clock: new FakeClock(), timers: new ManualTimers() }).topics;
  for (const t of topics) await broker.createTopic(t);
  return broker;
}

describe("live (v1) subscriptions: fan-out", () => {
  it("delivers every later message to every subscription of the topic, in publish order", async () => {
    const broker = await brokerWith("news", "sport");
    await broker.publish("news", [msg("before")]);
    const a = new Recorder();
    const b = new Recorder();
    const other = new Recorder();
    broker.subscribeLive("news", a);
    broker.subscribeLive("news", b);
    broker.subscribeLive("sport", other);
    await broker.publish("news", [msg("1", { k: "v" }), msg("2")]);
    await broker.publish("news", [msg("3")]);
    expect(a.texts).toEqual(["1", "2", "3"]);
    expect(b.texts).toEqual(["1", "2", "3"]);
    expect(other.messages).toEqual([]);
    // Both sinks get the same message objects (the server layer encodes each once).
    expect(a.messages[0]).toBe(b.messages[0]);
    expect(a.messages[0]!.attributes).toEqual({ k: "v" });
  });

  it("keeps sequence order for concurrent publishes", async () => {
    const broker = await brokerWith("busy");
    const sink = new Recorder();
    broker.subscribeLive("busy", sink);
    await Promise.all(Array.from({ length: 50 }, (_, i) => broker.publish("busy", [msg(`${i}a`), msg(`${i}b`)])));
    expect(sink.messages.map((m) => m.sequence)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it("refuses a subscription on a missing topic", async () => {
    const broker = await brokerWith();
    expect(() => broker.subscribeLive("missing", new Recorder())).toThrow(TopicNotFoundError);
  });
});

describe("live (v1) subscriptions: lifecycle", () => {
  it("stops delivering after cancel, without calling end, and counts subscribers", async () => {
    const broker = await brokerWith("t");
    const sink = new Recorder();
    const sub = broker.subscribeLive("t", sink);
    expect(broker.topicInfo("t").stats.liveSubscriberCount).toBe(1);
    sub.cancel();
    sub.cancel(); // idempotent
    expect(broker.topicInfo("t").stats.liveSubscriberCount).toBe(0);
    expect(broker.counters().liveSubscribers).toBe(0);
    await broker.publish("t", [msg("x")]);
    expect(sink.messages).toEqual([]);
    expect(sink.ends).toEqual([]);
  });

  it("ends a subscription unsubscribed by its ref", async () => {
    const broker = await brokerWith("t");
    const gone = new Recorder();
    const kept = new Recorder();
    const sub = broker.subscribeLive("t", gone);
    broker.subscribeLive("t", kept);
    expect(broker.unsubscribeLive("t", sub.ref)).toBe("ok");
    expect(gone.ends).toEqual(["unsubscribed"]);
    await broker.publish("t", [msg("x")]);
    expect(gone.messages).toEqual([]);
    expect(kept.texts).toEqual(["x"]);
    expect(broker.unsubscribeLive("t", sub.ref)).toBe("subscription_not_found");
  });

  it("accepts a non-empty subscriber id as the reference, for every subscription using it", async () => {
    const broker = await brokerWith("t");
    const one = new Recorder();
    const two = new Recorder();
    const anonymous = new Recorder();
    broker.subscribeLive("t", one, "worker");
    broker.subscribeLive("t", two, "worker");
    broker.subscribeLive("t", anonymous, "");
    expect(broker.unsubscribeLive("t", "")).toBe("subscription_not_found");
    expect(broker.unsubscribeLive("t", "worker")).toBe("ok");
    expect([one.ends, two.ends, anonymous.ends]).toEqual([["unsubscribed"], ["unsubscribed"], []]);
    expect(broker.topicInfo("t").stats.liveSubscriberCount).toBe(1);
  });

  it("answers topic_not_found for an unsubscribe on a missing topic", async () => {
    const broker = await brokerWith();
    expect(broker.unsubscribeLive("missing", "ref-1")).toBe("topic_not_found");
  });

  it("does not match a ref from another topic", async () => {
    const broker = await brokerWith("a", "b");
    const sub = broker.subscribeLive("a", new Recorder());
    expect(broker.unsubscribeLive("b", sub.ref)).toBe("subscription_not_found");
  });

  it("ends subscriptions with topic_deleted when the topic goes, and a new topic of that name starts empty", async () => {
    const broker = await brokerWith("t");
    const sink = new Recorder();
    broker.subscribeLive("t", sink);
    await broker.deleteTopic("t");
    expect(sink.ends).toEqual(["topic_deleted"]);
    expect(broker.counters().liveSubscribers).toBe(0);
    await broker.createTopic("t");
    await broker.publish("t", [msg("new")]);
    expect(sink.messages).toEqual([]);
    expect(broker.topicInfo("t").stats.liveSubscriberCount).toBe(0);
  });

  it("ends every subscription with shutdown on close", async () => {
    const broker = await brokerWith("a", "b");
    const sinks = [new Recorder(), new Recorder(), new Recorder()];
    broker.subscribeLive("a", sinks[0]!);
    broker.subscribeLive("a", sinks[1]!);
    broker.subscribeLive("b", sinks[2]!);
    await broker.close();
    expect(sinks.map((s) => s.ends)).toEqual([["shutdown"], ["shutdown"], ["shutdown"]]);
    expect(broker.counters().liveSubscribers).toBe(0);
  });
});
