import { describe, expect, it } from "vitest";
import { FakeClock } from "../clock.js";
import { RateLimiter } from "./rate-limiter.js";
import { Recorder } from "./recorder.js";

describe("RateLimiter", () => {
  it("issues messages at intended times spaced by 1/rate", () => {
    const clock = new FakeClock(0);
    const rl = new RateLimiter(clock, 1000, 0);
    expect(rl.due(0)).toBe(1);
    expect(rl.take(0)).toBe(0);
    expect(rl.due(0)).toBe(0);
    expect(rl.waitUs(0)).toBe(1000);
    expect(rl.due(4500)).toBe(4); // intended 1000, 2000, 3000, 4000
    expect([rl.take(4500), rl.take(4500)]).toEqual([1000, 2000]);
    expect(rl.due(4500)).toBe(2);
  });

  it("keeps the schedule when the sender falls behind (open loop)", () => {
    const clock = new FakeClock(0);
    const rl = new RateLimiter(clock, 100, 0);
    // Nothing taken for 1 s: 101 messages are due, with their original intended times.
    expect(rl.due(1_000_000)).toBe(101);
    const intended = Array.from({ length: 101 }, () => rl.take(1_000_000));
    expect(intended[0]).toBe(0);
    expect(intended[100]).toBe(1_000_000);
  });

  it("stops at its limit", () => {
    const rl = new RateLimiter(new FakeClock(0), 1000, 0, 3);
    expect(rl.due(10_000_000)).toBe(3);
    rl.take(1);
    rl.take(2);
    rl.take(3);
    expect(rl.exhausted).toBe(true);
    expect(rl.due(20_000_000)).toBe(0);
    expect(rl.waitUs(0)).toBe(Infinity);
  });

  it("treats unthrottled messages as intended when taken", () => {
    const rl = new RateLimiter(new FakeClock(0), Infinity, 0, 5);
    expect(rl.unthrottled).toBe(true);
    expect(rl.due(7)).toBe(5);
    expect(rl.take(7)).toBe(7);
  });
});

describe("coordinated-omission correction", () => {
  /**
   * A closed-loop sender (one request in flight) at 1000 msg/s for 10 s against a service that
   * answers in 100 µs, except once, at t = 5 s, when it stalls for 1 s.
   */
  function simulate(): Recorder {
    const clock = new FakeClock(0);
    const rl = new RateLimiter(clock, 1000, 0, 10_000);
    const rec = new Recorder();
    rec.phase = "measure";
    rec.measuring = true;
    let stalled = false;
    while (!rl.exhausted) {
      const now = clock.nowUs();
      if (rl.due(now) === 0) {
        clock.advanceUs(rl.waitUs(now));
        continue;
      }
      const intended = rl.take(now);
      const sentUs = now;
      const serviceUs = !stalled && now >= 5_000_000 ? 1_000_000 : 100;
      if (serviceUs > 100) stalled = true;
      clock.advanceUs(serviceUs);
      const done = clock.nowUs();
      rec.recordDelivery(done - intended, done - sentUs, false);
    }
    return rec;
  }

  it("shows a 1 s stall in the corrected p99 and not in the uncorrected p99", () => {
    const rec = simulate();
    expect(rec.e2e.totalCount).toBe(10_000);
    // About 1000 messages were intended during the stall and waited for it.
    expect(rec.e2e.getValueAtPercentile(99)).toBeGreaterThan(800_000);
    expect(rec.e2e.getValueAtPercentile(50)).toBeLessThan(1_000);
    // The uncorrected view saw one slow request among 10,000.
    expect(rec.e2eUncorrected.getValueAtPercentile(99)).toBeLessThan(1_000);
    expect(rec.e2eUncorrected.maxValue).toBeGreaterThanOrEqual(999_000);
  });
});
