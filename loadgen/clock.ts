/**
 * The load generator's one clock, injected everywhere that reads time: the runner, producers,
 * rate limiters, the sampler, drivers (deadlines, ack timeouts), bench and bench-suite. Nothing
 * else in loadgen reads Date.now(), performance.now() or process.hrtime.
 *
 * Two readings: `nowUs()` is monotonic microseconds for every duration and latency; the
 * monotonic clock is CLOCK_MONOTONIC (process.hrtime) so that two generator processes on one
 * machine agree, read through performance.now() (cheap, no allocation) offset once to the hrtime
 * base. `wallMs()` is epoch milliseconds, only for timestamps (startedAt, interval stamps, gRPC
 * deadlines, a shard start time agreed between processes).
 */
import { performance } from "node:perf_hooks";

export interface Clock {
  /** Monotonic microseconds (fractional allowed). */
  nowUs(): number;
  /** Wall-clock epoch milliseconds. */
  wallMs(): number;
}

const hrtimeOffsetUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;

export const systemClock: Clock = {
  nowUs: () => hrtimeOffsetUs + performance.now() * 1000,
  wallMs: () => Date.now(),
};

/** A clock that only moves when told to; for tests and simulations. Wall time moves with it. */
export class FakeClock implements Clock {
  private us: number;
  private readonly startUs: number;
  constructor(
    startUs = 1_000_000,
    private readonly wallStartMs = Date.UTC(2025, 0, 1),
  ) {
    this.us = startUs;
    this.startUs = startUs;
  }
  nowUs(): number {
    return this.us;
  }
  wallMs(): number {
    return this.wallStartMs + (this.us - this.startUs) / 1000;
  }
  advanceUs(deltaUs: number): void {
    this.us += deltaUs;
  }
  setUs(us: number): void {
    this.us = us;
  }
}
