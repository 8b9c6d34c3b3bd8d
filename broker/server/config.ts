import { totalmem } from "node:os";
import type { MessageLimits } from "../core/index.js";
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
  /**
   * V8's old-space growth after a full GC, in percent of the live heap (V8's --heap-growing-percent);
   * 0 = V8's own (it grows the limit by up to 4x). Applied by startBroker to the whole process it
   * runs in; a lower value trades CPU for peak RSS (docs/operations.md, "Memory").
   */
  heapGrowthPercent: number;

  // Message, de-duplication and disk limits (docs/limits.md).
  /** Producer message id, UTF-8 bytes (at most 65535, what the durable store can hold). */
  maxMessageIdBytes: number;
  /** Attributes (v1 metadata entries) per message (at most 65535). */
  maxAttributes: number;
  /** One attribute key, UTF-8 bytes (at most 65535). */
  maxAttributeKeyBytes: number;
  /** One attribute value, UTF-8 bytes. */
  maxAttributeValueBytes: number;
  /** Producer ids remembered over all topics' de-duplication windows. */
  maxDedupEntries: number;
  /** Durable store without a disk budget: bytes kept free on the data directory's filesystem; undefined = 5% of it, at most 1 GiB; 0 = no check. */
  diskReserveBytes: number | undefined;
  /** PEM certificate chain of the server; with tlsKeyFile, the listener speaks TLS only (docs/security.md). */
  tlsCertFile: string | undefined;
  /** PEM private key of tlsCertFile (both or neither). */
  tlsKeyFile: string | undefined;
  /** PEM CA bundle: client certificates are required and verified against it (mTLS). Needs TLS. */
  tlsClientCaFile: string | undefined;
  /** Token file (JSON): every call but grpc.health.v1 needs a bearer token from it; re-read on reloadTokens(). */
  tokenFile: string | undefined;
  /** Allow a non-loopback host without both TLS and tokens (otherwise startBroker refuses before binding). */
  insecure: boolean;
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
  /** Set: serve Prometheus/OpenMetrics on http://metricsHost:metricsPort/metrics (0 = a free port). Unset: off. */
  metricsPort: number | undefined;
  /** The one address the metrics endpoint binds. */
  metricsHost: string;
}

/**
 * A setting the broker cannot start with (unreadable or invalid certificate or token file, a
 * non-loopback host without TLS and tokens). The message names the flag; the CLI exits 2.
 */
export class BrokerConfigError extends Error {
  constructor(
    /** The flag to fix, e.g. "--tls-cert". */
    readonly flag: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "BrokerConfigError";
  }
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
  heapGrowthPercent: 0,
  maxMessageIdBytes: 1024,
  maxAttributes: 1024,
  maxAttributeKeyBytes: 1024,
  maxAttributeValueBytes: 65_536,
  maxDedupEntries: 1_000_000,
  diskReserveBytes: undefined,
  tlsCertFile: undefined,
  tlsKeyFile: undefined,
  tlsClientCaFile: undefined,
  tokenFile: undefined,
  insecure: false,
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
  metricsPort: undefined,
  metricsHost: "127.0.0.1",
};

/** The core's message limits from the server configuration: deliveries must fit the gRPC max message size. */
export function messageLimitsOf(config: BrokerServerConfig): MessageLimits {
  return {
    maxMessageIdBytes: config.maxMessageIdBytes,
    maxAttributes: config.maxAttributes,
    maxAttributeKeyBytes: config.maxAttributeKeyBytes,
    maxAttributeValueBytes: config.maxAttributeValueBytes,
    maxDeliveryBytes: config.maxMessageBytes,
  };
}

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
