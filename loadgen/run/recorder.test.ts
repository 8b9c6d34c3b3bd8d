import { afterEach, describe, expect, it } from "vitest";
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
