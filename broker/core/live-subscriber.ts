import type { StoredMessage } from "./types.js";

/** Why a live (v1) subscription ended. */
export type LiveEndReason = "unsubscribed" | "topic_deleted" | "shutdown";

/**
 * Where a live subscription's messages go. The server layer implements it over a gRPC stream
 * and enforces its own buffer bound (a slow consumer is cut off there, never stalling fan-out).
 */
export interface LiveSink {
  /** Called in publish order, synchronously from fan-out: must not block or throw. */
  deliver(message: StoredMessage): void;
  /** The broker ended the subscription; no `deliver` follows. */
  end(reason: LiveEndReason): void;
}

/** An at-most-once subscription that exists while its stream is open (v1 Subscribe). */
export interface LiveSubscription {
  readonly topic: string;
  /** Reference for Unsubscribe (also sent in the `x-subscription-ref` header). */
  readonly ref: string;
  /** The client's non-empty subscriber_id, accepted as a second reference. */
  readonly subscriberId: string | undefined;
  /** Removes the subscription without calling `sink.end` (the client went away). */
  cancel(): void;
}
