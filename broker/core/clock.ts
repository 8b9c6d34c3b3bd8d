/** Time source injected into everything that schedules or timestamps, so tests use a fake. */
export interface Clock {
  /** Unix time in milliseconds (publish timestamps). */
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

/** A clock tests move by hand. */
export class FakeClock implements Clock {
  constructor(private ms = 1_700_000_000_000) {}
  nowMs(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}
