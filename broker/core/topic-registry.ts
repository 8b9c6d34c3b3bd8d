import { randomUUID } from "node:crypto";
import { newMessageId } from "./message-id.js";
import type { RecoveredState, Store } from "../store/index.js";
import type { Clock } from "./clock.js";
import {
  InvalidTopicNameError,
  ResourceExhaustedError,
  TopicExistsError,
  TopicNotFoundError,
  UnavailableError,
} from "./errors.js";
import type { LiveSink, LiveSubscription } from "./live-subscriber.js";
import { DedupUsage, dedupEntryBytes } from "./dedup-window.js";
import { checkMessage, DEFAULT_MESSAGE_LIMITS, type MessageLimits } from "./message-limits.js";
import { checkName } from "./names.js";
import type { Retention } from "./retention.js";
import type { SubscriptionTopics, TopicPositions } from "./subscription-registry.js";
import { Topic, type TopicSubscriber } from "./topic.js";
import {
  defaultTopicConfig,
  messageBytes,
  type PublishInput,
  type PublishOutcome,
  type StoredMessage,
  type TopicConfig,
} from "./types.js";

export interface TopicRegistryOptions {
  store: Store;
  clock: Clock;
  retention: Retention;
  /** Memory store: refuse publishes once retained message bytes would pass this. 0 = unlimited. */
  memoryBudgetBytes: number;
  /** Durable store: refuse publishes once the data file would pass this. 0 = follow the free space (diskReserveBytes). */
  diskBudgetBytes: number;
  /**
   * Durable store without a disk budget: refuse publishes that would leave less than this many
   * bytes free for the data file on its filesystem. undefined = 5% of the filesystem, at most
   * 1 GiB; 0 = no check (disk errors are still refusals).
   */
  diskReserveBytes?: number;
  /** Limits on one message (message-limits.ts). */
  messageLimits?: MessageLimits;
  /** Producer ids remembered over all topics' de-duplication windows. */
  maxDedupEntries?: number;
  /** Most topics at once (created or auto-created); past it RESOURCE_EXHAUSTED "max-topics". 0 = unlimited. */
  maxTopics?: number;
}

/** Default cap on producer ids remembered over all de-duplication windows. */
export const DEFAULT_MAX_DEDUP_ENTRIES = 1_000_000;

/** The default disk reserve of a filesystem of `totalBytes`: 5%, at most 1 GiB. */
export function defaultDiskReserveBytes(totalBytes: number): number {
  return Math.min(1024 * 1024 * 1024, Math.floor(totalBytes * 0.05));
}

export interface TopicStats {
  published: number;
  firstSequence: number;
  lastSequence: number;
  retainedMessages: number;
  retainedBytes: number;
  discarded: number;
  subscriptionCount: number;
  liveSubscriberCount: number;
  duplicates: number;
}

export interface TopicInfo {
  name: string;
  config: TopicConfig;
  createdAtMs: number;
  stats: TopicStats;
}

export type UnsubscribeResult = "ok" | "topic_not_found" | "subscription_not_found";

/**
 * Topics and the publish path: create/delete/list, publish with de-duplication and sequences,
 * fan-out to live (v1) subscriptions and to the durable (v2) subscriptions attached to each
 * topic. Built by createBrokerCore (broker-core.ts), which also owns the subscription registry,
 * retention and the timers. No gRPC here; the server layer maps wire types onto this.
 */
export class TopicRegistry implements SubscriptionTopics {
  readonly store: Store;
  readonly clock: Clock;
  private readonly topics = new Map<string, Topic>();
  private readonly retention: Retention;
  private readonly memoryBudgetBytes: number;
  private readonly diskBudgetBytes: number;
  private readonly diskReserveBytes: number | undefined;
  readonly messageLimits: MessageLimits;
  readonly maxDedupEntries: number;
  /** Producer ids held by all topics' de-duplication windows together. */
  readonly dedupUsage = new DedupUsage();
  private readonly maxTopics: number;
  private closed = false;
  private totalPublished = 0;
  private liveCount = 0;

  /** `recovered`: what the store kept (topics and de-duplication ids; subscriptions go to the registry). */
  constructor(options: TopicRegistryOptions, recovered: Pick<RecoveredState, "topics" | "dedup">) {
    this.store = options.store;
    this.clock = options.clock;
    this.retention = options.retention;
    this.memoryBudgetBytes = options.memoryBudgetBytes;
    this.diskBudgetBytes = options.diskBudgetBytes;
    this.diskReserveBytes = options.diskReserveBytes;
    this.messageLimits = options.messageLimits ?? DEFAULT_MESSAGE_LIMITS;
    this.maxDedupEntries = options.maxDedupEntries ?? DEFAULT_MAX_DEDUP_ENTRIES;
    this.maxTopics = options.maxTopics ?? 0;
    for (const record of recovered.topics) {
      this.topics.set(record.name, new Topic(record, this.store.bounds(record.name).last, this.dedupUsage));
    }
    // De-duplication windows survive a restart: re-fill them with the producer ids the store kept.
    for (const d of recovered.dedup) this.topics.get(d.topic)?.dedup.remember(d.id, d.sequence, d.publishTimeMs);
  }

  // ------------------------------------------------------------------ topics

  async createTopic(name: string, config: TopicConfig = defaultTopicConfig()): Promise<TopicInfo> {
    this.ensureOpen();
    assertName(name);
    if (this.topics.has(name)) throw new TopicExistsError(name);
    const topic = await this.addTopic(name, config);
    return this.describe(topic);
  }

  async deleteTopic(name: string): Promise<void> {
    this.ensureOpen();
    const topic = this.requireTopic(name);
    this.topics.delete(name);
    topic.deleted = true;
    this.liveCount -= topic.live.size;
    topic.endLive("topic_deleted");
    topic.dedup.clear();
    for (const s of [...topic.subscribers.values()]) s.onTopicDeleted();
    topic.subscribers.clear();
    await this.store.deleteTopic(name);
  }

  /** Topic names, sorted. */
  listTopics(): string[] {
    return [...this.topics.keys()].sort();
  }

  hasTopic(name: string): boolean {
    return this.topics.has(name);
  }

  topicInfo(name: string): TopicInfo {
    return this.describe(this.requireTopic(name));
  }

  private requireTopic(name: string): Topic {
    const topic = this.topics.get(name);
    if (!topic) throw new TopicNotFoundError(name);
    return topic;
  }

  // ------------------------------------------------------------------ for the subscription registry

  positions(name: string): TopicPositions {
    const topic = this.requireTopic(name);
    return { lastAssigned: topic.lastAssigned, lastCommitted: topic.lastCommitted };
  }

  attachSubscriber(name: string, subscriber: TopicSubscriber): void {
    this.requireTopic(name).subscribers.set(subscriber.name, subscriber);
  }

  detachSubscriber(name: string, subscriber: TopicSubscriber): void {
    const topic = this.topics.get(name);
    if (!topic || topic.subscribers.get(subscriber.name) !== subscriber) return;
    topic.subscribers.delete(subscriber.name);
    this.retention.interestChanged(topic);
  }

  subscriberCount(name: string): number {
    return this.topics.get(name)?.subscribers.size ?? 0;
  }

  ackFloorsMoved(names: Iterable<string>): void {
    for (const name of names) {
      const topic = this.topics.get(name);
      if (topic) this.retention.interestChanged(topic);
    }
  }

  // ------------------------------------------------------------------ publish

  /**
   * The publish path, in order: validate → de-duplicate → check budgets → assign sequences →
   * store (await the commit) → fan out → apply retention → acknowledge (resolve). Nothing is
   * delivered before it is committed, and nothing is acknowledged that was not committed. A
   * commit that fails leaves nothing of the publish visible: its sequences are given back and
   * its producer ids forgotten, so a retry is stored (docs/design.md, "Publish path").
   * `deadLetter`: a dead-letter copy (message-limits.ts, checkMessage).
   */
  async publish(topicName: string, inputs: readonly PublishInput[], options: { autoCreate?: boolean; deadLetter?: boolean } = {}): Promise<PublishOutcome[]> {
    this.ensureOpen();
    assertName(topicName);
    for (let i = 0; i < inputs.length; i++) checkMessage(this.messageLimits, topicName, inputs[i]!, i, options.deadLetter);
    let topic = this.topics.get(topicName);
    if (!topic) {
      if (!options.autoCreate) throw new TopicNotFoundError(topicName);
      topic = await this.addTopic(topicName, defaultTopicConfig());
    }
    if (topic.resync) await this.resync(topic);
    const now = this.clock.nowMs();
    const outcomes = new Array<PublishOutcome>(inputs.length);
    const fresh: StoredMessage[] = [];
    // A producer id repeated inside one batch is a duplicate of its first occurrence.
    let batchIds: Map<string, number> | undefined;
    let repeats: Array<[index: number, first: number]> | undefined;
    let incomingBytes = 0;
    let dedupBytes = 0;
    let duplicates = 0;
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i]!;
      const attributes = input.attributes ?? {};
      if (input.messageId !== undefined) {
        const seen = topic.dedup.lookup(input.messageId, now);
        const firstInBatch = batchIds?.get(input.messageId);
        if (seen !== undefined || firstInBatch !== undefined) {
          duplicates++;
          outcomes[i] = { id: input.messageId, sequence: seen ?? 0, publishTimeMs: now, duplicate: true };
          if (seen === undefined) (repeats ??= []).push([i, firstInBatch!]);
          continue;
        }
        (batchIds ??= new Map()).set(input.messageId, i);
        dedupBytes += dedupEntryBytes(input.messageId);
      }
      const message: StoredMessage = {
        id: input.messageId ?? newMessageId(),
        topic: topicName,
        sequence: 0, // assigned below, once the whole batch is accepted
        payload: input.payload,
        attributes,
        publishTimeMs: now,
        producerId: input.messageId !== undefined,
      };
      incomingBytes += messageBytes(message);
      fresh.push(message);
      outcomes[i] = { id: message.id, sequence: 0, publishTimeMs: now, duplicate: false };
    }
    this.checkBudget(incomingBytes, batchIds?.size ?? 0, dedupBytes);
    this.publishedBytes += incomingBytes;
    topic.duplicates += duplicates;
    // Sequences are assigned synchronously, so concurrent publishes to one topic interleave
    // whole batches and every batch is a gap-free run.
    let outcomeIndex = 0;
    for (const message of fresh) {
      (message as { sequence: number }).sequence = ++topic.lastAssigned;
      if (message.producerId) topic.dedup.remember(message.id, message.sequence, now);
      while (outcomes[outcomeIndex]!.duplicate || outcomes[outcomeIndex]!.id !== message.id) outcomeIndex++;
      outcomes[outcomeIndex]!.sequence = message.sequence;
      outcomeIndex++;
    }
    if (repeats) for (const [index, first] of repeats) outcomes[index]!.sequence = outcomes[first]!.sequence;
    if (fresh.length === 0) return outcomes;
    this.totalPublished += fresh.length;
    try {
      await this.commit(topic, fresh);
    } catch (err) {
      this.giveBack(topic, fresh);
      throw err;
    }
    return outcomes;
  }

  /**
   * A batch was not stored: nothing of it may stay visible. Its producer ids are forgotten (a
   * retry must be stored, never answered "duplicate"), and its sequences are given back; when
   * later batches were assigned meanwhile, the topic realigns with the store before it assigns
   * again (resync).
   */
  private giveBack(topic: Topic, messages: readonly StoredMessage[]): void {
    const first = messages[0]!.sequence;
    const last = messages[messages.length - 1]!.sequence;
    this.totalPublished -= messages.length;
    for (const m of messages) if (m.producerId) topic.dedup.forget(m.id, m.sequence);
    if (topic.lastAssigned === last) topic.lastAssigned = first - 1;
    else topic.resync = true;
  }

  /** Waits for the topic's commits to settle, then continues from what the store holds. */
  private async resync(topic: Topic): Promise<void> {
    while (topic.resync) {
      const tail = topic.commitTail;
      await tail;
      if (!topic.resync || topic.commitTail !== tail) continue;
      topic.resync = false;
      if (topic.deleted) return;
      const { last } = this.store.bounds(topic.name);
      topic.dedup.forgetAbove(last);
      topic.lastAssigned = last;
      topic.lastCommitted = Math.min(topic.lastCommitted, last);
    }
  }

  private commit(topic: Topic, messages: StoredMessage[]): Promise<void> {
    let stored: Promise<void>;
    try {
      stored = this.store.append(topic.name, messages);
    } catch (err) {
      stored = Promise.reject(err);
    }
    // Handled now: the chain below only reaches it once earlier commits of the topic settle, and
    // a commit that fails before then must not count as an unhandled rejection.
    stored.catch(() => undefined);
    const done = topic.commitTail.then(
      () => stored,
      () => stored,
    ).then(() => {
      const last = messages[messages.length - 1]!.sequence;
      if (topic.deleted) return;
      topic.lastCommitted = last;
      for (const entry of topic.live.values()) {
        for (const m of messages) entry.sink.deliver(m);
      }
      for (const s of topic.subscribers.values()) s.onAppend(last);
      this.retention.committed(topic);
    });
    topic.commitTail = done.catch(() => undefined);
    return done;
  }

  /**
   * Budgets, before anything is assigned: the store's (memory: retained bytes plus the
   * de-duplication ids; durable: the disk budget, or the free space on the data directory's
   * filesystem), and the de-duplication window's entries and id bytes.
   */
  private checkBudget(incomingBytes: number, newIds: number, idBytes: number): void {
    if (newIds > 0) {
      const usage = this.dedupUsage;
      if (usage.entries + newIds > this.maxDedupEntries) {
        throw new ResourceExhaustedError(
          "dedup",
          `de-duplication window full: ${usage.entries} producer ids are remembered, the limit is ${this.maxDedupEntries} (--max-dedup-entries); ` +
            `publish without message_id, or wait until ids leave their topics' dedup_window_ms`,
        );
      }
      // The memory store counts ids in its budget below; the durable one keeps its messages on
      // disk, but the ids in memory all the same.
      if (this.store.kind === "durable" && this.memoryBudgetBytes > 0 && usage.bytes + idBytes > this.memoryBudgetBytes) {
        throw new ResourceExhaustedError(
          "dedup",
          `de-duplication window full: its ids take ${usage.bytes} of ${this.memoryBudgetBytes} bytes (--memory-budget-bytes), ${idBytes} more refused; ` +
            `publish without message_id, or wait until ids leave their topics' dedup_window_ms`,
        );
      }
    }
    if (this.store.kind === "memory") {
      const budget = this.memoryBudgetBytes;
      if (budget <= 0 || incomingBytes + idBytes === 0) return;
      // usageBytes is cheap for memory.
      const used = this.store.usageBytes() + this.dedupUsage.bytes;
      if (used + incomingBytes + idBytes > budget) {
        throw new ResourceExhaustedError(
          "memory",
          `memory budget full: ${used} of ${budget} bytes retained (messages and de-duplication ids), ` +
            `${incomingBytes + idBytes} more refused; consumers must ack (or retention discard) before publishing again`,
        );
      }
      return;
    }
    if (incomingBytes === 0) return;
    if (this.diskBudgetBytes > 0) {
      // usageBytes is not free on LMDB (a stats read per database): only ask when there is a budget.
      const used = this.store.usageBytes();
      if (used + incomingBytes > this.diskBudgetBytes) {
        throw new ResourceExhaustedError(
          "disk",
          `disk budget full: ${used} of ${this.diskBudgetBytes} bytes retained, ` +
            `${incomingBytes} more refused; consumers must ack (or retention discard) before publishing again`,
        );
      }
      return;
    }
    if (this.diskReserveBytes === 0) return;
    const space = this.diskSpaceNow();
    if (!space) return;
    const reserve = this.diskReserveBytes ?? defaultDiskReserveBytes(space.totalBytes);
    // Stored bytes take more room than their payload (record headers, B-tree pages): count twice.
    if (space.freeBytes - 2 * incomingBytes < reserve) {
      throw new ResourceExhaustedError(
        "disk",
        `disk nearly full: ${space.freeBytes} bytes free for the data file, ${incomingBytes} more would leave less than ` +
          `the ${reserve}-byte reserve (--disk-reserve-bytes); consumers must ack (or retention discard) before publishing again`,
      );
    }
  }

  // statfs on every publish would be a syscall per batch: read it at most every 100 ms and
  // subtract what was published since.
  private diskSample: { atMs: number; freeBytes: number; totalBytes: number; published: number } | undefined;

  private diskSpaceNow(): { freeBytes: number; totalBytes: number } | undefined {
    const now = this.clock.nowMs();
    let sample = this.diskSample;
    if (!sample || now - sample.atMs >= 100 || now < sample.atMs) {
      const space = this.store.diskSpace?.();
      if (!space) return undefined;
      sample = this.diskSample = { atMs: now, ...space, published: this.publishedBytes };
    }
    return { freeBytes: sample.freeBytes - (this.publishedBytes - sample.published), totalBytes: sample.totalBytes };
  }

  private publishedBytes = 0;

  // ------------------------------------------------------------------ live (v1) subscriptions

  /** Registers an at-most-once subscription on an existing topic. */
  subscribeLive(topicName: string, sink: LiveSink, subscriberId?: string): LiveSubscription {
    this.ensureOpen();
    const topic = this.requireTopic(topicName);
    const ref = `ref-${randomUUID()}`;
    const id = subscriberId === "" ? undefined : subscriberId;
    topic.live.set(ref, { ref, subscriberId: id, sink });
    this.liveCount++;
    return {
      topic: topicName,
      ref,
      subscriberId: id,
      cancel: () => {
        if (topic.live.delete(ref)) this.liveCount--;
      },
    };
  }

  /** Ends every live subscription of the topic whose ref or subscriber_id is `ref`. */
  unsubscribeLive(topicName: string, ref: string): UnsubscribeResult {
    const topic = this.topics.get(topicName);
    if (!topic) return "topic_not_found";
    const matches = [...topic.live.values()].filter((e) => e.ref === ref || e.subscriberId === ref);
    if (matches.length === 0) return "subscription_not_found";
    for (const e of matches) {
      topic.live.delete(e.ref);
      this.liveCount--;
      e.sink.end("unsubscribed");
    }
    return "ok";
  }

  // ------------------------------------------------------------------ statistics, lifecycle

  counters(): { topics: number; published: number; liveSubscribers: number; retainedBytes: number } {
    return { topics: this.topics.size, published: this.totalPublished, liveSubscribers: this.liveCount, retainedBytes: this.store.usageBytes() };
  }

  /** Lets go of producer ids past their window on every topic (idle ones too). */
  pruneDedup(): void {
    const now = this.clock.nowMs();
    for (const topic of this.topics.values()) topic.dedup.prune(now);
  }

  /** All topics, for statistics and the retention sweep. */
  allTopics(): IterableIterator<Topic> {
    return this.topics.values();
  }

  get budgets(): { memoryBudgetBytes: number; diskBudgetBytes: number } {
    return { memoryBudgetBytes: this.memoryBudgetBytes, diskBudgetBytes: this.diskBudgetBytes };
  }

  /** Ends every live subscription, waits for in-flight commits, closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const topic of this.topics.values()) {
      this.liveCount -= topic.live.size;
      topic.endLive("shutdown");
    }
    await Promise.all([...this.topics.values()].map((t) => t.commitTail));
    await this.store.close();
  }

  private ensureOpen(): void {
    if (this.closed) throw new UnavailableError("the broker is shutting down");
  }

  private async addTopic(name: string, config: TopicConfig): Promise<Topic> {
    // Topics recovered from the store are kept even past the cap; only new ones are refused.
    if (this.maxTopics > 0 && this.topics.size >= this.maxTopics) {
      throw new ResourceExhaustedError("max-topics", `the broker holds ${this.topics.size} topics, its limit (max-topics ${this.maxTopics}); delete topics or raise --max-topics`);
    }
    const record = { name, config, createdAtMs: this.clock.nowMs() };
    const topic = new Topic(record, 0, this.dedupUsage);
    // Registered before the store write completes, so concurrent auto-creating publishes
    // share one topic; the store write of the topic precedes its first append.
    this.topics.set(name, topic);
    const written = this.store.putTopic(record);
    topic.commitTail = written.catch(() => undefined);
    try {
      await written;
    } catch (err) {
      // Not on the disk: the topic must not exist (its messages would not survive a restart).
      if (this.topics.get(name) === topic) this.topics.delete(name);
      topic.deleted = true;
      throw err;
    }
    if (topic.deleted) throw new TopicNotFoundError(name);
    return topic;
  }

  private describe(topic: Topic): TopicInfo {
    const { first, last, bytes } = this.store.bounds(topic.name);
    return {
      name: topic.name,
      config: topic.config,
      createdAtMs: topic.record.createdAtMs,
      stats: {
        published: topic.lastAssigned,
        firstSequence: last >= first ? first : 0,
        lastSequence: topic.lastAssigned,
        retainedMessages: Math.max(0, last - first + 1),
        retainedBytes: bytes,
        discarded: topic.discarded,
        subscriptionCount: topic.subscribers.size,
        liveSubscriberCount: topic.live.size,
        duplicates: topic.duplicates,
      },
    };
  }
}

function assertName(name: string): void {
  const problem = checkName(name);
  if (problem) throw new InvalidTopicNameError(name, problem);
}
