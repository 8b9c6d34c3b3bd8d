/**
 * Delivery accounting: for every subscription and every (producer, topic) stream feeding it,
 * which sequence numbers arrived. One bit per expected message per subscription (a growable
 * bitmap), so 100M expected deliveries cost about 12.5 MB, and the counts are exact:
 *
 *  - delivered  unique sequences received
 *  - duplicates receptions of a sequence already received (redeliveries included)
 *  - outOfOrder receptions of a sequence lower than the highest already received on that stream
 *  - lost       acknowledged but never delivered, per subscription, judged after the drain
 *
 * A publish counts as acknowledged only when its ack arrived. What a producer sent but never saw
 * acknowledged (a batch that failed, or the part a broker refused) is declared with
 * `addUnacked` as a range of its stream's sequences; it is expected by nobody, and after the
 * drain it is either `unackedDelivered` (it reached the subscription anyway) or
 * `unackedUndelivered` (it did not: not a loss, since nobody promised it). Without unacked
 * ranges the figures are what they always were.
 *
 * Competing consumers of one subscription share its streams, and a producer's concurrent
 * publish calls may be stored in another order than sent; both make `outOfOrder` non-zero
 * without any broker fault, so the gate on ordering is opt-in.
 */

class StreamBits {
  bits: Uint8Array;
  maxSeen = -1;
  unique = 0;
  constructor(initialBytes: number) {
    this.bits = new Uint8Array(initialBytes);
  }
  /** Returns 0 new in order, 1 new out of order, 2 duplicate. */
  mark(seq: number): 0 | 1 | 2 {
    const byte = seq >>> 3;
    if (byte >= this.bits.length) {
      let size = this.bits.length * 2;
      while (size <= byte) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.bits);
      this.bits = grown;
    }
    const mask = 1 << (seq & 7);
    if ((this.bits[byte]! & mask) !== 0) return 2;
    this.bits[byte]! |= mask;
    this.unique++;
    if (seq > this.maxSeen) {
      this.maxSeen = seq;
      return 0;
    }
    return 1;
  }
}

export interface AccountingTotals {
  /** Expected deliveries (sum over subscriptions of messages published to their topic). */
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  /** Deliveries with attempt > 1 (v2 redeliveries); they also count as duplicates if repeated. */
  redelivered: number;
  /** Payloads that were not generator messages or named an unknown stream. */
  foreign: number;
  /** Subscriptions that received every expected message. */
  completeSubscriptions: number;
  subscriptions: number;
  /** Deliveries (unique, per subscription) of messages whose publish was never acknowledged. */
  unackedDelivered: number;
  /** Messages never acknowledged and never delivered, per subscription: not a loss, reported apart. */
  unackedUndelivered: number;
}

/** Messages `firstSeq .. firstSeq+count-1` of producer `producer`'s stream on `topic` were never acknowledged. */
export interface UnackedRange {
  topic: number;
  /** The producer's id (ProducerPlan.id). */
  producer: number;
  firstSeq: number;
  count: number;
}

export class Accounting {
  private readonly streams: (StreamBits | undefined)[][];
  private readonly topicOf: Int32Array;
  private readonly expectedByTopic: Float64Array;
  private delivered = 0;
  private duplicates = 0;
  private outOfOrder = 0;
  private redelivered = 0;
  private foreign = 0;
  /** Unacked ranges per topic, then per producer stream slot: [firstSeq, count] pairs. */
  private readonly unacked = new Map<number, Map<number, number[]>>();
  private readonly unackedByTopic: Float64Array;
  private readonly unackedDeliveredBySub: Float64Array;
  private unackedDeliveredTotal = 0;

  /**
   * @param subscriptionTopics topic index of each subscription slot (slot = position).
   * @param streamsPerTopic how many producer streams feed each topic.
   * @param expectedBytesPerStream initial bitmap size hint (expected messages / 8).
   */
  constructor(
    subscriptionTopics: readonly number[],
    streamsPerTopic: (topic: number) => number,
    topicCount: number,
    private readonly expectedBytesPerStream = 16,
  ) {
    this.topicOf = Int32Array.from(subscriptionTopics);
    this.streams = subscriptionTopics.map((t) => new Array<StreamBits | undefined>(streamsPerTopic(t)));
    this.expectedByTopic = new Float64Array(topicCount);
    this.unackedByTopic = new Float64Array(topicCount);
    this.unackedDeliveredBySub = new Float64Array(subscriptionTopics.length);
  }

  /**
   * Declare messages sent but never acknowledged: sequences `firstSeq .. firstSeq+count-1` of
   * stream `slot` (the producer's slot within the topic). Deliveries of them, before or after
   * this call, count as `unackedDelivered`, never as deliveries of expected messages.
   */
  addUnacked(topic: number, slot: number, firstSeq: number, count: number): void {
    if (count <= 0) return;
    let byStream = this.unacked.get(topic);
    if (!byStream) this.unacked.set(topic, (byStream = new Map<number, number[]>()));
    let ranges = byStream.get(slot);
    if (!ranges) byStream.set(slot, (ranges = []));
    ranges.push(firstSeq, count);
    this.unackedByTopic[topic] = this.unackedByTopic[topic]! + count;
    for (let sub = 0; sub < this.topicOf.length; sub++) {
      if (this.topicOf[sub] !== topic) continue;
      const bits = this.streams[sub]![slot]?.bits;
      if (!bits) continue;
      let seen = 0;
      for (let seq = firstSeq; seq < firstSeq + count; seq++) if ((seq >>> 3) < bits.length && (bits[seq >>> 3]! & (1 << (seq & 7))) !== 0) seen++;
      this.unackedDeliveredBySub[sub] = this.unackedDeliveredBySub[sub]! + seen;
      this.unackedDeliveredTotal += seen;
    }
  }

  private isUnacked(topic: number, slot: number, seq: number): boolean {
    const ranges = this.unacked.get(topic)?.get(slot);
    if (!ranges) return false;
    for (let i = 0; i < ranges.length; i += 2) if (seq >= ranges[i]! && seq < ranges[i]! + ranges[i + 1]!) return true;
    return false;
  }

  /** Declare messages published (acknowledged by the broker) on a topic: they are now expected. */
  addPublished(topic: number, count: number): void {
    this.expectedByTopic[topic] = this.expectedByTopic[topic]! + count;
  }

  /**
   * Record one reception on subscription slot `sub` of stream `slot` (the producer's slot within
   * the topic). Returns false for a duplicate.
   */
  record(sub: number, slot: number, seq: number, attempt: number): boolean {
    const row = this.streams[sub];
    if (row === undefined || slot >= row.length || slot < 0) {
      this.foreign++;
      return false;
    }
    let s = row[slot];
    if (s === undefined) s = row[slot] = new StreamBits(Math.max(16, Math.min(1 << 20, Math.ceil(this.expectedBytesPerStream))));
    if (attempt > 1) this.redelivered++;
    const r = s.mark(seq);
    if (r === 2) {
      this.duplicates++;
      return false;
    }
    this.delivered++;
    if (r === 1) this.outOfOrder++;
    if (this.unacked.size > 0 && this.isUnacked(this.topicOf[sub]!, slot, seq)) {
      this.unackedDeliveredBySub[sub] = this.unackedDeliveredBySub[sub]! + 1;
      this.unackedDeliveredTotal++;
    }
    return true;
  }

  recordForeign(): void {
    this.foreign++;
  }

  /** Unique deliveries so far. */
  get deliveredCount(): number {
    return this.delivered;
  }

  /** Unique deliveries of acknowledged (expected) messages so far: what the drain waits for. */
  get deliveredExpectedCount(): number {
    return this.delivered - this.unackedDeliveredTotal;
  }

  /** Expected deliveries given what was published so far. */
  get expectedCount(): number {
    let n = 0;
    for (let i = 0; i < this.topicOf.length; i++) n += this.expectedByTopic[this.topicOf[i]!]!;
    return n;
  }

  /** Subscription slots that have not yet received every expected delivery. */
  incompleteSubscriptions(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.topicOf.length; i++) {
      let got = -this.unackedDeliveredBySub[i]!;
      for (const s of this.streams[i]!) got += s?.unique ?? 0;
      if (got < this.expectedByTopic[this.topicOf[i]!]!) out.push(i);
    }
    return out;
  }

  totals(): AccountingTotals {
    let complete = 0;
    let lost = 0;
    let unackedUndelivered = 0;
    for (let i = 0; i < this.topicOf.length; i++) {
      const topic = this.topicOf[i]!;
      const expected = this.expectedByTopic[topic]!;
      const unackedGot = this.unackedDeliveredBySub[i]!;
      let got = -unackedGot;
      for (const s of this.streams[i]!) got += s?.unique ?? 0;
      if (got >= expected) complete++;
      else lost += expected - got;
      unackedUndelivered += this.unackedByTopic[topic]! - unackedGot;
    }
    const expected = this.expectedCount;
    return {
      expected,
      delivered: this.delivered,
      lost,
      duplicates: this.duplicates,
      outOfOrder: this.outOfOrder,
      redelivered: this.redelivered,
      foreign: this.foreign,
      completeSubscriptions: complete,
      subscriptions: this.topicOf.length,
      unackedDelivered: this.unackedDeliveredTotal,
      unackedUndelivered,
    };
  }
}
