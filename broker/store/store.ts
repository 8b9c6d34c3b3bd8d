import type { AckState, StoredMessage, SubscriptionRecord, TopicRecord } from "./records.js";

/**
 * The storage interface: one narrow contract, two implementations (memory, LMDB), one
 * contract test suite (store-contract.test.ts).
 *
 * The store owns each topic's message log. Writes resolve once committed according to the
 * store's durability mode; reads are synchronous and see committed data only. The core calls
 * each method from one event loop and never appends to a topic twice concurrently out of order
 * (sequence numbers are assigned by the core, strictly increasing per topic).
 */
export interface Store {
  readonly kind: "memory" | "durable";
  /** Each commit is flushed to disk before its write resolves (always false for memory). */
  readonly fsync: boolean;

  /** Everything that survived: called once, right after opening. */
  recover(): RecoveredState;

  putTopic(topic: TopicRecord): Promise<void>;
  /** Removes the topic, its messages, its de-duplication entries. Subscriptions are removed by the core. */
  deleteTopic(name: string): Promise<void>;

  /** Appends messages (consecutive sequences, continuing the log). Resolves once committed. */
  append(topic: string, messages: readonly StoredMessage[]): Promise<void>;
  /** The committed message with this sequence, if still retained. */
  get(topic: string, sequence: number): StoredMessage | undefined;
  /** Oldest retained and newest stored sequence (empty: first = last + 1) and retained bytes. */
  bounds(topic: string): LogBounds;
  /** First retained sequence whose publish time is >= timestampMs (last + 1 when none). */
  sequenceAtTime(topic: string, timestampMs: number): number;
  /** Retention: drop every message with sequence < `sequence`. */
  truncateBefore(topic: string, sequence: number): void;

  putSubscription(subscription: SubscriptionRecord): Promise<void>;
  deleteSubscription(name: string): Promise<void>;
  /** Latest ack state of a subscription; the store may coalesce frequent calls. */
  putAckState(subscription: string, state: AckState): void;

  /** Bytes the store holds (messages for memory, the data file for durable). */
  usageBytes(): number;

  /**
   * Durable store: space left for the data file (the filesystem's free space plus pages freed
   * inside the file) and the filesystem's size; undefined for memory or when it cannot be read.
   */
  diskSpace?(): DiskSpace | undefined;

  /** Flushes pending writes and closes. */
  close(): Promise<void>;
}

export interface RecoveredState {
  topics: TopicRecord[];
  subscriptions: Array<{ record: SubscriptionRecord; acks: AckState }>;
  /**
   * Producer-supplied message ids within each topic's de-duplication window (measured back
   * from the topic's newest message), oldest first per topic: retained messages plus ids of
   * messages retention already dropped. The core re-fills each topic's DedupWindow from them.
   */
  dedup: DedupRecord[];
}

export interface DedupRecord {
  topic: string;
  id: string;
  sequence: number;
  publishTimeMs: number;
}

export interface DiskSpace {
  freeBytes: number;
  totalBytes: number;
}

export interface LogBounds {
  first: number;
  last: number;
  /** Retained message bytes (payload + attributes, see messageBytes). */
  bytes: number;
}
