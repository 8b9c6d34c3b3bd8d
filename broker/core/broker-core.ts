import type { Store } from "../store/index.js";
import { collectBrokerStats, nodeProcessProbe, type BrokerStatsSnapshot, type ProcessProbe } from "./broker-stats.js";
import { systemClock, systemTimers, type Clock, type Timers } from "./clock.js";
import { DEFAULT_LEASE_TICK_MS } from "./lease-table.js";
import { Retention } from "./retention.js";
import { SubscriptionRegistry } from "./subscription-registry.js";
import { DEFAULT_MESSAGE_LIMITS, validateMessageLimits, type MessageLimits } from "./message-limits.js";
import { DEFAULT_MAX_DEDUP_ENTRIES, TopicRegistry } from "./topic-registry.js";

/** Settings of the core; every field has a default (DEFAULT_CORE_CONFIG). */
export interface BrokerCoreConfig {
  /** Memory store: refuse publishes once retained message bytes would pass this. 0 = unlimited. */
  memoryBudgetBytes: number;
  /** Durable store: refuse publishes once the data file would pass this. 0 = follow the free space (diskReserveBytes). */
  diskBudgetBytes: number;
  /** Durable store without a disk budget: bytes to keep free on the data directory's filesystem; undefined = 5%, at most 1 GiB; 0 = no check. */
  diskReserveBytes: number | undefined;
  /** Limits on one message, checked before anything of a publish is assigned or stored. */
  messageLimits: MessageLimits;
  /** Producer ids remembered over all de-duplication windows. */
  maxDedupEntries: number;
  /** How often leases expire, backoffs end, ack state is persisted and interest retention runs. */
  tickMs: number;
  /** How often age-based retention runs over every topic. */
  retentionSweepMs: number;
  /** Granularity of lease deadlines and nack backoff. */
  leaseTickMs: number;
  /** Caps on what clients may create (docs/limits.md, "Topics, subscriptions, consumers"); 0 = unlimited. */
  maxTopics: number;
  maxSubscriptions: number;
  maxSubscriptionsPerTopic: number;
  maxConsumersPerSubscription: number;
}

export const DEFAULT_CORE_CONFIG: BrokerCoreConfig = {
  memoryBudgetBytes: 0,
  diskBudgetBytes: 0,
  diskReserveBytes: undefined,
  messageLimits: DEFAULT_MESSAGE_LIMITS,
  maxDedupEntries: DEFAULT_MAX_DEDUP_ENTRIES,
  tickMs: 20,
  retentionSweepMs: 1_000,
  leaseTickMs: DEFAULT_LEASE_TICK_MS,
  maxTopics: 0,
  maxSubscriptions: 0,
  maxSubscriptionsPerTopic: 0,
  maxConsumersPerSubscription: 0,
};

export interface BrokerCoreOptions {
  store: Store;
  clock?: Clock;
  config?: Partial<BrokerCoreConfig>;
  /** Where the periodic work runs; tests pass ManualTimers. */
  timers?: Timers;
  /** Defer a subscription pump; default queueMicrotask (tests run pumps by hand). */
  defer?: (fn: () => void) => void;
  /** A periodic job threw; the job keeps running. Default: one line on stderr. */
  onTimerError?: (job: "tick" | "retention sweep", err: unknown) => void;
}

/**
 * The broker core as one object (docs/design.md, "The core object"): topics and the publish
 * path, the subscription registry, retention, and the two periodic jobs (the lease/ack tick
 * and the age-retention sweep). Transports receive the assembled core; they never build its
 * parts or run its timers. `close()` stops the jobs, ends consumers and live subscribers,
 * waits for in-flight commits and closes the store.
 */
export class BrokerCore {
  readonly topics: TopicRegistry;
  readonly subscriptions: SubscriptionRegistry;
  readonly clock: Clock;
  readonly config: Readonly<BrokerCoreConfig>;
  readonly startedAtMs: number;
  private readonly retention: Retention;
  private readonly stopTimers: Array<() => void>;
  private closing: Promise<void> | undefined;

  constructor(options: BrokerCoreOptions) {
    const { store } = options;
    this.clock = options.clock ?? systemClock;
    this.config = { ...DEFAULT_CORE_CONFIG, ...options.config };
    validateMessageLimits(this.config.messageLimits);
    this.startedAtMs = this.clock.nowMs();
    const recovered = store.recover();
    this.retention = new Retention(store, this.clock);
    this.topics = new TopicRegistry(
      {
        store,
        clock: this.clock,
        retention: this.retention,
        memoryBudgetBytes: this.config.memoryBudgetBytes,
        diskBudgetBytes: this.config.diskBudgetBytes,
        diskReserveBytes: this.config.diskReserveBytes,
        messageLimits: this.config.messageLimits,
        maxDedupEntries: this.config.maxDedupEntries,
        maxTopics: this.config.maxTopics,
      },
      recovered,
    );
    this.subscriptions = new SubscriptionRegistry(
      {
        topics: this.topics,
        store,
        clock: this.clock,
        leaseTickMs: this.config.leaseTickMs,
        defer: options.defer,
        limits: {
          maxSubscriptions: this.config.maxSubscriptions,
          maxSubscriptionsPerTopic: this.config.maxSubscriptionsPerTopic,
          maxConsumersPerSubscription: this.config.maxConsumersPerSubscription,
        },
      },
      recovered.subscriptions,
    );
    const timers = options.timers ?? systemTimers;
    const onError = options.onTimerError ?? reportTimerError;
    const guarded = (job: "tick" | "retention sweep", run: () => void) => () => {
      try {
        run();
      } catch (err) {
        onError(job, err);
      }
    };
    this.stopTimers = [
      timers.every(this.config.tickMs, guarded("tick", () => this.tick())),
      timers.every(this.config.retentionSweepMs, guarded("retention sweep", () => this.sweepRetention())),
    ];
  }

  /** The periodic duty: expire leases, end backoffs, persist ack state, interest retention. */
  tick(): void {
    this.subscriptions.tick();
  }

  /** Age-based retention over every topic. */
  sweepRetention(): void {
    this.retention.sweep(this.topics.allTopics());
    this.topics.pruneDedup();
  }

  /** A broker-wide sample (BrokerStats on the wire). */
  stats(probe: ProcessProbe = nodeProcessProbe): BrokerStatsSnapshot {
    return collectBrokerStats(this.topics, this.subscriptions, this.startedAtMs, probe);
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      for (const stop of this.stopTimers) stop();
      this.subscriptions.close(); // persists ack state, ends consumers (their leases are redelivered after restart)
      await this.topics.close(); // ends live subscribers, waits for in-flight commits, closes the store
    })());
  }
}

/** Builds the core on a store (docs/design.md, "The core object"). */
export function createBrokerCore(options: BrokerCoreOptions): BrokerCore {
  return new BrokerCore(options);
}

function reportTimerError(job: string, err: unknown): void {
  process.stderr.write(`broker core: ${job} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}
