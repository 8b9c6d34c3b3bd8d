import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Consumer, ConsumerSink } from "./consumer.js";
import { DEAD_LETTER_ATTRIBUTES } from "./dead-letter.js";
import { snapshotLease, type DeliveredLease } from "./lease-table.js";
import { EngineHarness } from "../../test/support/index.js";

// Random schedules of publishes, acks, nacks, deadline expiries, extensions and consumer
// disconnects over several topics, subscriptions and competing consumers. Whatever happens,
// once consumers ack everything: every message is settled on every subscription, nothing was
// lost, first deliveries came in order, attempts rose by one per redelivery, and the store
// and the lease table are back to empty.

const ACK_DEADLINE_MS = 200;

type Action =
  | { kind: "publish"; topic: number; count: number }
  | { kind: "ack" | "nack" | "extend"; slot: number; pick: number[] }
  | { kind: "advance"; ms: number }
  | { kind: "disconnect" | "connect"; slot: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("publish" as const), topic: fc.nat(1), count: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("ack" as const), slot: fc.nat(5), pick: fc.array(fc.nat(20), { maxLength: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("nack" as const), slot: fc.nat(5), pick: fc.array(fc.nat(20), { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("extend" as const), slot: fc.nat(5), pick: fc.array(fc.nat(20), { maxLength: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.constant(ACK_DEADLINE_MS + 20)) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("disconnect" as const), slot: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("connect" as const), slot: fc.nat(5) }) },
);

interface SubSpec {
  maxDeliveries: number;
  backoffMinMs: number;
  limit: number;
}

const subSpec: fc.Arbitrary<SubSpec> = fc.record({
  maxDeliveries: fc.constantFrom(0, 0, 3),
  backoffMinMs: fc.constantFrom(0, 0, 50),
  limit: fc.integer({ min: 1, max: 8 }),
});

interface Delivered {
  sub: string;
  slot: number;
  lease: DeliveredLease;
}

describe("subscription engine under random schedules", () => {
  it("settles every message on every subscription, in order, and returns to an empty store", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(subSpec, { minLength: 3, maxLength: 3 }), fc.array(action, { maxLength: 80 }), async (specs, actions) => {
        const h = new EngineHarness({ leaseTickMs: 10 });
        await h.topic("t0");
        await h.topic("t1");
        await h.topic("dlq");
        // Three subscriptions: two on t0 (fan-out), one on t1; two consumer slots each.
        const subs = [
          { name: "s0", topic: "t0" },
          { name: "s1", topic: "t0" },
          { name: "s2", topic: "t1" },
        ];
        await h.subscribe("dlq-sub", "dlq");
        for (const [i, s] of subs.entries()) {
          const spec = specs[i]!;
          await h.subscribe(s.name, s.topic, {
            ackDeadlineMs: ACK_DEADLINE_MS,
            maxDeliveries: spec.maxDeliveries,
            deadLetterTopic: spec.maxDeliveries > 0 ? "dlq" : "",
            retryBackoffMinMs: spec.backoffMinMs,
            retryBackoffMaxMs: spec.backoffMinMs * 4,
          });
        }
        const log: Delivered[] = [];
        const slots: Array<{ consumer: Consumer; outstanding: DeliveredLease[] } | undefined> = new Array(6).fill(undefined);
        const connect = (slot: number): void => {
          if (slots[slot]) return;
          const sub = subs[slot >> 1]!;
          const entry = { consumer: undefined as unknown as Consumer, outstanding: [] as DeliveredLease[] };
          const sink: ConsumerSink = {
            send: (batch) => {
              // Copies: a lease is valid only during send (the table reuses it).
              for (const lease of batch.map(snapshotLease)) {
                log.push({ sub: sub.name, slot, lease });
                entry.outstanding.push(lease);
              }
              // Flow control: a consumer never holds more than its limit.
              expect(entry.consumer.flow.messages).toBeLessThanOrEqual(specs[slot >> 1]!.limit);
              // No overlap: the competing consumer holds no lease on a message just delivered here.
              const other = slots[slot ^ 1];
              if (other) {
                const held = new Set(other.consumer.leases.values().map((l) => l.sequence));
                for (const lease of batch) expect(held.has(lease.sequence)).toBe(false);
              }
              return true;
            },
            end: () => undefined,
          };
          entry.consumer = h.registry.attach(sub.name, { maxOutstandingMessages: specs[slot >> 1]!.limit, maxOutstandingBytes: 1 << 20 }, sink);
          slots[slot] = entry;
          h.run();
        };
        const picked = (entry: { outstanding: DeliveredLease[] }, pick: number[]): DeliveredLease[] => {
          const chosen = new Set(pick.filter((i) => i < entry.outstanding.length));
          const out = entry.outstanding.filter((_, i) => chosen.has(i));
          entry.outstanding = entry.outstanding.filter((_, i) => !chosen.has(i));
          return out;
        };
        for (let slot = 0; slot < 6; slot += 2) connect(slot);
        const published: Record<string, number> = { t0: 0, t1: 0 };

        for (const a of actions) {
          if (a.kind === "publish") {
            const topic = `t${a.topic}`;
            const seqs = await h.publish(topic, Array.from({ length: a.count }, (_, i) => `${topic}-${i}`));
            published[topic] = seqs[seqs.length - 1]!;
          } else if (a.kind === "advance") {
            h.advance(a.ms);
            await h.settle();
          } else if (a.kind === "connect") {
            connect(a.slot);
          } else {
            const entry = slots[a.slot];
            if (!entry) continue;
            if (a.kind === "disconnect") {
              entry.consumer.close();
              slots[a.slot] = undefined;
              h.run();
            } else if (a.kind === "ack") {
              h.ack(entry.consumer, picked(entry, a.pick));
            } else if (a.kind === "nack") {
              h.nack(entry.consumer, picked(entry, a.pick));
              await h.settle();
            } else if (a.kind === "extend") {
              const ids = a.pick.filter((i) => i < entry.outstanding.length).map((i) => entry.outstanding[i]!.ackId);
              entry.consumer.handle({ extend: { ackIds: ids, extendMs: ACK_DEADLINE_MS } });
            }
          }
        }

        // Drain: everyone connects and acks everything (expired ack ids are ignored by the
        // broker, so time moves on until their redeliveries arrive and are acked).
        for (let slot = 0; slot < 6; slot++) connect(slot);
        const deadLetters = h.consume("dlq-sub");
        const done = (): boolean =>
          subs.every((s) => h.registry.get(s.name).stats.ackFloor === published[s.topic]) &&
          h.registry.get("dlq-sub").stats.ackFloor === h.broker.topicInfo("dlq").stats.lastSequence;
        for (let round = 0; round < 500 && !done(); round++) {
          for (const entry of slots) if (entry) h.ack(entry.consumer, entry.outstanding.splice(0));
          h.ack(deadLetters.consumer, deadLetters.sink.takeNew());
          h.advance(ACK_DEADLINE_MS);
          await h.settle();
        }
        expect(done()).toBe(true);

        const deadLettered = new Set(
          deadLetters.sink.leases.map((l) => `${l.message.attributes[DEAD_LETTER_ATTRIBUTES.subscription]}:${l.message.attributes[DEAD_LETTER_ATTRIBUTES.sequence]}`),
        );
        for (const s of subs) {
          const mine = log.filter((d) => d.sub === s.name);
          const last = published[s.topic]!;
          // Nothing lost: every sequence was delivered; first deliveries exactly once each.
          const firsts = mine.filter((d) => d.lease.attempt === 1).map((d) => d.lease.sequence);
          expect([...firsts].sort((x, y) => x - y)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
          // First deliveries reach each consumer in sequence order.
          for (let slot = 0; slot < 6; slot++) {
            const seqs = mine.filter((d) => d.slot === slot && d.lease.attempt === 1).map((d) => d.lease.sequence);
            expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
          }
          // Each redelivery raises the attempt by exactly one.
          const attempts = new Map<number, number>();
          for (const d of mine) {
            expect(d.lease.attempt).toBe((attempts.get(d.lease.sequence) ?? 0) + 1);
            attempts.set(d.lease.sequence, d.lease.attempt);
          }
          const spec = specs[subs.indexOf(s)]!;
          if (spec.maxDeliveries > 0) for (const n of attempts.values()) expect(n).toBeLessThanOrEqual(spec.maxDeliveries);
          else expect([...deadLettered].some((k) => k.startsWith(`${s.name}:`))).toBe(false);
          expect(h.registry.get(s.name).stats.deadLettered).toBe([...deadLettered].filter((k) => k.startsWith(`${s.name}:`)).length);
        }
        // Memory back to baseline: nothing retained, leased or waiting.
        h.tick();
        expect(h.usage()).toBe(0);
        expect(h.registry.leases.size).toBe(0);
        expect(h.registry.leases.pendingRetries).toBe(0);
      }),
      { numRuns: 150 },
    );
  });
});
