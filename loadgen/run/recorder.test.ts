import { afterEach, describe, expect, it } from "vitest";
import { clampUs, encodeHistogram, newHistogram } from "./histogram.js";
import { Recorder } from "./recorder.js";
import { deliveryWindowSeconds } from "./runner.js";

describe("Recorder phases", () => {
  let rec: Recorder;
  afterEach(() => rec.destroy());

  it("records during warmup (warming the paths), then measures from an empty start", () => {
    rec = new Recorder();
    rec.phase = "connect";
    rec.recordPublish(1, 50);
    expect(rec.publishLatency.totalCount).toBe(0);

    rec.phase = "warmup";
    rec.recordPublish(10, 1_000);
    rec.recordLateness(500);
    rec.recordDelivery(2_000, 1_500, true);
    expect([rec.publishLatency.totalCount, rec.lateness.totalCount, rec.e2e.totalCount]).toEqual([10, 1, 1]);
    rec.closeInterval(1, 0, 1000);
    expect(rec.intervals).toHaveLength(0); // warmup stays out of the interval log

    rec.recordDelivery(3_000, 2_000, true); // recorded in the interval that straddles the switch
    rec.startMeasuring();
    expect([rec.publishLatency.totalCount, rec.lateness.totalCount, rec.e2e.totalCount, rec.e2eUncorrected.totalCount]).toEqual([0, 0, 0, 0]);

    rec.recordDelivery(9_000, 8_000, true); // sent during warmup: delivered, not timed
    rec.recordDelivery(4_000, 3_000, false);
    rec.recordPublish(5, 700);
    expect(rec.e2e.totalCount).toBe(1);
    expect(rec.e2e.maxValue).toBeLessThan(4_100);
    expect(rec.publishLatency.totalCount).toBe(5);
    expect(rec.measuredDelivered).toBe(2);

    const point = rec.closeInterval(2, 1000, 2000);
    expect(point.phase).toBe("measure");
    expect(point.e2eMaxUs).toBeLessThan(4_100); // the warmup sample before the switch is gone
    expect(rec.intervals).toHaveLength(1);
  });

  it("keeps a measured message that arrives before its own measure phase starts (a consumer worker released after the producer worker)", () => {
    rec = new Recorder();
    rec.phase = "warmup";
    rec.recordDelivery(2_000, 1_500, true); // warmup message: warms the paths
    rec.recordDelivery(4_000, 3_000, false); // measured message, early: measuring starts here
    expect(rec.measuring).toBe(true);
    rec.recordDelivery(9_000, 8_000, true); // a late warmup message is not timed
    rec.phase = "measure"; // what the runner's phase switch does
    rec.startMeasuring(); // already measuring: nothing is wiped
    rec.recordDelivery(5_000, 4_000, false);
    expect(rec.e2e.totalCount).toBe(2);
    expect(rec.e2e.maxValue).toBeLessThan(5_100);
    expect(rec.measuredDelivered).toBe(3);
  });

  it("with no warmup, keeps a measured message that reaches a consumer worker still in its connect phase", () => {
    rec = new Recorder();
    rec.phase = "connect"; // warmupSeconds: 0 — the next phase this worker is told of is measure
    rec.recordDelivery(4_000, 3_000, false);
    expect(rec.measuring).toBe(true);
    expect(rec.phase).toBe("measure");
    rec.startMeasuring(); // the parent's join arrives later: nothing is wiped
    rec.recordDelivery(5_000, 4_000, false);
    expect(rec.e2e.totalCount).toBe(2);
    expect(rec.e2eUncorrected.totalCount).toBe(2);
    expect(rec.measuredDelivered).toBe(2);
  });
});

describe("the delivery window", () => {
  it("runs from the start of measure, or from the first measured delivery when that came earlier", () => {
    expect(deliveryWindowSeconds(1_000_000, 1_500_000, 3_000_000, 9)).toBe(2);
    expect(deliveryWindowSeconds(1_000_000, 400_000, 3_000_000, 9)).toBe(2.6);
    expect(deliveryWindowSeconds(1_000_000, 0, 0, 9)).toBe(9); // nothing measured arrived
  });
});

describe("runs of equal delivery latencies", () => {
  it("give the whole-run and interval histograms that one record per delivery gives", () => {
    const rec = new Recorder();
    const corrected = newHistogram();
    const uncorrected = newHistogram();
    const ivCorrected: string[] = [];
    rec.phase = "measure";
    rec.startMeasuring();
    let x = 12345;
    const rnd = (): number => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    let c = 100;
    let u = 50;
    let iv = newHistogram();
    for (let i = 0; i < 20_000; i++) {
      // Runs of equal values, runs where only one of the pair changes, and changes every time.
      if (rnd() < 0.3) c = Math.floor(rnd() * 5000) + rnd();
      if (rnd() < 0.3) u = Math.floor(rnd() * 5000);
      rec.recordDelivery(c, u, false);
      corrected.recordValue(clampUs(c));
      uncorrected.recordValue(clampUs(u));
      iv.recordValue(clampUs(c));
      if (i % 3001 === 3000) {
        // An interval closes in the middle of a run.
        rec.closeInterval(i, 0, 1000);
        ivCorrected.push(encodeHistogram(iv));
        iv.destroy();
        iv = newHistogram();
      }
    }
    rec.closeInterval(99, 0, 1000);
    ivCorrected.push(encodeHistogram(iv));
    expect(rec.e2e.totalCount).toBe(20_000);
    expect(encodeHistogram(rec.e2e)).toBe(encodeHistogram(corrected));
    expect(encodeHistogram(rec.e2eUncorrected)).toBe(encodeHistogram(uncorrected));
    expect(rec.intervals.map((i) => i.histogram)).toEqual(ivCorrected);
    for (const h of [corrected, uncorrected, iv]) h.destroy();
    rec.destroy();
  });
});
