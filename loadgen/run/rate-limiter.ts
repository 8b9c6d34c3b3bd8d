/**
 * Open-loop rate control by intended send times (wrk2-style). Message i of a stream is
 * intended to leave at `startUs + i * intervalUs`, whatever happened to message i-1; a sender
 * that falls behind (a stalled broker, a full in-flight window) finds more messages due and
 * sends them late, and latency is measured from the intended time, so the stall is counted
 * (coordinated-omission-safe). No timer per message: the caller polls `due()` from one loop.
 */
import type { Clock } from "../clock.js";

export class RateLimiter {
  private readonly intervalUs: number;
  private issued = 0;

  /**
   * @param ratePerSecond messages per second; `Infinity` for unthrottled (every message is due
   *   now and its intended time is the time it is taken).
   * @param startUs intended time of message 0.
   * @param limit total messages this limiter will issue (Infinity for duration runs).
   */
  constructor(
    private readonly clock: Clock,
    readonly ratePerSecond: number,
    private readonly startUs: number,
    private readonly limit = Infinity,
  ) {
    this.intervalUs = Number.isFinite(ratePerSecond) ? 1e6 / ratePerSecond : 0;
  }

  get unthrottled(): boolean {
    return this.intervalUs === 0;
  }

  /** Messages issued so far. */
  get count(): number {
    return this.issued;
  }

  get exhausted(): boolean {
    return this.issued >= this.limit;
  }

  /** How many messages are due now (intended time <= now) and not yet taken. */
  due(nowUs = this.clock.nowUs()): number {
    const remaining = this.limit - this.issued;
    if (this.intervalUs === 0) return remaining;
    if (nowUs < this.startUs) return 0;
    const dueTotal = Math.floor((nowUs - this.startUs) / this.intervalUs) + 1;
    return Math.max(0, Math.min(remaining, dueTotal - this.issued));
  }

  /** True when `due` messages are all this limiter has left to issue. */
  finalDue(due: number): boolean {
    return this.issued + due >= this.limit;
  }

  /** Intended time of the next message to be taken. */
  nextIntendedUs(nowUs = this.clock.nowUs()): number {
    return this.intervalUs === 0 ? nowUs : this.startUs + this.issued * this.intervalUs;
  }

  /**
   * Take the next message and return its intended send time. Unthrottled: the intended time
   * is now (there is no schedule to fall behind).
   */
  take(nowUs: number): number {
    const t = this.intervalUs === 0 ? nowUs : this.startUs + this.issued * this.intervalUs;
    this.issued++;
    return t;
  }

  /** Microseconds until the next message is due (0 if one is due now). */
  waitUs(nowUs = this.clock.nowUs()): number {
    if (this.exhausted) return Infinity;
    if (this.intervalUs === 0) return 0;
    return Math.max(0, this.startUs + this.issued * this.intervalUs - nowUs);
  }
}
