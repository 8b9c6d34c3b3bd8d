import { resolve } from "node:path";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { createBrokerCore, type BrokerCore } from "../core/index.js";
import { openStore } from "../store/index.js";
import { DEFAULT_CONFIG, type BrokerServerConfig } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { addHealthAndReflection } from "./discovery.js";
import { addV1Service } from "./v1/index.js";
import { addV2Service } from "./v2/index.js";
import { ConnectionGuard, type ConnectionGuardStats } from "./connection-guard.js";
import { OutboundBudget } from "./outbound.js";

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
}

export interface RunningBroker {
  /** "host:port" actually bound. */
  readonly address: string;
  readonly port: number;
  /** What the listening line states. */
  readonly settings: EffectiveSettings;
  /** The assembled core the services run on. */
  readonly core: BrokerCore;
  /** Outbound memory and connection counters (docs/limits.md), for statistics and tests. */
  readonly resources: BrokerResources;
  /** Graceful stop: refuse new calls, end open streams with UNAVAILABLE, close the store. */
  close(): Promise<void>;
}

export interface BrokerResources {
  /** Bytes written to v1/v2 streams and not yet taken by HTTP/2, now and at the highest. */
  outboundQueuedBytes(): number;
  outboundPeakBytes(): number;
  readonly connections: Readonly<ConnectionGuardStats>;
}

/** Opens the store, builds the core and serves v1, v2, health and reflection. */
export async function startBroker(partial: Partial<BrokerServerConfig> = {}, log?: Logger): Promise<RunningBroker> {
  const config: BrokerServerConfig = { ...DEFAULT_CONFIG, ...partial };
  const logger = log ?? createLogger(config.logLevel);
  const store = await openStore(config);
  const core = createBrokerCore({
    store,
    config: {
      memoryBudgetBytes: config.memoryBudgetBytes,
      diskBudgetBytes: config.diskBudgetBytes,
      maxTopics: config.maxTopics,
      maxSubscriptions: config.maxSubscriptions,
      maxSubscriptionsPerTopic: config.maxSubscriptionsPerTopic,
      maxConsumersPerSubscription: config.maxConsumersPerSubscription,
    },
    onTimerError: (job, err) => logger.error(`${job} failed`, { err: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  });
  const server = new Server({
    "grpc.max_receive_message_length": config.maxMessageBytes,
    "grpc.max_send_message_length": config.maxMessageBytes,
    // Resource limits (docs/limits.md, "Connections, streams and timeouts").
    "grpc.max_concurrent_streams": config.maxStreamsPerConnection,
    ...(config.idleConnectionTimeoutMs > 0 ? { "grpc.max_connection_idle_ms": config.idleConnectionTimeoutMs } : {}),
  });
  const shutdownHooks: Array<() => void> = [];
  const outbound = new OutboundBudget(config.outboundBudgetBytes);
  addV1Service(server, core.topics, config, logger, { budget: outbound });
  shutdownHooks.push(addV2Service(server, core, config, logger, outbound));
  const health = addHealthAndReflection(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${formatHost(config.host)}:${config.port}`, ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  const address = `${formatHost(config.host)}:${port}`;
  const guard = new ConnectionGuard(config, logger);
  try {
    guard.attach(server);
  } catch (err) {
    server.forceShutdown();
    await core.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      health.setNotServing();
      guard.beginShutdown(); // no new connections; those without a handshake close now
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
  };
  const resources: BrokerResources = {
    outboundQueuedBytes: () => outbound.queuedBytes,
    outboundPeakBytes: () => outbound.peakBytes,
    connections: guard.stats,
  };
  return { address, port, settings, core, resources, close };
}

function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
