import { TimerWheel } from "./timer-wheel.js";
import type { StoredMessage } from "./types.js";

/** Who holds a lease and is told when it runs out (the consumer it was delivered to). */
export interface LeaseHolder {
  onLeaseExpired(lease: Lease): void;
}

/**
 * One delivery of one message to one consumer, awaiting ack until its deadline (the tick it is
 * scheduled at). The table reuses a lease whose life is over (`LeaseTable.recycle`), so a lease is
 * valid only until its holder recycles it: a sink copies what it keeps (`snapshotLease`).
 */
export class Lease {
  // Its place on the deadline wheel (timer-wheel.ts).
  tick = -1;
  prev: Lease | undefined = undefined;
  next: Lease | undefined = undefined;
  constructor(
    /** Unique per delivery, broker-wide; 0 once recycled. */
    public ackId: number,
    public message: StoredMessage,
    /** 1 on first delivery. */
    public attempt: number,
    /** Counted against the holder's flow control (see messageBytes). */
    public bytes: number,
    public holder: LeaseHolder,
  ) {}

  get sequence(): number {
    return this.message.sequence;
  }
}

/** What a delivery was, kept past its lease's life (tests, recording sinks). */
export interface DeliveredLease {
  readonly ackId: number;
  readonly message: StoredMessage;
  readonly attempt: number;
  readonly bytes: number;
  readonly sequence: number;
}

export function snapshotLease(lease: Lease): DeliveredLease {
  return { ackId: lease.ackId, message: lease.message, attempt: lease.attempt, bytes: lease.bytes, sequence: lease.message.sequence };
}

/**
 * Leases kept for reuse at most (about 90 B each, 45 MiB): at ultimate about 450,000 leases are in
 * flight, swinging by more than the 65,536 this was between bursts; the leases made then were two
 * thirds of what the broker promoted to the old space.
 */
const MAX_FREE_LEASES = 1 << 19;
const NO_MESSAGE = { sequence: 0 } as StoredMessage;
const NO_HOLDER: LeaseHolder = { onLeaseExpired: () => undefined };

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
  /**
   * Leases whose life is over, reused by `lease`: at the massive scenario a lease lives as long as
   * a delivery's round trip, past two scavenges, so a new object per delivery was promoted to the
   * old space and collected there
   * (docs/performance.md, "Leases without hash tables or lazy-deletion arrays").
   */
  private readonly free: Lease[] = [];
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
    let lease = this.free.pop();
    if (lease) {
      lease.ackId = this.nextAckId++;
      lease.message = message;
      lease.attempt = attempt;
      lease.bytes = bytes;
      lease.holder = holder;
    } else {
      lease = new Lease(this.nextAckId++, message, attempt, bytes, holder);
    }
    this.deadlines.add(lease, deadlineMs);
    return lease;
  }

  /**
   * The lease's life is over (released, and its holder done reading it): the table may hand the
   * object out again. Throws for a lease still scheduled or recycled twice, either of which would
   * give two deliveries one object.
   */
  recycle(lease: Lease): void {
    if (lease.tick >= 0) throw new Error(`lease ${lease.ackId} recycled while it is still scheduled`);
    if (lease.ackId === 0) throw new Error("lease recycled twice");
    lease.ackId = 0;
    lease.message = NO_MESSAGE;
    lease.holder = NO_HOLDER;
    if (this.free.length < MAX_FREE_LEASES) this.free.push(lease);
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
