/**
 * The run, phase by phase:
 *
 *   connect   topics, subscriptions, consumer streams opened at `rampPerSecond` (progress shown)
 *   warmup    producers at the offered rate for `warmupSeconds`; delivered and accounted, not timed
 *   measure   `messages` (or `durationSeconds`) at the offered rate; histograms record
 *   drain     wait until every expected delivery arrived, or `drainTimeoutSeconds`
 *   teardown  close streams, clean up (external broker), stop sampling
 *
 * Every second one interval closes: rates, interval percentiles, broker CPU/RSS.
 */
import type { Clock } from "./clock.js";
import { Accounting, type AccountingTotals } from "./accounting.js";
import type { BrokerStatsSample, Consumer, DeliverySink, Driver, SubscriptionSpec } from "./drivers/driver.js";
import { HEADER_BYTES, PAYLOAD_MAGIC, FLAG_WARMUP } from "./payload.js";
import type { Plan } from "./plan.js";
import { PublisherGroup } from "./producer.js";
import { Progress } from "./progress.js";
import { Recorder, type IntervalPoint, type Phase } from "./recorder.js";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Scenario } from "./scenario.js";
import { DriverError } from "./errors.js";

export interface RunOptions {
  clock: Clock;
  progress?: Progress;
  /** Broker resource sampler (driver statistics or /proc of the embedded broker). */
  sampleBroker?: () => Promise<BrokerStatsSample | undefined>;
  /** Delete subscriptions and topics at teardown (external brokers). */
  cleanup?: boolean;
  intervalMs?: number;
  /** Wall-clock epoch ms at which producers start (shards started together); optional. */
  startAtMs?: number;
}

export interface PhaseTiming {
  phase: Phase;
  startSec: number;
  endSec: number;
}

export interface StreamErrorInfo {
  subscription: string;
  message: string;
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
  streamErrors: number;
  streamErrorSamples: StreamErrorInfo[];
  publishErrorSamples: string[];
  consumers: number;
  brokerSamples: (BrokerStatsSample & { t: number })[];
}

export async function runScenario(scenario: Scenario, plan: Plan, driver: Driver, options: RunOptions): Promise<RunOutcome> {
  const clock = options.clock;
  const progress = options.progress ?? new Progress(process.stderr, true);
  const recorder = new Recorder();
  const startedAtMs = Date.now();
  const t0 = clock.nowUs();
  const sec = () => (clock.nowUs() - t0) / 1e6;

  const subs = plan.subscriptions;
  const subTopic = Int32Array.from(subs.map((s) => s.topic));
  const subsOnTopic = new Float64Array(scenario.topics);
  for (const s of subs) subsOnTopic[s.topic]! += 1;
  const expectedHint = scenario.messages !== undefined ? scenario.messages / scenario.topics / 8 : 4096;
  const accounting = new Accounting(Array.from(subTopic), plan.producersPerTopic, scenario.topics, expectedHint);

  let expectedTotal = 0;
  let drainWaiter: (() => void) | undefined;
  let lastTimedDeliveryUs = 0;
  let streamErrors = 0;
  const streamErrorSamples: StreamErrorInfo[] = [];
  const publishErrorSamples: string[] = [];
  const producerSlot = plan.producerSlot;

  const sink: DeliverySink = {
    onDeliveries(slot, payloads, attempts, count) {
      const now = clock.nowUs();
      const topic = subTopic[slot]!;
      for (let i = 0; i < count; i++) {
        const p = payloads[i]!;
        if (p.length < HEADER_BYTES || p.readUInt32LE(0) !== PAYLOAD_MAGIC || p.readUInt32LE(8) !== topic) {
          accounting.recordForeign();
          continue;
        }
        const fresh = accounting.record(slot, producerSlot(p.readUInt32LE(4), topic), p.readUInt32LE(12), attempts ? attempts[i]! : 1);
        if (!fresh) continue;
        const warmup = (p[32]! & FLAG_WARMUP) !== 0;
        if (!warmup) lastTimedDeliveryUs = now;
        recorder.recordDelivery(now - p.readDoubleLE(16), now - p.readDoubleLE(24), warmup);
      }
      if (drainWaiter && accounting.deliveredCount >= expectedTotal) drainWaiter();
    },
    onStreamError(slot, err) {
      streamErrors++;
      if (streamErrorSamples.length < 10) streamErrorSamples.push({ subscription: subs[slot]?.name ?? String(slot), message: err.message });
    },
  };

  const publishers = new PublisherGroup(
    plan.producers,
    driver,
    plan.topicNames,
    clock,
    recorder,
    {
      onPublished(topic, accepted) {
        accounting.addPublished(topic, accepted);
        expectedTotal += accepted * subsOnTopic[topic]!;
      },
      onPublishError(topic, count, err) {
        if (publishErrorSamples.length < 10) publishErrorSamples.push(`${plan.topicNames[topic]} (${count} messages): ${err instanceof Error ? err.message : String(err)}`);
      },
    },
    scenario,
  );

  // Per-second intervals and broker sampling.
  const phases: PhaseTiming[] = [];
  const brokerSamples: (BrokerStatsSample & { t: number })[] = [];
  let lastSample: (BrokerStatsSample & { t: number }) | undefined;
  let prevSample: (BrokerStatsSample & { t: number }) | undefined;
  let intervalStartMs = Date.now();
  let sampling = false;
  const setPhase = (phase: Phase) => {
    const now = sec();
    const open = phases[phases.length - 1];
    if (open) open.endSec = now;
    phases.push({ phase, startSec: now, endSec: now });
    recorder.phase = phase;
    if (phase === "measure") recorder.startMeasuring();
    else recorder.measuring = phase === "drain";
    progress.log(`phase ${phase} at ${now.toFixed(1)}s`);
  };
  // monitorEventLoopDelay records the whole interval of its 10 ms timer (an idle loop reads
  // ~10 ms), so the delay is what exceeds the resolution.
  const loopDelayResolutionMs = 10;
  const loopDelay = monitorEventLoopDelay({ resolution: loopDelayResolutionMs });
  loopDelay.enable();
  let cpuBase = process.cpuUsage();
  const onTick = () => {
    const endMs = Date.now();
    const cpu = process.cpuUsage(cpuBase);
    cpuBase = process.cpuUsage();
    const extra: Partial<IntervalPoint> = {
      generatorCpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / Math.max(1, endMs - intervalStartMs)) * 1000) / 10,
      generatorLoopDelayMaxMs: Math.max(0, Math.round((loopDelay.max / 1e6 - loopDelayResolutionMs) * 100) / 100),
      generatorRssBytes: process.memoryUsage.rss(),
    };
    loopDelay.reset();
    if (lastSample) {
      extra.brokerRssBytes = lastSample.rssBytes;
      if (prevSample && lastSample.t > prevSample.t) {
        const cpu = lastSample.cpuUserSeconds + lastSample.cpuSystemSeconds - prevSample.cpuUserSeconds - prevSample.cpuSystemSeconds;
        extra.brokerCpuPercent = Math.round((cpu / (lastSample.t - prevSample.t)) * 1000) / 10;
      }
    }
    const point = recorder.closeInterval(sec(), intervalStartMs, endMs, extra);
    intervalStartMs = endMs;
    progress.update({
      phase: recorder.phase,
      elapsedSec: sec(),
      published: recorder.published,
      delivered: recorder.delivered,
      expected: expectedTotal,
      publishRate: point.publishRate,
      deliveryRate: point.deliveryRate,
      p99Us: recorder.e2eP99SoFarUs(),
    });
    if (options.sampleBroker && !sampling) {
      sampling = true;
      const t = sec();
      options
        .sampleBroker()
        .then((s) => {
          if (!s) return;
          prevSample = lastSample;
          lastSample = { ...s, t };
          brokerSamples.push(lastSample);
        })
        .catch(() => undefined)
        .finally(() => (sampling = false));
    }
  };
  const ticker = setInterval(onTick, options.intervalMs ?? 1000);

  const consumers: Consumer[] = [];
  let drainTimedOut = false;
  let measureStartUs: number;
  let measureEndUs: number;
  try {
    // ---- connect
    setPhase("connect");
    await driver.connect();
    await driver.createTopics(plan.topics.map((t) => plan.topicNames[t]!));
    const specs: SubscriptionSpec[] = subs.map((s, slot) => ({ slot, name: s.name, topic: plan.topicNames[s.topic]! }));
    const consumersPer = driver.acks ? scenario.consumersPerSubscription : 1;
    await rampOpen(specs, consumersPer, scenario.rampPerSecond, driver, sink, consumers, progress, sec);
    if (options.startAtMs !== undefined && options.startAtMs > Date.now()) {
      await new Promise((r) => setTimeout(r, options.startAtMs! - Date.now()));
    }

    const rate = scenario.rate === "unthrottled" ? Infinity : scenario.rate;
    // ---- warmup
    if (scenario.warmupSeconds > 0) {
      setPhase("warmup");
      await publishers.runPhase({
        warmup: true,
        totalRate: rate,
        totalProducers: scenario.producers,
        endUs: clock.nowUs() + scenario.warmupSeconds * 1e6,
        useQuotas: false,
      });
    }
    // ---- measure
    setPhase("measure");
    measureStartUs = clock.nowUs();
    await publishers.runPhase({
      warmup: false,
      totalRate: rate,
      totalProducers: scenario.producers,
      endUs: scenario.durationSeconds !== undefined ? measureStartUs + scenario.durationSeconds * 1e6 : Infinity,
      useQuotas: scenario.messages !== undefined,
    });
    measureEndUs = clock.nowUs();
    // ---- drain
    setPhase("drain");
    if (accounting.deliveredCount < expectedTotal) {
      drainTimedOut = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), scenario.drainTimeoutSeconds * 1000);
        drainWaiter = () => {
          clearTimeout(timer);
          drainWaiter = undefined;
          resolve(false);
        };
      });
    }
  } finally {
    // ---- teardown
    setPhase("teardown");
    publishers.stop();
    for (const c of consumers) c.close();
    clearInterval(ticker);
    onTick();
    loopDelay.disable();
    if (options.cleanup) {
      await driver
        .cleanup(
          plan.topics.map((t) => plan.topicNames[t]!),
          subs.map((s) => s.name),
        )
        .catch(() => undefined);
    }
    await driver.close();
    const last = phases[phases.length - 1];
    if (last) last.endSec = sec();
    progress.end();
  }

  const measureSeconds = Math.max(1e-6, (measureEndUs - measureStartUs) / 1e6);
  return {
    startedAtMs,
    recorder,
    accounting: accounting.totals(),
    phases,
    measureSeconds,
    deliverySeconds: lastTimedDeliveryUs > measureStartUs ? (lastTimedDeliveryUs - measureStartUs) / 1e6 : measureSeconds,
    drainTimedOut,
    streamErrors,
    streamErrorSamples,
    publishErrorSamples,
    consumers: consumers.length,
    brokerSamples,
  };
}

/** Open consumer streams in chunks of rampPerSecond/10 every 100 ms; each chunk must be ready. */
async function rampOpen(
  specs: readonly SubscriptionSpec[],
  consumersPer: number,
  rampPerSecond: number,
  driver: Driver,
  sink: DeliverySink,
  out: Consumer[],
  progress: Progress,
  sec: () => number,
): Promise<void> {
  const work: [SubscriptionSpec, number][] = [];
  for (const s of specs) for (let c = 0; c < consumersPer; c++) work.push([s, c]);
  const chunk = Math.max(1, Math.ceil(rampPerSecond / 10));
  let created = 0;
  let lastLog = sec();
  for (let i = 0; i < work.length; i += chunk) {
    const started = Date.now();
    const slice = work.slice(i, i + chunk);
    // Subscriptions first (they hold messages from now on), then the streams.
    await Promise.all(slice.filter(([, c]) => c === 0).map(([s]) => driver.createSubscription(s)));
    const opened = await Promise.all(slice.map(([s, c]) => driver.openConsumer(s, c, sink)));
    out.push(...opened);
    created += slice.length;
    if (sec() - lastLog >= 1 || created === work.length) {
      lastLog = sec();
      progress.log(`connect: ${created}/${work.length} consumer streams open`);
    }
    const wait = 100 - (Date.now() - started);
    if (i + chunk < work.length && wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  if (out.length !== work.length) throw new DriverError(driver.name, `opened ${out.length} of ${work.length} consumer streams`);
}
