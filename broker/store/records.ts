// The records the store keeps: messages, topics, subscriptions and their ack state. They belong
// to the store package (which imports nothing from the core); the core builds and reads them.

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
