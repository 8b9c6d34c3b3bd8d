import { TimerWheel } from "./timer-wheel.js";
import type { StoredMessage } from "./types.js";

/** Who holds a lease and is told when it runs out (the consumer it was delivered to). */
export interface LeaseHolder {
  onLeaseExpired(lease: Lease): void;
}

/** One delivery of one message to one consumer, awaiting ack until its deadline (the tick it is scheduled at). */
export class Lease {
  // Its place on the deadline wheel (timer-wheel.ts).
  tick = -1;
  prev: Lease | undefined = undefined;
  next: Lease | undefined = undefined;
  constructor(
    /** Unique per delivery, broker-wide. */
    readonly ackId: number,
    readonly message: StoredMessage,
    /** 1 on first delivery. */
    readonly attempt: number,
    /** Counted against the holder's flow control (see messageBytes). */
    readonly bytes: number,
    readonly holder: LeaseHolder,
  ) {}

  get sequence(): number {
    return this.message.sequence;
  }
}

/** Who is told when a delayed redelivery (nack backoff) is due. */
export interface RetryOwner {
  onRetryDue(retry: PendingRetry): void;
}

/** A nacked message waiting out its backoff before it may be delivered again. */
export class PendingRetry {
  // Its place on the retry wheel (timer-wheel.ts).
  tick = -1;
  prev: PendingRetry | undefined = undefined;
  next: PendingRetry | undefined = undefined;
  constructor(
    readonly owner: RetryOwner,
    readonly sequence: number,
    /** Deliveries made so far. */
    readonly attempts: number,
  ) {}
}

export const DEFAULT_LEASE_TICK_MS = 25;

/**
 * Every lease deadline and every nack backoff of the broker, on two timer wheels swept by
 * one periodic call (`sweep(now)`): no timer per message. Ack ids are looked up by the
 * consumer that holds them; this table only keeps time.
 */
export class LeaseTable {
  private nextAckId = 1;
  private readonly deadlines: TimerWheel<Lease>;
  private readonly retries: TimerWheel<PendingRetry>;

  constructor(tickMs = DEFAULT_LEASE_TICK_MS) {
    this.deadlines = new TimerWheel(tickMs);
    this.retries = new TimerWheel(tickMs);
  }

  /** Leases awaiting ack. */
  get size(): number {
    return this.deadlines.size;
  }

  get pendingRetries(): number {
    return this.retries.size;
  }

  lease(message: StoredMessage, attempt: number, bytes: number, holder: LeaseHolder, deadlineMs: number): Lease {
    const lease = new Lease(this.nextAckId++, message, attempt, bytes, holder);
    this.deadlines.add(lease, deadlineMs);
    return lease;
  }

  /** The lease ended (ack, nack, holder gone); returns false when it had already ended. */
  release(lease: Lease): boolean {
    return this.deadlines.remove(lease);
  }

  extend(lease: Lease, deadlineMs: number): void {
    this.deadlines.reschedule(lease, deadlineMs);
  }

  retryAt(retry: PendingRetry, atMs: number): void {
    this.retries.add(retry, atMs);
  }

  cancelRetry(retry: PendingRetry): void {
    this.retries.remove(retry);
  }

  /** Expires every lease past its deadline and releases every retry whose backoff is over. */
  sweep(nowMs: number): void {
    this.deadlines.expire(nowMs, (lease) => lease.holder.onLeaseExpired(lease));
    this.retries.expire(nowMs, (retry) => retry.owner.onRetryDue(retry));
  }
}
