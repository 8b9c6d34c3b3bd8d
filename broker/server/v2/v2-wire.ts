// Wire ↔ core mapping for the v2 API. Validation of wire-only concerns (enums, page tokens,
// proto3 "empty = unset", 64-bit ranges) lives here; everything else is validated by the core,
// with the same proto field names.
//
// 64-bit fields are bigint on the wire side (ts-proto forceLong=bigint) and JS numbers in the
// core. Inbound, a value the core cannot hold exactly (beyond Number.MAX_SAFE_INTEGER) is
// INVALID_ARGUMENT naming the field, except ack ids, where such a value cannot name a lease and
// is ignored like any unknown id. Outbound, core numbers are safe integers and convert exactly.
import { type BrokerStatsSnapshot, type ConsumerCommands, DEFAULT_DEDUP_WINDOW_MS, type FlowLimits, InvalidArgumentError, type PublishInput, type PublishOutcome, resolveFlowLimits, type StartPosition, type SubscriptionInfo, type SubscriptionRequest, type TopicConfig, type TopicInfo } from "../../core/index.js";
import {
  RetentionPolicy,
  StartPosition as WireStart,
  type BrokerStats,
  type ConsumeRequest,
  type ConsumeStart,
  type PublishRequest,
  type PublishResponse,
  type Subscription,
  type SubscriptionConfig as WireSubscriptionConfig,
  type Topic,
  type TopicConfig as WireTopicConfig,
} from "../../../proto/gen/ratatoskr/v2/broker.js";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export function topicConfigFromWire(wire: WireTopicConfig | undefined): TopicConfig {
  const w = wire ?? { retention: 0, maxMessages: 0n, maxBytes: 0n, maxAgeMs: 0n, dedupWindowMs: 0n };
  let retention: TopicConfig["retention"];
  if (w.retention === RetentionPolicy.RETENTION_POLICY_UNSPECIFIED || w.retention === RetentionPolicy.RETENTION_POLICY_INTEREST) retention = "interest";
  else if (w.retention === RetentionPolicy.RETENTION_POLICY_LIMITS) retention = "limits";
  else throw new InvalidArgumentError("config.retention", `unknown retention policy ${w.retention}`);
  const maxMessages = int64FromWire("config.max_messages", w.maxMessages);
  const maxBytes = int64FromWire("config.max_bytes", w.maxBytes);
  const maxAgeMs = int64FromWire("config.max_age_ms", w.maxAgeMs);
  const dedupWindowMs = int64FromWire("config.dedup_window_ms", w.dedupWindowMs) || DEFAULT_DEDUP_WINDOW_MS;
  if (retention === "interest") {
    for (const [field, value] of [["config.max_messages", maxMessages], ["config.max_bytes", maxBytes], ["config.max_age_ms", maxAgeMs]] as const) {
      if (value !== 0) throw new InvalidArgumentError(field, "only applies to RETENTION_POLICY_LIMITS");
    }
  }
  return { retention, maxMessages, maxBytes, maxAgeMs, dedupWindowMs };
}

export function topicToWire(info: TopicInfo): Topic {
  const c = info.config;
  const t = info.stats;
  return {
    name: info.name,
    config: {
      retention: c.retention === "limits" ? RetentionPolicy.RETENTION_POLICY_LIMITS : RetentionPolicy.RETENTION_POLICY_INTEREST,
      maxMessages: BigInt(c.maxMessages),
      maxBytes: BigInt(c.maxBytes),
      maxAgeMs: BigInt(c.maxAgeMs),
      dedupWindowMs: BigInt(c.dedupWindowMs),
    },
    stats: {
      published: BigInt(t.published),
      firstSequence: BigInt(t.firstSequence),
      lastSequence: BigInt(t.lastSequence),
      retainedMessages: BigInt(t.retainedMessages),
      retainedBytes: BigInt(t.retainedBytes),
      discarded: BigInt(t.discarded),
      subscriptionCount: t.subscriptionCount,
      liveSubscriberCount: t.liveSubscriberCount,
      duplicates: BigInt(t.duplicates),
    },
    createdAtMs: BigInt(info.createdAtMs),
  };
}

export function subscriptionRequestFromWire(wire: WireSubscriptionConfig | undefined): SubscriptionRequest {
  if (!wire) return { start: { kind: "latest" } };
  let start: StartPosition;
  switch (wire.start) {
    case WireStart.START_POSITION_UNSPECIFIED:
    case WireStart.START_POSITION_LATEST:
      start = { kind: "latest" };
      break;
    case WireStart.START_POSITION_EARLIEST:
      start = { kind: "earliest" };
      break;
    case WireStart.START_POSITION_SEQUENCE:
      start = { kind: "sequence", sequence: int64FromWire("config.start_sequence", wire.startSequence) };
      break;
    case WireStart.START_POSITION_TIMESTAMP:
      start = { kind: "timestamp", timestampMs: int64FromWire("config.start_timestamp_ms", wire.startTimestampMs) };
      break;
    default:
      throw new InvalidArgumentError("config.start", `unknown start position ${wire.start}`);
  }
  return {
    start,
    ackDeadlineMs: wire.ackDeadlineMs,
    maxDeliveries: wire.maxDeliveries,
    deadLetterTopic: wire.deadLetterTopic,
    retryBackoffMinMs: wire.retryBackoffMinMs,
    retryBackoffMaxMs: wire.retryBackoffMaxMs,
  };
}

export function subscriptionToWire(info: SubscriptionInfo): Subscription {
  const s = info.start;
  const t = info.stats;
  return {
    name: info.name,
    topic: info.topic,
    config: {
      start:
        s.kind === "latest"
          ? WireStart.START_POSITION_LATEST
          : s.kind === "earliest"
            ? WireStart.START_POSITION_EARLIEST
            : s.kind === "sequence"
              ? WireStart.START_POSITION_SEQUENCE
              : WireStart.START_POSITION_TIMESTAMP,
      startSequence: BigInt(s.kind === "sequence" ? s.sequence : 0),
      startTimestampMs: BigInt(s.kind === "timestamp" ? s.timestampMs : 0),
      ackDeadlineMs: info.config.ackDeadlineMs,
      maxDeliveries: info.config.maxDeliveries,
      deadLetterTopic: info.config.deadLetterTopic,
      retryBackoffMinMs: info.config.retryBackoffMinMs,
      retryBackoffMaxMs: info.config.retryBackoffMaxMs,
    },
    stats: {
      backlog: BigInt(t.backlog),
      inFlight: BigInt(t.inFlight),
      delivered: BigInt(t.delivered),
      redelivered: BigInt(t.redelivered),
      acked: BigInt(t.acked),
      deadLettered: BigInt(t.deadLettered),
      consumerCount: t.consumerCount,
      ackFloor: BigInt(t.ackFloor),
      nextSequence: BigInt(t.nextSequence),
    },
    createdAtMs: BigInt(info.createdAtMs),
  };
}

/** A Publish (or PublishStream) request as the core takes it: an empty `message_id` is no producer id. */
export function publishRequestFromWire(wire: Pick<PublishRequest, "topic" | "messages">): { topic: string; messages: PublishInput[] } {
  return {
    topic: wire.topic,
    messages: wire.messages.map((m) => (m.messageId === "" ? { payload: m.payload, attributes: m.attributes } : { payload: m.payload, attributes: m.attributes, messageId: m.messageId })),
  };
}

/** A stored batch as Publish (and each PublishStream answer) reports it; `nowMs` stands in for an empty batch. */
export function publishResponseToWire(outcomes: readonly PublishOutcome[], nowMs: number): PublishResponse {
  return {
    results: outcomes.map((o) => ({ messageId: o.id, sequence: BigInt(o.sequence), duplicate: o.duplicate })),
    publishTimeMs: BigInt(outcomes[0]?.publishTimeMs ?? nowMs),
  };
}

/** Consume flow-control limits (zeros = defaults), validated by the core once the 64-bit byte limit fits a number. */
export function flowLimitsFromWire(start: ConsumeStart): FlowLimits {
  return resolveFlowLimits(start.maxOutstandingMessages, int64FromWire("start.max_outstanding_bytes", start.maxOutstandingBytes));
}

/**
 * The acks, nacks and extensions of one ConsumeRequest as core commands. Ack ids are int64 on
 * the wire; the core's are safe integers, so an id outside that range names no lease and is
 * dropped here, exactly as the core ignores any other unknown id.
 */
export function consumeCommandsFromWire(wire: ConsumeRequest): ConsumerCommands {
  const commands: ConsumerCommands = {};
  if (wire.ackIds.length > 0) commands.ackIds = ackIdsFromWire(wire.ackIds);
  if (wire.nackIds.length > 0) commands.nackIds = ackIdsFromWire(wire.nackIds);
  if (wire.extend) commands.extend = { ackIds: ackIdsFromWire(wire.extend.ackIds), extendMs: wire.extend.extendMs };
  return commands;
}

function ackIdsFromWire(ids: readonly bigint[]): number[] {
  const out: number[] = [];
  for (const id of ids) {
    if (id >= MIN_SAFE && id <= MAX_SAFE) out.push(Number(id));
  }
  return out;
}

export function brokerStatsToWire(s: BrokerStatsSnapshot): BrokerStats {
  return {
    timestampMs: BigInt(s.timestampMs),
    uptimeMs: BigInt(s.uptimeMs),
    storage: s.storage,
    topics: s.topics,
    subscriptions: s.subscriptions,
    consumers: s.consumers,
    v1Subscribers: s.v1Subscribers,
    published: BigInt(s.published),
    delivered: BigInt(s.delivered),
    acked: BigInt(s.acked),
    redelivered: BigInt(s.redelivered),
    deadLettered: BigInt(s.deadLettered),
    backlog: BigInt(s.backlog),
    inFlight: BigInt(s.inFlight),
    retainedMessages: BigInt(s.retainedMessages),
    retainedBytes: BigInt(s.retainedBytes),
    memoryBudgetBytes: BigInt(s.memoryBudgetBytes),
    rssBytes: BigInt(s.rssBytes),
    heapUsedBytes: BigInt(s.heapUsedBytes),
    cpuUserSeconds: s.cpuUserSeconds,
    cpuSystemSeconds: s.cpuSystemSeconds,
    diskBytes: BigInt(s.diskBytes),
    diskBudgetBytes: BigInt(s.diskBudgetBytes),
    fsync: s.fsync,
    budgetBytes: BigInt(s.budgetBytes),
  };
}

/**
 * One page of sorted names. The token is opaque to clients (base64url of the last name
 * returned); listing resumes after it even if that name was deleted meanwhile.
 */
export function paginate(sortedNames: readonly string[], pageSize: number, pageToken: string): { names: string[]; nextPageToken: string } {
  if (!Number.isSafeInteger(pageSize) || pageSize < 0) throw new InvalidArgumentError("page_size", `must be >= 0, got ${pageSize}`);
  const size = Math.min(pageSize || DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
  let from = 0;
  if (pageToken !== "") {
    const decoded = Buffer.from(pageToken, "base64url").toString("utf8");
    if (!decoded.startsWith("after:") || Buffer.from(decoded, "utf8").toString("base64url") !== pageToken) {
      throw new InvalidArgumentError("page_token", "is not a token this broker handed out");
    }
    const after = decoded.slice("after:".length);
    while (from < sortedNames.length && sortedNames[from]! <= after) from++;
  }
  const names = sortedNames.slice(from, from + size);
  const more = from + size < sortedNames.length;
  return { names, nextPageToken: more ? Buffer.from(`after:${names[names.length - 1]!}`, "utf8").toString("base64url") : "" };
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

/**
 * A non-negative 64-bit field as a core number. Negative values and values beyond
 * Number.MAX_SAFE_INTEGER (which the core could not hold exactly) are INVALID_ARGUMENT naming `field`.
 */
export function int64FromWire(field: string, value: bigint): number {
  if (value < 0n) throw new InvalidArgumentError(field, `must be >= 0, got ${value}`);
  if (value > MAX_SAFE) throw new InvalidArgumentError(field, `must be at most ${Number.MAX_SAFE_INTEGER}, got ${value}`);
  return Number(value);
}
