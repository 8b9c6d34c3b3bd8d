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

/**
 * Periodic work of the core (the lease/ack tick, the retention sweep), injectable so tests
 * drive it by hand. `every` returns the function that stops the repetition.
 */
export interface Timers {
  every(intervalMs: number, run: () => void): () => void;
}

/** Real timers: setInterval, unref'd so they never keep the process alive on their own. */
export const systemTimers: Timers = {
  every(intervalMs, run) {
    const handle = setInterval(run, intervalMs);
    handle.unref();
    return () => clearInterval(handle);
  },
};

/** Timers that run only when a test says so. */
export class ManualTimers implements Timers {
  private readonly jobs = new Set<{ intervalMs: number; run: () => void }>();
  every(intervalMs: number, run: () => void): () => void {
    const job = { intervalMs, run };
    this.jobs.add(job);
    return () => this.jobs.delete(job);
  }
  /** Runs every registered job once, or only those with this interval. */
  runAll(intervalMs?: number): void {
    for (const job of [...this.jobs]) if (intervalMs === undefined || job.intervalMs === intervalMs) job.run();
  }
  get size(): number {
    return this.jobs.size;
  }
}
