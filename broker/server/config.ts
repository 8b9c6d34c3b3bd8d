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
  tlsCertFile: undefined,
  tlsKeyFile: undefined,
  tlsClientCaFile: undefined,
  tokenFile: undefined,
  insecure: false,
  metricsPort: undefined,
  metricsHost: "127.0.0.1",
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
