/**
 * Driver `nats`: NATS core, at-most-once. A topic is a subject; each subscription is one plain
 * subscriber (no queue group) on one of the pool's connections, so a topic with k
 * subscriptions gets k copies of every message, like ratatoskr fan-out. Nothing is stored and
 * nothing is acked.
 *
 * The client is the generator's own (nats-core-client.ts; docs/loadgen.md, "The NATS core
 * client"), not nats.js: it parses deliveries in place and writes a batch of PUBs into one
 * buffer. The jetstream driver stays on nats.js.
 *
 * Publishing: every message of a batch is a NATS PUB (a synchronous run of batches goes out in
 * one socket write). NATS core has no publish ack, so pacing comes from a fixed flush cadence:
 * after every NATS_FLUSH_EVERY messages on a connection the driver flushes (a PING/PONG round
 * trip) and the batch that crossed the mark resolves when the PONG arrives; other batches
 * resolve at once. The publish latency of this driver is therefore "time to the client buffer,
 * or to the PONG", not a broker ack. The cadence is fixed (not a scenario field) and disclosed
 * in reports.
 *
 * Under faults (`reconnect` on; docs/faults.md, "Drivers under faults"): at-most-once. The
 * connections reconnect with backoff and send their subscriptions again; what the server
 * handled while a subscriber was away is lost to it. Publishes are not retried (NATS core has
 * no de-duplication and no ack to miss): the client holds what is published while it
 * reconnects (up to 8 MiB a connection) and sends it afterwards, and what the broken
 * connection had not sent is lost.
 */
import type { RetryCounts } from "./reconnect.js";
import { z } from "zod";
import { defineDriver, type BrokerStatsSample, type Consumer, type DeliverySink, type Driver, type DriverOptions, type DriverScenario, type SubscriptionSpec } from "./driver.js";
import { NatsCorePool, type NatsCoreConnection } from "./nats-core-client.js";
import { natsServer } from "./nats-server.js";

/** Messages per connection between flushes (PING/PONG). 100 / 1,000 / 10,000 move NATS by about ±20% (docs/performance.md, "Peer driver notes"). */
export const NATS_FLUSH_EVERY = 1000;

/** Scenario fields that NATS core cannot honour; an empty list means the scenario may run. */
export function natsCoreRefusals(s: DriverScenario): string[] {
  const out: string[] = [];
  if (s.consumersPerSubscription !== 1) {
    out.push(`consumersPerSubscription=${s.consumersPerSubscription}: a NATS core subscription is one subscriber (competing consumers would be a queue group, which this scenario set does not measure); use 1`);
  }
  if (s.broker.storage !== "memory") out.push(`broker.storage=${s.broker.storage}: NATS core stores nothing; use the jetstream driver for durable scenarios`);
  if (s.broker.fsync) out.push("broker.fsync=true: NATS core stores nothing to flush");
  if (s.broker.memoryBudgetBytes !== undefined) out.push("broker.memoryBudgetBytes: a ratatoskr broker option with no NATS core equivalent");
  if (s.broker.args.length > 0) out.push("broker.args: ratatoskr broker command-line arguments cannot be passed to nats-server");
  return out;
}

export const natsDriver = defineDriver({
  name: "nats",
  summary: "NATS core: a subject per topic, a plain subscriber per subscription; at-most-once, nothing stored",
  options: z.strictObject({}),
  movedFields: {},
  refusals: natsCoreRefusals,
  embeddedServer: natsServer,
  report: { peer: true, storage: () => "none (core)" },
  promises: () => ({
    publishAck: `none: NATS core has no publish ack; a publish counts as accepted after the flush (PING/PONG) that follows every ${NATS_FLUSH_EVERY} messages on its connection`,
    storage: "none: messages are only forwarded to the subscribers connected at that moment",
    flush: "none",
    ackPolicy: "none: at-most-once; a subscriber that is disconnected misses what is published meanwhile",
    replicas: 1,
    ordering: "per publishing connection",
  }),
  create: (context) => new NatsCoreDriver(context),
});

export class NatsCoreDriver implements Driver {
  readonly name = "nats";
  readonly acks = false;
  private readonly pool: NatsCorePool;
  private readonly sinceFlush: number[] = [];
  private readonly subs = new Set<{ nc: NatsCoreConnection; sid: number; slot: number; sink: DeliverySink; conn: number }>();

  constructor(private readonly options: DriverOptions) {
    this.pool = new NatsCorePool(options.target, options.connections, "ratatoskr-bench-nats", options, options.reconnect, () => options.clock.wallMs());
  }

  retryCounts(): RetryCounts {
    return { ...this.pool.counts };
  }

  async connect(): Promise<void> {
    await this.pool.open(this.options.connectTimeoutMs);
    for (let i = 0; i < this.pool.length; i++) this.sinceFlush.push(0);
    this.pool.onClosed((conn, err) => {
      for (const s of this.subs) {
        if (s.conn !== conn) continue;
        this.subs.delete(s);
        s.sink.onStreamError(s.slot, err ?? new Error("NATS connection closed"));
      }
    });
    this.pool.onReconnected((conn) => {
      for (const s of this.subs) if (s.conn === conn) s.sink.onReconnect?.(s.slot, new Error(`NATS connection ${conn} reconnected; its subscriptions were re-sent`));
    });
  }

  async createTopics(_names: readonly string[]): Promise<void> {
    // Subjects need no creation.
  }

  async createSubscription(_spec: SubscriptionSpec): Promise<void> {
    // The subscription is the subscriber opened in openConsumer.
  }

  async openConsumer(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink): Promise<Consumer> {
    const hint = spec.slot + consumerIndex;
    const nc = this.pool.at(hint);
    const slot = spec.slot;
    const sid = nc.subscribe(spec.topic, (buf, start, end) => sink.onDelivery(slot, buf, start, end, 1));
    const sub = { nc, sid, slot, sink, conn: this.pool.indexOf(hint) };
    this.subs.add(sub);
    // After the PONG the server has processed the SUB: it delivers from now on.
    await nc.flush();
    return {
      close: () => {
        this.subs.delete(sub);
        nc.unsubscribe(sid);
      },
    };
  }

  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    const conn = this.pool.indexOf(channelHint);
    const nc = this.pool.at(channelHint);
    const n = payloads.length;
    try {
      // The client copies the bytes into its outbound buffer before it returns.
      nc.publish(topic, payloads);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const since = (this.sinceFlush[conn] ?? 0) + n;
    if (since < NATS_FLUSH_EVERY) {
      this.sinceFlush[conn] = since;
      return Promise.resolve(n);
    }
    this.sinceFlush[conn] = 0;
    return nc.flush().then(() => n);
  }

  async brokerStats(): Promise<BrokerStatsSample | undefined> {
    return undefined; // sampled from /proc/<pid> of the embedded nats-server
  }

  async cleanup(_topics: readonly string[], _subscriptions: readonly string[]): Promise<void> {
    // Nothing persists on the server.
  }

  async close(): Promise<void> {
    for (const s of this.subs) s.nc.unsubscribe(s.sid);
    this.subs.clear();
    await this.pool.close();
  }
}
