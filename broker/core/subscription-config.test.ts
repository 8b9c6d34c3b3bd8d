import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "./errors.js";
import { nackBackoffMs, normalizeSubscription, resolveStart } from "./subscription-config.js";
import { DEFAULT_ACK_DEADLINE_MS } from "./types.js";

const latest = { kind: "latest" } as const;

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidArgumentError) return err.field;
    throw err;
  }
  return undefined;
}

describe("subscription configuration", () => {
  it("fills in defaults", () => {
    const { config } = normalizeSubscription("s", "t", { start: latest });
    expect(config).toEqual({ ackDeadlineMs: DEFAULT_ACK_DEADLINE_MS, maxDeliveries: 0, deadLetterTopic: "", retryBackoffMinMs: 0, retryBackoffMaxMs: 0 });
    expect(normalizeSubscription("s", "t", { start: latest, retryBackoffMinMs: 10 }).config.retryBackoffMaxMs).toBe(600_000);
  });

  it("names the offending field", () => {
    expect(fieldOf(() => normalizeSubscription("", "t", { start: latest }))).toBe("name");
    expect(fieldOf(() => normalizeSubscription("s", "t", { start: latest, ackDeadlineMs: -1 }))).toBe("config.ack_deadline_ms");
    expect(fieldOf(() => normalizeSubscription("s", "t", { start: latest, maxDeliveries: -2 }))).toBe("config.max_deliveries");
    expect(fieldOf(() => normalizeSubscription("s", "t", { start: latest, maxDeliveries: 3, deadLetterTopic: "t" }))).toBe("config.dead_letter_topic");
    expect(fieldOf(() => normalizeSubscription("s", "t", { start: latest, maxDeliveries: 3, deadLetterTopic: "bad name" }))).toBe("config.dead_letter_topic");
    expect(fieldOf(() => normalizeSubscription("s", "t", { start: latest, deadLetterTopic: "dlq" }))).toBe("config.max_deliveries");
    expect(fieldOf(() => normalizeSubscription("s", "t", { start: { kind: "sequence", sequence: -1 } }))).toBe("config.start_sequence");
    expect(fieldOf(() => normalizeSubscription("s", "t", { start: { kind: "timestamp", timestampMs: -5 } }))).toBe("config.start_timestamp_ms");
    expect(fieldOf(() => normalizeSubscription("s", "t", { start: latest, retryBackoffMinMs: 100, retryBackoffMaxMs: 50 }))).toBe("config.retry_backoff_max_ms");
    expect(fieldOf(() => normalizeSubscription("s", "t", { start: latest, retryBackoffMinMs: -1 }))).toBe("config.retry_backoff_min_ms");
  });

  it("doubles the nack backoff per attempt up to the cap", () => {
    const { config } = normalizeSubscription("s", "t", { start: latest, retryBackoffMinMs: 100, retryBackoffMaxMs: 1000 });
    expect([1, 2, 3, 4, 5, 50].map((a) => nackBackoffMs(config, a))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(nackBackoffMs(normalizeSubscription("s", "t", { start: latest }).config, 3)).toBe(0);
  });

  it("resolves start positions against the log", () => {
    const log = { bounds: () => ({ first: 5, last: 9 }), sequenceAtTime: (ts: number) => (ts <= 100 ? 5 : 8), lastAssigned: () => 10 };
    expect(resolveStart(latest, log)).toBe(11);
    expect(resolveStart({ kind: "earliest" }, log)).toBe(5);
    expect(resolveStart({ kind: "sequence", sequence: 2 }, log)).toBe(5);
    expect(resolveStart({ kind: "sequence", sequence: 7 }, log)).toBe(7);
    expect(resolveStart({ kind: "timestamp", timestampMs: 500 }, log)).toBe(8);
  });
});
