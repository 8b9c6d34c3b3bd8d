import { resolve } from "node:path";
import { setFlagsFromString } from "node:v8";
import { Server } from "@grpc/grpc-js";
import { createBrokerCore, defaultDiskReserveBytes, maxPublishDeliveryBytes, type BrokerCore } from "../core/index.js";
import { openStore } from "../store/index.js";
import { BrokerConfigError, DEFAULT_CONFIG, messageLimitsOf, type BrokerServerConfig } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { addHealthAndReflection } from "./discovery.js";
import { addV1Service } from "./v1/index.js";
import { addV2Service } from "./v2/index.js";
import { OPEN_ACCESS, TokenAccess } from "./access.js";
import { checkExposure } from "./exposure.js";
import { listenerCredentials, type TlsMode } from "./tls.js";
import { serveDirect } from "./h2-call.js";
import { ConnectionGuard, type ConnectionGuardStats } from "./connection-guard.js";
import { OutboundBudget } from "./outbound.js";
import { BrokerMetrics, NO_METRICS, startMetricsServer, type MetricsServer } from "./metrics.js";
import { countingRefusals } from "./status.js";
import { brokerVersion } from "./version.js";

/** The settings the broker runs with, taken from the store it opened and the config it serves with. */
export interface EffectiveSettings {
  store: "memory" | "durable";
  /** Each commit flushed before it is acknowledged; always false for memory. */
  fsync: boolean;
  /** Absolute path of the durable store's directory; null for memory. */
  dataDir: string | null;
  memoryBudgetBytes: number;
  diskBudgetBytes: number;
  /** The budget in force for this store (memory or disk); 0 = unlimited. */
  budgetBytes: number;
  maxMessageBytes: number;
  v1SubscriberBufferBytes: number;
  /** 0 = V8's own heap growth. */
  heapGrowthPercent: number;
  // Message, de-duplication and disk limits (docs/limits.md).
  /** The largest message a client may publish, as delivered (maxMessageBytes less the dead-letter reserve). */
  maxPublishDeliveryBytes: number;
  maxMessageIdBytes: number;
  maxAttributes: number;
  maxAttributeKeyBytes: number;
  maxAttributeValueBytes: number;
  maxDedupEntries: number;
  /** Durable store without a disk budget: bytes kept free on the data directory's filesystem (0 = no check; null for memory or with a disk budget). */
  diskReserveBytes: number | null;
  /** What the listener speaks (docs/security.md). */
  tls: TlsMode;
  /** "tokens": every call but health needs a bearer token from the token file. */
  auth: "off" | "tokens";
  /** http://host:port/metrics when the metrics endpoint is on. */
  metrics?: string;
}

export interface RunningBroker {
  /** "host:port" actually bound. */
  readonly address: string;
  readonly port: number;
  /** What the listening line states. */
  readonly settings: EffectiveSettings;
  /** The assembled core the services run on. */
  readonly core: BrokerCore;
  /**
   * Re-reads the token file; the new tokens apply to calls from then on. Returns the token
   * count. Throws BrokerConfigError for a bad file (the old tokens stay) or when the broker
   * runs without a token file.
   */
  reloadTokens(): number;
  /** Outbound memory and connection counters (docs/limits.md), for statistics and tests. */
  readonly resources: BrokerResources;
  /** The metrics endpoint (http://host:port/metrics) when --metrics-port is set. */
  readonly metricsUrl: string | undefined;
  /** Graceful stop: refuse new calls, end open streams with UNAVAILABLE, close the store. */
  close(): Promise<void>;
}

export interface BrokerResources {
  /** Bytes written to v1/v2 streams and not yet taken by HTTP/2, now and at the highest. */
  outboundQueuedBytes(): number;
  outboundPeakBytes(): number;
  readonly connections: Readonly<ConnectionGuardStats>;
}

/**
 * Opens the store, builds the core and serves v1, v2, health and reflection. Certificates and
 * the token file are read, and the secure-default rule checked, before the store opens or
 * anything binds: a BrokerConfigError names the flag to fix.
 */
export async function startBroker(partial: Partial<BrokerServerConfig> = {}, log?: Logger): Promise<RunningBroker> {
  const config: BrokerServerConfig = { ...DEFAULT_CONFIG, ...partial };
  // Process-wide, as the setting says (docs/operations.md, "Memory"). V8 reads the flag at each
  // full GC, so setting it here, before the broker holds anything, is as good as `node
  // --heap-growing-percent` (which NODE_OPTIONS does not accept).
  if (config.heapGrowthPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowthPercent}`);
  const baseLogger = log ?? createLogger(config.logLevel);
  const listener = listenerCredentials(config);
  const tokens = config.tokenFile === undefined ? undefined : new TokenAccess(config.tokenFile);
  checkExposure(config.host, listener.mode, tokens !== undefined, config.insecure);
  const access = tokens ?? OPEN_ACCESS;
  const store = await openStore({
    ...config,
    // One line when disk writes start failing and one when they work again, not one per publish.
    onWriteFailure: (err) =>
      err
        ? baseLogger.error("disk writes are failing; publishes are refused (UNAVAILABLE) until they work again, reads and acks go on", { err: err.message })
        : baseLogger.warn("disk writes work again; publishes are accepted"),
  });
  const messageLimits = messageLimitsOf(config);
  const core = createBrokerCore({
    store,
    config: {
      memoryBudgetBytes: config.memoryBudgetBytes,
      diskBudgetBytes: config.diskBudgetBytes,
      diskReserveBytes: config.diskReserveBytes,
      messageLimits,
      maxDedupEntries: config.maxDedupEntries,
      maxTopics: config.maxTopics,
      maxSubscriptions: config.maxSubscriptions,
      maxSubscriptionsPerTopic: config.maxSubscriptionsPerTopic,
      maxConsumersPerSubscription: config.maxConsumersPerSubscription,
    },
    onTimerError: (job, err) => baseLogger.error(`${job} failed`, { err: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  });
  const server = new Server({
    "grpc.max_receive_message_length": config.maxMessageBytes,
    // Every message accepted now is delivered in frames within maxMessageBytes (the publish
    // limits leave room for the delivery envelope, docs/limits.md); no send limit, so a message
    // stored under an earlier, larger limit is still delivered instead of ending its consumer.
    "grpc.max_send_message_length": -1,
    // Resource limits (docs/limits.md, "Connections, streams and timeouts").
    "grpc.max_concurrent_streams": config.maxStreamsPerConnection,
    ...(config.idleConnectionTimeoutMs > 0 ? { "grpc.max_connection_idle_ms": config.idleConnectionTimeoutMs } : {}),
    interceptors: tokens === undefined ? [] : [tokens.interceptor()],
    // No channelz service is served, so its per-call counters would only cost time and memory.
    "grpc.enable_channelz": 0,
  });
  const shutdownHooks: Array<() => void> = [];
  const outbound = new OutboundBudget(config.outboundBudgetBytes);
  const metrics = config.metricsPort !== undefined ? new BrokerMetrics(core, { version: brokerVersion() }) : undefined;
  const logger = metrics ? countingRefusals(baseLogger, (code) => metrics.refused(code)) : baseLogger;
  const observer = metrics ?? NO_METRICS;
  const v1 = addV1Service(server, core.topics, config, logger, { budget: outbound }, access, observer);
  const v2 = addV2Service(server, core, config, logger, access, observer, outbound);
  shutdownHooks.push(v2.shutdown);
  const health = addHealthAndReflection(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${formatHost(config.host)}:${config.port}`, listener.credentials, (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  const address = `${formatHost(config.host)}:${port}`;
  const guard = new ConnectionGuard(config, logger);
  try {
    // Consume streams and v1 Publish/PublishBatch calls on HTTP/2 directly (h2-call.ts); the
    // guard's checks still run first on every stream.
    const direct = new Map([...v1.direct, ...v2.direct]);
    serveDirect(server, direct, access, config.maxMessageBytes, guard);
    guard.attach(server, new Set(direct.keys()));
  } catch (err) {
    server.forceShutdown();
    await core.close();
    throw err;
  }
  let metricsServer: MetricsServer | undefined;
  if (metrics && config.metricsPort !== undefined) {
    try {
      metricsServer = await startMetricsServer(metrics, config.metricsHost, config.metricsPort);
    } catch (err) {
      server.forceShutdown();
      await core.close();
      throw new Error(`metrics endpoint ${formatHost(config.metricsHost)}:${config.metricsPort}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      health.setNotServing();
      guard.beginShutdown(); // no new connections; those without a handshake close now
      await metricsServer?.close();
      for (const hook of shutdownHooks) hook(); // v2 streams end with UNAVAILABLE
      // Stops the core's timers, persists ack state, ends live streams with UNAVAILABLE,
      // waits for in-flight commits, closes the store.
      await core.close();
      // tryShutdown waits for every connection to go; one that never closes (idle, half-open)
      // is destroyed when the grace ends, and close() resolves then whatever grpc-js reports.
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          guard.destroyAll();
          resolve();
        }, config.shutdownGraceMs);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    })());

  const durable = store.kind === "durable";
  const settings: EffectiveSettings = {
    store: store.kind,
    fsync: store.fsync,
    dataDir: durable && config.dataDir !== undefined ? resolve(config.dataDir) : null,
    memoryBudgetBytes: core.topics.budgets.memoryBudgetBytes,
    diskBudgetBytes: core.topics.budgets.diskBudgetBytes,
    budgetBytes: durable ? core.topics.budgets.diskBudgetBytes : core.topics.budgets.memoryBudgetBytes,
    maxMessageBytes: config.maxMessageBytes,
    v1SubscriberBufferBytes: config.v1SubscriberBufferBytes,
    heapGrowthPercent: config.heapGrowthPercent,
    maxPublishDeliveryBytes: maxPublishDeliveryBytes(messageLimits),
    maxMessageIdBytes: config.maxMessageIdBytes,
    maxAttributes: config.maxAttributes,
    maxAttributeKeyBytes: config.maxAttributeKeyBytes,
    maxAttributeValueBytes: config.maxAttributeValueBytes,
    maxDedupEntries: config.maxDedupEntries,
    diskReserveBytes: durable && config.diskBudgetBytes === 0 ? effectiveReserve(config.diskReserveBytes, store.diskSpace?.()?.totalBytes) : null,
    tls: listener.mode,
    auth: access.mode,
    ...(metricsServer ? { metrics: metricsServer.url } : {}),
  };
  const reloadTokens = (): number => {
    if (tokens === undefined) throw new BrokerConfigError("--token-file", "no --token-file to reload: the broker runs without tokens");
    return tokens.reload();
  };
  const resources: BrokerResources = {
    outboundQueuedBytes: () => outbound.queuedBytes,
    outboundPeakBytes: () => outbound.peakBytes,
    connections: guard.stats,
  };
  return { address, port, settings, core, resources, reloadTokens, metricsUrl: metricsServer?.url, close };
}

function effectiveReserve(configured: number | undefined, totalBytes: number | undefined): number | null {
  if (configured !== undefined) return configured;
  return totalBytes === undefined ? null : defaultDiskReserveBytes(totalBytes);
}

function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
