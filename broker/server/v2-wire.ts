// Wire ↔ core mapping for the v2 API. Validation of wire-only concerns (enums, page tokens)
// lives here; everything else is validated by the core, with the same proto field names.
import { InvalidArgumentError } from "../core/errors.js";
import type { BrokerStatsSnapshot } from "../core/broker-stats.js";
import type { TopicInfo } from "../core/index.js";
import type { SubscriptionInfo } from "../core/subscription-registry.js";
import type { SubscriptionRequest } from "../core/subscription-config.js";
import { DEFAULT_DEDUP_WINDOW_MS, type PublishOutcome, type StartPosition, type TopicConfig } from "../core/types.js";
import {
  RetentionPolicy,
  StartPosition as WireStart,
  type BrokerStats,
  type PublishResponse,
  type Subscription,
  type SubscriptionConfig as WireSubscriptionConfig,
  type Topic,
  type TopicConfig as WireTopicConfig,
} from "../../proto/gen/ratatoskr/v2/broker.js";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export function topicConfigFromWire(wire: WireTopicConfig | undefined): TopicConfig {
  const w = wire ?? { retention: 0, maxMessages: 0, maxBytes: 0, maxAgeMs: 0, dedupWindowMs: 0 };
  let retention: TopicConfig["retention"];
  if (w.retention === RetentionPolicy.RETENTION_POLICY_UNSPECIFIED || w.retention === RetentionPolicy.RETENTION_POLICY_INTEREST) retention = "interest";
  else if (w.retention === RetentionPolicy.RETENTION_POLICY_LIMITS) retention = "limits";
  else throw new InvalidArgumentError("config.retention", `unknown retention policy ${w.retention}`);
  const maxMessages = nonNegative("config.max_messages", w.maxMessages);
  const maxBytes = nonNegative("config.max_bytes", w.maxBytes);
  const maxAgeMs = nonNegative("config.max_age_ms", w.maxAgeMs);
  const dedupWindowMs = nonNegative("config.dedup_window_ms", w.dedupWindowMs) || DEFAULT_DEDUP_WINDOW_MS;
  if (retention === "interest") {
    for (const [field, value] of [["config.max_messages", maxMessages], ["config.max_bytes", maxBytes], ["config.max_age_ms", maxAgeMs]] as const) {
      if (value !== 0) throw new InvalidArgumentError(field, "only applies to RETENTION_POLICY_LIMITS");
    }
  }
  return { retention, maxMessages, maxBytes, maxAgeMs, dedupWindowMs };
}

export function topicToWire(info: TopicInfo): Topic {
  const c = info.config;
  return {
    name: info.name,
    config: {
      retention: c.retention === "limits" ? RetentionPolicy.RETENTION_POLICY_LIMITS : RetentionPolicy.RETENTION_POLICY_INTEREST,
      maxMessages: c.maxMessages,
      maxBytes: c.maxBytes,
      maxAgeMs: c.maxAgeMs,
      dedupWindowMs: c.dedupWindowMs,
    },
    stats: { ...info.stats },
    createdAtMs: info.createdAtMs,
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
      start = { kind: "sequence", sequence: wire.startSequence };
      break;
    case WireStart.START_POSITION_TIMESTAMP:
      start = { kind: "timestamp", timestampMs: wire.startTimestampMs };
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
      startSequence: s.kind === "sequence" ? s.sequence : 0,
      startTimestampMs: s.kind === "timestamp" ? s.timestampMs : 0,
      ackDeadlineMs: info.config.ackDeadlineMs,
      maxDeliveries: info.config.maxDeliveries,
      deadLetterTopic: info.config.deadLetterTopic,
      retryBackoffMinMs: info.config.retryBackoffMinMs,
      retryBackoffMaxMs: info.config.retryBackoffMaxMs,
    },
    stats: { ...info.stats },
    createdAtMs: info.createdAtMs,
  };
}

/** A stored batch as Publish (and each PublishStream answer) reports it; `nowMs` stands in for an empty batch. */
export function publishResponseToWire(outcomes: readonly PublishOutcome[], nowMs: number): PublishResponse {
  return {
    results: outcomes.map((o) => ({ messageId: o.id, sequence: o.sequence, duplicate: o.duplicate })),
    publishTimeMs: outcomes[0]?.publishTimeMs ?? nowMs,
  };
}

export function brokerStatsToWire(s: BrokerStatsSnapshot): BrokerStats {
  return { ...s };
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

function nonNegative(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError(field, `must be >= 0, got ${value}`);
  return value;
}
