/**
 * Driver `fake`: an in-process broker for the runner's tests and for dry runs of a scenario.
 * Publishes fan out to every subscription of the topic; deliveries are handed over in batches
 * on a later turn of the event loop. Optional faults make the accounting observable: drop,
 * duplicate or swap every n-th delivery (`driverOptions: {fake: {dropEvery: 100}}` in a scenario).
 *
 * Split over generator workers (threads), each worker has its own fake; with a `workerGroup`
 * they share one BroadcastChannel, so a publish in a producer worker reaches the subscriptions
 * of consumer workers (in send order per publisher), and faults apply where it is delivered.
 */
import { BroadcastChannel } from "node:worker_threads";
import { z } from "zod";
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
    ...(o.dropEvery || o.duplicateEvery || o.swapEvery ? { notes: [`injected faults: ${JSON.stringify(o)}`] } : {}),
  }),
  create: (context, faults) => new FakeDriver(faults, 256, context.workerGroup),
});

export interface FakeFaults {
  /** Drop every n-th delivery (per subscription). */
  dropEvery?: number;
  /** Deliver every n-th delivery twice. */
  duplicateEvery?: number;
  /** Swap every n-th delivery with the one after it. */
  swapEvery?: number;
}

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
  private readonly channel: BroadcastChannel | undefined;
  published = 0;

  constructor(
    private readonly faults: FakeFaults = {},
    private readonly batchSize = 256,
    workerGroup?: string,
  ) {
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
    return { close: () => s.consumers.splice(s.consumers.indexOf(c), 1) };
  }

  async publish(topic: string, payloads: readonly Buffer[]): Promise<number> {
    const copies = payloads.map((p) => Buffer.from(p)); // the caller reuses its buffers
    if (this.channel) {
      // Another worker may hold the topic's subscriptions (and created the topic).
      this.channel.postMessage({ topic, payloads: copies });
    } else if (!this.topics.has(topic)) throw new DriverError(this.name, `no topic ${topic}`);
    this.fanOut(topic, copies);
    this.published += payloads.length;
    return payloads.length;
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

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const s of this.subscriptions.values()) {
        while (s.pending.length > 0 && s.consumers.length > 0) {
          const batch = s.pending.splice(0, this.batchSize);
          const c = s.consumers[s.next++ % s.consumers.length]!;
          c.sink.onDeliveries(c.slot, batch, undefined, batch.length);
        }
      }
    });
  }

  async brokerStats(): Promise<BrokerStatsSample | undefined> {
    const m = process.memoryUsage();
    const cpu = process.cpuUsage();
    return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, cpuUserSeconds: cpu.user / 1e6, cpuSystemSeconds: cpu.system / 1e6 };
  }

  async cleanup(topics: readonly string[], subscriptions: readonly string[]): Promise<void> {
    for (const s of subscriptions) this.subscriptions.delete(s);
    for (const t of topics) this.topics.delete(t);
  }

  async close(): Promise<void> {
    this.channel?.close();
  }
}
