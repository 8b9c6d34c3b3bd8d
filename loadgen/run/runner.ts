/**
 * The run, phase by phase:
 *
 *   connect   topics, subscriptions, consumer streams opened at `rampPerSecond` (ramp.ts)
 *   warmup    producers at the offered rate for `warmupSeconds`; delivered and accounted, not timed
 *   measure   `messages` (or `durationSeconds`) at the offered rate; histograms record
 *   drain     wait until every expected delivery arrived, or `drainTimeoutSeconds`
 *   teardown  close streams, clean up (external broker), stop sampling (teardown.ts)
 *
 * This file is the phase machine; its parts are the delivery sink (delivery-sink.ts: accounts
 * and times what arrives), the per-second sampler (sampler.ts) and teardown. Every reading of
 * time comes from the injected clock.
 */
import type { Clock } from "../clock.js";
import { InterruptedError } from "../errors.js";
import type { FaultEvent } from "../faults/index.js";
import { selfReportWarnings, type BrokerSelfReport, type BrokerStatsSample, type Consumer, type Driver, type SubscriptionSpec } from "../drivers/index.js";
import { Accounting, type AccountingTotals } from "./accounting.js";
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
   * accepted so far (index = topic). Resolves with the totals of all workers once all finished.
   */
  phaseDone(phase: "warmup" | "measure" | "drain", publishedByTopic: readonly number[]): Promise<number[]>;
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
  const sink = new AccountingSink(plan, scenario.topics, accounting, recorder, clock);
  // What this run's own producers had accepted, and what it was told other workers' did (per topic).
  const ownPublished = new Array<number>(scenario.topics).fill(0);
  const othersPublished = new Array<number>(scenario.topics).fill(0);
  const coordinator = options.coordinator;
  const join = async (phase: "warmup" | "measure" | "drain") => {
    if (!coordinator) return;
    const totals = await coordinator.phaseDone(phase, ownPublished);
    for (let t = 0; t < scenario.topics; t++) {
      const others = (totals[t] ?? 0) - ownPublished[t]!;
      if (others > othersPublished[t]!) {
        sink.onPublished(t, others - othersPublished[t]!);
        othersPublished[t] = others;
      }
    }
  };
  const meter = new GeneratorMeter(clock);
  const publishErrorSamples: string[] = [];
  const publishers = new PublisherGroup(
    plan.producers,
    driver,
    plan.topicNames,
    clock,
    recorder,
    {
      onPublished: (topic, accepted) => {
        ownPublished[topic]! += accepted;
        sink.onPublished(topic, accepted);
      },
      onPublishError(topic, count, err) {
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
  let drainTimedOut: boolean;
  let measureStartUs: number;
  let measureEndUs: number;
  // Cleanup RPCs to a broker that never answered would wait out their own timeouts.
  let connected = false;
  let brokerReport: BrokerSelfReport | undefined;
  let generator: GeneratorUsage;
  const warnings: string[] = [];
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
    await openConsumers(specs, driver, sink, consumers, {
      consumersPerSubscription: driver.acks ? scenario.consumersPerSubscription : 1,
      rampPerSecond: scenario.rampPerSecond,
      clock,
      progress,
      elapsedSec: sec,
    });
    if (interrupted()) throw notMeasured();
    if (coordinator) await coordinator.ready();
    const waitMs = options.startAtMs === undefined ? 0 : options.startAtMs - clock.wallMs();
    if (waitMs > 0) await waitUnlessAborted(waitMs, signal);
    if (interrupted()) throw notMeasured();

    const rate = scenario.rate === "unthrottled" ? Infinity : scenario.rate;
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
    await runPhase({
      warmup: false,
      totalRate: rate,
      totalProducers: scenario.producers,
      endUs: scenario.durationSeconds !== undefined ? measureStartUs + scenario.durationSeconds * 1e6 : Infinity,
      useQuotas: scenario.messages !== undefined,
    });
    // A worker's measure ends with every worker's (a consumer worker has no producers of its own).
    await join("measure");
    measureEndUs = clock.nowUs();
    // ---- drain
    setPhase("drain");
    drainTimedOut = await drain(sink, scenario.drainTimeoutSeconds * 1000, options.interruptDrainMs ?? 2000, signal);
    // Workers clean up only once every worker drained (a topic's owner must not delete it under another's consumers).
    await join("drain");
  } finally {
    generator = meter.stop();
    signal?.removeEventListener("abort", onAbort);
    // ---- teardown
    setPhase("teardown");
    await teardown({
      publishers,
      consumers,
      sampler,
      driver,
      cleanup: options.cleanup && connected ? { topics: plan.topics.map((t) => plan.topicNames[t]!), subscriptions: subs.map((s) => s.name) } : undefined,
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
    streamErrorSamples: sink.streamErrorSamples,
    publishErrorSamples,
    consumers: consumers.length,
    brokerSamples: sampler.brokerSamples,
    brokerReport,
    warnings,
    generator,
  };
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

/**
 * The drain phase: true if it timed out with deliveries missing. With a signal, it waits in
 * steps of at most 250 ms so that an interrupt cuts what is left to `interruptMs`.
 */
async function drain(sink: AccountingSink, drainMs: number, interruptMs: number, signal: AbortSignal | undefined): Promise<boolean> {
  let left = drainMs;
  let cut = false;
  for (;;) {
    if (signal?.aborted && !cut) {
      left = Math.min(left, interruptMs);
      cut = true;
    }
    const step = signal !== undefined && !cut ? Math.min(left, 250) : left;
    if (!(await sink.drained(step))) return false;
    left -= step;
    if (left <= 0) return true;
  }
}

/** Seconds from the start of measure (or the first measured delivery, if earlier) to the last measured delivery. */
export function deliveryWindowSeconds(measureStartUs: number, firstTimedUs: number, lastTimedUs: number, measureSeconds: number): number {
  const startUs = firstTimedUs > 0 ? Math.min(measureStartUs, firstTimedUs) : measureStartUs;
  return lastTimedUs > startUs ? (lastTimedUs - startUs) / 1e6 : measureSeconds;
}
