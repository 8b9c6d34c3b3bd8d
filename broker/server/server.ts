import { resolve } from "node:path";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { createBrokerCore, type BrokerCore } from "../core/index.js";
import { openStore } from "../store/index.js";
import { DEFAULT_CONFIG, type BrokerServerConfig } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { addHealthAndReflection } from "./discovery.js";
import { addV1Service } from "./v1/index.js";
import { addV2Service } from "./v2/index.js";
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
  /** The metrics endpoint (http://host:port/metrics) when --metrics-port is set. */
  readonly metricsUrl: string | undefined;
  /** Graceful stop: refuse new calls, end open streams with UNAVAILABLE, close the store. */
  close(): Promise<void>;
}

/** Opens the store, builds the core and serves v1, v2, health and reflection. */
export async function startBroker(partial: Partial<BrokerServerConfig> = {}, log?: Logger): Promise<RunningBroker> {
  const config: BrokerServerConfig = { ...DEFAULT_CONFIG, ...partial };
  const baseLogger = log ?? createLogger(config.logLevel);
  const store = await openStore(config);
  const core = createBrokerCore({
    store,
    config: { memoryBudgetBytes: config.memoryBudgetBytes, diskBudgetBytes: config.diskBudgetBytes },
    onTimerError: (job, err) => baseLogger.error(`${job} failed`, { err: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  });
  const server = new Server({
    "grpc.max_receive_message_length": config.maxMessageBytes,
    "grpc.max_send_message_length": config.maxMessageBytes,
  });
  const shutdownHooks: Array<() => void> = [];
  const metrics = config.metricsPort !== undefined ? new BrokerMetrics(core, { version: brokerVersion() }) : undefined;
  const logger = metrics ? countingRefusals(baseLogger, (code) => metrics.refused(code)) : baseLogger;
  const observer = metrics ?? NO_METRICS;
  addV1Service(server, core.topics, config, logger, {}, observer);
  shutdownHooks.push(addV2Service(server, core, config, logger, observer));
  const health = addHealthAndReflection(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${formatHost(config.host)}:${config.port}`, ServerCredentials.createInsecure(), (err, bound) =>
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
    ...(metricsServer ? { metrics: metricsServer.url } : {}),
  };
  return { address, port, settings, core, metricsUrl: metricsServer?.url, close };
}

function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
