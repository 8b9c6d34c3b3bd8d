/**
 * The bare client: the yardstick the harness is calibrated against (`ratatoskr calibrate`,
 * scripts/generator-ceiling.sh). For a scenario and a driver it opens the same connections,
 * subscriptions and consumers, and publishes the same message size in the same batches with the
 * same window, through the same driver code, but in two processes (a publisher and a subscriber,
 * each its own event loop) and with nothing else: no payload header, no accounting, no
 * histograms, no scheduler. What it reaches is the ceiling for that driver on this machine;
 * the harness's rate divided by it is how close the generator comes.
 *
 * Subscribers are spread over SUBSCRIBER_PROCESSES processes (round-robin by subscription, at
 * most one per subscription): one process cannot parse a 1 → 10 NATS fan-out as fast as one
 * publisher sends it, and the server then cuts it off as a slow consumer (nats-server's write
 * deadline). On a busy machine that can still happen; the run then fails naming the consumer.
 *
 * Only count-mode scenarios (`messages:`) have a bare run. Warmup is a share of messages
 * (WARMUP_SHARE of the measured count, sent first, not timed) rather than seconds: the rate is
 * the measured deliveries over the time from the warmup share's arrival to the last delivery.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeArgs } from "../cli-entry.js";
import { systemClock } from "../clock.js";
import { createDriver, type SubscriptionSpec } from "../drivers/index.js";
import { UsageError } from "../errors.js";
import { buildPlan, expectedPerTopic, type Scenario } from "../run/index.js";
import type { BareJob, BareReply } from "./protocol.js";

/** Warmup messages as a share of the measured messages (sent first, delivered, not timed). */
export const WARMUP_SHARE = 0.25;

/** Subscriber processes of a bare run: one per core but one (left to the publisher), at least 2. */
export const SUBSCRIBER_PROCESSES = Math.max(2, availableParallelism() - 1);

export interface BareOptions {
  /** The scenario as the driver runs it (scenarioForDriver). */
  scenario: Scenario;
  driver: string;
  target: string;
  connectTimeoutMs?: number;
  /** Subscriber processes (default SUBSCRIBER_PROCESSES). */
  subscriberProcesses?: number;
}

export interface BareResult {
  driver: string;
  /** Measured deliveries (warmup excluded) and the seconds they took. */
  deliveries: number;
  seconds: number;
  deliveriesPerSecond: number;
  /** Messages published per second over the whole publish (warmup included). */
  publishedPerSecond: number;
  /** All deliveries expected and received (warmup included); equal unless the run fell short. */
  expected: number;
  received: number;
}

const here = fileURLToPath(import.meta.url);
const processEntry = join(here, "..", `bare-process${extname(here)}`);

export async function runBareClient(o: BareOptions): Promise<BareResult> {
  const s = o.scenario;
  if (s.messages === undefined) throw new UsageError(`scenario ${s.name}: a bare run needs a message count (messages:), not durationSeconds`);
  const measured = s.messages;
  const warmup = Math.ceil(measured * WARMUP_SHARE);
  const plan = buildPlan({ ...s, messages: s.messages + warmup }, `bare-${randomBytes(3).toString("hex")}`);
  const perTopic = expectedPerTopic(plan, s.topics);
  const expectedOf = (subs: readonly { topic: number }[]): number => subs.reduce((n, sub) => n + perTopic[sub.topic]!, 0);
  const expected = expectedOf(plan.subscriptions);
  const warmupOf = (n: number): number => Math.floor((n * warmup) / (measured + warmup));
  const connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
  const context = { target: o.target, connections: s.connections, maxOutstandingMessages: s.maxOutstandingMessages, connectTimeoutMs, broker: s.broker, clock: systemClock };
  const driverOptions = s.driverOptions[o.driver as keyof typeof s.driverOptions];
  const setup = createDriver(o.driver, context, driverOptions);
  const specs: SubscriptionSpec[] = plan.subscriptions.map((sub, slot) => ({ slot, name: sub.name, topic: plan.topicNames[sub.topic]! }));
  const children: ChildProcess[] = [];
  try {
    await setup.connect();
    await setup.createTopics(plan.topicNames);
    for (const spec of specs) await setup.createSubscription(spec);
    const job: Omit<BareJob, "role" | "subscriptions" | "expectedDeliveries" | "warmupDeliveries"> = {
      driver: o.driver,
      driverOptions,
      target: o.target,
      connections: s.connections,
      maxOutstandingMessages: s.maxOutstandingMessages,
      connectTimeoutMs,
      broker: s.broker,
      topicNames: plan.topicNames,
      messageSizeBytes: s.messageSizeBytes,
      batchSize: s.batchSize,
      maxInFlightBatches: s.maxInFlightBatches,
      producers: plan.producers.map((p) => ({ id: p.id, topics: p.topics, messagesPerTopic: p.messagesPerTopic! })),
      consumersPerSubscription: setup.acks ? s.consumersPerSubscription : 1,
    };
    const groups = Math.max(1, Math.min(specs.length, o.subscriberProcesses ?? SUBSCRIBER_PROCESSES));
    const subs: Child[] = [];
    let warmupDeliveries = 0;
    for (let g = 0; g < groups; g++) {
      // Slots stay the scenario's: a driver spreads consumers over its connections by slot.
      const mine = specs.filter((_, i) => i % groups === g);
      const n = expectedOf(mine.map((x) => plan.subscriptions[x.slot]!));
      warmupDeliveries += warmupOf(n);
      subs.push(new Child({ ...job, role: "subscriber", subscriptions: mine, expectedDeliveries: n, warmupDeliveries: warmupOf(n) }, children));
    }
    await Promise.all(subs.map((c) => c.next("ready", connectTimeoutMs + 60_000)));
    const pub = new Child({ ...job, role: "publisher", subscriptions: [], expectedDeliveries: 0, warmupDeliveries: 0 }, children);
    await pub.next("ready", connectTimeoutMs + 10_000);
    pub.send("go");
    const published = await pub.next("published", 3_600_000);
    const drainMs = s.drainTimeoutSeconds * 1000;
    const dones = await Promise.all(
      subs.map((sub) =>
        sub.next("done", drainMs).catch((err: unknown) => {
          if (!(err instanceof DeadlineError)) throw err;
          sub.send("report");
          return sub.next("done", 10_000);
        }),
      ),
    );
    const received = dones.reduce((n, d) => n + d.received, 0);
    // The measured window: from the first process's warmup share to the last delivery anywhere.
    const startUs = Math.min(...dones.map((d) => d.warmDoneUs || Infinity));
    const endUs = Math.max(...dones.map((d) => d.lastUs));
    const done = { received, warmDoneUs: Number.isFinite(startUs) ? startUs : 0, lastUs: endUs };
    const deliveries = expected - warmupDeliveries;
    const seconds = done.lastUs > 0 && done.warmDoneUs > 0 ? (done.lastUs - done.warmDoneUs) / 1e6 : NaN;
    return {
      driver: o.driver,
      deliveries,
      seconds,
      deliveriesPerSecond: done.received >= expected ? deliveries / seconds : NaN,
      publishedPerSecond: ((s.messages + warmup) * 1e6) / (published.endUs - published.startUs),
      expected,
      received: done.received,
    };
  } finally {
    await Promise.all(children.map((c) => stop(c)));
    await setup.cleanup(plan.topicNames, specs.map((x) => x.name)).catch(() => undefined);
    await setup.close().catch(() => undefined);
  }
}

class DeadlineError extends Error {}

type ReplyOf<K extends BareReply["kind"]> = Extract<BareReply, { kind: K }>;

/** One bare process: its replies queue up and are taken in order by `next`. */
class Child {
  private readonly proc: ChildProcess;
  private readonly queue: BareReply[] = [];
  private waiter: (() => void) | undefined;
  private exited: string | undefined;

  constructor(job: BareJob, all: ChildProcess[]) {
    this.proc = fork(processEntry, [], { execArgv: nodeArgs(), stdio: ["ignore", "inherit", "inherit", "ipc"] });
    all.push(this.proc);
    this.proc.on("message", (m: BareReply) => {
      this.queue.push(m);
      this.waiter?.();
    });
    this.proc.on("exit", (code, signal) => {
      this.exited = `bare ${job.role} exited (code ${code}, signal ${signal})`;
      this.waiter?.();
    });
    this.proc.send(job);
  }

  send(kind: "go" | "report" | "exit"): void {
    if (this.proc.connected) this.proc.send({ kind });
  }

  /** The next reply, which must be `kind` (an error reply or an exit rejects), within `timeoutMs`. */
  async next<K extends BareReply["kind"]>(kind: K, timeoutMs: number): Promise<ReplyOf<K>> {
    const deadline = systemClock.wallMs() + timeoutMs;
    for (;;) {
      const m = this.queue.shift();
      if (m) {
        if (m.kind === kind) return m as ReplyOf<K>;
        if (m.kind === "error") throw new Error(`bare client: ${m.message}`);
        continue;
      }
      if (this.exited) throw new Error(this.exited);
      const left = deadline - systemClock.wallMs();
      if (left <= 0) throw new DeadlineError(`bare client: no "${kind}" within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        };
      });
    }
  }
}

function stop(c: ChildProcess, graceMs = 5_000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => c.kill("SIGKILL"), graceMs);
    c.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    if (c.connected) c.send({ kind: "exit" });
    else c.kill("SIGTERM");
  });
}
