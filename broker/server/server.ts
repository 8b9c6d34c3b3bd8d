import { resolve } from "node:path";
import { Server } from "@grpc/grpc-js";
import { createBrokerCore, type BrokerCore } from "../core/index.js";
import { openStore } from "../store/index.js";
import { BrokerConfigError, DEFAULT_CONFIG, type BrokerServerConfig } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { addHealthAndReflection } from "./discovery.js";
import { addV1Service } from "./v1/index.js";
import { addV2Service } from "./v2/index.js";
import { OPEN_ACCESS, TokenAccess } from "./access.js";
import { checkExposure } from "./exposure.js";
import { listenerCredentials, type TlsMode } from "./tls.js";
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
  /** The metrics endpoint (http://host:port/metrics) when --metrics-port is set. */
  readonly metricsUrl: string | undefined;
  /** Graceful stop: refuse new calls, end open streams with UNAVAILABLE, close the store. */
  close(): Promise<void>;
}

/**
 * Opens the store, builds the core and serves v1, v2, health and reflection. Certificates and
 * the token file are read, and the secure-default rule checked, before the store opens or
 * anything binds: a BrokerConfigError names the flag to fix.
 */
export async function startBroker(partial: Partial<BrokerServerConfig> = {}, log?: Logger): Promise<RunningBroker> {
  const config: BrokerServerConfig = { ...DEFAULT_CONFIG, ...partial };
  const baseLogger = log ?? createLogger(config.logLevel);
  const listener = listenerCredentials(config);
  const tokens = config.tokenFile === undefined ? undefined : new TokenAccess(config.tokenFile);
  checkExposure(config.host, listener.mode, tokens !== undefined, config.insecure);
  const access = tokens ?? OPEN_ACCESS;
  const store = await openStore(config);
  const core = createBrokerCore({
    store,
    config: { memoryBudgetBytes: config.memoryBudgetBytes, diskBudgetBytes: config.diskBudgetBytes },
    onTimerError: (job, err) => baseLogger.error(`${job} failed`, { err: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  });
  const server = new Server({
    "grpc.max_receive_message_length": config.maxMessageBytes,
    "grpc.max_send_message_length": config.maxMessageBytes,
    interceptors: tokens === undefined ? [] : [tokens.interceptor()],
  });
  const shutdownHooks: Array<() => void> = [];
  const metrics = config.metricsPort !== undefined ? new BrokerMetrics(core, { version: brokerVersion() }) : undefined;
  const logger = metrics ? countingRefusals(baseLogger, (code) => metrics.refused(code)) : baseLogger;
  const observer = metrics ?? NO_METRICS;
  addV1Service(server, core.topics, config, logger, {}, access, observer);
  shutdownHooks.push(addV2Service(server, core, config, logger, access, observer));
  const health = addHealthAndReflection(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${formatHost(config.host)}:${config.port}`, listener.credentials, (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  const address = `${formatHost(config.host)}:${port}`;
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
      await metricsServer?.close();
      for (const hook of shutdownHooks) hook(); // v2 streams end with UNAVAILABLE
      // Stops the core's timers, persists ack state, ends live streams with UNAVAILABLE,
      // waits for in-flight commits, closes the store.
      await core.close();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), config.shutdownGraceMs);
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
    tls: listener.mode,
    auth: access.mode,
    ...(metricsServer ? { metrics: metricsServer.url } : {}),
  };
  const reloadTokens = (): number => {
    if (tokens === undefined) throw new BrokerConfigError("--token-file", "no --token-file to reload: the broker runs without tokens");
    return tokens.reload();
  };
  return { address, port, settings, core, reloadTokens, metricsUrl: metricsServer?.url, close };
}

function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
