import { describe, expect, it } from "vitest";
import { FineTimeline, mergeTimelines, TIMELINE_BUCKET_MS } from "./timeline.js";

describe("fine timeline", () => {
  it("counts acks and first deliveries per 100 ms bucket on the wall clock's grid", () => {
    const t = new FineTimeline();
    t.recordPublished(5_000_000, 3); // before start: dropped
    expect(t.data()).toBeUndefined();
    // Run starts at monotonic 10 s = wall 1,000,050 ms: bucket 0 starts 50 ms earlier, at wall 1,000,000.
    t.start(10_000_000, 1_000_050);
    t.recordPublished(10_000_000, 2); // wall 1,000,050 -> bucket 0
    t.recordPublished(10_049_999, 1); // wall 1,000,099.999 -> bucket 0
    t.recordDelivered(10_050_000, 1); // wall 1,000,100 -> bucket 1
    t.recordDelivered(10_350_000, 4); // wall 1,000,400 -> bucket 4
    t.recordDelivered(9_000_000, 9); // before the grid's start: dropped
    expect(t.data()).toEqual({ bucketMs: TIMELINE_BUCKET_MS, startMs: 1_000_000, published: [3, 0, 0, 0, 0], delivered: [0, 1, 0, 0, 4] });
  });

  it("grows past its first allocation without losing counts", () => {
    const t = new FineTimeline();
    t.start(0, 0);
    for (let s = 0; s < 600; s++) t.recordDelivered(s * 1_000_000 + 1, 1); // one per second for 10 minutes
    const d = t.data()!;
    expect(d.delivered.length).toBe(5991);
    expect(d.delivered.reduce((a, b) => a + b, 0)).toBe(600);
    expect(d.delivered[5990]).toBe(1);
  });

  it("merges timelines losslessly, aligned on their wall-clock start", () => {
    const a = { bucketMs: 100, startMs: 1_000_000, published: [1, 2, 3], delivered: [0, 5, 0] };
    const b = { bucketMs: 100, startMs: 1_000_200, published: [10, 20], delivered: [7, 0] };
    expect(mergeTimelines([a, b])).toEqual({ bucketMs: 100, startMs: 1_000_000, published: [1, 2, 13, 20], delivered: [0, 5, 7, 0] });
    expect(mergeTimelines([b, a])).toEqual(mergeTimelines([a, b]));
    // A part without a timeline (an older result) gives none: a partial timeline would show gaps that were not there.
    expect(mergeTimelines([a, undefined])).toBeUndefined();
  });
});
