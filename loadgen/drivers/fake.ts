/**
 * Driver `fake`: an in-process broker for the runner's tests and for dry runs of a scenario.
 * Publishes fan out to every subscription of the topic; deliveries are handed over in batches
 * on a later turn of the event loop. Optional faults make the accounting observable: drop,
 * duplicate or swap every n-th delivery (`driverOptions: {fake: {dropEvery: 100}}` in a scenario).
 * A capacity (`deliveriesPerSecond`) makes it a broker with a limit: it hands over at most that
 * many deliveries per second (all subscriptions together) and queues the rest, so a backlog
 * builds above it and the `rate: max` search has a rate to find. A publish capacity
 * (`publishesPerSecond`) holds each publish until the capacity admits its messages (then fans it
 * out and acknowledges it), as a broker whose intake is the limit: producers fall behind.
 *
 * Split over generator workers (threads), each worker has its own fake; with a `workerGroup`
 * they share one BroadcastChannel, so a publish in a producer worker reaches the subscriptions
 * of consumer workers (in send order per publisher), and faults apply where it is delivered.
 */
import { BroadcastChannel } from "node:worker_threads";
import { z } from "zod";
import { systemClock, type Clock } from "../clock.js";
import { DriverError } from "../errors.js";
import { defineDriver, type BrokerStatsSample, type Consumer, type DeliverySink, type Driver, type DriverScenario, type SubscriptionSpec } from "./driver.js";

/** The broker block means nothing to an in-process fake: any setting of it refuses the scenario. */
export function fakeRefusals(s: DriverScenario): string[] {
  const out: string[] = [];
  if (s.broker.storage !== "memory") out.push(`broker.storage=${s.broker.storage}: the fake driver is an in-process broker that stores nothing on disk`);
  if (s.broker.fsync) out.push("broker.fsync=true: the fake driver stores nothing to flush");
  if (s.broker.memoryBudgetBytes !== undefined) out.push("broker.memoryBudgetBytes: a ratatoskr broker option; the fake driver starts no broker");
  if (s.broker.args.length > 0) out.push("broker.args: the fake driver starts no broker to pass them to");
  return out;
}

export const fakeDriver = defineDriver({
  name: "fake",
  summary: "in-process fake broker (no server, no network): for tests and dry runs of a scenario",
  options: z.strictObject({
    /** Drop, duplicate or swap with the next every n-th delivery per subscription (a faulty broker). */
    dropEvery: z.number().int().positive().optional(),
    duplicateEvery: z.number().int().positive().optional(),
    swapEvery: z.number().int().positive().optional(),
    /** At most this many deliveries per second over all subscriptions (a token bucket of 100 ms, so a stalled event loop does not lose capacity); absent = no limit. */
    deliveriesPerSecond: z.number().positive().optional(),
    /** At most this many published messages per second (each publish waits until its messages fit); absent = no limit. */
    publishesPerSecond: z.number().positive().optional(),
    /** Every n-th publish batch is delivered but its ack is lost (the publish rejects): unacknowledged but delivered. */
    unackEvery: z.number().int().positive().optional(),
    /** Every n-th publish batch (not an unackEvery one) is refused and never delivered: unacknowledged and undelivered. */
    refuseEvery: z.number().int().positive().optional(),
    /** Tests: close() leaves a timer running that keeps the event loop alive (a client library that does not let go). */
    holdOpenAfterClose: z.boolean().optional(),
  }),
  movedFields: {},
  refusals: fakeRefusals,
  embeddedServer: undefined,
  report: { peer: false, storage: () => "memory" },
  promises: (_broker, o) => ({
    publishAck: "in-process: at once",
    storage: "memory of this process",
    flush: "none",
    ackPolicy: "none (the fake delivers each message once unless told to duplicate)",
    replicas: 1,
    ordering: "send order per publisher, unless told to reorder",
    ...(o.dropEvery || o.duplicateEvery || o.swapEvery || o.unackEvery || o.refuseEvery ? { notes: [`injected faults: ${JSON.stringify(o)}`] } : {}),
  }),
  create: (context, options) => new FakeDriver(options, 256, context.workerGroup, context.clock),
});

export interface FakeFaults {
  /** Drop every n-th delivery (per subscription). */
  dropEvery?: number;
  /** Deliver every n-th delivery twice. */
  duplicateEvery?: number;
  /** Swap every n-th delivery with the one after it. */
  swapEvery?: number;
  /** Capacity: at most this many deliveries per second over all subscriptions. */
  deliveriesPerSecond?: number;
  /** Capacity: at most this many published messages per second (a publish waits for its turn). */
  publishesPerSecond?: number;
  /** Deliver every n-th publish batch but reject the publish (its ack is lost). */
  unackEvery?: number;
  /** Reject every n-th publish batch (not an unackEvery one) and deliver nothing of it. */
  refuseEvery?: number;
  /** close() leaves a ref'd timer running (a handle held open after close). */
  holdOpenAfterClose?: boolean;
}

/** The capacity's bucket holds this much time's worth of deliveries (the largest burst). */
const BUCKET_MS = 100;
/** The publish capacity keeps this much idle time's worth of intake (the largest burst it admits at once). */
const INTAKE_BURST_MS = 5;

interface FakeSubscription {
  name: string;
  consumers: { slot: number; sink: DeliverySink }[];
  pending: Buffer[];
  counter: number;
  next: number;
}

export class FakeDriver implements Driver {
  readonly name = "fake";
  readonly acks = true;
  private readonly topics = new Map<string, FakeSubscription[]>();
  private readonly subscriptions = new Map<string, FakeSubscription>();
  private flushScheduled = false;
  private tokens = 0;
  private tokensAtUs: number;
  private readonly channel: BroadcastChannel | undefined;
  published = 0;
  private publishBatches = 0;
  /** Publish capacity: when the capacity has admitted everything published so far (µs). */
  private intakeFreeAtUs = 0;

  constructor(
    private readonly faults: FakeFaults = {},
    private readonly batchSize = 256,
    workerGroup?: string,
    private readonly clock: Clock = systemClock,
  ) {
    this.tokensAtUs = clock.nowUs();
    if (workerGroup === undefined) return;
    this.channel = new BroadcastChannel(`ratatoskr-fake-${workerGroup}`);
    this.channel.onmessage = (event) => {
      const { topic, payloads } = (event as { data: { topic: string; payloads: Uint8Array[] } }).data;
      this.fanOut(topic, payloads.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
    };
  }

  async connect(): Promise<void> {}

  async createTopics(names: readonly string[]): Promise<void> {
    for (const n of names) if (!this.topics.has(n)) this.topics.set(n, []);
  }

  async createSubscription(spec: SubscriptionSpec): Promise<void> {
    const subs = this.topics.get(spec.topic);
    if (!subs) throw new DriverError(this.name, `no topic ${spec.topic}`);
    if (this.subscriptions.has(spec.name)) return;
    const s: FakeSubscription = { name: spec.name, consumers: [], pending: [], counter: 0, next: 0 };
    this.subscriptions.set(spec.name, s);
    subs.push(s);
  }

  async openConsumer(spec: SubscriptionSpec, _consumerIndex: number, sink: DeliverySink): Promise<Consumer> {
    const s = this.subscriptions.get(spec.name);
    if (!s) throw new DriverError(this.name, `no subscription ${spec.name}`);
    const c = { slot: spec.slot, sink };
    s.consumers.push(c);
    // A subscription that kept messages while it had no consumer (a backlog) delivers them now.
    if (s.pending.length > 0) this.scheduleFlush();
    return { close: () => s.consumers.splice(s.consumers.indexOf(c), 1) };
  }

  async publish(topic: string, payloads: readonly Buffer[]): Promise<number> {
    const n = ++this.publishBatches;
    const f = this.faults;
    const ackLost = f.unackEvery !== undefined && n % f.unackEvery === 0;
    if (!ackLost && f.refuseEvery !== undefined && n % f.refuseEvery === 0) throw new DriverError(this.name, `publish batch ${n} refused (refuseEvery)`);
    const copies = payloads.map((p) => Buffer.from(p)); // the caller reuses its buffers
    if (f.publishesPerSecond !== undefined) await this.admit(payloads.length, f.publishesPerSecond);
    if (this.channel) {
      // Another worker may hold the topic's subscriptions (and created the topic).
      this.channel.postMessage({ topic, payloads: copies });
    } else if (!this.topics.has(topic)) throw new DriverError(this.name, `no topic ${topic}`);
    this.fanOut(topic, copies);
    if (ackLost) throw new DriverError(this.name, `publish batch ${n} stored but its ack was lost (unackEvery)`);
    this.published += payloads.length;
    return payloads.length;
  }

  /**
   * Wait until the publish capacity admits n more messages. Idle capacity is kept for at most
   * INTAKE_BURST_MS: a larger burst would let a producer that is behind catch up at every pause.
   */
  private async admit(n: number, perSecond: number): Promise<void> {
    const now = this.clock.nowUs();
    this.intakeFreeAtUs = Math.max(this.intakeFreeAtUs, now - INTAKE_BURST_MS * 1000) + (n * 1e6) / perSecond;
    const waitMs = (this.intakeFreeAtUs - now) / 1000;
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
  }

  private fanOut(topic: string, payloads: readonly Buffer[]): void {
    const subs = this.topics.get(topic);
    if (!subs || subs.length === 0) return;
    for (const p of payloads) for (const s of subs) this.enqueue(s, p);
    this.scheduleFlush();
  }

  private enqueue(s: FakeSubscription, p: Buffer): void {
    const n = ++s.counter;
    const f = this.faults;
    if (f.dropEvery && n % f.dropEvery === 0) return;
    s.pending.push(p);
    if (f.duplicateEvery && n % f.duplicateEvery === 0) s.pending.push(p);
    if (f.swapEvery && n % f.swapEvery === 0) s.pending.push(s.pending.splice(s.pending.length - 2, 1)[0]!);
  }

  private scheduleFlush(delayMs = 0): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const flush = () => {
      this.flushScheduled = false;
      let budget = this.takeTokens();
      let left = false;
      for (const s of this.subscriptions.values()) {
        while (s.pending.length > 0 && s.consumers.length > 0) {
          if (budget < 1) {
            left = true;
            break;
          }
          const batch = s.pending.splice(0, Math.min(this.batchSize, Math.floor(budget)));
          budget -= batch.length;
          this.tokens -= batch.length;
          const c = s.consumers[s.next++ % s.consumers.length]!;
          for (const m of batch) c.sink.onDelivery(c.slot, m, 0, m.length, 1);
        }
      }
      // Over capacity: the rest waits for the bucket to refill (1 ms), as a saturated broker queues.
      if (left) this.scheduleFlush(1);
    };
    if (delayMs > 0) setTimeout(flush, delayMs);
    else setImmediate(flush);
  }

  /** Deliveries the capacity allows now (Infinity without one). */
  private takeTokens(): number {
    const rate = this.faults.deliveriesPerSecond;
    if (rate === undefined) return Infinity;
    const now = this.clock.nowUs();
    this.tokens = Math.min(Math.max(1, (rate * BUCKET_MS) / 1000), this.tokens + ((now - this.tokensAtUs) * rate) / 1e6);
    this.tokensAtUs = now;
    return this.tokens;
  }

  /** Messages waiting for delivery over all subscriptions (the fake's backlog). */
  get queued(): number {
    let n = 0;
    for (const s of this.subscriptions.values()) n += s.pending.length;
    return n;
  }

  async brokerStats(): Promise<BrokerStatsSample | undefined> {
    const m = process.memoryUsage();
    const cpu = process.cpuUsage();
    return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, cpuUserSeconds: cpu.user / 1e6, cpuSystemSeconds: cpu.system / 1e6, backlog: this.queued };
  }

  async cleanup(topics: readonly string[], subscriptions: readonly string[]): Promise<void> {
    for (const s of subscriptions) this.subscriptions.delete(s);
    for (const t of topics) this.topics.delete(t);
  }

  async close(): Promise<void> {
    this.channel?.close();
    if (this.faults.holdOpenAfterClose) setInterval(() => undefined, 60_000);
  }
}
