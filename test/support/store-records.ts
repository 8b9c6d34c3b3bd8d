// Records for store tests, built without the broker core (the store imports nothing from it).
import type { TopicConfig } from "../../broker/store/index.js";

/** The topic configuration the core gives a topic by default (interest retention, 2 min de-duplication). */
export function plainTopicConfig(overrides: Partial<TopicConfig> = {}): TopicConfig {
  return { retention: "interest", maxMessages: 0, maxBytes: 0, maxAgeMs: 0, dedupWindowMs: 120_000, ...overrides };
}

/** The payload store-append-child.ts writes at `sequence` (20 to 219 bytes, starting "<sequence>:"), so the parent can check every byte. */
export function payloadFor(sequence: number): Buffer {
  return Buffer.from(`${sequence}:`.padEnd(20 + (sequence % 200), "x"));
}
