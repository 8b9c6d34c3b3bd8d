import { DedupUsage, DedupWindow } from "./dedup-window.js";
import type { LiveEndReason, LiveSink } from "./live-subscriber.js";
import type { TopicConfig, TopicRecord } from "./types.js";

/**
 * A durable subscription (v2) as its topic sees it: told when committed messages arrive,
 * asked how far it has acked (interest retention), told when the topic goes away.
 */
export interface TopicSubscriber {
  readonly name: string;
  /** Messages up to `lastSequence` are committed and readable from the store. */
  onAppend(lastSequence: number): void;
  /** Every sequence <= this is acked by this subscription. */
  ackFloor(): number;
  /** The topic was deleted: end consumers; the subscription is removed with it. */
  onTopicDeleted(): void;
}

export interface LiveEntry {
  readonly ref: string;
  readonly subscriberId: string | undefined;
  readonly sink: LiveSink;
}

/** In-memory state of one topic beside its log (which the store owns). */
export class Topic {
  /** Highest sequence assigned (messages accepted since the topic was created). */
  lastAssigned: number;
  /** Highest sequence committed and fanned out. */
  lastCommitted: number;
  discarded = 0;
  duplicates = 0;
  readonly dedup: DedupWindow;
  readonly live = new Map<string, LiveEntry>();
  readonly subscribers = new Map<string, TopicSubscriber>();
  /** Serialises commit → fan-out so deliveries follow sequence order. */
  commitTail: Promise<void> = Promise.resolve();
  deleted = false;
  /**
   * A commit failed after later batches were assigned sequences: before the next publish
   * assigns any, the topic waits for its commits to settle and realigns with the store.
   */
  resync = false;

  constructor(
    readonly record: TopicRecord,
    lastSequence: number,
    dedupUsage: DedupUsage = new DedupUsage(),
  ) {
    this.lastAssigned = lastSequence;
    this.lastCommitted = lastSequence;
    this.dedup = new DedupWindow(record.config.dedupWindowMs, dedupUsage);
  }

  get name(): string {
    return this.record.name;
  }

  get config(): TopicConfig {
    return this.record.config;
  }

  endLive(reason: LiveEndReason): void {
    const entries = [...this.live.values()];
    this.live.clear();
    for (const e of entries) e.sink.end(reason);
  }

  /** Lowest ack floor over the subscriptions; with none, everything committed is unwanted. */
  interestFloor(): number {
    let floor = this.lastCommitted;
    for (const s of this.subscribers.values()) floor = Math.min(floor, s.ackFloor());
    return floor;
  }
}
