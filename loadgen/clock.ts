/**
 * Clocks in microseconds. The monotonic clock is CLOCK_MONOTONIC (process.hrtime) so that two
 * generator processes on one machine agree; reads go through performance.now() (cheap, no
 * allocation) offset once to the hrtime base.
 */
import { performance } from "node:perf_hooks";

export interface Clock {
  /** Monotonic microseconds (fractional allowed). */
  nowUs(): number;
}

const hrtimeOffsetUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;

export const monotonicClock: Clock = {
  nowUs: () => hrtimeOffsetUs + performance.now() * 1000,
};

/** A clock that only moves when told to; for tests and simulations. */
export class FakeClock implements Clock {
  private us: number;
  constructor(startUs = 1_000_000) {
    this.us = startUs;
  }
  nowUs(): number {
    return this.us;
  }
  advanceUs(deltaUs: number): void {
    this.us += deltaUs;
  }
  setUs(us: number): void {
    this.us = us;
  }
}
