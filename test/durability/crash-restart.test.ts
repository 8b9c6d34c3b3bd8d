import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type ExpectStatic } from "vitest";
import { StartPosition } from "../../proto/gen/ratatoskr/v2/broker.js";
import { pollUntil, TestConsumer, Waiters, type V2Api } from "../support/index.js";
import { AckingConsumer, parsePayload, Producer, RestartableBroker } from "./durable-harness.js";

// Issue 4, "what it must show": a durable broker in a child process, under continuous publish
// load with durable subscriptions consuming and acking, is killed with SIGKILL at random
// moments and restarted on the same data directory; and a graceful SIGTERM restart.

const KILLS = 6;
const PRODUCERS = 3;
const BATCH = 50;
/**
 * An ack written this long before a crash must have been persisted: the v2 tick (20 ms) + store
 * coalescing (5 ms) + a commit, with ample room for a loaded machine.
 */
const ACK_PERSIST_BOUND_MS = 2_000;
const TOPIC = "crash";
const SUBSCRIPTIONS = ["crash-a", "crash-b"];

/** A broker child on a fresh data directory, killed and the directory removed afterwards. */
async function withBroker(prefix: string, args: string[], body: (b: RestartableBroker) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const b = new RestartableBroker(["--data-dir", dir, ...args]);
  try {
    await body(b);
  } finally {
    await b.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Concurrent: most of each test's time is spent waiting for broker children to start.
describe.concurrent("durable broker under crashes", () => {
  it.for([false, true])("delivers every acknowledged publish across 6 SIGKILLs (fsync %s)", { timeout: 300_000 }, async (fsync, { expect }) => {
    await withBroker("ratatoskr-crash-", fsync ? ["--fsync"] : [], (b) => crashRun(b, fsync, expect));
  });

  it("restarts gracefully on SIGTERM: nothing lost, nothing acked redelivered", { timeout: 180_000 }, async ({ expect }) => {
    await withBroker("ratatoskr-graceful-", [], (b) => gracefulRun(b, expect));
  });
});

async function crashRun(b: RestartableBroker, fsync: boolean, expect: ExpectStatic): Promise<void> {
  const first = await b.start();
  await first.api.createTopic({ name: TOPIC });
  for (const s of SUBSCRIPTIONS) await createFromEarliest(first.api, s);

  const progress = new Waiters();
  const consumers = SUBSCRIPTIONS.map((s) => new AckingConsumer(s, b, () => progress.notify()));
  const ackedCount = (): number => producers.reduce((n, p) => n + p.acked.length, 0);
  const slowest = (): number => Math.min(...consumers.map((c) => c.deliveries.size));
  let stopping = false;
  // Keep the backlog bounded so the final catch-up is short.
  const gate = (): Promise<void> => progress.until(() => stopping || ackedCount() - slowest() < 5_000, "consumers to catch up", 120_000);
  const producers = Array.from({ length: PRODUCERS }, (_, i) => new Producer(i + 1, b, TOPIC, BATCH, () => progress.notify(), gate));
  for (const c of consumers) c.start();
  for (const p of producers) p.start();
  try {
    await crashAndVerify(b, fsync, expect, { producers, consumers, progress, ackedCount, stop: () => (stopping = true) });
  } finally {
    stopping = true;
    progress.notify();
    await Promise.allSettled([...producers.map((p) => p.stop()), ...consumers.map((c) => c.stop())]);
  }
}

interface Load {
  producers: Producer[];
  consumers: AckingConsumer[];
  progress: Waiters;
  ackedCount(): number;
  stop(): void;
}

async function crashAndVerify(b: RestartableBroker, fsync: boolean, expect: ExpectStatic, load: Load): Promise<void> {
  const { producers, consumers, progress, ackedCount } = load;
  for (let k = 0; k < KILLS; k++) {
    const target = ackedCount() + 1_500 + Math.floor(Math.random() * 6_000);
    // The kill lands while a publish is on its way (not while every producer waits for consumers).
    await progress.until(() => ackedCount() >= target && producers.some((p) => p.inFlight), `${target} acknowledged publishes`, 120_000);
    await b.stop("SIGKILL");
    await b.start();
  }
  const finalTarget = ackedCount() + 2_000;
  await progress.until(() => ackedCount() >= finalTarget, "publishes after the last restart", 120_000);
  load.stop();
  progress.notify();
  await Promise.all(producers.map((p) => p.stop()));

  const acked = producers.flatMap((p) => p.acked);
  const pending = new Map(consumers.map((c) => [c, acked] as const));
  const allDelivered = (): boolean => {
    for (const c of consumers) pending.set(c, pending.get(c)!.filter((p) => !c.deliveries.has(p)));
    return [...pending.values()].every((l) => l.length === 0);
  };
  await progress.until(allDelivered, "every acknowledged message at every subscription", 120_000).catch(() => undefined);
  await Promise.all(consumers.map((c) => c.stop()));
  expect(await b.stop("SIGTERM")).toBe(0);

  const killedAt = new Map(b.history.map((inc) => [inc.gen, inc.endedAtMs ?? Infinity]));
  const report: string[] = [];
  for (const c of consumers) {
    const lost = acked.filter((p) => !c.deliveries.has(p));
    expect(lost.slice(0, 10), `${c.subscription}: acknowledged but never delivered (${lost.length})`).toEqual([]);

    const lastSeq = new Map<number, number>();
    const outOfOrder: string[] = [];
    for (const p of c.firstOrder) {
      const { producer, seq } = parsePayload(p);
      if (seq <= (lastSeq.get(producer) ?? 0)) outOfOrder.push(p);
      lastSeq.set(producer, seq);
    }
    expect(outOfOrder.slice(0, 10), `${c.subscription}: first deliveries out of producer order`).toEqual([]);

    // A message comes again only after a crash, and only if its ack was written shortly before it.
    let duplicates = 0;
    const unexplained: string[] = [];
    for (const [p, list] of c.deliveries) {
      for (let j = 1; j < list.length; j++) {
        duplicates++;
        const prev = list[j - 1]!;
        const ackedBeforeCrashMs = killedAt.get(prev.gen)! - prev.atMs;
        if (list[j]!.gen === prev.gen || ackedBeforeCrashMs > ACK_PERSIST_BOUND_MS) {
          unexplained.push(`${p} gen ${prev.gen}→${list[j]!.gen}, acked ${ackedBeforeCrashMs} ms before the crash`);
        }
      }
    }
    expect(unexplained.slice(0, 10), `${c.subscription}: redeliveries of acks that had been persisted`).toEqual([]);
    report.push(`${c.subscription}: ${c.deliveries.size} distinct, ${duplicates} duplicates`);
  }
  const failed = producers.reduce((n, p) => n + p.failedBatches, 0);
  expect(failed, "publishes cut by the crashes").toBeGreaterThan(0);
  console.log(`crash test (fsync ${fsync}): ${b.history.length} incarnations, ${acked.length} acknowledged publishes, ${failed} batches unacknowledged at a crash; ${report.join("; ")}`);
  expect(b.history.length).toBe(KILLS + 1);
}

async function gracefulRun(b: RestartableBroker, expect: ExpectStatic): Promise<void> {
  const inc = await b.start();
  await inc.api.createTopic({ name: TOPIC });
  await createFromEarliest(inc.api, "graceful");
  const all: string[] = [];
  for (let batch = 0; batch < 20; batch++) {
    const payloads = Array.from({ length: 100 }, (_, i) => `1:${batch * 100 + i + 1}`);
    await inc.api.publishText(TOPIC, payloads);
    all.push(...payloads);
  }
  // Ack two of every three messages; leave the rest unacked at the stop.
  const first = await consume(b, "graceful", (p) => parsePayload(p).seq % 3 !== 0, (got) => got.length >= all.length);
  const acked = first.got.filter((p) => parsePayload(p).seq % 3 !== 0);
  expect(first.got).toEqual(all);
  // The server has applied every ack once the subscription's stats count them.
  await pollUntil(async () => ((await inc.api.getSubscription("graceful")).stats?.acked ?? 0n) >= acked.length, "the server to apply every ack", 30_000);
  first.close();
  expect(await b.stop("SIGTERM")).toBe(0);
  expect(inc.child.stdout.some((l) => l.includes('"stopped"'))).toBe(true);

  const again = await b.start();
  await again.api.publishText(TOPIC, ["marker"]);
  const second = await consume(b, "graceful", () => true, (got) => got.includes("marker"));
  second.close();
  const unacked = all.filter((p) => parsePayload(p).seq % 3 === 0);
  expect(second.got).toEqual([...unacked, "marker"]);
  expect(await b.stop("SIGTERM")).toBe(0);
}

/** Subscribes from the topic's oldest retained message. */
async function createFromEarliest(api: V2Api, name: string): Promise<void> {
  await api.createSubscription({ name, topic: TOPIC, config: { start: StartPosition.START_POSITION_EARLIEST } });
}

/** Opens one Consume stream, acks what `ack` selects; resolves once `done` holds, with the payloads in order. */
async function consume(
  b: RestartableBroker,
  subscription: string,
  ack: (p: string) => boolean,
  done: (got: string[]) => boolean,
): Promise<{ got: string[]; close(): void }> {
  const inc = (await b.ready())!;
  const c = new TestConsumer(inc.client, subscription, {
    maxOutstandingMessages: 5_000,
    consumerName: "graceful",
    autoAck: (d) => ack(d.message!.payload.toString()),
  });
  await c.waitFor(() => done(c.texts()) || c.ended, "deliveries", 30_000);
  return { got: c.texts(), close: () => c.cut() };
}
