/**
 * The run, phase by phase:
 *
 *   connect   topics, subscriptions, consumer streams opened at `rampPerSecond` (ramp.ts)
 *   build     backlog scenarios: publish the backlog with consumers held back, then open them (backlog.ts)
 *   warmup    producers at the offered rate for `warmupSeconds`; delivered and accounted, not timed
 *   measure   `messages` (or `durationSeconds`) at the offered rate; histograms record
 *   drain     wait until every expected delivery arrived, or `drainTimeoutSeconds`
 *   teardown  close streams, clean up (external broker), stop sampling (teardown.ts)
 *
 * This file is the phase machine; its parts are the delivery sink (delivery-sink.ts: accounts
 * and times what arrives), the per-second sampler (sampler.ts) and teardown. Every reading of
 * time comes from the injected clock.
 *
 * `only: producers` opens no consumer and accounts no delivery (its subscriptions are created so
 * that a durable broker keeps the backlog; nothing is cleaned up); `only: consumers` publishes
 * nothing and expects what the plan's producers publish in count mode (docs/loadgen.md,
 * "Producer-only and consumer-only runs").
 */
import type { Clock } from "../clock.js";
import { InterruptedError } from "../errors.js";
import type { FaultEvent } from "../faults/index.js";
import { ReconnectGaveUpError, selfReportWarnings, type BrokerSelfReport, type BrokerStatsSample, type Consumer, type Driver, type SubscriptionSpec } from "../drivers/index.js";
import { DriverError, UsageError } from "../errors.js";
import { Accounting, type AccountingTotals, type UnackedRange } from "./accounting.js";
import { BacklogTracker, type BacklogReport } from "./backlog.js";
import { GeneratorMeter, type GeneratorUsage } from "./generator-usage.js";
import { AccountingSink, type StreamErrorInfo } from "./delivery-sink.js";
import type { Plan } from "./plan.js";
import { PublisherGroup } from "./producer.js";
import { Progress } from "./progress.js";
import { openConsumers } from "./ramp.js";
import { Recorder, type Phase } from "./recorder.js";
import { IntervalSampler, type BrokerSample, type GeneratorProbe } from "./sampler.js";
import type { Scenario } from "./scenario.js";
import { teardown } from "./teardown.js";

export type { StreamErrorInfo } from "./delivery-sink.js";

export interface RunOptions {
  clock: Clock;
  /** host:port of the broker, for warnings. */
  target?: string;
  progress?: Progress;
  /** Broker resource sampler (driver statistics or /proc of the embedded broker). */
  sampleBroker?: () => Promise<BrokerStatsSample | undefined>;
  /** The broker sample taken at teardown, before the broker stops (default sampleBroker). */
  finalSampleBroker?: () => Promise<BrokerStatsSample | undefined>;
  /** Delete subscriptions and topics at teardown (external brokers). */
  cleanup?: boolean;
  intervalMs?: number;
  /** Wall-clock epoch ms at which producers start (shards started together); optional. */
  startAtMs?: number;
  /** The generator's own CPU/loop/RSS figures (default: this process). */
  probe?: GeneratorProbe;
  /**
   * Interrupts the run (Ctrl-C). During measure: producers stop, the drain waits at most
   * `interruptDrainMs`, and the outcome says `interrupted`. Before measure: teardown, then
   * InterruptedError (nothing measured to report).
   */
  signal?: AbortSignal;
  /** Drain bound after an interrupt (default 2000 ms). */
  interruptDrainMs?: number;
  /**
   * Set when this run is one worker of several (loadgen/workers.ts): the parent holds the phase
   * machine's joins. Without it the run is the whole generator (one-process mode).
   */
  coordinator?: PhaseCoordinator;
  /** The scenario's faults (loadgen/faults, FaultScheduler): started with the measure phase. */
  faults?: RunFaults;
}

/** The runner's view of the fault scheduler (docs/faults.md, "The schedule"). */
export interface RunFaults {
  /** The run's consumers of each subscription (by its index in the plan), for the slow-consumer fault. */
  attachConsumers?(consumersOf: (subscription: number) => readonly Consumer[]): void;
  /** The measure phase started: schedule every fault from `measureStartUs`; times are since `runStartUs`. */
  start(measureStartUs: number, runStartUs: number): void;
  /** The measure phase's producers are done: drop faults not started, wait for those in progress. */
  settle(): Promise<void>;
  /** Teardown: lift anything left; what happened. */
  stop(): Promise<FaultEvent[]>;
}

/**
 * The joins a worker's run waits on, so that all workers move through the phases together: one
 * start (every worker connected and subscribed), one end of warmup and of measure. At each end
 * a worker hands over what its producers published per topic and gets every worker's totals,
 * so that a consumer worker expects what producer workers published.
 */
export interface PhaseCoordinator {
  /** Connected and subscribed; resolves when every worker is and producers may start. */
  ready(): Promise<void>;
  /**
   * This worker's producers finished `phase` (for `drain`: its drain ended); `publishedByTopic` counts what its broker acks
   * accepted so far (index = topic), `unacked` what its producers sent and never saw acknowledged.
   * Resolves with the totals of all workers once all finished.
   */
  phaseDone(phase: "warmup" | "measure" | "drain", publishedByTopic: readonly number[], unacked: readonly UnackedRange[]): Promise<PhaseTotals>;
}

/** What every worker's producers had published at a join: acknowledged per topic, and the unacknowledged ranges. */
export interface PhaseTotals {
  published: number[];
  unacked: UnackedRange[];
}

export interface PhaseTiming {
  phase: Phase;
  startSec: number;
  endSec: number;
}

export interface RunOutcome {
  startedAtMs: number;
  recorder: Recorder;
  accounting: AccountingTotals;
  phases: PhaseTiming[];
  measureSeconds: number;
  /** Seconds from measure start to the last timed delivery. */
  deliverySeconds: number;
  drainTimedOut: boolean;
  /** Stopped by `signal` during measure or drain. */
  interrupted: boolean;
  streamErrors: number;
  /** Consumer streams that broke and were re-opened (reconnect on). */
  streamBreaks: number;
  /** The driver's publish retries and reconnects (reconnect on; zero otherwise). */
  publishRetries: number;
  reconnects: number;
  streamErrorSamples: StreamErrorInfo[];
  publishErrorSamples: string[];
  consumers: number;
  brokerSamples: BrokerSample[];
  /** What the broker reported about its storage (driver.describeBroker), if it can say. */
  brokerReport: BrokerSelfReport | undefined;
  /** Things the reader of the report must know (e.g. the broker runs other storage than the scenario asked for). */
  warnings: string[];
  /** The generator's own CPU and event-loop delay from measure start to the end of the drain. */
  generator: GeneratorUsage;
  /** A backlog scenario's build and drain (absent otherwise). */
  backlog?: BacklogReport;
  /** The faults applied during the run, seconds since its start (loadgen/faults/types.ts); absent: none. */
  faults?: FaultEvent[];
}

/** Publish errors kept verbatim for the report. */
const PUBLISH_ERROR_SAMPLES = 10;

export async function runScenario(scenario: Scenario, plan: Plan, driver: Driver, options: RunOptions): Promise<RunOutcome> {
  const clock = options.clock;
  const progress = options.progress ?? new Progress(process.stderr, true);
  const recorder = new Recorder();
  const startedAtMs = clock.wallMs();
  const t0 = clock.nowUs();
  recorder.timeline.start(t0, startedAtMs);
  const sec = () => (clock.nowUs() - t0) / 1e6;

  const subs = plan.subscriptions;
  const expectedHint = scenario.messages !== undefined ? scenario.messages / scenario.topics / 8 : 4096;
  const accounting = new Accounting(
    subs.map((s) => s.topic),
    plan.producersPerTopic,
    scenario.topics,
    expectedHint,
  );
  // Consumers opened per subscription slot (ramp.ts); a driver without acks opens one.
  const perSubscription = driver.acks ? scenario.consumersPerSubscription : 1;
  const sink = new AccountingSink(plan, scenario.topics, accounting, recorder, clock, perSubscription);
  const only = scenario.only;
  const backlog = scenario.backlog !== undefined ? new BacklogTracker(scenario, plan, sink, recorder, clock) : undefined;
  // What this run's own producers had accepted, and what it was told other workers' did (per topic).
  const ownPublished = new Array<number>(scenario.topics).fill(0);
  const othersPublished = new Array<number>(scenario.topics).fill(0);
  const coordinator = options.coordinator;
  // Sent but never acknowledged by this run's producers; ranges other workers reported, by key.
  const ownUnacked: UnackedRange[] = [];
  const ownProducers = new Set(plan.producers.map((p) => p.id));
  const addUnacked = (r: UnackedRange) => accounting.addUnacked(r.topic, plan.producerSlot(r.producer, r.topic), r.firstSeq, r.count);
  const join = async (phase: "warmup" | "measure" | "drain") => {
    if (!coordinator) return;
    const { published: totals, unacked } = await coordinator.phaseDone(phase, ownPublished, ownUnacked);
    for (const r of unacked) {
      const key = `${r.topic}.${r.producer}.${r.firstSeq}`;
      if (ownProducers.has(r.producer) || othersUnacked.has(key)) continue;
      othersUnacked.add(key);
      addUnacked(r);
    }
    for (let t = 0; t < scenario.topics; t++) {
      const others = (totals[t] ?? 0) - ownPublished[t]!;
      if (others > othersPublished[t]!) {
        sink.onPublished(t, others - othersPublished[t]!);
        othersPublished[t] = others;
      }
    }
  };
  const othersUnacked = new Set<string>();
  const meter = new GeneratorMeter(clock);
  const publishErrorSamples: string[] = [];
  // A driver that gave up reconnecting ends the run (after teardown) with its error.
  let gaveUp: ReconnectGaveUpError | undefined;
  const giveUp = (err: ReconnectGaveUpError) => {
    if (gaveUp) return;
    gaveUp = err;
    progress.log(`error: ${err.message}`);
    publishers.endPhase();
  };
  sink.onGaveUp = giveUp;
  const stopIfGaveUp = (): void => {
    if (gaveUp) throw gaveUp;
  };
  const publishers = new PublisherGroup(
    only === "consumers" ? [] : plan.producers,
    driver,
    plan.topicNames,
    clock,
    recorder,
    {
      onPublished: (topic, accepted) => {
        ownPublished[topic]! += accepted;
        // Producer-only: nothing will be consumed, so nothing is expected.
        if (only !== "producers") sink.onPublished(topic, accepted);
      },
      onUnacked(topic, producer, firstSeq, count) {
        const r = { topic, producer, firstSeq, count };
        ownUnacked.push(r);
        addUnacked(r);
      },
      onPublishError(topic, count, err) {
        if (err instanceof ReconnectGaveUpError) giveUp(err);
        if (publishErrorSamples.length < PUBLISH_ERROR_SAMPLES) publishErrorSamples.push(`${plan.topicNames[topic]} (${count} messages): ${err instanceof Error ? err.message : String(err)}`);
      },
    },
    scenario,
  );
  const sampler = new IntervalSampler({
    clock,
    recorder,
    progress,
    elapsedSec: sec,
    expected: () => sink.expectedTotal,
    ...(coordinator ? {} : { backlog: () => sink.expectedTotal - recorder.delivered }),
    sampleBroker: options.sampleBroker,
    finalSampleBroker: options.finalSampleBroker,
    intervalMs: options.intervalMs ?? 1000,
    ...(options.probe ? { probe: options.probe } : {}),
    size: () => ({ measureElapsedSec: measureStartedUs === undefined ? 0 : (clock.nowUs() - measureStartedUs) / 1e6, durationSec: scenario.durationSeconds, totalMessages }),
  });

  const totalMessages = scenario.messages === undefined ? undefined : plan.producers.reduce((a, p) => a + (p.messagesPerTopic ?? []).reduce((x, y) => x + y, 0), 0);
  let measureStartedUs: number | undefined;
  const phases: PhaseTiming[] = [];
  const setPhase = (phase: Phase) => {
    const now = sec();
    const open = phases[phases.length - 1];
    if (open) open.endSec = now;
    phases.push({ phase, startSec: now, endSec: now });
    recorder.phase = phase;
    if (phase === "measure") {
      recorder.startMeasuring();
      measureStartedUs = clock.nowUs();
    }
    else recorder.measuring = phase === "drain";
    progress.log(`phase ${phase} at ${now.toFixed(1)}s`);
  };

  const signal = options.signal;
  const interrupted = () => signal?.aborted === true;
  const onAbort = () => publishers.endPhase();
  // endPhase() ends only a phase already running: after an interrupt, a phase is not started.
  const runPhase = (spec: Parameters<PublisherGroup["runPhase"]>[0]) => (interrupted() ? Promise.resolve() : publishers.runPhase(spec));
  signal?.addEventListener("abort", onAbort, { once: true });
  const notMeasured = () => new InterruptedError(String(signal?.reason ?? "interrupted"), "interrupted before the measure phase: nothing measured, no report written");

  sampler.start();
  const consumers: Consumer[] = [];
  // The slow-consumer fault stops the consumers of one subscription: `consumers` holds them in
  // the ramp's order, perSubscription for each subscription slot in turn (ramp.ts).
  options.faults?.attachConsumers?.((sub) => consumers.slice(sub * perSubscription, (sub + 1) * perSubscription));
  let drainTimedOut = false;
  let measureStartUs: number;
  let measureEndUs: number;
  // Cleanup RPCs to a broker that never answered would wait out their own timeouts.
  let connected = false;
  let brokerReport: BrokerSelfReport | undefined;
  let generator: GeneratorUsage;
  let faultEvents: FaultEvent[] | undefined;
  let retryCounts: ReturnType<NonNullable<Driver["retryCounts"]>> | undefined;
  const warnings: string[] = [];
  const strandedWarning = (stranded: number[]) => {
    const names = stranded.slice(0, 3).map((slot) => subs[slot]?.name ?? String(slot));
    const w = `the drain ended early: ${stranded.length} subscription(s) still owed deliveries and had no consumer left (every stream ended with an error; see the stream errors), so nothing more could arrive (${names.join(", ")}${stranded.length > 3 ? ", ..." : ""}); what they owe counts as lost`;
    warnings.push(w);
    progress.log(`warning: ${w}`);
  };
  try {
    // ---- connect
    setPhase("connect");
    await driver.connect();
    connected = true;
    await driver.createTopics((plan.createTopics ?? plan.topics).map((t) => plan.topicNames[t]!));
    brokerReport = driver.describeBroker ? await driver.describeBroker().catch(() => undefined) : undefined;
    for (const w of selfReportWarnings(options.target ?? "the target", scenario.broker, brokerReport)) {
      warnings.push(w);
      progress.log(`warning: ${w}`);
    }
    const specs: SubscriptionSpec[] = subs.map((s, slot) => ({ slot, name: s.name, topic: plan.topicNames[s.topic]! }));
    const open = () =>
      openConsumers(specs, driver, sink, consumers, {
        consumersPerSubscription: perSubscription,
        rampPerSecond: scenario.rampPerSecond,
        clock,
        progress,
        elapsedSec: sec,
      });
    if ((backlog || only === "consumers") && !driver.acks) {
      throw new UsageError(`driver ${driver.name} keeps nothing for a subscription without a consumer (at-most-once), so it cannot run ${backlog ? "a backlog: scenario" : "only: consumers"}`);
    }
    if (backlog || only !== undefined) {
      // Subscriptions exist from now on (the broker keeps what is published for them); consumers
      // wait: for the build (backlog), for the measure phase (consumer-only), for ever (producer-only).
      await createSubscriptions(specs, driver);
      progress.log(`connect: ${specs.length} subscriptions created, consumers held back`);
    } else await open();
    if (interrupted()) throw notMeasured();
    if (coordinator) await coordinator.ready();
    const waitMs = options.startAtMs === undefined ? 0 : options.startAtMs - clock.wallMs();
    if (waitMs > 0) await waitUnlessAborted(waitMs, signal);
    if (interrupted()) throw notMeasured();

    if (scenario.rate === "max") throw new UsageError("rate: max is a search over fixed rates (rate-search.ts), not one run");
    const rate = scenario.rate === "unthrottled" ? Infinity : scenario.rate;
    // ---- build (backlog scenarios): publish the backlog, then release the consumers
    if (backlog) {
      setPhase("build");
      backlog.buildStarted();
      await runPhase({ warmup: true, totalRate: scenario.backlog?.rate ?? Infinity, totalProducers: scenario.producers, endUs: Infinity, useQuotas: true, quotas: backlog.quotas });
      backlog.buildEnded();
      if (interrupted()) throw notMeasured();
      progress.log(`build: backlog stored, releasing consumers`);
      backlog.releasing();
      await open();
      backlog.released();
      if (interrupted()) throw notMeasured();
    }
    // ---- warmup
    if (scenario.warmupSeconds > 0) {
      setPhase("warmup");
      await runPhase({
        warmup: true,
        totalRate: rate,
        totalProducers: scenario.producers,
        endUs: clock.nowUs() + scenario.warmupSeconds * 1e6,
        useQuotas: false,
      });
      await join("warmup");
      if (interrupted()) throw notMeasured();
    }
    // ---- measure
    setPhase("measure");
    meter.start();
    measureStartUs = clock.nowUs();
    options.faults?.start(measureStartUs, t0);
    await runPhase({
      warmup: false,
      totalRate: rate,
      totalProducers: scenario.producers,
      endUs: scenario.durationSeconds !== undefined ? measureStartUs + scenario.durationSeconds * 1e6 : Infinity,
      useQuotas: scenario.messages !== undefined,
    });
    if (only === "consumers") {
      // What a producer-only run of this scenario published (count mode, every publish accepted).
      for (const p of plan.producers) p.topics.forEach((t, i) => sink.onPublished(t, p.messagesPerTopic?.[i] ?? 0));
      // The measure phase is the consumption, from opening the consumers (so every delivery is
      // timed) until every expected delivery arrived, or the drain timeout.
      await open();
      drainTimedOut = await drain(sink, scenario.drainTimeoutSeconds * 1000, options.interruptDrainMs ?? 2000, signal, strandedWarning);
    }
    // A worker's measure ends with every worker's (a consumer worker has no producers of its own).
    await join("measure");
    measureEndUs = clock.nowUs();
    stopIfGaveUp();
    // A fault still holding (a stall, a broker down) ends before the drain starts counting.
    await options.faults?.settle();
    // ---- drain
    setPhase("drain");
    if (only !== "consumers") drainTimedOut = await drain(sink, scenario.drainTimeoutSeconds * 1000, options.interruptDrainMs ?? 2000, signal, strandedWarning);
    stopIfGaveUp();
    // Workers clean up only once every worker drained (a topic's owner must not delete it under another's consumers).
    await join("drain");
  } finally {
    generator = meter.stop();
    retryCounts = driver.retryCounts?.();
    signal?.removeEventListener("abort", onAbort);
    faultEvents = await options.faults?.stop();
    // ---- teardown
    setPhase("teardown");
    await teardown({
      publishers,
      consumers,
      sampler,
      driver,
      // A producer-only run leaves its topics and subscriptions for a consumer-only run.
      cleanup: options.cleanup && connected && only !== "producers" ? { topics: plan.topics.map((t) => plan.topicNames[t]!), subscriptions: subs.map((s) => s.name) } : undefined,
    });
    const last = phases[phases.length - 1];
    if (last) last.endSec = sec();
    progress.end();
  }

  const measureSeconds = Math.max(1e-6, (measureEndUs - measureStartUs) / 1e6);
  const lastTimedUs = sink.lastTimedDeliveryUs;
  return {
    startedAtMs,
    recorder,
    accounting: accounting.totals(),
    phases,
    measureSeconds,
    // From the start of measure, or from the first measured delivery when that came earlier (a
    // consumer worker can receive measured messages before the join that starts its measure).
    deliverySeconds: deliveryWindowSeconds(measureStartUs, sink.firstTimedDeliveryUs, lastTimedUs, measureSeconds),
    drainTimedOut,
    interrupted: interrupted(),
    streamErrors: sink.streamErrors,
    streamBreaks: sink.streamBreaks,
    publishRetries: retryCounts?.publishRetries ?? 0,
    reconnects: retryCounts?.reconnects ?? 0,
    streamErrorSamples: sink.streamErrorSamples,
    publishErrorSamples,
    consumers: consumers.length,
    brokerSamples: sampler.brokerSamples,
    ...(backlog ? { backlog: backlog.report(sampler.brokerSamples, brokerReport, (us) => (us - t0) / 1e6) } : {}),
    brokerReport,
    warnings,
    generator,
    ...(faultEvents !== undefined ? { faults: faultEvents } : {}),
  };
}

/** Create every subscription without opening a consumer, in chunks (as the ramp does). */
async function createSubscriptions(specs: readonly SubscriptionSpec[], driver: Driver): Promise<void> {
  const chunk = 500;
  for (let i = 0; i < specs.length; i += chunk) {
    await Promise.all(specs.slice(i, i + chunk).map((s) => driver.createSubscription(s))).catch((err: unknown) => {
      throw err instanceof DriverError ? err : new DriverError(driver.name, `createSubscription: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
  }
}

/** Sleep `ms`, or less if `signal` aborts first. */
function waitUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** How often the drain looks for subscriptions whose consumers are all gone (DRAIN_STEP_MS at most between looks). */
const DRAIN_STEP_MS = 1000;

/**
 * The drain phase: true if it ended with deliveries missing: it timed out, or every subscription
 * still owed deliveries had no consumer left (`onStranded` is told which; waiting longer could
 * not bring them). It waits in steps (250 ms with a signal, so that an interrupt cuts what is
 * left to `interruptMs`; else DRAIN_STEP_MS).
 */
async function drain(sink: AccountingSink, drainMs: number, interruptMs: number, signal: AbortSignal | undefined, onStranded: (slots: number[]) => void): Promise<boolean> {
  let left = drainMs;
  let cut = false;
  for (;;) {
    if (signal?.aborted && !cut) {
      left = Math.min(left, interruptMs);
      cut = true;
    }
    const step = Math.min(left, signal !== undefined && !cut ? 250 : DRAIN_STEP_MS);
    if (!(await sink.drained(step))) return false;
    left -= step;
    if (left <= 0) return true;
    const stranded = sink.stranded();
    if (stranded.length > 0) {
      onStranded(stranded);
      return true;
    }
  }
}

/** Seconds from the start of measure (or the first measured delivery, if earlier) to the last measured delivery. */
export function deliveryWindowSeconds(measureStartUs: number, firstTimedUs: number, lastTimedUs: number, measureSeconds: number): number {
  const startUs = firstTimedUs > 0 ? Math.min(measureStartUs, firstTimedUs) : measureStartUs;
  return lastTimedUs > startUs ? (lastTimedUs - startUs) / 1e6 : measureSeconds;
}
