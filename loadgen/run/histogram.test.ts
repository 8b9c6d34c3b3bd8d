import { describe, expect, it } from "vitest";
import { decodeHistogram, encodeHistogram, mergeEncoded, newHistogram, percentileDistribution, summarize } from "./histogram.js";

/** Deterministic pseudo-random latency-like values (µs), 50 µs .. ~2 s. */
function values(n: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    const u = x / 2147483648;
    return Math.round(50 + Math.pow(u, 6) * 2_000_000);
  });
}

describe("histogram merge", () => {
  it("merging shard histograms equals the single-run histogram", () => {
    const all = values(60_000, 7);
    const single = newHistogram();
    for (const v of all) single.recordValue(v);
    const shards = [0, 1, 2].map((i) => {
      const h = newHistogram();
      for (let j = i; j < all.length; j += 3) h.recordValue(all[j]!);
      return encodeHistogram(h);
    });
    const merged = mergeEncoded(shards);
    // A run's result.json holds the encoded histogram; compare with what it would hold.
    const stored = decodeHistogram(encodeHistogram(single));
    expect(merged.totalCount).toBe(single.totalCount);
    for (const p of [0, 50, 90, 99, 99.9, 99.99, 100]) expect(merged.getValueAtPercentile(p)).toBe(single.getValueAtPercentile(p));
    expect(merged.maxValue).toBe(stored.maxValue);
    expect(merged.minNonZeroValue).toBe(stored.minNonZeroValue);
    expect(merged.mean).toBe(stored.mean);
    expect(percentileDistribution(merged)).toBe(percentileDistribution(stored));
    expect(encodeHistogram(merged)).toBe(encodeHistogram(single));
  });

  it("round-trips through the encoded form", () => {
    const h = newHistogram();
    for (const v of values(1000, 3)) h.recordValue(v);
    const back = decodeHistogram(encodeHistogram(h));
    expect(back.totalCount).toBe(1000);
    expect(back.getValueAtPercentile(99)).toBe(h.getValueAtPercentile(99));
  });
});

describe("histogram summaries", () => {
  it("gives min 0, not MAX_SAFE_INTEGER, when only zeros were recorded", () => {
    const h = newHistogram();
    h.recordValue(0);
    h.recordValue(0);
    expect(summarize(h)).toMatchObject({ count: 2, minUs: 0, maxUs: 0 });
  });
});
