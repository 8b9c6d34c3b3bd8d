import { logVerbosity, setLogger, setLogVerbosity } from "@grpc/grpc-js";
import type { Argv, CommandModule } from "yargs";
import { EXIT_BAD_INPUT } from "../loadgen/errors.js";
import { BrokerConfigError, createLogger, isLoopbackHost, DEFAULT_CONFIG, deadLetterReserveBytes, maxPublishDeliveryBytes, messageLimitsOf, startBroker, type BrokerServerConfig, type LogLevel, type RunningBroker } from "../broker/index.js";

// `ratatoskr broker`: every setting comes from a flag, else from its RATATOSKR_* variable,
// else from DEFAULT_CONFIG. The values are validated here, once; nothing deeper reads the
// environment.

const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;

interface Setting {
  key: keyof BrokerServerConfig;
  flag: string;
  env: string;
  kind: "string" | "integer" | "boolean" | "level";
  min?: number;
  max?: number;
  describe: string;
}

/** The flags of `ratatoskr broker` and the environment variables behind them. */
export const BROKER_SETTINGS: readonly Setting[] = [
  { key: "host", flag: "host", env: "RATATOSKR_HOST", kind: "string", describe: "address to listen on" },
  { key: "port", flag: "port", env: "RATATOSKR_PORT", kind: "integer", min: 0, max: 65535, describe: "port to listen on; 0 picks a free one" },
  { key: "maxMessageBytes", flag: "max-message-bytes", env: "RATATOSKR_MAX_MESSAGE_BYTES", kind: "integer", min: 4096, describe: "largest gRPC request accepted, and largest delivery a published message may need (docs/limits.md)" },
  { key: "logLevel", flag: "log-level", env: "RATATOSKR_LOG_LEVEL", kind: "level", describe: "debug | info | warn | error | silent" },
  { key: "dataDir", flag: "data-dir", env: "RATATOSKR_DATA_DIR", kind: "string", describe: "durable store (LMDB) in this directory; unset = memory" },
  { key: "fsync", flag: "fsync", env: "RATATOSKR_FSYNC", kind: "boolean", describe: "durable store: flush each commit to disk before acknowledging" },
  { key: "memoryBudgetBytes", flag: "memory-budget-bytes", env: "RATATOSKR_MEMORY_BUDGET_BYTES", kind: "integer", min: 0, describe: "memory store: refuse publishes past this many retained bytes (0 = unlimited)" },
  { key: "diskBudgetBytes", flag: "disk-budget-bytes", env: "RATATOSKR_DISK_BUDGET_BYTES", kind: "integer", min: 0, describe: "durable store: refuse publishes past this data size (0 = unlimited)" },
  { key: "v1SubscriberBufferBytes", flag: "v1-subscriber-buffer-bytes", env: "RATATOSKR_V1_SUBSCRIBER_BUFFER_BYTES", kind: "integer", min: 1, describe: "v1 Subscribe: bytes queued per subscriber before it is cut off as a slow consumer" },
  { key: "shutdownGraceMs", flag: "shutdown-grace-ms", env: "RATATOSKR_SHUTDOWN_GRACE_MS", kind: "integer", min: 0, describe: "on SIGTERM/SIGINT: how long open calls get before they are cancelled" },
  { key: "heapGrowthPercent", flag: "heap-growth-percent", env: "RATATOSKR_HEAP_GROWTH_PERCENT", kind: "integer", min: 0, max: 10_000, describe: "V8 grows its heap limit to (100 + N)% of the live heap after a full GC: lower = lower peak RSS, more GC CPU (0 = V8's own, up to 4x)" },
  // Message, de-duplication and disk limits (docs/limits.md).
  { key: "maxMessageIdBytes", flag: "max-message-id-bytes", env: "RATATOSKR_MAX_MESSAGE_ID_BYTES", kind: "integer", min: 1, max: 65535, describe: "largest producer message_id, in UTF-8 bytes" },
  { key: "maxAttributes", flag: "max-attributes", env: "RATATOSKR_MAX_ATTRIBUTES", kind: "integer", min: 1, max: 65535, describe: "most attributes (v1 metadata entries) per message" },
  { key: "maxAttributeKeyBytes", flag: "max-attribute-key-bytes", env: "RATATOSKR_MAX_ATTRIBUTE_KEY_BYTES", kind: "integer", min: 1, max: 65535, describe: "largest attribute key, in UTF-8 bytes" },
  { key: "maxAttributeValueBytes", flag: "max-attribute-value-bytes", env: "RATATOSKR_MAX_ATTRIBUTE_VALUE_BYTES", kind: "integer", min: 1, describe: "largest attribute value, in UTF-8 bytes" },
  { key: "maxDedupEntries", flag: "max-dedup-entries", env: "RATATOSKR_MAX_DEDUP_ENTRIES", kind: "integer", min: 1, describe: "producer ids remembered over all de-duplication windows; past it, publishes with new ids get RESOURCE_EXHAUSTED" },
  { key: "diskReserveBytes", flag: "disk-reserve-bytes", env: "RATATOSKR_DISK_RESERVE_BYTES", kind: "integer", min: 0, describe: "durable store without --disk-budget-bytes: refuse publishes that would leave less free space than this on the data directory's filesystem (unset = 5% of it, at most 1 GiB; 0 = no check)" },
  // Security (docs/security.md).
  { key: "tlsCertFile", flag: "tls-cert", env: "RATATOSKR_TLS_CERT", kind: "string", describe: "PEM certificate chain of the server: speak TLS only (needs --tls-key)" },
  { key: "tlsKeyFile", flag: "tls-key", env: "RATATOSKR_TLS_KEY", kind: "string", describe: "PEM private key of --tls-cert" },
  { key: "tlsClientCaFile", flag: "tls-client-ca", env: "RATATOSKR_TLS_CLIENT_CA", kind: "string", describe: "PEM CA bundle: require client certificates it issued (mTLS)" },
  { key: "tokenFile", flag: "token-file", env: "RATATOSKR_TOKEN_FILE", kind: "string", describe: "JSON token file: every call but health needs a bearer token; re-read on SIGHUP" },
  { key: "insecure", flag: "insecure", env: "RATATOSKR_INSECURE", kind: "boolean", describe: "allow a non-loopback --host without TLS and tokens" },
  // Resource limits (docs/limits.md); 0 = unlimited.
  { key: "outboundBudgetBytes", flag: "outbound-budget-bytes", env: "RATATOSKR_OUTBOUND_BUDGET_BYTES", kind: "integer", min: 0, describe: "bytes written to all streams and not yet read, broker-wide (0 = unlimited)" },
  { key: "streamOutboundBytes", flag: "stream-outbound-bytes", env: "RATATOSKR_STREAM_OUTBOUND_BYTES", kind: "integer", min: 0, describe: "v2 Consume: unread bytes per stream before no more is written to it (0 = unlimited)" },
  { key: "consumerStuckTimeoutMs", flag: "consumer-stuck-timeout-ms", env: "RATATOSKR_CONSUMER_STUCK_TIMEOUT_MS", kind: "integer", min: 0, describe: "v2 Consume: cut off a stream that reads nothing this long while at its cap (0 = never)" },
  { key: "maxTopics", flag: "max-topics", env: "RATATOSKR_MAX_TOPICS", kind: "integer", min: 0, describe: "topics in total (0 = unlimited)" },
  { key: "maxSubscriptions", flag: "max-subscriptions", env: "RATATOSKR_MAX_SUBSCRIPTIONS", kind: "integer", min: 0, describe: "v2 subscriptions in total (0 = unlimited)" },
  { key: "maxSubscriptionsPerTopic", flag: "max-subscriptions-per-topic", env: "RATATOSKR_MAX_SUBSCRIPTIONS_PER_TOPIC", kind: "integer", min: 0, describe: "v2 subscriptions on one topic (0 = unlimited)" },
  { key: "maxConsumersPerSubscription", flag: "max-consumers-per-subscription", env: "RATATOSKR_MAX_CONSUMERS_PER_SUBSCRIPTION", kind: "integer", min: 0, describe: "v2 Consume streams on one subscription (0 = unlimited)" },
  { key: "maxConnections", flag: "max-connections", env: "RATATOSKR_MAX_CONNECTIONS", kind: "integer", min: 0, describe: "open TCP connections; more are closed at once (0 = unlimited)" },
  { key: "maxStreamsPerConnection", flag: "max-streams-per-connection", env: "RATATOSKR_MAX_STREAMS_PER_CONNECTION", kind: "integer", min: 1, max: 2 ** 31 - 1, describe: "HTTP/2 concurrent streams per connection" },
  { key: "handshakeTimeoutMs", flag: "handshake-timeout-ms", env: "RATATOSKR_HANDSHAKE_TIMEOUT_MS", kind: "integer", min: 0, describe: "close a connection that has not completed its HTTP/2 handshake by then (0 = never)" },
  { key: "idleConnectionTimeoutMs", flag: "idle-connection-timeout-ms", env: "RATATOSKR_IDLE_CONNECTION_TIMEOUT_MS", kind: "integer", min: 0, describe: "close a connection with no open call for this long (0 = never)" },
  { key: "messageReceiveTimeoutMs", flag: "message-receive-timeout-ms", env: "RATATOSKR_MESSAGE_RECEIVE_TIMEOUT_MS", kind: "integer", min: 0, describe: "a request message must arrive whole within this from its first byte (0 = never)" },
  { key: "metricsPort", flag: "metrics-port", env: "RATATOSKR_METRICS_PORT", kind: "integer", min: 0, max: 65535, describe: "serve Prometheus/OpenMetrics on http://<metrics-host>:N/metrics (0 = a free port; unset = off)" },
  { key: "metricsHost", flag: "metrics-host", env: "RATATOSKR_METRICS_HOST", kind: "string", describe: "address the metrics endpoint binds (only this one)" },
];

/** Resolves flags over environment over defaults; throws a readable Error on a bad value. */
export function resolveBrokerConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): BrokerServerConfig {
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const s of BROKER_SETTINGS) {
    const fromFlag = flags[s.flag];
    const fromEnv = env[s.env];
    if (fromFlag !== undefined) config[s.key] = parse(s, fromFlag, `--${s.flag}`);
    else if (fromEnv !== undefined && fromEnv !== "") config[s.key] = parse(s, fromEnv, s.env);
  }
  const resolved = config as unknown as BrokerServerConfig;
  // Every delivery must fit --max-message-bytes with room for its dead-letter copy (docs/limits.md).
  const perMessage = maxPublishDeliveryBytes(messageLimitsOf(resolved));
  if (perMessage < 1024) {
    throw new Error(
      `--max-message-bytes ${resolved.maxMessageBytes} leaves ${Math.max(0, perMessage)} bytes per message after the ` +
        `${deadLetterReserveBytes(resolved.maxMessageIdBytes)}-byte reserve for the delivery envelope and dead-letter attributes; ` +
        `give at least ${resolved.maxMessageBytes - perMessage + 1024}`,
    );
  }
  return resolved;
}

/**
 * One parser for both sources, so a flag accepts exactly the spellings its variable accepts.
 * yargs hands every flag over as the raw string (see the builder); the only non-strings it
 * produces are `false` for `--no-<flag>` and an array for a flag given twice.
 */
function parse(s: Setting, raw: unknown, source: string): unknown {
  if (Array.isArray(raw)) throw new Error(`${source} is given more than once`);
  if (typeof raw === "boolean") {
    if (s.kind === "boolean") return raw; // --no-fsync
    throw new Error(`${source.replace(/^--/, "--no-")} is not a setting; give ${source} a value`);
  }
  const text = String(raw).trim();
  switch (s.kind) {
    case "string":
      if (text === "") throw new Error(`${source} must not be empty`);
      return text;
    case "level":
      if (!(LOG_LEVELS as readonly string[]).includes(text)) throw new Error(`${source} must be one of ${LOG_LEVELS.join(", ")}; got ${JSON.stringify(text)}`);
      return text as LogLevel;
    case "boolean":
      // A bare `--fsync` arrives as ""; an empty variable never gets here (it counts as unset).
      if (text === "" && source.startsWith("--")) return true;
      if (/^(true|1|yes|on)$/i.test(text)) return true;
      if (/^(false|0|no|off)$/i.test(text)) return false;
      throw new Error(`${source} must be true/false, 1/0, yes/no or on/off; got ${JSON.stringify(text)}`);
    case "integer": {
      // Decimal digits only: no 1e3, 0x10, 12abc, 1.0 or "" (Number() would take most of them).
      const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
      const range = `${s.min ?? "-∞"}..${s.max ?? Number.MAX_SAFE_INTEGER}`;
      if (!Number.isSafeInteger(n) || (s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) {
        throw new Error(`${source} must be an integer in ${range}; got ${JSON.stringify(text)}`);
      }
      return n;
    }
  }
}

export const brokerCommand: CommandModule = {
  command: "broker",
  describe: "run the reference broker (v1 + v2 gRPC, health, reflection)",
  builder: (y: Argv) => {
    let out = y;
    for (const s of BROKER_SETTINGS) {
      out = out.option(s.flag, {
        // Strings for every flag, --fsync too: yargs's own boolean and number coercion would
        // turn `--fsync=1` into false and `--port=0x10` into 16 before parse() sees the text.
        type: "string",
        describe: `${s.describe} [env ${s.env}] (default: ${String(DEFAULT_CONFIG[s.key] ?? "unset")})`,
      });
    }
    return out;
  },
  handler: async (argv) => {
    let config: BrokerServerConfig;
    try {
      config = resolveBrokerConfig(argv as Record<string, unknown>, process.env);
    } catch (err) {
      fail(`invalid configuration: ${(err as Error).message}`, EXIT_BAD_INPUT);
      return;
    }
    await runBroker(config);
  },
};

async function runBroker(config: BrokerServerConfig): Promise<void> {
  const log = createLogger(config.logLevel);
  // grpc-js prints its own "E …" lines on stderr (e.g. a second copy of a bind failure);
  // route them into the JSON log instead, so stderr carries only our one startup error line.
  setLogger({ error: (...args: unknown[]) => log.debug("grpc-js", { message: args.map(String).join(" ") }) });
  setLogVerbosity(config.logLevel === "debug" ? logVerbosity.DEBUG : logVerbosity.ERROR);
  let running: RunningBroker;
  try {
    running = await startBroker(config, log);
  } catch (err) {
    // A certificate, token file or exposure problem is a setting to fix (exit 2, naming the flag).
    if (err instanceof BrokerConfigError) fail(`invalid configuration: ${err.message}`, EXIT_BAD_INPUT);
    else fail(`cannot start on ${config.host}:${config.port}: ${describeStartupError(err)}`);
    return;
  }

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn("second signal: exiting now", { signal });
      process.exit(1);
    }
    stopping = true;
    log.info("shutting down", { signal });
    // A close that hangs past the grace period (plus slack for the store) must not keep the
    // process alive: report it and exit non-zero.
    const deadline = setTimeout(() => {
      log.error("shutdown did not finish in time; exiting", { graceMs: config.shutdownGraceMs });
      process.exit(1);
    }, config.shutdownGraceMs + 5_000);
    deadline.unref();
    running.close().then(
      () => {
        log.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        log.error("shutdown failed", { err: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // SIGHUP re-reads the token file (Node's default for SIGHUP would be to exit). A bad file
  // keeps the tokens in force: one error line, the broker goes on.
  process.on("SIGHUP", () => {
    if (config.tokenFile === undefined) {
      log.warn("SIGHUP ignored: the broker runs without --token-file");
      return;
    }
    try {
      log.info("token file reloaded", { tokenFile: config.tokenFile, tokens: running.reloadTokens() });
    } catch (err) {
      log.error("token file reload failed; keeping the previous tokens", { err: err instanceof Error ? err.message : String(err) });
    }
  });
  // Other tools wait for exactly this line; it states the settings in force, not those asked for.
  // It comes after the signal handlers: a tool may send SIGTERM the moment it reads the line.
  // At warn or error it is printed all the same (only silent hides it): with --port 0 it is the
  // one place the bound address is stated (docs/limits.md, "Startup line").
  (config.logLevel === "silent" || config.logLevel === "debug" ? log : createLogger("info")).info("listening", { address: running.address, ...running.settings });
  if (config.insecure && !isLoopbackHost(config.host) && (running.settings.tls === "off" || running.settings.auth === "off")) {
    log.warn("--insecure: running without TLS and tokens; on a non-loopback host anyone who reaches the port can read, publish and delete every topic", {
      host: config.host,
      tls: running.settings.tls,
      auth: running.settings.auth,
    });
  }
}

function describeStartupError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  // grpc-js reports a taken port as "No address added out of total 1 resolved" plus the
  // errno text; say it plainly.
  if (/EADDRINUSE|address already in use/i.test(message)) return "the address is already in use";
  return message.replace(/\s+/g, " ").trim();
}

/** One clear line on stderr and a non-zero exit: 2 for a setting to fix, 1 for a start that failed. */
function fail(message: string, code = 1): void {
  process.stderr.write(`ratatoskr broker: ${message}\n`);
  process.exitCode = code;
}
