import { describe, expect, it } from "vitest";
import { FakeClock } from "./clock.js";

describe("clocks", () => {
  it("a fake clock moves its wall time with its monotonic time, and only when told", () => {
    const c = new FakeClock(5_000_000, Date.UTC(2025, 0, 1));
    expect(c.wallMs()).toBe(Date.UTC(2025, 0, 1));
    c.advanceUs(1_500_000);
    expect(c.nowUs()).toBe(6_500_000);
    expect(c.wallMs()).toBe(Date.UTC(2025, 0, 1) + 1500);
    expect(c.nowUs()).toBe(6_500_000);
  });
});
