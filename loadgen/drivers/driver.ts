/**
 * The driver interface: everything the runner needs from a broker, nothing more. Drivers are
 * created per run, connect once, and hand deliveries to a sink in batches (one call per
 * received frame), never per message.
 */

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
}

export interface DriverOptions {
  /** host:port of the broker. */
  target: string;
  /** gRPC channels (distinct HTTP/2 connections) in the pool. */
  connections: number;
  /** v2 flow control per consumer stream. */
  maxOutstandingMessages: number;
  /** v2 publish: one PublishStream per connection (default), or a unary Publish per batch. */
  v2Publish?: "stream" | "unary";
  /** Deadline for reaching the broker at connect time. */
  connectTimeoutMs: number;
}

export interface SubscriptionSpec {
  /** Slot in the runner's accounting (dense, 0..n-1 within this process). */
  slot: number;
  name: string;
  topic: string;
}

export interface DeliverySink {
  /**
   * One received frame. `payloads[i]` is valid only during the call; `attempts` is undefined
   * for drivers without redelivery (v1).
   */
  onDeliveries(slot: number, payloads: readonly Buffer[], attempts: readonly number[] | undefined, count: number): void;
  /** A consumer stream ended with an error (slow consumer disconnect, broker gone, ...). */
  onStreamError(slot: number, err: Error): void;
}

export interface BrokerStatsSample {
  rssBytes: number;
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  heapUsedBytes?: number;
  retainedMessages?: number;
  backlog?: number;
}

export interface Consumer {
  close(): void;
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
  /** Broker resource figures, if the protocol offers them. */
  brokerStats(): Promise<BrokerStatsSample | undefined>;
  /** Remove what this run created (subscriptions, topics); best effort. */
  cleanup(topics: readonly string[], subscriptions: readonly string[]): Promise<void>;
  close(): Promise<void>;
}
