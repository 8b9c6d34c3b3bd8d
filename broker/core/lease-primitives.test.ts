import { describe, expect, it } from "vitest";
import { AckSet } from "./ack-set.js";
import { FlowControl } from "./flow-control.js";
import { SeqHeap } from "./seq-heap.js";
import { LeaseTable, type LeaseHolder } from "./lease-table.js";
import { TimerWheel } from "./timer-wheel.js";
import type { StoredMessage } from "./types.js";

type Item = { id: number; tick: number; prev: Item | undefined; next: Item | undefined };
const item = (id: number): Item => ({ id, tick: -1, prev: undefined, next: undefined });

describe("TimerWheel", () => {

  it("fires items at or after their deadline, never before", () => {
    const wheel = new TimerWheel<Item>(10);
    wheel.add(item(1), 1005);
    wheel.add(item(2), 1010);
    wheel.add(item(3), 1011);
    const fired: number[] = [];
    wheel.expire(1009, (i) => fired.push(i.id));
    expect(fired).toEqual([]);
    wheel.expire(1010, (i) => fired.push(i.id));
    expect(fired).toEqual([1, 2]);
    wheel.expire(1020, (i) => fired.push(i.id));
    expect(fired).toEqual([1, 2, 3]);
    expect(wheel.size).toBe(0);
  });

  it("does not fire removed items and moves rescheduled ones", () => {
    const wheel = new TimerWheel<Item>(10);
    const a = item(1);
    const b = item(2);
    wheel.add(a, 100);
    wheel.add(b, 100);
    expect(wheel.remove(a)).toBe(true);
    expect(wheel.remove(a)).toBe(false);
    wheel.reschedule(b, 500);
    const fired: number[] = [];
    wheel.expire(400, (i) => fired.push(i.id));
    expect(fired).toEqual([]);
    wheel.expire(500, (i) => fired.push(i.id));
    expect(fired).toEqual([2]);
  });
});

describe("TimerWheel under churn", () => {
  it("lets a handler remove, or schedule again at a due tick, items of the bucket being fired", () => {
    const wheel = new TimerWheel<Item>(10);
    const [a, b, c] = [item(1), item(2), item(3)];
    for (const i of [a, b, c]) wheel.add(i, 100);
    const fired: number[] = [];
    wheel.expire(100, (i) => {
      fired.push(i.id);
      if (i === a) expect(wheel.remove(b)).toBe(true);
      if (i === c) wheel.add(a, 50); // due already: fired by the next sweep, not this one
    });
    expect(fired).toEqual([1, 3]);
    expect(wheel.size).toBe(1);
    wheel.expire(100, (i) => fired.push(i.id));
    expect(fired).toEqual([1, 3, 1]);
    expect(wheel.size).toBe(0);
  });

  it("keeps firing a bucket when a handler adds, then removes, an item at the tick being fired", () => {
    const wheel = new TimerWheel<Item>(10);
    const [a, b, c, late] = [item(1), item(2), item(3), item(4)];
    for (const i of [a, b, c]) wheel.add(i, 100);
    const fired: number[] = [];
    wheel.expire(100, (i) => {
      fired.push(i.id);
      if (i === a) {
        wheel.add(late, 100);
        expect(wheel.remove(late)).toBe(true);
      }
    });
    expect(fired).toEqual([1, 2, 3]);
    expect(wheel.size).toBe(0);
  });

  it("refuses to add an item that is already scheduled (its links would be overwritten)", () => {
    const wheel = new TimerWheel<Item>(10);
    const a = item(1);
    wheel.add(a, 100);
    expect(() => wheel.add(a, 200)).toThrow(/already scheduled/);
  });

  it("fires an item moved away and back exactly once, at its final deadline", () => {
    const wheel = new TimerWheel<Item>(10);
    const a = item(1);
    wheel.add(a, 100);
    wheel.reschedule(a, 500);
    wheel.reschedule(a, 100);
    const fired: number[] = [];
    wheel.expire(1000, (i) => fired.push(i.id));
    expect(fired).toEqual([1]);
    expect(wheel.size).toBe(0);
  });

  it("matches a simple model under random adds, removes, reschedules and expiries", () => {
    const wheel = new TimerWheel<Item>(10);
    const model = new Map<Item, number>();
    let seed = 42;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const items: Item[] = Array.from({ length: 200 }, (_, id) => item(id));
    let now = 0;
    for (let step = 0; step < 20_000; step++) {
      const item = items[rand(items.length)]!;
      const op = rand(10);
      if (op < 4 && !model.has(item)) {
        const at = now + rand(300);
        wheel.add(item, at);
        model.set(item, Math.ceil(at / 10) * 10);
      } else if (op < 6 && model.has(item)) {
        expect(wheel.remove(item)).toBe(true);
        model.delete(item);
      } else if (op < 8 && model.has(item)) {
        const at = now + rand(300);
        wheel.reschedule(item, at);
        model.set(item, Math.ceil(at / 10) * 10);
      } else if (op === 9) {
        now += rand(40);
        const fired = new Set<Item>();
        wheel.expire(now, (i) => {
          expect(fired.has(i)).toBe(false);
          fired.add(i);
        });
        const due = new Set([...model].filter(([, at]) => at <= now).map(([i]) => i));
        expect(fired).toEqual(due);
        for (const i of due) model.delete(i);
      }
      expect(wheel.size).toBe(model.size);
    }
  });
});

describe("AckSet", () => {
  it("advances the floor when gaps close and keeps sparse acks above it", () => {
    const acks = new AckSet(0);
    expect(acks.ack(2)).toBe(false);
    expect(acks.ack(4)).toBe(false);
    expect(acks.floor).toBe(0);
    expect(acks.ack(1)).toBe(true);
    expect(acks.floor).toBe(2);
    expect(acks.snapshot()).toEqual({ floor: 2, above: [4] });
    expect(acks.ack(3)).toBe(true);
    expect(acks.floor).toBe(4);
    expect(acks.sparseCount).toBe(0);
  });

  it("restores from a snapshot and skips past discarded sequences", () => {
    const acks = new AckSet(5, [7, 9, 3]);
    expect(acks.has(3)).toBe(true);
    expect(acks.has(6)).toBe(false);
    expect(acks.skipTo(6)).toBe(true);
    expect(acks.floor).toBe(7);
    expect(acks.snapshot()).toEqual({ floor: 7, above: [9] });
    expect(acks.sparseCount).toBe(1);
  });
});

describe("FlowControl", () => {
  it("says full at the message limit and at the byte limit", () => {
    const flow = new FlowControl({ maxOutstandingMessages: 2, maxOutstandingBytes: 100 });
    expect(flow.fits(60)).toBe(true);
    flow.take(60);
    expect(flow.fits(50)).toBe(false);
    expect(flow.fits(40)).toBe(true);
    flow.take(40);
    expect(flow.full).toBe(true);
    flow.release(40);
    flow.release(60);
    expect(flow.full).toBe(false);
    expect([flow.messages, flow.bytes]).toEqual([0, 0]);
  });

  it("lets one oversized message through only when nothing is outstanding", () => {
    const flow = new FlowControl({ maxOutstandingMessages: 10, maxOutstandingBytes: 100 });
    expect(flow.fits(500)).toBe(true);
    flow.take(10);
    expect(flow.fits(500)).toBe(false);
  });
});

describe("SeqHeap", () => {
  it("pops in ascending order", () => {
    const heap = new SeqHeap();
    for (const n of [5, 3, 9, 1, 7, 3]) heap.push(n);
    const out: number[] = [];
    while (heap.size > 0) out.push(heap.pop()!);
    expect(out).toEqual([1, 3, 3, 5, 7, 9]);
    expect(heap.pop()).toBeUndefined();
  });
});

describe("LeaseTable reuse", () => {
  const holder: LeaseHolder = { onLeaseExpired: () => undefined };
  const message = (sequence: number) => ({ sequence }) as StoredMessage;

  it("hands a recycled lease out again with a new ack id and the new delivery's fields", () => {
    const table = new LeaseTable(10);
    const first = table.lease(message(1), 1, 10, holder, 100);
    const firstId = first.ackId;
    expect(table.release(first)).toBe(true);
    table.recycle(first);
    const second = table.lease(message(2), 3, 20, holder, 200);
    expect(second).toBe(first);
    expect([second.ackId > firstId, second.sequence, second.attempt, second.bytes]).toEqual([true, 2, 3, 20]);
    expect(table.size).toBe(1);
  });

  it("refuses to recycle a lease still scheduled, or one recycled already", () => {
    const table = new LeaseTable(10);
    const lease = table.lease(message(1), 1, 10, holder, 100);
    expect(() => table.recycle(lease)).toThrow(/still scheduled/);
    table.release(lease);
    table.recycle(lease);
    expect(() => table.recycle(lease)).toThrow(/recycled twice/);
  });
});
