import type { RecoveredState, Store } from "../store/index.js";
import type { Clock } from "./clock.js";
import type { Consumer, ConsumerSink } from "./consumer.js";
import { InvalidArgumentError, ResourceExhaustedError, SubscriptionExistsError, SubscriptionNotFoundError, TopicNotFoundError, UnavailableError } from "./errors.js";
import { DEFAULT_MAX_OUTSTANDING_BYTES, DEFAULT_MAX_OUTSTANDING_MESSAGES, type FlowLimits } from "./flow-control.js";
import { DEFAULT_LEASE_TICK_MS, LeaseTable } from "./lease-table.js";
import { deadLetterAttributes } from "./dead-letter.js";
import { normalizeSubscription, resolveStart, type SubscriptionRequest } from "./subscription-config.js";
import { Subscription, type DeliveryTotals, type SubscriptionHost, type SubscriptionStatsSnapshot } from "./subscription.js";
import type { TopicSubscriber } from "./topic.js";
import type { PublishInput, PublishOutcome, StartPosition, StoredMessage, SubscriptionConfig, SubscriptionRecord } from "./types.js";

export interface SubscriptionInfo {
  name: string;
  topic: string;
  start: StartPosition;
  config: SubscriptionConfig;
  createdAtMs: number;
  stats: SubscriptionStatsSnapshot;
}

export interface TopicPositions {
  /** Highest sequence assigned to a message of the topic. */
  lastAssigned: number;
  /** Highest sequence committed and fanned out. */
  lastCommitted: number;
}

/**
 * What the subscription registry needs of the topics: nothing more. Topics change their own
 * state; the registry asks and reports.
 */
export interface SubscriptionTopics {
  hasTopic(topic: string): boolean;
  /** Throws TopicNotFoundError. */
  positions(topic: string): TopicPositions;
  /** The subscription gets every committed message of the topic from now on (TopicNotFoundError). */
  attachSubscriber(topic: string, subscriber: TopicSubscriber): void;
  /** The subscription no longer holds the topic's messages (retention may now drop them). */
  detachSubscriber(topic: string, subscriber: TopicSubscriber): void;
  /** Subscriptions of the topic (0 when it is gone). */
  subscriberCount(topic: string): number;
  /** Ack floors of subscriptions of these topics moved (interest retention may now drop messages). */
  ackFloorsMoved(topics: Iterable<string>): void;
  /** The publish path, for dead letters (`deadLetter`: the copy's origin attributes are within the limits' reserve). */
  publish(topic: string, inputs: readonly PublishInput[], options?: { deadLetter?: boolean }): Promise<PublishOutcome[]>;
}

/** The store operations the registry uses. */
export type SubscriptionStore = Pick<Store, "get" | "bounds" | "sequenceAtTime" | "putSubscription" | "deleteSubscription" | "putAckState">;

export interface RegistryOptions {
  topics: SubscriptionTopics;
  store: SubscriptionStore;
  clock: Clock;
  /** Granularity of lease deadlines and nack backoff. */
  leaseTickMs?: number;
  /** Defer a pump; default queueMicrotask, so every ack of one frame is handled before the next batch. */
  defer?: (fn: () => void) => void;
  /** Caps (0 = unlimited); each refusal is RESOURCE_EXHAUSTED naming its limit. */
  limits?: Partial<SubscriptionLimits>;
}

/** How many subscriptions and consumers the registry takes; 0 = unlimited. */
export interface SubscriptionLimits {
  maxSubscriptions: number;
  maxSubscriptionsPerTopic: number;
  maxConsumersPerSubscription: number;
}

/** The consumer-limit defaults of ConsumeStart (0 = default). */
export function resolveFlowLimits(messages: number, bytes: number): FlowLimits {
  if (!Number.isSafeInteger(messages) || messages < 0) throw new InvalidArgumentError("start.max_outstanding_messages", `must be >= 0, got ${messages}`);
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new InvalidArgumentError("start.max_outstanding_bytes", `must be >= 0, got ${bytes}`);
  return {
    maxOutstandingMessages: messages || DEFAULT_MAX_OUTSTANDING_MESSAGES,
    maxOutstandingBytes: bytes || DEFAULT_MAX_OUTSTANDING_BYTES,
  };
}

/**
 * Durable subscriptions of the broker: create/get/list/delete, recovery from the store,
 * consumers joining and leaving, and the periodic `tick()` that expires leases, ends nack
 * backoffs, persists ack state (coalesced: once per tick, not once per ack) and applies
 * interest retention on topics whose ack floors moved.
 */
export class SubscriptionRegistry {
  readonly leases: LeaseTable;
  readonly totals: DeliveryTotals = { delivered: 0, redelivered: 0, acked: 0, deadLettered: 0 };
  private readonly clock: Clock;
  private readonly topics: SubscriptionTopics;
  private readonly store: SubscriptionStore;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly host: SubscriptionHost;
  private dirty: Subscription[] = [];
  private pumps: Subscription[] = [];
  private pumpScheduled = false;
  private readonly defer: (fn: () => void) => void;
  private readonly limits: SubscriptionLimits;
  private closed = false;

  /** `recovered`: the subscriptions the store kept, with their ack state. */
  constructor(options: RegistryOptions, recovered: RecoveredState["subscriptions"] = []) {
    this.clock = options.clock;
    this.topics = options.topics;
    this.store = options.store;
    this.leases = new LeaseTable(options.leaseTickMs ?? DEFAULT_LEASE_TICK_MS);
    this.defer = options.defer ?? queueMicrotask;
    this.limits = { maxSubscriptions: 0, maxSubscriptionsPerTopic: 0, maxConsumersPerSubscription: 0, ...options.limits };
    const store = this.store;
    this.host = {
      clock: this.clock,
      leases: this.leases,
      totals: this.totals,
      get: (topic, sequence) => store.get(topic, sequence),
      firstRetained: (topic) => store.bounds(topic).first,
      schedulePump: (sub) => this.queuePump(sub),
      ackStateDirty: (sub) => this.dirty.push(sub),
      deadLetter: (sub, message, attempts) => this.deadLetter(sub, message, attempts),
      topicDeleted: (sub) => this.remove(sub, "topic_deleted"),
    };
    for (const { record, acks } of recovered) {
      if (!this.topics.hasTopic(record.topic)) {
        // The topic was deleted but the process died before its subscriptions were removed.
        void store.deleteSubscription(record.name).catch(() => undefined);
        continue;
      }
      const sub = new Subscription(record, acks, this.topics.positions(record.topic).lastCommitted, this.host);
      this.subscriptions.set(record.name, sub);
      this.topics.attachSubscriber(record.topic, sub);
    }
  }

  async create(name: string, topicName: string, request: SubscriptionRequest): Promise<SubscriptionInfo> {
    this.ensureOpen();
    const { start, config } = normalizeSubscription(name, topicName, request);
    const positions = this.topics.positions(topicName);
    if (this.subscriptions.has(name)) throw new SubscriptionExistsError(name);
    const { maxSubscriptions, maxSubscriptionsPerTopic } = this.limits;
    if (maxSubscriptions > 0 && this.subscriptions.size >= maxSubscriptions) {
      throw new ResourceExhaustedError("max-subscriptions", `the broker holds ${this.subscriptions.size} subscriptions, its limit (max-subscriptions ${maxSubscriptions})`);
    }
    const onTopic = this.topics.subscriberCount(topicName);
    if (maxSubscriptionsPerTopic > 0 && onTopic >= maxSubscriptionsPerTopic) {
      throw new ResourceExhaustedError(
        "max-subscriptions-per-topic",
        `topic ${JSON.stringify(topicName)} has ${onTopic} subscriptions, the limit (max-subscriptions-per-topic ${maxSubscriptionsPerTopic})`,
      );
    }
    if (config.deadLetterTopic !== "" && !this.topics.hasTopic(config.deadLetterTopic)) {
      throw new TopicNotFoundError(config.deadLetterTopic);
    }
    const store = this.store;
    const startSequence = resolveStart(start, {
      bounds: () => store.bounds(topicName),
      sequenceAtTime: (ts) => store.sequenceAtTime(topicName, ts),
      lastAssigned: () => positions.lastAssigned,
    });
    const record: SubscriptionRecord = { name, topic: topicName, config, createdAtMs: this.clock.nowMs(), startSequence, start };
    const sub = new Subscription(record, { floor: startSequence - 1, above: [] }, positions.lastCommitted, this.host);
    // Registered before the store write resolves, so a publish racing with creation is kept.
    this.subscriptions.set(name, sub);
    this.topics.attachSubscriber(topicName, sub);
    try {
      await store.putSubscription(record);
    } catch (err) {
      this.remove(sub, "subscription_deleted");
      throw err;
    }
    return this.describe(sub);
  }

  get(name: string): SubscriptionInfo {
    return this.describe(this.require(name));
  }

  /** Names, sorted; only those of `topic` when given. */
  list(topic?: string): string[] {
    const names: string[] = [];
    for (const sub of this.subscriptions.values()) if (topic === undefined || sub.topic === topic) names.push(sub.name);
    return names.sort();
  }

  /** Subscriptions on the topic of subscription `name` (fan-out width); 0 when unknown. */
  topicSubscriptionCount(name: string): number {
    const sub = this.subscriptions.get(name);
    return sub ? this.topics.subscriberCount(sub.topic) : 0;
  }

  has(name: string): boolean {
    return this.subscriptions.has(name);
  }

  async delete(name: string): Promise<void> {
    this.ensureOpen();
    const sub = this.require(name);
    this.remove(sub, "subscription_deleted");
    await this.store.deleteSubscription(name);
  }

  /** A consumer joins `name`; deliveries start flowing to `sink`. */
  attach(name: string, limits: FlowLimits, sink: ConsumerSink, consumerName = ""): Consumer {
    this.ensureOpen();
    const sub = this.require(name);
    const max = this.limits.maxConsumersPerSubscription;
    if (max > 0 && sub.consumerCount >= max) {
      throw new ResourceExhaustedError("max-consumers-per-subscription", `subscription ${JSON.stringify(name)} has ${sub.consumerCount} consumers, the limit (max-consumers-per-subscription ${max})`);
    }
    return sub.attach(consumerName, limits, sink);
  }

  /**
   * The periodic duty: expire leases, release backoffs, persist ack state, apply retention
   * where ack floors moved. The server calls it every few milliseconds; tests call it after
   * moving a fake clock.
   */
  tick(): void {
    this.leases.sweep(this.clock.nowMs());
    this.flushAcks();
  }

  /** Statistics over all subscriptions. */
  summary(): { subscriptions: number; consumers: number; backlog: number; inFlight: number } {
    // Sampled every second or so by the load generator, possibly with 100k subscriptions:
    // one look at each topic's bounds, no per-subscription allocation.
    let consumers = 0;
    let backlog = 0;
    const firstByTopic = new Map<string, number>();
    for (const sub of this.subscriptions.values()) {
      let first = firstByTopic.get(sub.topic);
      if (first === undefined) {
        first = this.store.bounds(sub.topic).first;
        firstByTopic.set(sub.topic, first);
      }
      consumers += sub.consumerCount;
      backlog += sub.backlog(first);
    }
    return { subscriptions: this.subscriptions.size, consumers, backlog, inFlight: this.leases.size };
  }

  /** Shutdown: ends every consumer (their leases are redelivered after restart) and persists ack state. */
  close(): void {
    if (this.closed) return;
    this.flushAcks();
    this.closed = true;
    for (const sub of this.subscriptions.values()) sub.close("shutdown");
  }

  private flushAcks(): void {
    if (this.dirty.length === 0) return;
    const dirty = this.dirty;
    this.dirty = [];
    const topics = new Set<string>();
    for (const sub of dirty) {
      if (!this.subscriptions.has(sub.name) || this.subscriptions.get(sub.name) !== sub) continue;
      const { state, floorMoved } = sub.takeAckChanges();
      this.store.putAckState(sub.name, state);
      if (floorMoved) topics.add(sub.topic);
    }
    if (topics.size > 0) this.topics.ackFloorsMoved(topics);
  }

  private queuePump(sub: Subscription): void {
    this.pumps.push(sub);
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    this.defer(() => {
      this.pumpScheduled = false;
      const pumps = this.pumps;
      this.pumps = [];
      for (const s of pumps) s.pump();
    });
  }

  private async deadLetter(sub: Subscription, message: StoredMessage, attempts: number): Promise<void> {
    await this.topics.publish(sub.config.deadLetterTopic, [
      { payload: message.payload, attributes: deadLetterAttributes(message, sub.name, attempts) },
    ], { deadLetter: true });
  }

  private remove(sub: Subscription, reason: "subscription_deleted" | "topic_deleted"): void {
    if (this.subscriptions.get(sub.name) !== sub) return;
    this.subscriptions.delete(sub.name);
    sub.close(reason);
    if (reason === "topic_deleted") {
      // The topic already dropped its subscribers; the record goes with it.
      void this.store.deleteSubscription(sub.name).catch(() => undefined);
      return;
    }
    this.topics.detachSubscriber(sub.topic, sub);
  }

  private require(name: string): Subscription {
    const sub = this.subscriptions.get(name);
    if (!sub) throw new SubscriptionNotFoundError(name);
    return sub;
  }

  private describe(sub: Subscription): SubscriptionInfo {
    const r = sub.record;
    return { name: r.name, topic: r.topic, start: r.start ?? { kind: "sequence", sequence: r.startSequence }, config: r.config, createdAtMs: r.createdAtMs, stats: sub.stats() };
  }

  private ensureOpen(): void {
    if (this.closed) throw new UnavailableError("the broker is shutting down");
  }
}
