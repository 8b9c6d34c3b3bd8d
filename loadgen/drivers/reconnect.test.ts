import { describe, expect, it } from "vitest";
import { Backoff, backoffDelayMs, DEFAULT_RECONNECT } from "./reconnect.js";

describe("reconnect backoff", () => {
  it("doubles from the initial delay up to the cap, scaled by a jitter factor in [0.5, 1)", () => {
    const p = { initialDelayMs: 100, maxDelayMs: 2000 };
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelayMs(p, a, () => 0))).toEqual([50, 100, 200, 400, 800, 1000, 1000]);
    expect([1, 5, 9].map((a) => backoffDelayMs(p, a, () => 0.999999))).toEqual([100, 1600, 2000].map((v) => expect.closeTo(v, 0)));
    expect(DEFAULT_RECONNECT).toEqual(p);
  });

  it("gives up once an outage lasted giveUpMs, never waits past the deadline, and a success starts over", () => {
    let now = 0;
    const b = new Backoff({ initialDelayMs: 100, maxDelayMs: 2000, giveUpMs: 3000 }, () => now, () => 0.5);
    const waits: number[] = [];
    for (;;) {
      const w = b.failed();
      if (w === undefined) break;
      expect(w).toBeGreaterThan(0); // never a busy loop
      waits.push(w);
      now += w;
    }
    expect(now).toBe(3000);
    expect(waits).toEqual([75, 150, 300, 600, 1200, 675]); // the last one is cut to the deadline
    expect(b.outageMs()).toBe(3000);
    b.succeeded();
    expect(b.outageMs()).toBe(0);
    expect(b.failed()).toBe(75);
  });
});
