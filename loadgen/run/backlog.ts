/**
 * Backlog build and drain (`backlog: { messages: n }` or `{ bytes: b }`): the subscriptions are
 * created at connect, so the broker keeps what is published for them, but no consumer is opened.
 * The build phase publishes the backlog (unthrottled, or at `backlog.rate`) until every one
 * of its messages is acknowledged; then the consumers are released and the measure phase runs as
 * in any scenario while the backlog drains. Build messages carry the warmup flag: they are
 * accounted (lost, duplicated) like every message but not timed, since they waited by design.
 *
 * What is reported (docs/loadgen.md, "Backlog build and drain"): the build rate, the time from
 * the release to the last build message delivered to every subscription, the drain rate over
 * that time, publish latency while it drained, and the broker's figures over build and drain.
 */
import type { Clock } from "../clock.js";
import type { BrokerSelfReport } from "../drivers/index.js";
import type { AccountingSink } from "./delivery-sink.js";
import { encodeHistogram, newFastHistogram, summarize, decodeHistogram, type Histogram, type LatencySummary } from "./histogram.js";
import { buildPlan, type Plan } from "./plan.js";
import type { Recorder } from "./recorder.js";
import type { BrokerSample } from "./sampler.js";
import type { BacklogTarget, Scenario } from "./scenario.js";

export interface BacklogReport {
  /** What the scenario asked for. */
  target: BacklogTarget;
  /** Messages the build phase issued (the target in messages; bytes / messageSizeBytes rounded up). */
  targetMessages: number;
  /** Messages the broker acknowledged in the build phase (stored), and their payload bytes. */
  stored: number;
  storedBytes: number;
  /** Build publishes refused (failed calls or messages not accepted). */
  buildPublishErrors: number;
  buildSeconds: number;
  /** stored / buildSeconds. */
  buildRate: number;
  /** Deliveries the backlog owes: stored × subscriptions of each message's topic. */
  expectedDeliveries: number;
  /** Backlog deliveries that arrived (first deliveries of build messages). */
  deliveredBacklog: number;
  /** Every backlog delivery arrived. */
  drained: boolean;
  /** Release (consumers opened) to the last backlog delivery; null when it did not drain. */
  drainSeconds: number | null;
  /** expectedDeliveries / drainSeconds (deliveries per second); null when it did not drain. */
  drainRate: number | null;
  /** Seconds the release took (consumer streams opened at rampPerSecond). */
  releaseSeconds: number;
  /** Publish latency of the measure phase's publishes acknowledged while the backlog drained. */
  publishWhileDraining: LatencySummary;
  publishWhileDrainingHistogram: string;
  broker: {
    /** The broker's memory budget as it reports it, else as the scenario set it; null when neither says. */
    memoryBudgetBytes: number | null;
    peakRssBytes: number | null;
    peakRetainedMessages: number | null;
    peakBacklog: number | null;
    /** Publishes refused and consumer streams ended with an error, from build start to drained. */
    publishErrors: number;
    streamErrors: number;
    /**
     * No publish refused and no stream ended by the broker from build start until drained: the
     * broker enforces its budgets by refusing (RESOURCE_EXHAUSTED), so none was reached.
     */
    withinBudget: boolean;
  };
}

/** Messages a backlog target stands for. */
export function backlogMessages(target: BacklogTarget, messageSizeBytes: number): number {
  return "messages" in target ? target.messages : Math.ceil(target.bytes / messageSizeBytes);
}

/**
 * Per-topic build quotas by producer id, split as the plan splits `messages` (so every shard
 * derives the same ones): the scenario's plan for `backlogMessages` messages, this shard's part.
 */
export function backlogQuotas(s: Scenario, plan: Plan): Map<number, number[]> {
  const n = backlogMessages(s.backlog!, s.messageSizeBytes);
  const shaped = buildPlan({ ...s, messages: n, durationSeconds: undefined }, plan.runId, plan.shard);
  return new Map(shaped.producers.map((p) => [p.id, p.messagesPerTopic ?? p.topics.map(() => 0)]));
}

/** The backlog's bookkeeping during a run: the runner calls it at each boundary. */
export class BacklogTracker {
  readonly quotas: Map<number, number[]>;
  readonly targetMessages: number;
  private buildStartUs = 0;
  private buildEndUs = 0;
  private releaseUs = 0;
  private releasedUs = 0;
  private drainedUs = 0;
  private publishedBefore = 0;
  private errorsBefore = 0;
  private stored = 0;
  private buildErrors = 0;
  private expected = 0;
  private streamErrorsBefore = 0;
  private readonly window: Histogram = newFastHistogram();
  private errorsAtDrained: number | undefined;
  private streamErrorsAtDrained: number | undefined;

  constructor(
    private readonly scenario: Scenario,
    plan: Plan,
    private readonly sink: AccountingSink,
    private readonly recorder: Recorder,
    private readonly clock: Clock,
  ) {
    this.quotas = backlogQuotas(scenario, plan);
    this.targetMessages = backlogMessages(scenario.backlog!, scenario.messageSizeBytes);
  }

  buildStarted(): void {
    this.buildStartUs = this.clock.nowUs();
    this.publishedBefore = this.recorder.published;
    this.errorsBefore = this.recorder.publishErrors;
    this.streamErrorsBefore = this.sink.streamErrors;
  }

  /** Every build publish was answered: what was acknowledged is the backlog. */
  buildEnded(): void {
    this.buildEndUs = this.clock.nowUs();
    this.stored = this.recorder.published - this.publishedBefore;
    this.buildErrors = this.recorder.publishErrors - this.errorsBefore;
    this.expected = this.sink.expectedTotal;
  }

  /** Consumers are about to open: publish latency is recorded from now until the backlog drained. */
  releasing(): void {
    this.releaseUs = this.clock.nowUs();
    this.recorder.windowPublish = this.window;
    this.sink.untimedTarget = this.expected;
    this.sink.onUntimedTarget = () => this.markDrained();
    if (this.sink.untimedDelivered >= this.expected) this.markDrained();
  }

  released(): void {
    this.releasedUs = this.clock.nowUs();
  }

  private markDrained(): void {
    if (this.drainedUs !== 0) return;
    this.drainedUs = this.clock.nowUs();
    this.recorder.windowPublish = undefined;
    this.errorsAtDrained = this.recorder.publishErrors;
    this.streamErrorsAtDrained = this.sink.streamErrors;
  }

  /** The report; `toSec` turns a monotonic µs into the run's seconds (the broker samples' time base). */
  report(samples: readonly BrokerSample[], brokerReport: BrokerSelfReport | undefined, toSec: (us: number) => number): BacklogReport {
    this.recorder.windowPublish = undefined;
    const drained = this.drainedUs !== 0;
    const endUs = drained ? this.drainedUs : this.clock.nowUs();
    const buildSeconds = Math.max(1e-6, (this.buildEndUs - this.buildStartUs) / 1e6);
    const drainSeconds = drained ? Math.max(1e-6, (this.sink.lastUntimedDeliveryUs > 0 ? Math.max(this.sink.lastUntimedDeliveryUs, this.releaseUs) : this.drainedUs) - this.releaseUs) / 1e6 : null;
    const from = toSec(this.buildStartUs);
    const to = toSec(endUs);
    const inWindow = samples.filter((s) => s.t >= from - 0.25 && s.t <= to + 0.25);
    const peak = (pick: (s: BrokerSample) => number | undefined): number | null => {
      const v = inWindow.map(pick).filter((x): x is number => x !== undefined);
      return v.length ? Math.max(...v) : null;
    };
    const publishErrors = (this.errorsAtDrained ?? this.recorder.publishErrors) - this.errorsBefore;
    const streamErrors = (this.streamErrorsAtDrained ?? this.sink.streamErrors) - this.streamErrorsBefore;
    const encoded = encodeHistogram(this.window);
    this.window.destroy();
    return {
      target: this.scenario.backlog!,
      targetMessages: this.targetMessages,
      stored: this.stored,
      storedBytes: this.stored * this.scenario.messageSizeBytes,
      buildPublishErrors: this.buildErrors,
      buildSeconds: round3(buildSeconds),
      buildRate: Math.round(this.stored / buildSeconds),
      expectedDeliveries: this.expected,
      deliveredBacklog: Math.min(this.sink.untimedDelivered, this.expected),
      drained,
      drainSeconds: drainSeconds === null ? null : round3(drainSeconds),
      drainRate: drainSeconds === null ? null : Math.round(this.expected / drainSeconds),
      releaseSeconds: round3(Math.max(0, (this.releasedUs - this.releaseUs) / 1e6)),
      publishWhileDraining: summarize(decodeHistogram(encoded)),
      publishWhileDrainingHistogram: encoded,
      broker: {
        memoryBudgetBytes: brokerReport?.memoryBudgetBytes ?? this.scenario.broker.memoryBudgetBytes ?? null,
        peakRssBytes: peak((s) => s.rssBytes),
        peakRetainedMessages: peak((s) => s.retainedMessages),
        peakBacklog: peak((s) => s.backlog),
        publishErrors,
        streamErrors,
        withinBudget: publishErrors === 0 && streamErrors === 0,
      },
    };
  }
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
