// Test support for the subscription engine (not a test file itself): a broker on a memory
// store with a fake clock, a registry whose pumps run when the test says so, and sinks that
// record what a consumer was sent.
import {
  createBrokerCore,
  defaultTopicConfig,
  FakeClock,
  ManualTimers,
  type BrokerCore,
  type Consumer,
  type ConsumerEndReason,
  type ConsumerSink,
  type DeliveredLease,
  type Lease,
  type SubscriptionRegistry,
  type SubscriptionRequest,
  type TopicConfig,
  type TopicRegistry,
  snapshotLease,
} from "../../broker/core/index.js";
import { MemoryStore } from "../../broker/store/index.js";

export class RecordingSink implements ConsumerSink {
  /** What each frame carried (copies: a lease is valid only during `send`). */
  readonly batches: DeliveredLease[][] = [];
  ended: ConsumerEndReason | undefined;
  /** What `send` returns: false simulates a full transport buffer. */
  writable = true;
  send(batch: Lease[]): boolean {
    this.batches.push(batch.map(snapshotLease));
    return this.writable;
  }
  end(reason: ConsumerEndReason): void {
    this.ended = reason;
  }
  get leases(): DeliveredLease[] {
    return this.batches.flat();
  }
  get sequences(): number[] {
    return this.leases.map((l) => l.sequence);
  }
  /** Leases received since the last call. */
  takeNew(): DeliveredLease[] {
    const seen = this.seen;
    const all = this.leases;
    this.seen = all.length;
    return all.slice(seen);
  }
  private seen = 0;
}

export class EngineHarness {
  readonly clock = new FakeClock();
  readonly store = new MemoryStore();
  readonly core: BrokerCore;
  /** The core's topics and publish path. */
  readonly broker: TopicRegistry;
  readonly registry: SubscriptionRegistry;
  /** The core's periodic jobs; they run only through tick() and sweepRetention(). */
  readonly timers = new ManualTimers();
  private deferred: Array<() => void> = [];

  constructor(options: { memoryBudgetBytes?: number; leaseTickMs?: number; store?: MemoryStore } = {}) {
    const store = options.store ?? this.store;
    this.core = createBrokerCore({
      store,
      clock: this.clock,
      config: { memoryBudgetBytes: options.memoryBudgetBytes ?? 0, leaseTickMs: options.leaseTickMs ?? 10 },
      timers: this.timers,
      defer: (fn) => this.deferred.push(fn),
    });
    this.broker = this.core.topics;
    this.registry = this.core.subscriptions;
  }

  async topic(name: string, config: Partial<TopicConfig> = {}): Promise<void> {
    await this.broker.createTopic(name, { ...defaultTopicConfig(), ...config });
  }

  async subscribe(name: string, topic: string, request: Partial<SubscriptionRequest> = {}): Promise<void> {
    await this.registry.create(name, topic, { start: { kind: "earliest" }, ...request });
    this.run();
  }

  /** Publishes text payloads and runs the resulting pumps. */
  async publish(topic: string, payloads: string[], attributes: Record<string, string> = {}): Promise<number[]> {
    const out = await this.broker.publish(topic, payloads.map((p) => ({ payload: Buffer.from(p), attributes })));
    this.run();
    return out.map((o) => o.sequence);
  }

  consume(subscription: string, limits: { messages?: number; bytes?: number } = {}): { consumer: Consumer; sink: RecordingSink } {
    const sink = new RecordingSink();
    const consumer = this.registry.attach(subscription, { maxOutstandingMessages: limits.messages ?? 1000, maxOutstandingBytes: limits.bytes ?? 1 << 30 }, sink);
    this.run();
    return { consumer, sink };
  }

  ack(consumer: Consumer, leases: readonly DeliveredLease[]): void {
    consumer.handle({ ackIds: leases.map((l) => l.ackId) });
    this.run();
  }

  nack(consumer: Consumer, leases: readonly DeliveredLease[]): void {
    consumer.handle({ nackIds: leases.map((l) => l.ackId) });
    this.run();
  }

  /** Moves the fake clock and runs the periodic tick (lease expiry, backoff, ack persistence, retention). */
  advance(ms: number): void {
    this.clock.advance(ms);
    this.tick();
  }

  tick(): void {
    this.core.tick();
    this.run();
  }

  /** Runs deferred pumps until none are left; awaits pending promises (dead-letter publishes) too. */
  run(): void {
    while (this.deferred.length > 0) {
      const batch = this.deferred;
      this.deferred = [];
      for (const fn of batch) fn();
    }
  }

  /** Lets promise callbacks (e.g. dead-letter publishes) settle, then runs pumps. */
  async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.run();
    }
  }

  usage(): number {
    return this.broker.store.usageBytes();
  }
}
