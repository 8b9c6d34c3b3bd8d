import type { Clock } from "./clock.js";
import { InvalidArgumentError } from "./errors.js";
import { FlowControl, type FlowLimits } from "./flow-control.js";
import { HeldLeases } from "./held-leases.js";
import type { Lease, LeaseHolder, LeaseTable } from "./lease-table.js";
import { MAX_DEADLINE_MS } from "./subscription-config.js";
import type { StoredMessage } from "./types.js";

/** The empty outbox, shared; never pushed to (see Consumer.outbox). */
const NO_LEASES: Lease[] = [];

/** Why the broker ended a consumer. */
export type ConsumerEndReason = "subscription_deleted" | "topic_deleted" | "shutdown";

/**
 * Where a consumer's deliveries go: the server implements it over a Consume stream.
 * `send` gets a batch of fresh leases (one frame) and returns false when the transport's
 * buffer is full; the server then calls `Consumer.resume()` once it drains. The leases and the
 * array are valid only during the call (the lease table reuses leases): a sink that keeps
 * anything keeps a copy (`snapshotLease`).
 */
export interface ConsumerSink {
  send(batch: Lease[]): boolean;
  end(reason: ConsumerEndReason): void;
  /**
   * Bytes the transport takes now before it counts as backed up (its outbound cap); absent =
   * unlimited. At 0 the consumer takes no deliveries, and the sink calls `Consumer.resume()`
   * when room returns. A frame always carries at least one message.
   */
  room?(): number;
}

/** The part of a subscription a consumer talks to. */
export interface ConsumerParent {
  readonly name: string;
  onAcked(lease: Lease): void;
  /** The lease ended without an ack: nack (`nacked`), expiry or the consumer leaving. */
  onUnacked(lease: Lease, nacked: boolean): void;
  requestPump(): void;
  detach(consumer: Consumer): void;
}

/** What one client frame asks for; ids it does not hold (unknown, expired, acked) are ignored. */
export interface ConsumerCommands {
  ackIds?: readonly number[];
  nackIds?: readonly number[];
  extend?: { ackIds: readonly number[]; extendMs: number };
}

/**
 * One Consume stream's share of a subscription: its leases (looked up by ack id, which is
 * only valid on the stream that received it), its flow control and its outgoing batch.
 */
export class Consumer implements LeaseHolder {
  readonly leases = new HeldLeases();
  readonly flow: FlowControl;
  /**
   * The frame being collected; NO_LEASES between pumps, so an idle consumer holds no array of
   * its own (at massive an array made at each flush lived until the consumer's next delivery,
   * long enough to be promoted to the old space).
   */
  private outbox: Lease[] = NO_LEASES;
  private outboxBytes = 0;
  private paused = false;
  private closed = false;

  constructor(
    readonly parent: ConsumerParent,
    readonly name: string,
    limits: FlowLimits,
    private readonly sink: ConsumerSink,
    private readonly table: LeaseTable,
    private readonly clock: Clock,
  ) {
    this.flow = new FlowControl(limits);
  }

  /** May take another delivery now (open, transport not backed up, limits not reached). */
  get ready(): boolean {
    return !this.paused && !this.closed && !this.flow.full && (this.sink.room?.() ?? Infinity) > 0;
  }

  /** One more message of `bytes` fits the frame being collected (the transport's room; the first always fits). */
  fitsOutbox(bytes: number): boolean {
    if (this.outboxBytes === 0 || !this.sink.room) return true;
    return this.outboxBytes + bytes <= this.sink.room();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Leases one message to this consumer; it goes out with the next `flush`. */
  deliver(message: StoredMessage, attempt: number, bytes: number, deadlineMs: number): void {
    const lease = this.table.lease(message, attempt, bytes, this, deadlineMs);
    this.leases.add(lease);
    this.flow.take(bytes);
    if (this.outbox === NO_LEASES) this.outbox = [];
    this.outbox.push(lease);
    this.outboxBytes += bytes;
  }

  /** Sends what `deliver` collected as one frame. */
  flush(): void {
    if (this.outbox.length === 0 || this.closed) return;
    const batch = this.outbox;
    this.outbox = NO_LEASES;
    this.outboxBytes = 0;
    if (!this.sink.send(batch)) this.paused = true;
  }

  /** The transport drained (or has room again): deliveries may flow again. */
  resume(): void {
    if (this.closed) return;
    this.paused = false;
    this.parent.requestPump();
  }

  /** Applies one client frame. Throws InvalidArgumentError for a bad extension. */
  handle(commands: ConsumerCommands): void {
    if (this.closed) return;
    let released = false;
    if (commands.ackIds) {
      for (const id of commands.ackIds) {
        const lease = this.take(id);
        if (lease) {
          this.parent.onAcked(lease);
          this.table.recycle(lease);
          released = true;
        }
      }
    }
    if (commands.nackIds) {
      for (const id of commands.nackIds) {
        const lease = this.take(id);
        if (lease) {
          this.parent.onUnacked(lease, true);
          this.table.recycle(lease);
          released = true;
        }
      }
    }
    if (commands.extend && commands.extend.ackIds.length > 0) {
      const ms = commands.extend.extendMs;
      if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_DEADLINE_MS) {
        throw new InvalidArgumentError("extend.extend_ms", `must be between 0 and ${MAX_DEADLINE_MS}, got ${ms}`);
      }
      const deadline = this.clock.nowMs() + ms;
      for (const id of commands.extend.ackIds) {
        const lease = this.leases.get(id);
        if (!lease) continue;
        if (ms === 0) {
          // A zero extension gives the message back at once (no backoff), as Pub/Sub's modAck 0.
          this.take(id);
          this.parent.onUnacked(lease, false);
          this.table.recycle(lease);
          released = true;
        } else {
          this.table.extend(lease, deadline);
        }
      }
    }
    if (released) this.parent.requestPump();
  }

  onLeaseExpired(lease: Lease): void {
    if (this.leases.delete(lease.ackId) !== undefined) {
      this.flow.release(lease.bytes);
      this.parent.onUnacked(lease, false);
      this.table.recycle(lease);
      this.parent.requestPump();
    }
  }

  /** The client went away: its leases go back to the subscription for redelivery. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.outbox = NO_LEASES;
    this.outboxBytes = 0;
    this.parent.detach(this);
  }

  /** The broker ends this consumer (the subscription or topic went away, or shutdown). */
  end(reason: ConsumerEndReason): void {
    if (this.closed) return;
    this.closed = true;
    this.outbox = NO_LEASES;
    this.outboxBytes = 0;
    for (const lease of this.leases.values()) {
      this.table.release(lease);
      this.table.recycle(lease);
    }
    this.leases.clear();
    this.flow.reset();
    this.sink.end(reason);
  }

  /** Hands every lease back (used by detach); the caller redelivers them, then recycles each. */
  drainLeases(): Lease[] {
    const leases = this.leases.values();
    for (const lease of leases) this.table.release(lease);
    this.leases.clear();
    this.flow.reset();
    return leases;
  }

  private take(id: number): Lease | undefined {
    const lease = this.leases.delete(id);
    if (!lease) return undefined;
    this.table.release(lease);
    this.flow.release(lease.bytes);
    return lease;
  }
}
