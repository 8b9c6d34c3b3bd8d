import { messageBytes, type AckState, type StoredMessage, type SubscriptionRecord, type TopicRecord } from "./records.js";
import type { DedupRecord, LogBounds, RecoveredState, Store } from "./store.js";

/** One topic's retained messages: a deque indexed by sequence. */
class MemoryLog {
  private items: (StoredMessage | undefined)[] = [];
  private head = 0; // index of `first` in items
  first = 1;
  last = 0;
  bytes = 0;

  append(messages: readonly StoredMessage[]): void {
    // All or nothing: check the whole batch before storing any of it.
    messages.forEach((m, i) => {
      if (m.sequence !== this.last + 1 + i) {
        throw new Error(`append out of order: got sequence ${m.sequence}, expected ${this.last + 1 + i}`);
      }
    });
    for (const m of messages) {
      this.items.push(m);
      this.last = m.sequence;
      this.bytes += messageBytes(m);
    }
  }

  get(sequence: number): StoredMessage | undefined {
    if (sequence < this.first || sequence > this.last) return undefined;
    return this.items[this.head + (sequence - this.first)];
  }

  truncateBefore(sequence: number): void {
    const stop = Math.min(sequence, this.last + 1);
    while (this.first < stop) {
      const m = this.items[this.head];
      if (m) this.bytes -= messageBytes(m);
      this.items[this.head] = undefined;
      this.head++;
      this.first++;
    }
    // Compact once the dead prefix is most of the array, so memory returns to baseline.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  sequenceAtTime(timestampMs: number): number {
    // Publish times never decrease along the log: binary search.
    let lo = this.first;
    let hi = this.last + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const m = this.get(mid);
      if (m && m.publishTimeMs >= timestampMs) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/** Retained messages with producer ids, within the window measured back from the newest. */
function retainedProducerIds(topic: string, log: MemoryLog, windowMs: number): DedupRecord[] {
  const newest = log.get(log.last);
  if (!newest) return [];
  const out: DedupRecord[] = [];
  for (let seq = log.sequenceAtTime(newest.publishTimeMs - windowMs); seq <= log.last; seq++) {
    const m = log.get(seq);
    if (m?.producerId) out.push({ topic, id: m.id, sequence: m.sequence, publishTimeMs: m.publishTimeMs });
  }
  return out;
}

/**
 * Memory store: the default. Everything lives in process memory and is gone at exit;
 * `recover()` returns what this instance holds (useful for tests of restart logic).
 */
export class MemoryStore implements Store {
  readonly kind = "memory" as const;
  readonly fsync = false;
  private readonly topics = new Map<string, { record: TopicRecord; log: MemoryLog }>();
  private readonly subscriptions = new Map<string, { record: SubscriptionRecord; acks: AckState }>();
  private totalBytes = 0;

  recover(): RecoveredState {
    return {
      topics: [...this.topics.values()].map((t) => t.record),
      subscriptions: [...this.subscriptions.values()].map((s) => ({ record: s.record, acks: { floor: s.acks.floor, above: [...s.acks.above] } })),
      dedup: [...this.topics.values()].flatMap((t) => retainedProducerIds(t.record.name, t.log, t.record.config.dedupWindowMs)),
    };
  }

  async putTopic(topic: TopicRecord): Promise<void> {
    const existing = this.topics.get(topic.name);
    if (existing) existing.record = topic;
    else this.topics.set(topic.name, { record: topic, log: new MemoryLog() });
  }

  async deleteTopic(name: string): Promise<void> {
    const t = this.topics.get(name);
    if (!t) return;
    this.totalBytes -= t.log.bytes;
    this.topics.delete(name);
  }

  async append(topic: string, messages: readonly StoredMessage[]): Promise<void> {
    const log = this.log(topic);
    const before = log.bytes;
    log.append(messages);
    this.totalBytes += log.bytes - before;
  }

  get(topic: string, sequence: number): StoredMessage | undefined {
    return this.topics.get(topic)?.log.get(sequence);
  }

  bounds(topic: string): LogBounds {
    const log = this.log(topic);
    return { first: log.first, last: log.last, bytes: log.bytes };
  }

  sequenceAtTime(topic: string, timestampMs: number): number {
    return this.log(topic).sequenceAtTime(timestampMs);
  }

  truncateBefore(topic: string, sequence: number): void {
    const log = this.topics.get(topic)?.log;
    if (!log) return;
    const before = log.bytes;
    log.truncateBefore(sequence);
    this.totalBytes -= before - log.bytes;
  }

  async putSubscription(subscription: SubscriptionRecord): Promise<void> {
    const existing = this.subscriptions.get(subscription.name);
    this.subscriptions.set(subscription.name, { record: subscription, acks: existing?.acks ?? { floor: subscription.startSequence - 1, above: [] } });
  }

  async deleteSubscription(name: string): Promise<void> {
    this.subscriptions.delete(name);
  }

  putAckState(subscription: string, state: AckState): void {
    const s = this.subscriptions.get(subscription);
    if (s) s.acks = state;
  }

  usageBytes(): number {
    return this.totalBytes;
  }

  async close(): Promise<void> {}

  private log(topic: string): MemoryLog {
    const t = this.topics.get(topic);
    if (!t) throw new Error(`store has no topic ${JSON.stringify(topic)}`);
    return t.log;
  }
}
