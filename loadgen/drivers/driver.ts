/**
 * The driver interface: everything the runner needs from a broker, nothing more. Drivers are
 * created per run, connect once, and hand deliveries to a sink in batches (one call per
 * received frame), never per message.
 *
 * And how a driver describes itself (`DriverModule`): each driver module exports one, the
 * registry lists them, and nothing else in loadgen names a driver.
 */
import type { z } from "zod";
import type { Clock } from "../clock.js";
import type { ProcessControl } from "../faults/index.js";
import type { ReconnectPolicy, RetryCounts } from "./reconnect.js";
import type { DriverTls } from "./security.js";

/** The scenario's `broker:` block: how an embedded server is set up (scenario.ts validates it). */
export interface BrokerSettings {
  /** `durable`: the embedded broker gets a temporary --data-dir (JetStream: file storage). */
  storage: "memory" | "durable";
  /** Durable only: flush commits to disk before acknowledging a publish. */
  fsync: boolean;
  memoryBudgetBytes?: number | undefined;
  /** Extra arguments for the embedded reference broker. */
  args: string[];
}

/** What a driver reads of a scenario to decide whether it can run it (a Scenario is one). */
export interface DriverScenario {
  consumersPerSubscription: number;
  broker: BrokerSettings;
  /** The scenario's `tls:` (an embedded server is started with a generated certificate). */
  tls?: boolean;
}

export interface DriverOptions {
  /** host:port of the broker. */
  target: string;
  /** Connections in the pool (gRPC channels, each its own HTTP/2 connection; NATS connections). */
  connections: number;
  /** Flow control per consumer (ratatoskr v2 Consume, JetStream pull); at-most-once drivers have none. */
  maxOutstandingMessages: number;
  /** Deadline for reaching the broker at connect time. */
  connectTimeoutMs: number;
  /** The run's clock: deadlines and timeouts are read from it. */
  clock: Clock;
  /**
   * Set when the run is split over generator workers (threads of one process): a name the
   * workers of one run share. Network drivers ignore it; the in-process fake uses it to reach
   * the subscriptions held by other workers.
   */
  workerGroup?: string;
  /** Speak TLS with these files (security.ts); absent = plaintext. */
  tls?: DriverTls | undefined;
  /** Bearer token (gRPC `authorization` metadata, NATS connect token). */
  token?: string | undefined;
  /**
   * Ride through faults (reconnect.ts): re-open broken consumer streams and connections with
   * backoff, retry unacknowledged publishes (with the same message id where the broker
   * de-duplicates), give up after `giveUpMs`. Absent: a broken stream is a stream error and a
   * failed publish a publish error, as without faults.
   */
  reconnect?: ReconnectPolicy | undefined;
}

export interface SubscriptionSpec {
  /** Slot in the runner's accounting (dense, 0..n-1 within this process). */
  slot: number;
  name: string;
  topic: string;
}

export interface DeliverySink {
  /**
   * One delivered message: bytes `start` to `end` of `buf`, valid only during the call (the
   * client's receive buffer: drivers pass what their client hands them, with no copy and no
   * view made per message). `attempt` is the broker's delivery attempt (1 for a first delivery,
   * and for drivers without redelivery, v1).
   */
  onDelivery(slot: number, buf: Uint8Array, start: number, end: number, attempt: number): void;
  /** A consumer stream ended with an error (slow consumer disconnect, broker gone, ...). */
  onStreamError(slot: number, err: Error): void;
  /**
   * A consumer stream broke and the driver re-established it (reconnect on): `cause` is what
   * broke it. Not a failure of the run; the report keeps a record of it.
   */
  onReconnect?(slot: number, cause: Error): void;
}

export interface BrokerStatsSample {
  rssBytes: number;
  /** The process's high-water RSS (VmHWM) when known: the run's peak, sampled or not. */
  peakRssBytes?: number;
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  heapUsedBytes?: number;
  retainedMessages?: number;
  backlog?: number;
}

/**
 * What the broker says about itself (not what the scenario asked for): reports are labelled
 * from this when the run is against a --target. A field the broker does not report is absent.
 */
export interface BrokerSelfReport {
  storage?: "memory" | "durable";
  fsync?: boolean;
  memoryBudgetBytes?: number;
  /** Where the figures come from, for the warning text (e.g. "GetBrokerStats", "JetStream stream info"). */
  source: string;
}

export interface Consumer {
  close(): void;
  /**
   * The slow-consumer fault (docs/faults.md, "slow-consumer"): `false` stops reading the
   * stream (nothing more is taken from the socket, so the transport's flow control pushes back
   * on the broker), `true` reads again. A stream re-opened after a break keeps the setting.
   * Absent for consumers that cannot stop reading on their own.
   */
  setReading?(reading: boolean): void;
}

export interface Driver {
  readonly name: string;
  /** Whether the driver acks deliveries (at-least-once) or not (at-most-once v1 streams). */
  readonly acks: boolean;
  /** Open the channel pool and check the broker answers. Throws BrokerUnreachableError. */
  connect(): Promise<void>;
  /** Create topics; existing ones are fine. */
  createTopics(names: readonly string[]): Promise<void>;
  /** Create a named subscription starting at the latest message (v2); v1: nothing to do. */
  createSubscription(spec: SubscriptionSpec): Promise<void>;
  /**
   * Open one consumer stream. Resolves when the broker is known to deliver from now on (v1:
   * response headers received) or the stream was started (v2: the subscription already holds
   * the messages).
   */
  openConsumer(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink): Promise<Consumer>;
  /**
   * Publish one batch to one topic; resolves with how many messages the broker accepted (the
   * first n; v2 is all or nothing), rejects when the call failed as a whole.
   */
  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number>;
  /**
   * What the broker reports about its own storage, read after createTopics; undefined when the
   * protocol cannot say (v1, NATS core, the fake).
   */
  describeBroker?(): Promise<BrokerSelfReport | undefined>;
  /** Broker resource figures, if the protocol offers them. */
  brokerStats(): Promise<BrokerStatsSample | undefined>;
  /** Publish retries and reconnects so far (drivers that ride through faults; reconnect.ts). */
  retryCounts?(): RetryCounts;
  /** Remove what this run created (subscriptions, topics); best effort. */
  cleanup(topics: readonly string[], subscriptions: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** A server this process started (the reference broker, nats-server); stop() ends it by PID. */
export interface EmbeddedBroker {
  address: string;
  pid: number;
  /** The server's command line (for the report's environment). */
  args: string[];
  dataDir?: string;
  /** How clients reach it when it speaks TLS: the generated certificate is its own CA. */
  tls?: DriverTls;
  /** The token it requires, when it requires one. */
  token?: string;
  /**
   * Kill, restart and pause it for the process faults (docs/faults.md, "Process faults"). After
   * a restart `address` and `pid` above are stale: `control.address()` and `control.pid()` are current.
   */
  control?: ProcessControl;
  /** The output tails of the processes a fault ended (kill, restart), kept for the run's record. */
  endedProcesses?(): ProcessLog[];
  /**
   * Copies the server's log into `dir` (the report folder of a run that failed) before stop()
   * removes it; returns the copy's path. Absent for servers whose log is not kept in a file.
   */
  keepLog?(dir: string): string | undefined;
  /** Stops whichever process runs now (continuing it first if paused). */
  stop(): Promise<void>;
}

/** One ended process of an embedded server: its PID and the tail of its log. */
export interface ProcessLog {
  pid: number;
  log: string;
}

/** Everything a driver module gets to create a driver for one run. */
export interface DriverContext extends DriverOptions {
  /** The scenario's broker block (JetStream picks its stream storage from it). */
  broker: BrokerSettings;
}

/** A server a driver can run against when no --target is given, started and stopped by PID. */
export interface EmbeddedServerSpec {
  /** What is started, for progress lines and the suite's version list (e.g. "nats-server"). */
  readonly name: string;
  start(scenario: DriverScenario): Promise<EmbeddedBroker>;
  /** The server's version, when it is not the ratatoskr package itself (bench-suite records it). */
  version?(): string;
}

/**
 * What a run of this driver with these settings promises (the durability disclosure, shown next
 * to the losses it produced): each field one short sentence a reader can check the losses against.
 */
export interface DurabilityPromise {
  /** When a publish counts as acknowledged, e.g. "PublishResponse after the store commit". */
  publishAck: string;
  /** Where accepted messages live, e.g. "LMDB on disk". */
  storage: string;
  /** When stored messages reach the disk, e.g. "fdatasync before each ack (group commit)". */
  flush: string;
  /** How deliveries are acknowledged and what happens to unacknowledged ones. */
  ackPolicy: string;
  /** Copies of each accepted message (1: a single server). */
  replicas: number;
  /** What order a subscription sees. */
  ordering: string;
  /** Anything else that bounds the promise (driver options in effect, known exceptions). */
  notes?: string[];
}

/** How reports label a driver's runs. */
export interface DriverReportLabels {
  /** A peer broker that ratatoskr is compared against (the comparison's ratios divide by the best peer). */
  readonly peer: boolean;
  /** The storage column of the comparison: what this driver's server did with the broker block. */
  storage(broker: BrokerSettings): string;
}

/**
 * One driver, described in one place. The scenario schema (`driver:` and `driverOptions:`),
 * `--driver`, bench-suite set files and the comparison all read the registry's list of these.
 */
export interface DriverModule<N extends string = string> {
  /** The name in scenarios (`driver:`), on the command line (`--driver`) and in result.json. */
  readonly name: N;
  /** One line: protocol and delivery guarantee. */
  readonly summary: string;
  /**
   * This driver's settings, under `driverOptions.<name>` in a scenario: a strict object whose
   * fields all have defaults, so `{}` is valid.
   */
  readonly options: z.ZodType<Record<string, unknown>>;
  /**
   * Top-level scenario fields that moved into `driverOptions.<name>`: old field → option key. A
   * scenario that still uses one is refused with a message naming the new place.
   */
  readonly movedFields: Readonly<Record<string, string>>;
  /**
   * Why this driver cannot run the scenario, one line per refused field (`field=value: why`);
   * empty when it can. A field with no meaning for the driver refuses the scenario: it is never
   * run differently from what it says.
   */
  refusals(scenario: DriverScenario): string[];
  /** The server started when no --target is given; undefined for an in-process driver. */
  readonly embeddedServer: EmbeddedServerSpec | undefined;
  /** Its consumers can stop reading on their own (Consumer.setReading): the slow-consumer fault applies. */
  readonly pausableConsumers?: boolean;
  readonly report: DriverReportLabels;
  /**
   * What a run promises with these broker settings (the effective ones: what the broker reports
   * about itself where it does) and this driver's options block. Optional in the type so that a
   * driver can be written first; every registered driver must have it (registry.test.ts).
   */
  promises?(broker: BrokerSettings, options: Record<string, unknown>): DurabilityPromise;
  /** A driver for one run; `options` is this driver's block of the scenario, validated here. */
  create(context: DriverContext, options: unknown): Driver;
}

/** The description a driver module writes; `defineDriver` types its options from the schema. */
export interface DriverSpec<N extends string, S extends z.ZodType<Record<string, unknown>>> extends Omit<DriverModule<N>, "options" | "create" | "promises"> {
  readonly options: S;
  promises?(broker: BrokerSettings, options: z.output<S>): DurabilityPromise;
  create(context: DriverContext, options: z.output<S>): Driver;
}

export function defineDriver<const N extends string, S extends z.ZodType<Record<string, unknown>>>(spec: DriverSpec<N, S>): DriverModule<N> {
  const { promises } = spec;
  return {
    ...spec,
    ...(promises ? { promises: (broker: BrokerSettings, options: Record<string, unknown>) => promises(broker, spec.options.parse(options ?? {})) } : {}),
    create: (context, options) => spec.create(context, spec.options.parse(options ?? {})),
  };
}
