import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HeldLeases, pooledRings } from "./held-leases.js";
import { Lease, type LeaseHolder } from "./lease-table.js";
import type { StoredMessage } from "./types.js";

const holder: LeaseHolder = { onLeaseExpired: () => undefined };
const message = { sequence: 1 } as StoredMessage;
const lease = (ackId: number): Lease => new Lease(ackId, message, 1, 10, holder);

type Op = { kind: "add"; gap: number } | { kind: "delete"; pick: number } | { kind: "get"; pick: number } | { kind: "clear" };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("add" as const), gap: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("delete" as const), pick: fc.nat(200) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("get" as const), pick: fc.nat(200) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const) }) },
);

describe("HeldLeases", () => {
  it("answers as a Map of ack id to lease would, over random adds, deletes, lookups and clears", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const held = new HeldLeases();
        const model = new Map<number, Lease>();
        let nextId = 1;
        // Ids ever handed out, so lookups also try released and never-held ids.
        const issued: number[] = [];
        for (const o of ops) {
          if (o.kind === "add") {
            const l = lease(nextId);
            nextId += o.gap;
            held.add(l);
            model.set(l.ackId, l);
            issued.push(l.ackId);
          } else if (o.kind === "clear") {
            held.clear();
            model.clear();
          } else {
            const id = issued.length === 0 ? o.pick : (issued[o.pick % issued.length] ?? 0) + (o.pick % 7 === 0 ? 1 : 0);
            if (o.kind === "get") {
              expect(held.get(id)).toBe(model.get(id));
            } else {
              const expected = model.get(id);
              model.delete(id);
              expect(held.delete(id)).toBe(expected);
            }
          }
          expect(held.size).toBe(model.size);
        }
        expect(held.values()).toEqual([...model.values()]);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps its ring bounded when one old lease stays held while thousands come and go", () => {
    const held = new HeldLeases();
    const stuck = lease(1);
    held.add(stuck);
    // Each ack leaves a hole between the stuck lease and the newest one, which stays held.
    held.add(lease(2));
    for (let id = 3; id < 10_000; id++) {
      held.add(lease(id));
      expect(held.delete(id - 1)?.ackId).toBe(id - 1);
    }
    expect(held.size).toBe(2);
    expect(held.get(9_999)?.ackId).toBe(9_999);
    expect(held.get(1)).toBe(stuck);
    // The ring compacts in place instead of growing with the span of ack ids.
    expect(held.capacity).toBeLessThanOrEqual(16);
  });

  it("drops a ring past its first size once nothing is held, and makes the next one as large at once", () => {
    const held = new HeldLeases();
    expect(held.capacity).toBe(0); // a consumer that was never delivered to holds no ring
    for (let id = 1; id <= 200; id++) held.add(lease(id));
    expect(held.capacity).toBe(256);
    for (let id = 1; id < 200; id++) held.delete(id);
    expect(held.capacity).toBe(256); // one lease still held
    held.delete(200);
    expect(held.size).toBe(0);
    expect(held.capacity).toBe(0);
    expect(held.get(200)).toBeUndefined();
    held.add(lease(201));
    expect(held.capacity).toBe(256);
    expect(held.get(201)?.ackId).toBe(201);
    held.clear();
    expect(held.capacity).toBe(0);
    // A small ring stays: a consumer taking one message at a time does not make a ring per message.
    held.add(lease(300));
    held.delete(300);
    held.add(lease(301));
    expect(held.capacity).toBe(256);
    held.delete(301);
    // Dropped rings are pooled: consumers taking turns with them still answer for their own leases only.
    const a = new HeldLeases();
    const b = new HeldLeases();
    for (let round = 0; round < 3; round++) {
      const base = 1000 * (round + 1);
      for (let i = 0; i < 150; i++) a.add(lease(base + i));
      for (let i = 0; i < 150; i++) a.delete(base + i);
      expect(a.capacity).toBe(0);
      for (let i = 0; i < 150; i++) b.add(lease(base + 500 + i));
      expect(b.capacity).toBe(256);
      expect(b.get(base)).toBeUndefined(); // a's released id, in the ring b took over
      expect(b.get(base + 500)?.ackId).toBe(base + 500);
      expect(b.values().map((l) => l.ackId)).toEqual(Array.from({ length: 150 }, (_, i) => base + 500 + i));
      b.clear();
    }
    const small = new HeldLeases();
    small.add(lease(1));
    small.delete(1);
    expect(small.capacity).toBe(16);
  });

  it("pools at most 2^20 slots of each ring size: 16 rings of 65,536", () => {
    const size = 65_536;
    const consumers = Array.from({ length: 18 }, () => new HeldLeases());
    let id = 1;
    for (const held of consumers) for (let i = 0; i < size / 2 + 1; i++) held.add(lease(id++));
    expect(consumers.every((h) => h.capacity === size)).toBe(true);
    const before = pooledRings(size);
    for (const held of consumers) held.clear();
    expect(pooledRings(size)).toBe(Math.max(before, 16));
    // The next consumer takes a pooled ring instead of growing one.
    const next = new HeldLeases();
    consumers[0]!.add(lease(id++));
    expect(consumers[0]!.capacity).toBe(size);
    expect(pooledRings(size)).toBe(15);
    next.add(lease(id));
    expect(next.capacity).toBe(16);
  });

  it("grows into a pooled ring twice the size and pools the one it leaves, keeping order", () => {
    const grower = new HeldLeases();
    let id = 1_000_000;
    for (let i = 0; i < 32; i++) grower.add(lease(id++));
    expect(grower.capacity).toBe(32);
    const before32 = pooledRings(32);
    grower.delete(1_000_000 + 5); // a hole: still more than half live, so the ring doubles
    grower.add(lease(id++));
    expect(grower.capacity).toBe(64);
    const pooled64 = pooledRings(64);
    expect(pooledRings(32)).toBe(before32 + 1);
    expect(grower.values().map((l) => l.ackId)).toEqual(Array.from({ length: 33 }, (_, i) => 1_000_000 + i).filter((a) => a !== 1_000_005));
    // Another consumer reaching 32 slots takes the ring the first one left.
    const other = new HeldLeases();
    for (let i = 0; i < 17; i++) other.add(lease(id++));
    expect(other.capacity).toBe(32);
    expect(pooledRings(32)).toBe(before32);
    grower.clear();
    expect(pooledRings(64)).toBe(pooled64 + 1);
  });

  it("refuses an ack id that is not above the last one held", () => {
    const held = new HeldLeases();
    held.add(lease(5));
    expect(() => held.add(lease(5))).toThrow(/ack id 5 is not above/);
    expect(() => held.add(lease(3))).toThrow(RangeError);
  });
});
