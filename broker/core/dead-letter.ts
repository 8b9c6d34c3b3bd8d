import type { StoredMessage } from "./types.js";

/**
 * Attributes a dead-lettered copy carries besides the original ones, so a consumer of the
 * dead-letter topic can tell where it came from and how often it was tried.
 */
export const DEAD_LETTER_ATTRIBUTES = {
  attempts: "ratatoskr-dead-letter-attempts",
  topic: "ratatoskr-origin-topic",
  subscription: "ratatoskr-origin-subscription",
  sequence: "ratatoskr-origin-sequence",
  messageId: "ratatoskr-origin-message-id",
  publishTimeMs: "ratatoskr-origin-publish-time-ms",
} as const;

export function deadLetterAttributes(message: StoredMessage, subscription: string, attempts: number): Record<string, string> {
  return {
    ...message.attributes,
    [DEAD_LETTER_ATTRIBUTES.attempts]: String(attempts),
    [DEAD_LETTER_ATTRIBUTES.topic]: message.topic,
    [DEAD_LETTER_ATTRIBUTES.subscription]: subscription,
    [DEAD_LETTER_ATTRIBUTES.sequence]: String(message.sequence),
    [DEAD_LETTER_ATTRIBUTES.messageId]: message.id,
    [DEAD_LETTER_ATTRIBUTES.publishTimeMs]: String(message.publishTimeMs),
  };
}
