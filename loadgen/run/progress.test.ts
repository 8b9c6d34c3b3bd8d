import { describe, expect, it } from "vitest";
import { deliveredText, estimateProgress, Progress } from "./progress.js";

const base = { phase: "measure", measureElapsedSec: 0, measuredPublished: 0, publishRate: 0 };

describe("progress estimate", () => {
  it("gives percent and ETA by messages when the run has a message count", () => {
    expect(estimateProgress({ ...base, totalMessages: 1000, measuredPublished: 250, publishRate: 50 })).toEqual({ percent: 25, etaSec: 15 });
  });

  it("gives percent and ETA by time when the run has a duration", () => {
    expect(estimateProgress({ ...base, durationSec: 20, measureElapsedSec: 5 })).toEqual({ percent: 25, etaSec: 15 });
  });

  it("never goes past 100% and has no estimate outside measuring or without a size", () => {
    expect(estimateProgress({ ...base, totalMessages: 10, measuredPublished: 12, publishRate: 1 })).toEqual({ percent: 100, etaSec: 0 });
    expect(estimateProgress({ ...base, phase: "warmup", totalMessages: 10 })).toBeUndefined();
    expect(estimateProgress(base)).toBeUndefined();
  });
});

describe("progress line", () => {
  it("never shows delivered above expected: the excess is shown apart", () => {
    expect(deliveredText(120, 100)).toBe("100/100 (+20 before their publish ack)");
    expect(deliveredText(80, 100)).toBe("80/100");
  });

  it("prints percent and ETA when known", () => {
    const out: string[] = [];
    const p = new Progress({ write: (s: string) => out.push(s) > 0, isTTY: false }, false, 0);
    p.update({ phase: "measure", elapsedSec: 3, published: 10, delivered: 12, expected: 10, publishRate: 5, deliveryRate: 5, p99Us: 900, percent: 40, etaSec: 6 });
    expect(out.join("")).toContain("dlv 10/10 (+2 before their publish ack)");
    expect(out.join("")).toContain("40% ETA 6s");
  });
});
