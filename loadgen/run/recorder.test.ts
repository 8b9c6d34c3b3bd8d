import { afterEach, describe, expect, it } from "vitest";
import { Recorder } from "./recorder.js";

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
});
