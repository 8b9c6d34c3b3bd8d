/**
 * The per-second sampler. Every interval it closes one point of the recorder's series (rates,
 * interval percentiles), adds the load generator's own CPU, worst event-loop delay and RSS and
 * the broker's CPU and RSS from the latest samples, and updates the progress line. The broker
 * is sampled more often (every `brokerIntervalMs`, at most 250 ms; one request in flight at a
 * time), so peaks between seconds and runs shorter than a second have figures, and once more at
 * teardown (`final()`, before the broker is stopped).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Clock } from "../clock.js";
import type { BrokerStatsSample } from "../drivers/index.js";
import { estimateProgress, type Progress, type RunSize } from "./progress.js";
import { cpuSource } from "./generator-usage.js";
import type { IntervalPoint, Recorder } from "./recorder.js";

export type BrokerSample = BrokerStatsSample & { t: number };

/** This process's own figures for one interval. */
export interface GeneratorProbe {
  /** CPU microseconds (user + system) used since the previous call (or since creation). */
  cpuUsedUs(): number;
  /** Worst event-loop delay since the previous call, ms beyond the probe's resolution. */
  loopDelayMaxMs(): number;
  rssBytes(): number;
  close(): void;
}

/**
 * The probe of this Node process (or, in a worker thread, of that thread: its own CPU time and
 * event loop; RSS is the process's): CPU time, monitorEventLoopDelay, memoryUsage.rss.
 */
export function processProbe(): GeneratorProbe {
  // monitorEventLoopDelay records the whole interval of its 10 ms timer (an idle loop reads
  // ~10 ms), so the delay is what exceeds the resolution.
  const resolutionMs = 10;
  const loopDelay = monitorEventLoopDelay({ resolution: resolutionMs });
  loopDelay.enable();
  const cpu = cpuSource();
  let base = cpu.read();
  return {
    cpuUsedUs() {
      const now = cpu.read();
      const used = now - base;
      base = now;
      return used;
    },
    loopDelayMaxMs() {
      const ms = Math.max(0, Math.round((loopDelay.max / 1e6 - resolutionMs) * 100) / 100);
      loopDelay.reset();
      return ms;
    },
    rssBytes: () => process.memoryUsage.rss(),
    close: () => loopDelay.disable(),
  };
}

export interface SamplerOptions {
  clock: Clock;
  recorder: Recorder;
  progress: Pick<Progress, "update">;
  /** Seconds since the start of the run. */
  elapsedSec: () => number;
  /** Deliveries expected so far (for the progress line). */
  expected: () => number;
  /** Deliveries outstanding now, for the series' `backlog` (one-process runs; absent in worker mode). */
  backlog?: (() => number) | undefined;
  /** The run's known size, for percent done and ETA (the phase and publish rate are filled in here). */
  size?: (() => Omit<RunSize, "phase" | "publishRate" | "measuredPublished">) | undefined;
  /** Broker resource sampler (driver statistics or /proc of the embedded broker). */
  sampleBroker?: (() => Promise<BrokerStatsSample | undefined>) | undefined;
  /** The sample taken at teardown (default sampleBroker): /proc of an embedded broker reads its VmHWM. */
  finalSampleBroker?: (() => Promise<BrokerStatsSample | undefined>) | undefined;
  intervalMs: number;
  /** Broker sampling period; default and maximum BROKER_SAMPLE_MAX_MS. */
  brokerIntervalMs?: number;
  probe?: GeneratorProbe;
}

/** The longest gap between broker samples. */
export const BROKER_SAMPLE_MAX_MS = 250;

export class IntervalSampler {
  /** Every broker sample taken, with its time in seconds since the start of the run. */
  readonly brokerSamples: BrokerSample[] = [];
  private last: BrokerSample | undefined;
  /** The latest sample at the previous tick: broker CPU % is over the interval between ticks. */
  private cpuBase: BrokerSample | undefined;
  private sampling = false;
  private intervalStartMs: number;
  private ticker: NodeJS.Timeout | undefined;
  private brokerTicker: NodeJS.Timeout | undefined;
  private readonly probe: GeneratorProbe;

  constructor(private readonly o: SamplerOptions) {
    this.intervalStartMs = o.clock.wallMs();
    this.probe = o.probe ?? processProbe();
  }

  /** Tick every `intervalMs` until stop(). */
  start(): void {
    this.ticker ??= setInterval(() => void this.tick(), this.o.intervalMs);
    if (this.o.sampleBroker) {
      const every = Math.min(BROKER_SAMPLE_MAX_MS, this.o.brokerIntervalMs ?? BROKER_SAMPLE_MAX_MS, this.o.intervalMs);
      // A sample at the start too: the run's broker CPU is the last sample's minus this one's.
      if (!this.brokerTicker) void this.sampleBroker();
      this.brokerTicker ??= setInterval(() => void this.sampleBroker(), every);
    }
  }

  /** Close the last (partial) interval and stop. */
  stop(): void {
    if (this.ticker) clearInterval(this.ticker);
    if (this.brokerTicker) clearInterval(this.brokerTicker);
    this.ticker = undefined;
    this.brokerTicker = undefined;
    void this.tick(); // the last interval; its broker sample, if any, lands on its own
    this.probe.close();
  }

  /**
   * Close one interval. Returns the broker sample it started (resolved once stored), or
   * undefined when none was started (no sampler, or the previous one is still out).
   */
  tick(): Promise<void> | undefined {
    const { clock, recorder } = this.o;
    const endMs = clock.wallMs();
    const extra: Partial<IntervalPoint> = {
      generatorCpuPercent: Math.round((this.probe.cpuUsedUs() / 1000 / Math.max(1, endMs - this.intervalStartMs)) * 1000) / 10,
      generatorLoopDelayMaxMs: this.probe.loopDelayMaxMs(),
      generatorRssBytes: this.probe.rssBytes(),
      ...(this.o.backlog ? { backlog: Math.max(0, this.o.backlog()) } : {}),
    };
    const last = this.last;
    const prev = this.cpuBase;
    if (last) {
      extra.brokerRssBytes = last.rssBytes;
      if (prev && last.t > prev.t) {
        const cpu = cpuUsedBetween(prev.cpuUserSeconds + prev.cpuSystemSeconds, last.cpuUserSeconds + last.cpuSystemSeconds);
        extra.brokerCpuPercent = Math.round((cpu / (last.t - prev.t)) * 1000) / 10;
      }
    }
    this.cpuBase = last;
    const point = recorder.closeInterval(this.o.elapsedSec(), this.intervalStartMs, endMs, extra);
    this.intervalStartMs = endMs;
    this.o.progress.update({
      phase: recorder.phase,
      elapsedSec: this.o.elapsedSec(),
      published: recorder.published,
      delivered: recorder.delivered,
      expected: this.o.expected(),
      publishRate: point.publishRate,
      deliveryRate: point.deliveryRate,
      p99Us: recorder.e2eP99SoFarUs(),
      ...(this.o.size ? estimateProgress({ ...this.o.size(), phase: recorder.phase, publishRate: point.publishRate, measuredPublished: recorder.measuredPublished }) : undefined),
    });
    return this.sampleBroker();
  }

  /**
   * The teardown sample: taken after stop(), before the broker is stopped, so every run (however
   * short) has broker CPU seconds and peak RSS. Waits for a sample still in flight first.
   */
  async final(): Promise<void> {
    const sample = this.o.finalSampleBroker ?? this.o.sampleBroker;
    if (!sample) return;
    const t = this.o.elapsedSec();
    const s = await sample().catch(() => undefined);
    if (!s) return;
    this.last = { ...s, t };
    this.brokerSamples.push(this.last);
    this.brokerSamples.sort((a, b) => a.t - b.t);
  }

  private sampleBroker(): Promise<void> | undefined {
    const sample = this.o.sampleBroker;
    if (!sample || this.sampling) return undefined;
    this.sampling = true;
    const t = this.o.elapsedSec();
    return sample()
      .then((s) => {
        if (!s) return;
        this.last = { ...s, t };
        this.brokerSamples.push(this.last);
      })
      .catch(() => undefined)
      .finally(() => {
        this.sampling = false;
      });
  }
}

/**
 * A broker CPU counter that goes down by at most this much is the same process read by two
 * sources of different precision, not a restart: the broker's own stats report CPU in
 * microseconds, /proc in 10 ms ticks, and the last sample of a run (from /proc at teardown) can
 * read a few ms below the one before it. Read as a restart, such a dip added the whole run's CPU
 * a second time.
 */
export const CPU_COUNTER_NOISE_SECONDS = 0.05;

/**
 * What happened between two readings of a broker's cumulative CPU counter: it went up; it dropped
 * by more than CPU_COUNTER_NOISE_SECONDS, so a new broker process (the kill and restart faults,
 * docs/faults.md) counts from zero; or it dipped by less, which is no change. The one rule for
 * every series made from these counters (cpuUsedBetween here, report/cost.ts cumulativeCpu).
 */
export function cpuCounterStep(before: number, now: number): "up" | "restart" | "dip" {
  if (now >= before) return "up";
  return before - now > CPU_COUNTER_NOISE_SECONDS ? "restart" : "dip";
}

/** CPU seconds a broker used between two readings of its CPU counter (cpuCounterStep): a restarted process's reading is what it used. */
export function cpuUsedBetween(before: number, now: number): number {
  const step = cpuCounterStep(before, now);
  return step === "up" ? now - before : step === "restart" ? now : 0;
}
