import { InvalidArgumentError } from "./errors.js";
import { checkName } from "./names.js";
import { DEFAULT_ACK_DEADLINE_MS, type StartPosition, type SubscriptionConfig } from "./types.js";

/** Longest ack deadline, extension and backoff accepted (10 minutes, as Google Pub/Sub). */
export const MAX_DEADLINE_MS = 600_000;
/** Cap of the nack backoff when only the minimum is given. */
export const DEFAULT_RETRY_BACKOFF_MAX_MS = 600_000;

/** What a client asks for; zeros mean "default". Field names in errors follow the v2 proto. */
export interface SubscriptionRequest {
  start: StartPosition;
  ackDeadlineMs?: number;
  maxDeliveries?: number;
  deadLetterTopic?: string;
  retryBackoffMinMs?: number;
  retryBackoffMaxMs?: number;
}

/** Validates a subscription request and fills in defaults. Throws InvalidArgumentError naming the field. */
export function normalizeSubscription(name: string, topic: string, request: SubscriptionRequest): { start: StartPosition; config: SubscriptionConfig } {
  const nameProblem = checkName(name);
  if (nameProblem) throw new InvalidArgumentError("name", describeNameProblem(nameProblem));
  const start = request.start;
  if (start.kind === "sequence" && !(Number.isSafeInteger(start.sequence) && start.sequence >= 0)) {
    throw new InvalidArgumentError("config.start_sequence", `must be >= 0, got ${start.sequence}`);
  }
  if (start.kind === "timestamp" && !(Number.isSafeInteger(start.timestampMs) && start.timestampMs >= 0)) {
    throw new InvalidArgumentError("config.start_timestamp_ms", `must be >= 0, got ${start.timestampMs}`);
  }
  const ackDeadlineMs = nonNegative("config.ack_deadline_ms", request.ackDeadlineMs ?? 0, MAX_DEADLINE_MS) || DEFAULT_ACK_DEADLINE_MS;
  const maxDeliveries = nonNegative("config.max_deliveries", request.maxDeliveries ?? 0, Number.MAX_SAFE_INTEGER);
  const retryBackoffMinMs = nonNegative("config.retry_backoff_min_ms", request.retryBackoffMinMs ?? 0, MAX_DEADLINE_MS);
  let retryBackoffMaxMs = nonNegative("config.retry_backoff_max_ms", request.retryBackoffMaxMs ?? 0, MAX_DEADLINE_MS);
  if (retryBackoffMaxMs === 0) retryBackoffMaxMs = retryBackoffMinMs > 0 ? Math.max(retryBackoffMinMs, DEFAULT_RETRY_BACKOFF_MAX_MS) : 0;
  if (retryBackoffMaxMs < retryBackoffMinMs) {
    throw new InvalidArgumentError("config.retry_backoff_max_ms", `must be >= retry_backoff_min_ms (${retryBackoffMinMs}), got ${retryBackoffMaxMs}`);
  }
  const deadLetterTopic = request.deadLetterTopic ?? "";
  if (deadLetterTopic !== "") {
    const problem = checkName(deadLetterTopic);
    if (problem) throw new InvalidArgumentError("config.dead_letter_topic", describeNameProblem(problem));
    if (deadLetterTopic === topic) throw new InvalidArgumentError("config.dead_letter_topic", "must not be the subscription's own topic");
    // Without a delivery limit nothing would ever be dead-lettered: surely a mistake.
    if (maxDeliveries === 0) throw new InvalidArgumentError("config.max_deliveries", "must be > 0 when dead_letter_topic is set");
  }
  return { start, config: { ackDeadlineMs, maxDeliveries, deadLetterTopic, retryBackoffMinMs, retryBackoffMaxMs } };
}

/** Delay before redelivering a message nacked on its `attempt`-th delivery: min·2^(attempt−1), capped. */
export function nackBackoffMs(config: SubscriptionConfig, attempt: number): number {
  if (config.retryBackoffMinMs <= 0) return 0;
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(config.retryBackoffMaxMs, config.retryBackoffMinMs * 2 ** exponent);
}

/** Narrow view of the topic log for resolving a start position. */
export interface LogView {
  bounds(): { first: number; last: number };
  sequenceAtTime(timestampMs: number): number;
  /** Highest sequence handed out so far (committed or not). */
  lastAssigned(): number;
}

/** The first sequence a new subscription is interested in. */
export function resolveStart(start: StartPosition, log: LogView): number {
  switch (start.kind) {
    case "latest":
      return log.lastAssigned() + 1;
    case "earliest":
      return log.bounds().first;
    case "sequence":
      return Math.max(start.sequence, log.bounds().first);
    case "timestamp":
      return log.sequenceAtTime(start.timestampMs);
  }
}

function nonNegative(field: string, value: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError(field, `must be a whole number >= 0, got ${value}`);
  if (value > max) throw new InvalidArgumentError(field, `must be <= ${max}, got ${value}`);
  return value;
}

function describeNameProblem(problem: string): string {
  return problem === "empty" ? "is empty" : problem === "too_long" ? "is longer than 255 characters" : "may only contain A-Z a-z 0-9 _ -";
}
