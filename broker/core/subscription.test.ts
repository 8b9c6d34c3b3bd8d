import { describe, expect, it } from "vitest";
import { DEAD_LETTER_ATTRIBUTES } from "./dead-letter.js";
import { EngineHarness } from "../../test/support/index.js";

const texts = (n: number, prefix = "m"): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

describe("subscription delivery", () => {
  it("delivers first deliveries in sequence order with attempt 1 and distinct ack ids", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    const { sink } = h.consume("s");
    await h.publish("t", texts(5));
    await h.publish("t", texts(3, "n"));
    expect(sink.sequences).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(sink.leases.every((l) => l.attempt === 1)).toBe(true);
    expect(new Set(sink.leases.map((l) => l.ackId)).size).toBe(8);
  });

  it("batches what is available into one frame per consumer", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    await h.publish("t", texts(100));
    const { sink } = h.consume("s");
    expect(sink.batches).toHaveLength(1);
    expect(sink.batches[0]).toHaveLength(100);
  });

  it("fans every message out to every subscription of the topic", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("a", "t");
    await h.subscribe("b", "t");
    const a = h.consume("a");
    const b = h.consume("b");
    await h.publish("t", texts(4));
    expect(a.sink.sequences).toEqual([1, 2, 3, 4]);
    expect(b.sink.sequences).toEqual([1, 2, 3, 4]);
  });

  it("splits one subscription between competing consumers without overlap", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    const a = h.consume("s");
    const b = h.consume("s");
    await h.publish("t", texts(300));
    const got = [...a.sink.sequences, ...b.sink.sequences].sort((x, y) => x - y);
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(a.sink.sequences.length).toBeGreaterThan(0);
    expect(b.sink.sequences.length).toBeGreaterThan(0);
  });
});

describe("leases and deadlines", () => {
  it("redelivers after the ack deadline, not before, with the attempt raised", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t", { ackDeadlineMs: 1000 });
    const { sink } = h.consume("s");
    await h.publish("t", ["x"]);
    expect(sink.takeNew().map((l) => l.attempt)).toEqual([1]);
    h.advance(999);
    expect(sink.takeNew()).toEqual([]);
    h.advance(20);
    const again = sink.takeNew();
    expect(again.map((l) => [l.sequence, l.attempt])).toEqual([[1, 2]]);
  });

  it("ignores an ack for an expired lease and for unknown ids", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t", { ackDeadlineMs: 100 });
    const { consumer, sink } = h.consume("s");
    await h.publish("t", ["x"]);
    const [first] = sink.takeNew();
    h.advance(200);
    const [second] = sink.takeNew();
    h.ack(consumer, [first!]);
    consumer.handle({ ackIds: [987654321] });
    expect(h.registry.get("s").stats.ackFloor).toBe(0);
    expect(h.registry.get("s").stats.inFlight).toBe(1);
    h.ack(consumer, [second!]);
    expect(h.registry.get("s").stats.ackFloor).toBe(1);
  });

  it("postpones expiry when the deadline is extended", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t", { ackDeadlineMs: 100 });
    const { consumer, sink } = h.consume("s");
    await h.publish("t", ["x"]);
    const [lease] = sink.takeNew();
    h.advance(80);
    consumer.handle({ extend: { ackIds: [lease!.ackId], extendMs: 500 } });
    h.advance(300);
    expect(sink.takeNew()).toEqual([]);
    h.advance(300);
    expect(sink.takeNew().map((l) => l.attempt)).toEqual([2]);
  });

  it("rejects a negative extension naming the field", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    const { consumer, sink } = h.consume("s");
    await h.publish("t", ["x"]);
    expect(() => consumer.handle({ extend: { ackIds: [sink.leases[0]!.ackId], extendMs: -1 } })).toThrow(/extend\.extend_ms/);
  });

  it("redelivers a disconnected consumer's messages to the others with the attempt raised", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    const a = h.consume("s");
    await h.publish("t", texts(3));
    expect(a.sink.sequences).toEqual([1, 2, 3]);
    const b = h.consume("s");
    expect(b.sink.sequences).toEqual([]);
    a.consumer.close();
    h.run();
    expect(b.sink.leases.map((l) => [l.sequence, l.attempt])).toEqual([
      [1, 2],
      [2, 2],
      [3, 2],
    ]);
  });
});

describe("nacks and retry backoff", () => {
  it("redelivers a nacked message at once when no backoff is set", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    const { consumer, sink } = h.consume("s");
    await h.publish("t", ["x"]);
    h.nack(consumer, sink.takeNew());
    expect(sink.takeNew().map((l) => l.attempt)).toEqual([2]);
  });

  it("backs off exponentially between nacked redeliveries, capped at the maximum", async () => {
    const h = new EngineHarness({ leaseTickMs: 1 });
    await h.topic("t");
    await h.subscribe("s", "t", { retryBackoffMinMs: 100, retryBackoffMaxMs: 300 });
    const { consumer, sink } = h.consume("s");
    await h.publish("t", ["x"]);
    const waits: number[] = [];
    for (let attempt = 1; attempt <= 4; attempt++) {
      h.nack(consumer, sink.takeNew());
      let waited = 0;
      while (sink.batches.flat().length === attempt) {
        h.advance(1);
        waited++;
        if (waited > 10_000) throw new Error("never redelivered");
      }
      waits.push(waited);
    }
    expect(waits).toEqual([100, 200, 300, 300]);
    expect(sink.leases.map((l) => l.attempt)).toEqual([1, 2, 3, 4, 5]);
  });

  it("keeps other messages flowing while one waits out its backoff", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t", { retryBackoffMinMs: 1000 });
    const { consumer, sink } = h.consume("s");
    await h.publish("t", ["x"]);
    h.nack(consumer, sink.takeNew());
    await h.publish("t", ["y"]);
    expect(sink.takeNew().map((l) => l.sequence)).toEqual([2]);
  });
});

describe("dead-lettering", () => {
  it("moves a message to the dead-letter topic after max deliveries, with attempts and origin", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.topic("dlq");
    await h.subscribe("dlq-sub", "dlq");
    await h.subscribe("s", "t", { maxDeliveries: 3, deadLetterTopic: "dlq" });
    const { consumer, sink } = h.consume("s");
    const dead = h.consume("dlq-sub");
    await h.publish("t", ["poison"], { kind: "test" });
    for (let i = 0; i < 3; i++) h.nack(consumer, sink.takeNew());
    await h.settle();
    expect(sink.leases.map((l) => l.attempt)).toEqual([1, 2, 3]);
    const [copy] = dead.sink.leases;
    expect(copy?.message.payload.toString()).toBe("poison");
    expect(copy?.message.attributes).toMatchObject({
      kind: "test",
      [DEAD_LETTER_ATTRIBUTES.attempts]: "3",
      [DEAD_LETTER_ATTRIBUTES.topic]: "t",
      [DEAD_LETTER_ATTRIBUTES.subscription]: "s",
      [DEAD_LETTER_ATTRIBUTES.sequence]: "1",
    });
    const stats = h.registry.get("s").stats;
    expect(stats.ackFloor).toBe(1);
    expect(stats.deadLettered).toBe(1);
  });

  it("counts an expired lease as a delivery toward max deliveries", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.topic("dlq", { retention: "limits" });
    await h.subscribe("s", "t", { maxDeliveries: 2, deadLetterTopic: "dlq", ackDeadlineMs: 100 });
    const { sink } = h.consume("s");
    await h.publish("t", ["x"]);
    h.advance(150);
    h.advance(150);
    await h.settle();
    expect(sink.leases.map((l) => l.attempt)).toEqual([1, 2]);
    expect(h.broker.topicInfo("dlq").stats.published).toBe(1);
  });

  it("keeps retrying after max deliveries when no dead-letter topic is set", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t", { maxDeliveries: 2 });
    const { consumer, sink } = h.consume("s");
    await h.publish("t", ["x"]);
    for (let i = 0; i < 4; i++) h.nack(consumer, sink.takeNew());
    expect(sink.leases.map((l) => l.attempt)).toEqual([1, 2, 3, 4, 5]);
  });

  it("keeps the message on the subscription when the dead-letter topic is gone", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.topic("dlq");
    await h.subscribe("s", "t", { maxDeliveries: 1, deadLetterTopic: "dlq" });
    const { consumer, sink } = h.consume("s");
    await h.publish("t", ["x"]);
    await h.broker.deleteTopic("dlq");
    h.nack(consumer, sink.takeNew());
    await h.settle();
    expect(sink.takeNew().map((l) => [l.sequence, l.attempt])).toEqual([[1, 2]]);
    expect(h.registry.get("s").stats.ackFloor).toBe(0);
  });
});

describe("flow control and backpressure", () => {
  it("never leases more than the consumer's max outstanding messages", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    const { consumer, sink } = h.consume("s", { messages: 10 });
    await h.publish("t", texts(25));
    expect(sink.sequences).toHaveLength(10);
    h.ack(consumer, sink.takeNew().slice(0, 4));
    expect(sink.takeNew().map((l) => l.sequence)).toEqual([11, 12, 13, 14]);
    expect(consumer.flow.messages).toBe(10);
  });

  it("never leases more than the consumer's max outstanding bytes", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    const { consumer, sink } = h.consume("s", { bytes: 100 });
    await h.publish("t", Array.from({ length: 10 }, () => "x".repeat(30)));
    expect(sink.sequences).toEqual([1, 2, 3]);
    h.ack(consumer, sink.takeNew());
    expect(sink.takeNew().map((l) => l.sequence)).toEqual([4, 5, 6]);
  });

  it("stops sending while the transport is backed up and resumes on drain", async () => {
    const h = new EngineHarness();
    await h.topic("t");
    await h.subscribe("s", "t");
    const { consumer, sink } = h.consume("s");
    sink.writable = false;
    await h.publish("t", ["a"]);
    await h.publish("t", ["b"]);
    expect(sink.sequences).toEqual([1]);
    sink.writable = true;
    consumer.resume();
    h.run();
    expect(sink.sequences).toEqual([1, 2]);
  });
});
