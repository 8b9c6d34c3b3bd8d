import type { StoredMessage } from "./records.js";

/**
 * The newest appended messages of each topic, kept in memory up to a byte budget, so that
 * delivering a fresh message (the common case: consumers keep up) and retention of what was
 * just acked need neither an LMDB read nor a decode. Entries leave oldest first, across all
 * topics; a topic's cached sequences are therefore always a contiguous run ending at its newest
 * message. A miss just means the caller reads LMDB.
 */
export class TailCache {
  private readonly byTopic = new Map<number, Map<number, { message: StoredMessage; bytes: number }>>();
  /** Insertion order over all topics; entries already taken are skipped when reached. */
  private queue: Array<{ topicId: number; sequence: number }> = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  add(topicId: number, message: StoredMessage, bytes: number): void {
    if (this.maxBytes <= 0) return;
    let topic = this.byTopic.get(topicId);
    if (!topic) {
      topic = new Map();
      this.byTopic.set(topicId, topic);
    }
    topic.set(message.sequence, { message, bytes });
    this.queue.push({ topicId, sequence: message.sequence });
    this.bytes += bytes;
    while (this.bytes > this.maxBytes && this.head < this.queue.length) {
      const { topicId: t, sequence } = this.queue[this.head++]!;
      this.take(t, sequence);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  get(topicId: number, sequence: number): StoredMessage | undefined {
    return this.byTopic.get(topicId)?.get(sequence)?.message;
  }

  /** Lowest cached sequence of a topic (undefined: none cached). */
  lowest(topicId: number): number | undefined {
    const topic = this.byTopic.get(topicId);
    return topic === undefined ? undefined : topic.keys().next().value;
  }

  /** Removes and returns an entry. */
  take(topicId: number, sequence: number): { message: StoredMessage; bytes: number } | undefined {
    const topic = this.byTopic.get(topicId);
    const entry = topic?.get(sequence);
    if (!topic || !entry) return undefined;
    topic.delete(sequence);
    if (topic.size === 0) this.byTopic.delete(topicId);
    this.bytes -= entry.bytes;
    return entry;
  }

  /** Forgets a topic's entries above `sequence` (appends that were refused). */
  dropAbove(topicId: number, sequence: number): void {
    const topic = this.byTopic.get(topicId);
    if (!topic) return;
    for (const [seq, entry] of topic) {
      if (seq <= sequence) continue;
      topic.delete(seq);
      this.bytes -= entry.bytes;
    }
    if (topic.size === 0) this.byTopic.delete(topicId);
  }

  dropTopic(topicId: number): void {
    const topic = this.byTopic.get(topicId);
    if (!topic) return;
    for (const { bytes } of topic.values()) this.bytes -= bytes;
    this.byTopic.delete(topicId);
  }

  get sizeBytes(): number {
    return this.bytes;
  }
}
