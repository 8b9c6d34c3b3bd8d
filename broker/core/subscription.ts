import { AckSet } from "./ack-set.js";
import type { Clock } from "./clock.js";
import { Consumer, type ConsumerEndReason, type ConsumerParent, type ConsumerSink } from "./consumer.js";
import type { FlowLimits } from "./flow-control.js";
import { PendingRetry, type Lease, type LeaseTable, type RetryOwner } from "./lease-table.js";
import { SeqHeap } from "./seq-heap.js";
import { nackBackoffMs } from "./subscription-config.js";
import type { TopicSubscriber } from "./topic.js";
import { messageBytes, type AckState, type StoredMessage, type SubscriptionConfig, type SubscriptionRecord } from "./types.js";

/** Broker-wide delivery counters, shared by every subscription (statistics). */
export interface DeliveryTotals {
  delivered: number;
  redelivered: number;
  acked: number;
  deadLettered: number;
}

/** What a subscription needs from its surroundings: narrow on purpose, so tests fake it. */
export interface SubscriptionHost {
  readonly clock: Clock;
  readonly leases: LeaseTable;
  readonly totals: DeliveryTotals;
  /** The committed message, if still retained. */
  get(topic: string, sequence: number): StoredMessage | undefined;
  /** Oldest retained sequence of the topic. */
  firstRetained(topic: string): number;
  /** Run `sub.pump()` soon; called at most once until the pump runs. */
  schedulePump(sub: Subscription): void;
  /** The ack state changed; called once until the host calls `takeAckChanges()`. */
  ackStateDirty(sub: Subscription): void;
  /** Publish a copy to the dead-letter topic; resolves once committed. */
  deadLetter(sub: Subscription, message: StoredMessage, attempts: number): Promise<void>;
  /** The topic went away under the subscription. */
  topicDeleted(sub: Subscription): void;
}

export interface SubscriptionStatsSnapshot {
  backlog: number;
  inFlight: number;
  delivered: number;
  redelivered: number;
  acked: number;
  deadLettered: number;
  consumerCount: number;
  ackFloor: number;
  nextSequence: number;
}

/** Competing consumers take turns in runs of this many messages, so one fast consumer with
 * large limits cannot take a whole backlog while the others sit idle. */
const CHUNK_PER_CONSUMER = 64;

/**
 * A durable cursor on one topic: ack state (floor + sparse acks), the next never-delivered
 * sequence, messages waiting for redelivery and the consumers sharing it.
 *
 * Dispatch order: waiting redeliveries first (lowest sequence first), then new messages in
 * sequence order. Competing consumers take turns in chunks; a message is leased to exactly
 * one consumer at a time.
 */
export class Subscription implements TopicSubscriber, ConsumerParent, RetryOwner {
  private readonly acks: AckSet;
  private nextSequence: number;
  private lastCommitted: number;
  private readonly redeliveries = new SeqHeap();
  /**
   * Deliveries made so far of each message waiting in `redeliveries`; made on the first
   * redelivery (an empty Map's table is about 150 B, at 100,000 subscriptions 15 MB).
   */
  private attempts: Map<number, number> | undefined;
  private consumers: Consumer[] = [];
  private turn = 0;
  private pumpQueued = false;
  private ackDirty = false;
  private floorMoved = false;
  private exhausted = false;
  private waitingBackoff = 0;
  private deadLettering = 0;
  private closed = false;
  private readonly counts = { delivered: 0, redelivered: 0, acked: 0, deadLettered: 0 };

  constructor(
    readonly record: SubscriptionRecord,
    acks: AckState,
    lastCommitted: number,
    private readonly host: SubscriptionHost,
  ) {
    this.acks = new AckSet(acks.floor, acks.above);
    this.nextSequence = this.acks.floor + 1;
    this.lastCommitted = lastCommitted;
  }

  get name(): string {
    return this.record.name;
  }

  get topic(): string {
    return this.record.topic;
  }

  get config(): SubscriptionConfig {
    return this.record.config;
  }

  get consumerCount(): number {
    return this.consumers.length;
  }

  // ------------------------------------------------------------------ TopicSubscriber

  onAppend(lastSequence: number): void {
    if (lastSequence > this.lastCommitted) this.lastCommitted = lastSequence;
    if (this.consumers.length > 0) this.requestPump();
  }

  ackFloor(): number {
    return this.acks.floor;
  }

  onTopicDeleted(): void {
    this.host.topicDeleted(this);
  }

  // ------------------------------------------------------------------ consumers

  attach(name: string, limits: FlowLimits, sink: ConsumerSink): Consumer {
    const consumer = new Consumer(this, name, limits, sink, this.host.leases, this.host.clock);
    // The usual single consumer in an array of its size (a push onto [] reserves 17 slots, 136 B).
    if (this.consumers.length === 0) this.consumers = [consumer];
    else this.consumers.push(consumer);
    this.requestPump();
    return consumer;
  }

  detach(consumer: Consumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i < 0) return;
    this.consumers.splice(i, 1);
    // A consumer leaving counts as a failed delivery of everything it held.
    for (const lease of consumer.drainLeases()) {
      this.retry(lease.sequence, lease.attempt, false);
      this.host.leases.recycle(lease);
    }
    this.requestPump();
  }

  requestPump(): void {
    if (this.pumpQueued || this.closed) return;
    this.pumpQueued = true;
    this.host.schedulePump(this);
  }

  /** Hands out as much as the consumers' limits allow, one frame per consumer. */
  pump(): void {
    this.pumpQueued = false;
    if (this.closed || this.consumers.length === 0) return;
    this.skipDiscarded();
    const consumers = this.consumers;
    const n = consumers.length;
    const first = this.turn++ % n;
    const deadline = this.host.clock.nowMs() + this.config.ackDeadlineMs;
    this.exhausted = false;
    let progress = true;
    while (progress && !this.exhausted) {
      progress = false;
      for (let i = 0; i < n && !this.exhausted; i++) {
        const consumer = consumers[(first + i) % n]!;
        if (consumer.ready && this.fill(consumer, n === 1 ? Infinity : CHUNK_PER_CONSUMER, deadline) > 0) progress = true;
      }
    }
    for (const consumer of consumers) consumer.flush();
  }

  // ------------------------------------------------------------------ acks and redelivery

  onAcked(lease: Lease): void {
    this.counts.acked++;
    this.host.totals.acked++;
    this.settle(lease.sequence);
  }

  onUnacked(lease: Lease, nacked: boolean): void {
    this.retry(lease.sequence, lease.attempt, nacked);
  }

  onRetryDue(retry: PendingRetry): void {
    this.waitingBackoff--;
    if (this.closed) return;
    this.enqueue(retry.sequence, retry.attempts);
  }

  /** Ack state to persist; clears the dirty mark. `floorMoved`: retention may free messages. */
  takeAckChanges(): { state: AckState; floorMoved: boolean } {
    const floorMoved = this.floorMoved;
    this.ackDirty = false;
    this.floorMoved = false;
    return { state: this.acks.snapshot(), floorMoved };
  }

  stats(): SubscriptionStatsSnapshot {
    return {
      backlog: this.backlog(this.host.firstRetained(this.topic)),
      inFlight: this.inFlight(),
      ...this.counts,
      consumerCount: this.consumers.length,
      ackFloor: this.acks.floor,
      nextSequence: this.nextSequence,
    };
  }

  /** Retained messages not yet acked, given the topic's oldest retained sequence. */
  backlog(firstRetained: number): number {
    // Sparse acks are always of committed messages, so all of them count against the backlog.
    return Math.max(0, this.lastCommitted - Math.max(this.acks.floor, firstRetained - 1) - this.acks.sparseCount);
  }

  inFlight(): number {
    let n = 0;
    for (const c of this.consumers) n += c.leases.size;
    return n;
  }

  /** Messages waiting for redelivery or backoff, or being dead-lettered (tests, stats). */
  get pendingRedeliveries(): number {
    return this.redeliveries.size + this.waitingBackoff + this.deadLettering;
  }

  /** Ends every consumer; the subscription takes no further part in delivery. */
  close(reason: ConsumerEndReason): void {
    if (this.closed) return;
    this.closed = true;
    const consumers = this.consumers;
    this.consumers = [];
    for (const c of consumers) c.end(reason);
    this.redeliveries.clear();
    this.attempts = undefined;
  }

  // ------------------------------------------------------------------ internals

  /** Leases up to `limit` messages to `consumer`; sets `exhausted` when nothing is left. */
  private fill(consumer: Consumer, limit: number, deadlineMs: number): number {
    let taken = 0;
    while (taken < limit) {
      let sequence = this.redeliveries.peek();
      const redelivery = sequence !== undefined;
      if (sequence === undefined) {
        while (this.nextSequence <= this.lastCommitted && this.acks.has(this.nextSequence)) this.nextSequence++;
        if (this.nextSequence > this.lastCommitted) {
          this.exhausted = true;
          return taken;
        }
        sequence = this.nextSequence;
      }
      const message = this.host.get(this.topic, sequence);
      if (!message) {
        // Dropped by limits retention before this subscription got to it: counts as done.
        if (redelivery) this.takeRedelivery();
        else this.nextSequence++;
        this.settle(sequence);
        continue;
      }
      const bytes = messageBytes(message);
      if (!consumer.flow.fits(bytes) || !consumer.fitsOutbox(bytes)) return taken;
      let attempt = 1;
      if (redelivery) {
        attempt = this.takeRedelivery() + 1;
        this.counts.redelivered++;
        this.host.totals.redelivered++;
      } else {
        this.nextSequence++;
      }
      this.counts.delivered++;
      this.host.totals.delivered++;
      consumer.deliver(message, attempt, bytes, deadlineMs);
      taken++;
    }
    return taken;
  }

  private takeRedelivery(): number {
    const sequence = this.redeliveries.pop()!;
    const attempts = this.attempts?.get(sequence) ?? 0;
    this.attempts?.delete(sequence);
    return attempts;
  }

  /** A delivery failed (nack, expiry, disconnect): dead-letter, back off or queue it again. */
  private retry(sequence: number, attempts: number, nacked: boolean): void {
    if (this.closed) return;
    const { maxDeliveries, deadLetterTopic } = this.config;
    if (maxDeliveries > 0 && attempts >= maxDeliveries && deadLetterTopic !== "") {
      this.deadLetter(sequence, attempts);
      return;
    }
    const delayMs = nacked ? nackBackoffMs(this.config, attempts) : 0;
    if (delayMs > 0) {
      this.waitingBackoff++;
      this.host.leases.retryAt(new PendingRetry(this, sequence, attempts), this.host.clock.nowMs() + delayMs);
      return;
    }
    this.enqueue(sequence, attempts);
  }

  private enqueue(sequence: number, attempts: number): void {
    if (this.acks.has(sequence)) return;
    (this.attempts ??= new Map()).set(sequence, attempts);
    this.redeliveries.push(sequence);
    if (this.consumers.length > 0) this.requestPump();
  }

  private deadLetter(sequence: number, attempts: number): void {
    const message = this.host.get(this.topic, sequence);
    if (!message) {
      this.settle(sequence);
      return;
    }
    this.deadLettering++;
    this.host.deadLetter(this, message, attempts).then(
      () => {
        this.deadLettering--;
        if (this.closed) return;
        this.counts.deadLettered++;
        this.host.totals.deadLettered++;
        this.settle(sequence);
      },
      () => {
        // The dead-letter topic refused (gone, budget full): the message stays here and is
        // delivered again, so nothing is lost; the next failed delivery tries again.
        this.deadLettering--;
        this.enqueue(sequence, attempts);
      },
    );
  }

  /** The subscription is done with `sequence` (acked, dead-lettered or dropped by retention). */
  private settle(sequence: number): void {
    const moved = this.acks.ack(sequence);
    this.markAckDirty(moved);
  }

  private skipDiscarded(): void {
    const first = this.host.firstRetained(this.topic);
    if (this.acks.skipTo(first - 1)) this.markAckDirty(true);
    if (this.nextSequence < first) this.nextSequence = first;
  }

  private markAckDirty(floorMoved: boolean): void {
    if (floorMoved) this.floorMoved = true;
    if (this.ackDirty) return;
    this.ackDirty = true;
    this.host.ackStateDirty(this);
  }
}
