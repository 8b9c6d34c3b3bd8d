/**
 * The run's measurements: whole-run HDR histograms (publish latency, end-to-end latency from
 * the intended send time = corrected, from the actual send time = uncorrected, producer
 * lateness) and, each second, an interval snapshot (counts, rates, interval percentiles, the
 * encoded interval histogram of corrected e2e for the .hlog).
 *
 * Hot-path methods only call recordValue and count into the fine timeline (timeline.ts: acks
 * and first deliveries per 100 ms, for the per-fault figures); the per-second work happens in
 * `closeInterval`. Deliveries record runs of equal values once, with their count: a burst of
 * deliveries shares one receive time, and the messages of a batch their send times, so most
 * neighbours round to the same microsecond (docs/loadgen.md, "Receive time"). The run is held
 * until the value changes or anything reads or resets the e2e histograms (closeInterval,
 * startMeasuring, the `e2e` getters); what they hold is then exactly what one recordValue per
 * delivery would have made.
 */
import { clampUs, encodeHistogram, newFastHistogram, type Histogram } from "./histogram.js";
import { FineTimeline } from "./timeline.js";

/** `build`: a backlog scenario publishing with its consumers held back (loadgen/run/backlog.ts). */
export type Phase = "connect" | "warmup" | "build" | "measure" | "drain" | "teardown";

export interface IntervalPoint {
  /** Seconds since the start of the run (end of the interval). */
  t: number;
  phase: Phase;
  published: number;
  delivered: number;
  publishRate: number;
  deliveryRate: number;
  e2eP50Us: number;
  e2eP99Us: number;
  e2eP999Us: number;
  e2eMaxUs: number;
  publishP99Us: number;
  latenessP99Us: number;
  /**
   * Deliveries outstanding at the end of the interval: expected (accepted × subscriptions of the
   * topic) − delivered. One-process runs only (a worker learns other workers' publishes at joins).
   */
  backlog?: number;
  brokerCpuPercent?: number;
  brokerRssBytes?: number;
  /** The load generator's own CPU (100 = one core) and worst event-loop delay this second. */
  generatorCpuPercent?: number;
  generatorLoopDelayMaxMs?: number;
  generatorRssBytes?: number;
}

export interface EncodedInterval {
  startMs: number;
  endMs: number;
  /** Corrected e2e (from the intended send time) of the deliveries in this interval. */
  histogram: string;
  /** Uncorrected e2e (from the actual send time) of the same deliveries; absent in results written before it. */
  uncorrected?: string;
}

export class Recorder {
  readonly publishLatency: Histogram = newFastHistogram();
  private readonly e2eAll: Histogram = newFastHistogram();
  private readonly e2eUncorrectedAll: Histogram = newFastHistogram();
  readonly lateness: Histogram = newFastHistogram();

  private readonly ivE2e: Histogram = newFastHistogram();
  private readonly ivE2eUncorrected: Histogram = newFastHistogram();
  private readonly ivPublish: Histogram = newFastHistogram();
  private readonly ivLateness: Histogram = newFastHistogram();
  private ivPublished = 0;
  private ivDelivered = 0;
  /** The run of equal values not yet recorded (count 0: none), corrected and uncorrected. */
  private runC = -1;
  private runCN = 0;
  private runU = -1;
  private runUN = 0;

  /** Totals over all phases. */
  published = 0;
  delivered = 0;
  publishErrors = 0;
  /** Totals over the measure phase (the throughput figures). */
  measuredPublished = 0;
  measuredDelivered = 0;

  readonly series: IntervalPoint[] = [];
  /** Acks and first deliveries per 100 ms; the runner starts it at the run's start. */
  readonly timeline = new FineTimeline();
  readonly intervals: EncodedInterval[] = [];
  /**
   * While set, every acknowledged publish is also recorded here, whatever the phase (a backlog
   * run's publish latency while its backlog drains).
   */
  windowPublish: Histogram | undefined;
  /** Whether histograms record now (measure and drain phases). */
  measuring = false;
  phase: Phase = "connect";

  /**
   * Warmup records too, so the recording paths are compiled and the histograms sized before
   * the measure phase (the first measured second otherwise paid for it, ~30 ms in a 5,000 msg/s
   * run); `startMeasuring` then clears what warmup recorded. Warmup intervals stay out of the
   * interval log.
   */
  private get recording(): boolean {
    return this.measuring || this.phase === "warmup";
  }

  /**
   * Enter the measure phase: whole-run histograms restart empty. Idempotent: a consumer worker
   * may have entered it already, on the first measured message (see recordDelivery).
   */
  startMeasuring(): void {
    this.phase = "measure";
    if (this.measuring) return;
    this.flushRuns();
    for (const h of [this.publishLatency, this.e2e, this.e2eUncorrected, this.lateness, this.ivE2e, this.ivE2eUncorrected, this.ivPublish, this.ivLateness]) h.reset();
    this.phase = "measure";
    this.measuring = true;
  }

  /**
   * A publish batch of `count` messages was acknowledged `latencyUs` after it was sent (the
   * broker's service time; the wait before sending is in `lateness`). `atUs`: when the ack
   * arrived (monotonic), for the fine timeline.
   */
  recordPublish(count: number, latencyUs: number, atUs?: number): void {
    this.published += count;
    if (atUs !== undefined) this.timeline.recordPublished(atUs, count);
    this.ivPublished += count;
    if (this.phase === "measure") this.measuredPublished += count;
    if (count > 0) this.windowPublish?.recordValueWithCount(clampUs(latencyUs), count);
    if (!this.recording || count === 0) return;
    const v = clampUs(latencyUs);
    this.publishLatency.recordValueWithCount(v, count);
    this.ivPublish.recordValueWithCount(v, count);
  }

  /** How late a (non-warmup) message left relative to its intended send time. */
  recordLateness(latenessUs: number): void {
    if (!this.recording) return;
    const l = clampUs(latenessUs);
    this.lateness.recordValue(l);
    this.ivLateness.recordValue(l);
  }

  recordPublishError(count: number): void {
    this.publishErrors += count;
  }

  /**
   * A first delivery; `warmup` messages count as delivered but are not timed once measuring.
   * `atUs`: when it arrived (monotonic), for the fine timeline.
   */
  recordDelivery(correctedUs: number, uncorrectedUs: number, warmup: boolean, atUs?: number): void {
    this.delivered++;
    if (atUs !== undefined) this.timeline.recordDelivered(atUs, 1);
    this.ivDelivered++;
    // A measured message can reach a consumer worker before the join that starts its measure
    // phase (the producer worker was released first): it starts measuring here, so the phase
    // switch does not wipe that message from the histograms (docs/loadgen.md, "Workers"). With
    // no warmup the consumer worker may still be in "connect" when that happens.
    if (!warmup && !this.measuring && (this.phase === "warmup" || this.phase === "connect")) this.startMeasuring();
    if (this.phase === "measure") this.measuredDelivered++;
    if (this.measuring ? warmup : this.phase !== "warmup") return;
    const c = clampUs(correctedUs);
    const u = clampUs(uncorrectedUs);
    if (c === this.runC) this.runCN++;
    else {
      if (this.runCN > 0) this.flushCorrected();
      this.runC = c;
      this.runCN = 1;
    }
    if (u === this.runU) this.runUN++;
    else {
      if (this.runUN > 0) this.flushUncorrected();
      this.runU = u;
      this.runUN = 1;
    }
  }

  /** Corrected e2e of every delivery so far (the held run recorded first). */
  get e2e(): Histogram {
    this.flushRuns();
    return this.e2eAll;
  }

  /** Uncorrected e2e of every delivery so far (the held run recorded first). */
  get e2eUncorrected(): Histogram {
    this.flushRuns();
    return this.e2eUncorrectedAll;
  }

  private flushRuns(): void {
    if (this.runCN > 0) this.flushCorrected();
    if (this.runUN > 0) this.flushUncorrected();
    this.runC = this.runU = -1;
  }

  private flushCorrected(): void {
    this.e2eAll.recordValueWithCount(this.runC, this.runCN);
    this.ivE2e.recordValueWithCount(this.runC, this.runCN);
    this.runCN = 0;
  }

  private flushUncorrected(): void {
    this.e2eUncorrectedAll.recordValueWithCount(this.runU, this.runUN);
    this.ivE2eUncorrected.recordValueWithCount(this.runU, this.runUN);
    this.runUN = 0;
  }

  /** Close the current interval: append a series point and the encoded e2e interval histogram. */
  closeInterval(tSec: number, startMs: number, endMs: number, extra: Partial<IntervalPoint> = {}): IntervalPoint {
    this.flushRuns();
    const secs = Math.max(1e-3, (endMs - startMs) / 1000);
    const point: IntervalPoint = {
      t: Math.round(tSec * 1000) / 1000,
      phase: this.phase,
      published: this.ivPublished,
      delivered: this.ivDelivered,
      publishRate: Math.round(this.ivPublished / secs),
      deliveryRate: Math.round(this.ivDelivered / secs),
      e2eP50Us: this.ivE2e.getValueAtPercentile(50),
      e2eP99Us: this.ivE2e.getValueAtPercentile(99),
      e2eP999Us: this.ivE2e.getValueAtPercentile(99.9),
      e2eMaxUs: this.ivE2e.totalCount ? this.ivE2e.maxValue : 0,
      publishP99Us: this.ivPublish.getValueAtPercentile(99),
      latenessP99Us: this.ivLateness.getValueAtPercentile(99),
      ...extra,
    };
    this.series.push(point);
    if (this.ivE2e.totalCount > 0 && this.phase !== "warmup") this.intervals.push({ startMs, endMs, histogram: encodeHistogram(this.ivE2e), uncorrected: encodeHistogram(this.ivE2eUncorrected) });
    this.ivE2e.reset();
    this.ivE2eUncorrected.reset();
    this.ivPublish.reset();
    this.ivLateness.reset();
    this.ivPublished = 0;
    this.ivDelivered = 0;
    return point;
  }

  /** Free the histograms' WASM memory; the recorder must not be used afterwards. */
  destroy(): void {
    this.runCN = this.runUN = 0;
    for (const h of [this.publishLatency, this.e2eAll, this.e2eUncorrectedAll, this.lateness, this.ivE2e, this.ivE2eUncorrected, this.ivPublish, this.ivLateness]) h.destroy();
  }

  /** p99 of corrected e2e so far (for the progress line). */
  e2eP99SoFarUs(): number {
    return this.e2e.getValueAtPercentile(99);
  }
}
