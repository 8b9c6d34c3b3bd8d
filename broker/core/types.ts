// Types of the core's own API. The stored record types belong to the store package and are
// re-exported here so core modules have one place to import them from.

export type {
  AckState,
  RetentionPolicy,
  StartPosition,
  StoredMessage,
  SubscriptionConfig,
  SubscriptionRecord,
  TopicConfig,
  TopicRecord,
} from "../store/index.js";
export { messageBytes } from "../store/index.js";
import type { TopicConfig } from "../store/index.js";

/** What a publisher hands the core. */
export interface PublishInput {
  payload: Buffer;
  attributes?: Record<string, string>;
  /**
   * Producer-supplied id, de-duplicated within the topic's window; undefined: the broker makes
   * one. (Any string is an id here, the empty one too: the wire edge decides what "unset" is.)
   */
  messageId?: string;
}

export interface PublishOutcome {
  id: string;
  sequence: number;
  publishTimeMs: number;
  /** The id was seen within the de-duplication window; nothing new was stored. */
  duplicate: boolean;
}

export const DEFAULT_DEDUP_WINDOW_MS = 120_000;

export function defaultTopicConfig(): TopicConfig {
  return { retention: "interest", maxMessages: 0, maxBytes: 0, maxAgeMs: 0, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS };
}

export const DEFAULT_ACK_DEADLINE_MS = 30_000;
