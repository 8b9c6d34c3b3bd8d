import { describe, expect, it } from "vitest";
import { Accounting } from "./accounting.js";

/** Two subscriptions on topic 0 (fed by 2 producer streams), one on topic 1 (1 stream). */
function make(): Accounting {
  return new Accounting([0, 0, 1], (t) => (t === 0 ? 2 : 1), 2);
}

describe("Accounting", () => {
  it("counts every message delivered once in order as delivered, nothing else", () => {
    const a = make();
    a.addPublished(0, 10);
    for (const sub of [0, 1]) for (let s = 0; s < 5; s++) for (const slot of [0, 1]) a.record(sub, slot, s, 1);
    expect(a.totals()).toMatchObject({ expected: 20, delivered: 20, lost: 0, duplicates: 0, outOfOrder: 0, completeSubscriptions: 3 });
  });

  it("detects lost, duplicated and reordered messages exactly", () => {
    const a = make();
    a.addPublished(1, 10);
    // Subscription 2 receives 0 1 3 2 2 5 6 6 6 9: 4, 7, 8 lost; 2 and 6 duplicated (1 + 2);
    // 2 arrived after 3: out of order once.
    for (const s of [0, 1, 3, 2, 2, 5, 6, 6, 6, 9]) a.record(2, 0, s, 1);
    expect(a.totals()).toMatchObject({ expected: 10, delivered: 7, lost: 3, duplicates: 3, outOfOrder: 1, completeSubscriptions: 2 });
  });

  it("judges loss per subscription, not on the sum", () => {
    const a = make();
    a.addPublished(0, 2); // one message on each stream of topic 0
    // Subscription 0 gets both, subscription 1 gets one of them twice.
    a.record(0, 0, 0, 1);
    a.record(0, 1, 0, 1);
    a.record(1, 0, 0, 1);
    a.record(1, 0, 0, 1);
    expect(a.totals()).toMatchObject({ expected: 4, delivered: 3, lost: 1, duplicates: 1 });
  });

  it("counts redeliveries by attempt and keeps them as duplicates when already seen", () => {
    const a = make();
    a.addPublished(1, 2);
    a.record(2, 0, 0, 1);
    a.record(2, 0, 0, 2);
    a.record(2, 0, 1, 2);
    expect(a.totals()).toMatchObject({ delivered: 2, duplicates: 1, redelivered: 2, lost: 0 });
  });

  it("rejects streams the topic does not have as foreign", () => {
    const a = make();
    expect(a.record(2, 1, 0, 1)).toBe(false);
    expect(a.totals().foreign).toBe(1);
  });

  it("handles a million sequences on one stream with exact counts", () => {
    const a = new Accounting([0], () => 1, 1);
    const n = 1_000_000;
    a.addPublished(0, n);
    for (let s = 0; s < n; s++) if (s % 100_000 !== 7) a.record(0, 0, s, 1);
    expect(a.totals()).toMatchObject({ delivered: n - 10, lost: 10, duplicates: 0, outOfOrder: 0 });
  });
});

describe("Accounting of never-acknowledged publishes", () => {
  it("counts an unacked range delivered anyway apart from losses, whether it arrived before or after it was declared", () => {
    // One subscription on topic 1 (one stream): seqs 0..9 acked, 10..14 never acked.
    const a = new Accounting([1], () => 1, 2);
    a.addPublished(1, 10);
    for (const s of [0, 1, 2, 3, 4, 5, 6, 7, 10, 11]) a.record(0, 0, s, 1); // 8 and 9 lost; 10, 11 before the declaration
    a.addUnacked(1, 0, 10, 5);
    a.record(0, 0, 12, 1); // after it
    expect(a.deliveredExpectedCount).toBe(8);
    expect(a.totals()).toMatchObject({ expected: 10, delivered: 11, lost: 2, unackedDelivered: 3, unackedUndelivered: 2, completeSubscriptions: 0 });
  });

  it("does not let a delivered unacked message hide the loss of an acked one", () => {
    const a = new Accounting([0], () => 1, 1);
    a.addPublished(0, 2); // seqs 0, 1 acked
    a.addUnacked(0, 0, 2, 1); // seq 2 never acked
    for (const s of [0, 2]) a.record(0, 0, s, 1);
    expect(a.totals()).toMatchObject({ expected: 2, delivered: 2, lost: 1, unackedDelivered: 1, unackedUndelivered: 0 });
  });

  it("keeps the figures of a run without unacked ranges as they were", () => {
    const a = new Accounting([0, 0], () => 1, 1);
    a.addPublished(0, 3);
    for (const s of [0, 1, 2]) a.record(0, 0, s, 1);
    a.record(1, 0, 0, 1);
    expect(a.totals()).toMatchObject({ expected: 6, delivered: 4, lost: 2, unackedDelivered: 0, unackedUndelivered: 0 });
  });
});
