// Plain data types shared by the core, the stores and the server layer.

/** A message as the broker stores it. Immutable once stored. */
export interface StoredMessage {
  /** Producer-supplied id, or a lowercase UUID v4 made by the broker. */
  readonly id: string;
  readonly topic: string;
  /** Per-topic sequence number, from 1, gap-free at publish time. */
  readonly sequence: number;
  readonly payload: Buffer;
  readonly attributes: Readonly<Record<string, string>>;
  /** Unix milliseconds, set by the broker when the message was accepted. */
  readonly publishTimeMs: number;
  /** True when `id` came from the producer (it then takes part in de-duplication). */
  readonly producerId: boolean;
}

/** What a publisher hands the core. */
export interface PublishInput {
  payload: Buffer;
  attributes?: Record<string, string>;
  /** Optional producer-supplied id, de-duplicated within the topic's window. */
  messageId?: string;
}

export interface PublishOutcome {
  id: string;
  sequence: number;
  publishTimeMs: number;
  /** The id was seen within the de-duplication window; nothing new was stored. */
  duplicate: boolean;
}

export type RetentionPolicy = "interest" | "limits";

export interface TopicConfig {
  retention: RetentionPolicy;
  /** Limits retention; 0 = unlimited. */
  maxMessages: number;
  maxBytes: number;
  maxAgeMs: number;
  /** Producer message-id de-duplication window. */
  dedupWindowMs: number;
}

export const DEFAULT_DEDUP_WINDOW_MS = 120_000;

export function defaultTopicConfig(): TopicConfig {
  return { retention: "interest", maxMessages: 0, maxBytes: 0, maxAgeMs: 0, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS };
}

export interface TopicRecord {
  name: string;
  config: TopicConfig;
  createdAtMs: number;
}

export type StartPosition =
  | { kind: "latest" }
  | { kind: "earliest" }
  | { kind: "sequence"; sequence: number }
  | { kind: "timestamp"; timestampMs: number };

export interface SubscriptionConfig {
  ackDeadlineMs: number;
  /** 0 = unlimited. */
  maxDeliveries: number;
  /** Empty = none: keep retrying. */
  deadLetterTopic: string;
  retryBackoffMinMs: number;
  retryBackoffMaxMs: number;
}

export const DEFAULT_ACK_DEADLINE_MS = 30_000;

export interface SubscriptionRecord {
  name: string;
  topic: string;
  config: SubscriptionConfig;
  createdAtMs: number;
  /** First sequence this subscription is interested in (resolved start position). */
  startSequence: number;
  /** The start position as requested (for describing the subscription); optional for older records. */
  start?: StartPosition;
}

/** Durable ack state of a subscription: everything <= floor is acked, plus sparse acks above it. */
export interface AckState {
  floor: number;
  above: number[];
}

/** Size of a message for budgets and limits: payload plus attribute keys and values. */
export function messageBytes(m: { payload: Buffer; attributes: Readonly<Record<string, string>> }): number {
  let n = m.payload.length;
  for (const k in m.attributes) n += k.length + (m.attributes[k]?.length ?? 0);
  return n;
}
