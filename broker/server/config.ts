import { totalmem } from "node:os";
import type { LogLevel } from "./logger.js";

/** Everything `ratatoskr broker` can be told, with units in the names. Validated once, at the edge. */
export interface BrokerServerConfig {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Largest gRPC message accepted (and sent); bigger requests get RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  logLevel: LogLevel;
  /** Set: durable LMDB store in this directory. Unset: memory store. */
  dataDir: string | undefined;
  /** Durable store: flush each commit to disk before acknowledging (survives power loss). */
  fsync: boolean;
  /** 0 = unlimited. */
  memoryBudgetBytes: number;
  /** 0 = unlimited. */
  diskBudgetBytes: number;
  /** v1 Subscribe: bytes queued for one subscriber before it is cut off as a slow consumer. */
  v1SubscriberBufferBytes: number;
  /** Graceful shutdown: how long open calls get before they are cancelled. */
  shutdownGraceMs: number;

  // Resource limits (docs/limits.md): 0 = unlimited unless said otherwise.
  /** Bytes written to all v1/v2 streams and not yet taken by HTTP/2, broker-wide. */
  outboundBudgetBytes: number;
  /** v2 Consume: bytes written to one stream and not yet taken before no more is written to it. */
  streamOutboundBytes: number;
  /** v2 Consume: a stream that stays at its cap with nothing read for this long is cut off. */
  consumerStuckTimeoutMs: number;
  maxTopics: number;
  maxSubscriptions: number;
  maxSubscriptionsPerTopic: number;
  maxConsumersPerSubscription: number;
  /** Open TCP connections; past it new ones are closed at once (with a log line). */
  maxConnections: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls open at once on one connection. */
  maxStreamsPerConnection: number;
  /** A connection must complete its HTTP/2 (and TLS) handshake within this. */
  handshakeTimeoutMs: number;
  /** A connection with no open call for this long is closed (GOAWAY). */
  idleConnectionTimeoutMs: number;
  /** A request message must arrive whole within this from its first byte. */
  messageReceiveTimeoutMs: number;
}

export const DEFAULT_CONFIG: BrokerServerConfig = {
  host: "127.0.0.1",
  port: 50051,
  maxMessageBytes: 4 * 1024 * 1024,
  logLevel: "info",
  dataDir: undefined,
  fsync: false,
  memoryBudgetBytes: defaultMemoryBudgetBytes(),
  diskBudgetBytes: 0,
  v1SubscriberBufferBytes: 8 * 1024 * 1024,
  shutdownGraceMs: 3_000,
  outboundBudgetBytes: 256 * 1024 * 1024,
  streamOutboundBytes: 4 * 1024 * 1024,
  consumerStuckTimeoutMs: 30_000,
  maxTopics: 10_000,
  maxSubscriptions: 200_000,
  maxSubscriptionsPerTopic: 1_000,
  maxConsumersPerSubscription: 1_000,
  maxConnections: 10_000,
  maxStreamsPerConnection: 4_096,
  handshakeTimeoutMs: 10_000,
  idleConnectionTimeoutMs: 300_000,
  messageReceiveTimeoutMs: 30_000,
};

/**
 * A quarter of the memory this process may use (the container's limit when there is one),
 * capped at 1 GiB. The budget counts retained message bytes only; objects, leases and
 * socket buffers cost as much again, so a budget near the limit would get the broker
 * OOM-killed instead of refusing publishes with RESOURCE_EXHAUSTED.
 */
export function defaultMemoryBudgetBytes(): number {
  const constrained = process.constrainedMemory?.() ?? 0;
  const available = constrained > 0 ? Math.min(constrained, totalmem()) : totalmem();
  return Math.min(1024 * 1024 * 1024, Math.floor(available / 4));
}
