import type { TopicRegistry } from "./topic-registry.js";
import type { SubscriptionRegistry } from "./subscription-registry.js";

/** A broker-wide sample for the load generator's resource series (BrokerStats on the wire). */
export interface BrokerStatsSnapshot {
  timestampMs: number;
  uptimeMs: number;
  storage: "memory" | "durable";
  /** The store flushes each commit before acknowledging (false for memory). */
  fsync: boolean;
  topics: number;
  subscriptions: number;
  consumers: number;
  v1Subscribers: number;
  published: number;
  delivered: number;
  acked: number;
  redelivered: number;
  deadLettered: number;
  backlog: number;
  inFlight: number;
  retainedMessages: number;
  retainedBytes: number;
  memoryBudgetBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  diskBytes: number;
  diskBudgetBytes: number;
  /** The budget in force for this storage: memoryBudgetBytes for memory, diskBudgetBytes for durable; 0 = unlimited. */
  budgetBytes: number;
}

/** Process figures, injectable so tests need not depend on the real process. */
export interface ProcessProbe {
  memoryUsage(): { rss: number; heapUsed: number };
  cpuUsage(): { user: number; system: number };
}

export const nodeProcessProbe: ProcessProbe = {
  memoryUsage: () => process.memoryUsage(),
  cpuUsage: () => process.cpuUsage(),
};

/** Counts, rates' raw counters, backlog and process memory/CPU, in one pass over topics and subscriptions. */
export function collectBrokerStats(broker: TopicRegistry, registry: SubscriptionRegistry, startedAtMs: number, probe: ProcessProbe = nodeProcessProbe): BrokerStatsSnapshot {
  const now = broker.clock.nowMs();
  const counters = broker.counters();
  const summary = registry.summary();
  let retainedMessages = 0;
  let retainedBytes = 0;
  for (const topic of broker.allTopics()) {
    const { first, last, bytes } = broker.store.bounds(topic.name);
    retainedMessages += Math.max(0, last - first + 1);
    retainedBytes += bytes;
  }
  const memory = probe.memoryUsage();
  const cpu = probe.cpuUsage();
  const durable = broker.store.kind === "durable";
  return {
    timestampMs: now,
    uptimeMs: Math.max(0, now - startedAtMs),
    storage: broker.store.kind,
    fsync: broker.store.fsync,
    topics: counters.topics,
    subscriptions: summary.subscriptions,
    consumers: summary.consumers,
    v1Subscribers: counters.liveSubscribers,
    published: counters.published,
    delivered: registry.totals.delivered,
    acked: registry.totals.acked,
    redelivered: registry.totals.redelivered,
    deadLettered: registry.totals.deadLettered,
    backlog: summary.backlog,
    inFlight: summary.inFlight,
    retainedMessages,
    retainedBytes,
    memoryBudgetBytes: broker.budgets.memoryBudgetBytes,
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    cpuUserSeconds: cpu.user / 1e6,
    cpuSystemSeconds: cpu.system / 1e6,
    diskBytes: durable ? broker.store.usageBytes() : 0,
    diskBudgetBytes: broker.budgets.diskBudgetBytes,
    budgetBytes: durable ? broker.budgets.diskBudgetBytes : broker.budgets.memoryBudgetBytes,
  };
}
