/**
 * How drivers ride through faults (docs/faults.md, "Drivers under faults"): a broken consumer
 * stream or connection is re-established with capped exponential backoff and jitter, and an
 * unacknowledged publish is retried, until a give-up deadline. One policy object per run
 * (`ReconnectPolicy`, from the scenario's `reconnect:` block); absent, drivers behave as they
 * always did (a broken stream is a stream error, a failed publish is a publish error).
 *
 * Backoff: attempt n (1-based) waits `min(maxDelayMs, initialDelayMs · 2^(n−1))` scaled by a
 * random factor in [0.5, 1) ("equal jitter": never a busy loop, never two clients in lockstep).
 * With the defaults: about 50–100 ms, 100–200, 200–400, 400–800, 800–1600, then 1–2 s each.
 * The give-up deadline counts from the first failure of an outage and is reset by a success.
 */
import { LoadgenError } from "../errors.js";

export interface ReconnectPolicy {
  /** First wait after a failure (ms). */
  initialDelayMs: number;
  /** Cap of the wait between attempts (ms). */
  maxDelayMs: number;
  /** Give up when an outage lasted this long without a success (ms). */
  giveUpMs: number;
}

export const DEFAULT_RECONNECT: Omit<ReconnectPolicy, "giveUpMs"> = { initialDelayMs: 100, maxDelayMs: 2000 };

/** The broker stayed unreachable past the give-up deadline: the run ends with this error. */
export class ReconnectGaveUpError extends LoadgenError {
  readonly what: string;
  readonly outageMs: number;
  constructor(what: string, outageMs: number, options?: { cause?: unknown }) {
    const cause = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(`${what}: gave up reconnecting after ${Math.round(outageMs)} ms without a success (reconnect.giveUpSeconds)${cause}`, options);
    this.what = what;
    this.outageMs = outageMs;
  }
}

/** The wait before attempt `attempt` (1-based); `random` in [0, 1). */
export function backoffDelayMs(policy: Omit<ReconnectPolicy, "giveUpMs">, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return base * (0.5 + random() / 2);
}

/**
 * One outage at a time: `failed()` says how long to wait before the next attempt, or undefined
 * once the give-up deadline passed; `succeeded()` ends the outage. Time comes from `nowMs`.
 */
export class Backoff {
  private attempt = 0;
  private outageStartMs: number | undefined;

  constructor(
    private readonly policy: ReconnectPolicy,
    private readonly nowMs: () => number,
    private readonly random: () => number = Math.random,
  ) {}

  /** A failure: the wait before the next attempt (ms), or undefined when it is time to give up. */
  failed(): number | undefined {
    const now = this.nowMs();
    this.outageStartMs ??= now;
    if (now - this.outageStartMs >= this.policy.giveUpMs) return undefined;
    this.attempt++;
    return Math.min(backoffDelayMs(this.policy, this.attempt, this.random), Math.max(0, this.outageStartMs + this.policy.giveUpMs - now));
  }

  /** How long the current outage has lasted (0 when there is none). */
  outageMs(): number {
    return this.outageStartMs === undefined ? 0 : this.nowMs() - this.outageStartMs;
  }

  succeeded(): void {
    this.attempt = 0;
    this.outageStartMs = undefined;
  }

  get failures(): number {
    return this.attempt;
  }
}

/** Counts a driver keeps while it rides through faults (result.counts). */
export interface RetryCounts {
  /** Publish batches sent again after their ack did not arrive (stream broke, deadline, UNAVAILABLE). */
  publishRetries: number;
  /** Consumer streams or connections re-established after a break. */
  reconnects: number;
}

/** A timer the caller can cancel (the driver's close cancels every pending retry). */
export class RetryTimers {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  after(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
