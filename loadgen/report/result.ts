/**
 * result.json: the one machine-readable record of a run (documented in result.schema.json).
 * Histograms are stored encoded (HdrHistogram compressed base64, values in µs); every
 * percentile in the file is derived from them. Bump RESULT_SCHEMA_VERSION on any
 * incompatible change.
 */
import type { Environment } from "./environment.js";
import type { BacklogReport, RateSearchReport } from "../run/index.js";
import { evaluateGates, allPassed, type GateResult } from "./gates.js";
import type { BrokerStatsSample, DurabilityPromise } from "../drivers/index.js";
import { brokerCost, cumulativeCpu, type BrokerCost } from "./cost.js";
import type { FaultAnalysis, FaultEvent } from "../faults/index.js";
import { faultFiguresOf } from "./fault-figures.js";
import { rateHeldOf, type RateHeld } from "./rate-held.js";
import { brokerCpuShare, generatorVerdict, type GeneratorBound, type WorkerFigures } from "./verdict.js";
import {
  decodeHistogram,
  encodeHistogram,
  summarize,
  totalSubscriptions,
  type EncodedInterval,
  type FineTimelineData,
  type IntervalPoint,
  type LatencySummary,
  type PhaseTiming,
  type Plan,
  type RunOutcome,
  type Scenario,
  type StreamErrorInfo,
} from "../run/index.js";

export const RESULT_SCHEMA_VERSION = 1;
export const RESULT_KIND = "ratatoskr-bench-result";

export interface BrokerInfo {
  embedded: boolean;
  target: string;
  args: string[];
  storage: "memory" | "durable";
  fsync: boolean;
  /** The client spoke TLS to the broker (absent in reports written before TLS existed). */
  tls?: "on" | "off";
  /** Where the broker CPU/RSS samples came from: "metrics <url>", "GetBrokerStats", "/proc/<pid>" or "none". */
  resourceSource?: string;
  samples: (BrokerStatsSample & { t: number })[];
  peakRssBytes: number | null;
  cpuSeconds: number | null;
  /**
   * Broker CPU-µs per delivered and per published message over the measure window (loadgen/report/cost.ts);
   * null without samples around the window, absent in results written before it existed.
   */
  cost?: BrokerCost | null;
}

export interface Counts {
  published: number;
  measuredPublished: number;
  publishErrors: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  redelivered: number;
  foreign: number;
  streamErrors: number;
  /**
   * Riding through faults (docs/faults.md, "Drivers under faults"); written by every run since
   * issue 17, absent from older results. `lost` counts acknowledged messages only: what was
   * sent but never acknowledged is `unackedDelivered` (it arrived anyway) or
   * `unackedUndelivered` (it did not: not a loss), per subscription like `lost`.
   */
  unackedDelivered?: number;
  unackedUndelivered?: number;
  /** Publish batches sent again after their ack did not arrive. */
  publishRetries?: number;
  /** Consumer streams that broke and were re-opened by the driver. */
  streamBreaks?: number;
  /** Streams or connections the driver re-established (its own count; NATS: connections). */
  reconnects?: number;
  topics: number;
  subscriptions: number;
  completeSubscriptions: number;
  consumers: number;
  producers: number;
}

export interface Throughput {
  measureSeconds: number;
  deliverySeconds: number;
  /** Messages accepted per second during the measure phase. */
  publishRate: number;
  /** First deliveries per second from measure start to the last timed delivery. */
  deliveryRate: number;
  offeredRate: number | null;
  achievedRateRatio: number | null;
}

export interface RunResult {
  schemaVersion: number;
  kind: string;
  run: {
    id: string;
    scenario: string;
    driver: string;
    startedAt: string;
    durationSeconds: number;
    shard: { index: number; count: number };
    /** Number of shard results merged into this one (1 for a single run). */
    shardsMerged: number;
    /**
     * Set by `report merge --allow-partial` when shards are missing: the figures cover only the
     * shards present, and a "complete shards" gate fails. Absent (or false) when whole.
     */
    partial?: boolean;
    /** The shard indices a partial merge lacks. */
    missingShards?: number[];
    /**
     * The whole run's topology and offered rate, whatever share of it this result covers. A shard's
     * `counts` (producers, topics, subscriptions) and `throughput.offeredRate` are its own share.
     * Absent in results written before it was added.
     */
    whole?: WholeRun;
    phases: PhaseTiming[];
    drainTimedOut: boolean;
    /** Stopped by SIGINT/SIGTERM: the figures cover only part of the run and it never passes. */
    interrupted?: boolean;
  };
  scenario: Scenario;
  environment: Environment;
  broker: BrokerInfo;
  counts: Counts;
  throughput: Throughput;
  latency: { e2e: LatencySummary; e2eUncorrected: LatencySummary; publish: LatencySummary; lateness: LatencySummary };
  histograms: { e2e: string; e2eUncorrected: string; publish: string; lateness: string };
  series: IntervalPoint[];
  intervalHistograms: EncodedInterval[];
  gates: GateResult[];
  passed: boolean;
  /** What the reader must know, e.g. the broker reports other storage than the scenario asked for (absent: none). */
  warnings?: string[];
  errors: { streams: StreamErrorInfo[]; publishes: string[] };
  /** How the generator ran and what it cost (absent in results written before workers). */
  generator?: GeneratorInfo;
  /** Whether the generator, not the broker, was the limit (docs/loadgen.md, "Generator-bound verdict"). */
  generatorBound?: GeneratorBound;
  /** Fixed-rate runs: whether the run held its rate, by the rate: max step conditions (report/rate-held.ts). */
  rateHeld?: RateHeld;
  /**
   * `rate: max`: every step of the search and the rate found (docs/loadgen.md, "rate: max: the highest sustainable rate"). The
   * rest of the result (counts, latency, series, phases) is the confirmation step's, else the
   * found step's, else the lowest step's.
   */
  rateSearch?: RateSearchReport;
  /** `backlog:` scenarios: build and drain (docs/loadgen.md, "Backlog build and drain"). */
  backlog?: BacklogReport;
  /** `only:` runs: which side ran and what the counts mean (docs/loadgen.md, "Producer-only and consumer-only runs"). */
  only?: "producers" | "consumers";
  /** Acks and first deliveries per 100 ms (absent in results written before it). */
  timeline?: FineTimelineData;
  /** The faults applied during the run (absent: none). */
  faults?: FaultEvent[];
  /** Per-fault figures derived from timeline, intervalHistograms and faults (docs/faults.md, "Reading the figures"). */
  faultFigures?: FaultAnalysis;
  /** What the driver and broker settings of this run promise (the durability disclosure). */
  durability?: DurabilityPromise;
}

export interface GeneratorInfo {
  /** `single`: one event loop ran producers and consumers; `workers`: worker threads did. */
  mode: "single" | "workers";
  workers: number;
  /** Each worker's usage from measure start to the end of the drain. */
  perWorker: (WorkerFigures & { producers: number; subscriptions: number; cpuSource: "thread" | "process" })[];
}

export interface WholeRun {
  producers: number;
  topics: number;
  subscriptions: number;
  /** Messages per second offered by all producers of all shards; null when unthrottled. */
  offeredRate: number | null;
}

export interface ResultMeta {
  runId: string;
  driver: string;
  broker: Omit<BrokerInfo, "samples" | "peakRssBytes" | "cpuSeconds" | "cost">;
  environment: Environment;
  /** The driver's DurabilityPromise for the run's (effective) broker settings. */
  durability?: DurabilityPromise | undefined;
}

export function buildResult(scenario: Scenario, plan: Plan, outcome: RunOutcome, meta: ResultMeta): RunResult {
  const r = outcome.recorder;
  const a = outcome.accounting;
  const samples = outcome.brokerSamples;
  const first = samples[0];
  const last = samples[samples.length - 1];
  const counts: Counts = {
    published: r.published,
    measuredPublished: r.measuredPublished,
    publishErrors: r.publishErrors,
    expected: a.expected,
    delivered: a.delivered,
    lost: a.lost,
    duplicates: a.duplicates,
    outOfOrder: a.outOfOrder,
    redelivered: a.redelivered,
    foreign: a.foreign,
    streamErrors: outcome.streamErrors,
    unackedDelivered: a.unackedDelivered,
    unackedUndelivered: a.unackedUndelivered,
    publishRetries: outcome.publishRetries,
    streamBreaks: outcome.streamBreaks,
    reconnects: outcome.reconnects,
    topics: plan.topics.length,
    subscriptions: a.subscriptions,
    completeSubscriptions: a.completeSubscriptions,
    consumers: outcome.consumers,
    producers: scenario.only === "consumers" ? 0 : plan.producers.length,
  };
  // This result's own share: each producer runs the share of its rate its topics here carry.
  const offered = typeof scenario.rate !== "number" || scenario.only === "consumers" ? null : (scenario.rate * plan.producers.reduce((sum, p) => sum + p.rateShare, 0)) / scenario.producers;
  const publishRate = r.measuredPublished / outcome.measureSeconds;
  const deliveredTimed = r.e2e.totalCount;
  const throughput: Throughput = {
    measureSeconds: round3(outcome.measureSeconds),
    deliverySeconds: round3(outcome.deliverySeconds),
    publishRate: Math.round(publishRate),
    deliveryRate: Math.round(deliveredTimed / Math.max(1e-6, outcome.deliverySeconds)),
    offeredRate: offered,
    achievedRateRatio: offered === null ? null : round3(publishRate / offered),
  };
  const histograms = {
    e2e: encodeHistogram(r.e2e),
    e2eUncorrected: encodeHistogram(r.e2eUncorrected),
    publish: encodeHistogram(r.publishLatency),
    lateness: encodeHistogram(r.lateness),
  };
  // Derived from the stored (encoded) form, so that a merge of shards reproduces them exactly.
  const latency = {
    e2e: summarize(decodeHistogram(histograms.e2e)),
    e2eUncorrected: summarize(decodeHistogram(histograms.e2eUncorrected)),
    publish: summarize(decodeHistogram(histograms.publish)),
    lateness: summarize(decodeHistogram(histograms.lateness)),
  };
  const phases = outcome.phases.map((p) => ({ ...p, startSec: round3(p.startSec), endSec: round3(p.endSec) }));
  const timeline = r.timeline.data();
  const result: RunResult = {
    schemaVersion: RESULT_SCHEMA_VERSION,
    kind: RESULT_KIND,
    run: {
      id: meta.runId,
      scenario: scenario.name,
      driver: meta.driver,
      startedAt: new Date(outcome.startedAtMs).toISOString(),
      durationSeconds: round3(outcome.phases.length ? outcome.phases[outcome.phases.length - 1]!.endSec : 0),
      shard: plan.shard,
      shardsMerged: 1,
      whole: {
        producers: scenario.producers,
        topics: scenario.topics,
        subscriptions: totalSubscriptions(scenario),
        offeredRate: typeof scenario.rate !== "number" || scenario.only === "consumers" ? null : scenario.rate,
      },
      phases,
      drainTimedOut: outcome.drainTimedOut,
    },
    scenario,
    environment: meta.environment,
    broker: {
      ...meta.broker,
      samples,
      peakRssBytes: samples.length ? Math.max(...samples.map((s) => s.peakRssBytes ?? s.rssBytes)) : null,
      // The run's own share: CPU between the first sample (run start) and the last (teardown), not
      // since the broker started (an external broker may have run for days).
      // Cumulative across broker restarts (kill and restart faults: a new process counts from 0).
      cpuSeconds: first && last && last !== first ? round3(Math.max(0, runCpuSeconds(samples))) : null,
      // From the phases as stored, so that the file alone reproduces it.
      cost: brokerCost(samples, phases, { deliveries: latency.e2e.count, published: r.measuredPublished }),
    },
    counts,
    throughput,
    latency,
    histograms,
    series: r.series,
    intervalHistograms: r.intervals,
    gates: [],
    passed: true,
    ...(outcome.warnings.length ? { warnings: outcome.warnings } : {}),
    errors: { streams: outcome.streamErrorSamples, publishes: outcome.publishErrorSamples },
    ...(outcome.backlog ? { backlog: outcome.backlog } : {}),
    ...(scenario.only ? { only: scenario.only } : {}),
    ...(outcome.faults !== undefined ? { faults: outcome.faults.map((e) => ({ ...e, startSec: round3(e.startSec), endSec: e.endSec === null ? null : round3(e.endSec) })) } : {}),
    generator: {
      mode: "single",
      workers: 1,
      perWorker: [{ index: 0, role: "both", producers: plan.producers.length, subscriptions: plan.subscriptions.length, ...workerFigures(outcome.generator) }],
    },
    ...(timeline ? { timeline } : {}),
    ...(meta.durability ? { durability: meta.durability } : {}),
  };
  return judge(withVerdict(result));
}

/** A worker's figures as result.json keeps them. */
export function workerFigures(u: RunOutcome["generator"]): Omit<GeneratorInfo["perWorker"][number], "index" | "role" | "producers" | "subscriptions"> {
  return { cpuSeconds: u.cpuSeconds, cpuShare: u.cpuShare, loopUtilization: u.loopUtilization, loopDelayP99Ms: u.loopDelayP99Ms, loopDelayMaxMs: u.loopDelayMaxMs, cpuSource: u.cpuSource };
}

/** The result with its generator-bound verdict, judged from its own figures (window: measure start to drain end). */
export function withVerdict(result: RunResult): RunResult {
  const phase = (name: string) => result.run.phases.find((p) => p.phase === name);
  const from = phase("measure")?.startSec ?? 0;
  const to = phase("drain")?.endSec ?? phase("measure")?.endSec ?? result.run.durationSeconds;
  const generatorBound = generatorVerdict({
    workers: result.generator?.perWorker ?? [],
    brokerCpuShare: brokerCpuShare(result.broker.samples, from, to),
    achievedRateRatio: result.throughput.achievedRateRatio,
    latenessP99Us: result.latency.lateness.p99Us ?? 0,
  });
  return { ...result, generatorBound };
}

/** (Re)evaluate the scenario's gates against the result's figures (the per-fault figures derived again first). */
export function judge(judged: RunResult): RunResult {
  const { faultFigures: _stale, ...rest } = judged;
  const figures = faultFiguresOf(rest);
  const withFaults: RunResult = figures ? { ...rest, faultFigures: figures } : rest;
  const { rateHeld: _staleHeld, ...withoutHeld } = withFaults;
  const held = rateHeldOf(withoutHeld);
  const result: RunResult = held ? { ...withoutHeld, rateHeld: held } : withoutHeld;
  const c = result.counts;
  const gates = evaluateGates(result.scenario.slo, {
    expected: c.expected,
    delivered: c.delivered,
    lost: c.lost,
    duplicates: c.duplicates,
    outOfOrder: c.outOfOrder,
    publishErrors: c.publishErrors,
    e2eP50Us: result.latency.e2e.p50Us,
    e2eP99Us: result.latency.e2e.p99Us,
    e2eP999Us: result.latency.e2e.p999Us,
    publishP99Us: result.latency.publish.p99Us,
    achievedRateRatio: result.throughput.achievedRateRatio ?? undefined,
    latenessP99Us: result.throughput.offeredRate === null ? undefined : (result.latency.lateness.p99Us ?? 0),
    generatorBound: result.generatorBound?.bound,
    rateHeld: result.rateHeld,
    faults: result.faults?.length ? { figures: result.faultFigures?.faults } : undefined,
  });
  if (result.run.partial) {
    // A partial merge never passes: its figures are those of the shards present only.
    const count = result.run.shard.count;
    const have = count - (result.run.missingShards?.length ?? 0);
    gates.unshift({
      name: "complete shards",
      op: ">=",
      limit: count,
      actual: have,
      unit: "shards",
      passed: false,
      detail: `complete shards ${have} fails >= ${count} (missing shard${result.run.missingShards?.length === 1 ? "" : "s"} ${(result.run.missingShards ?? []).join(", ")})`,
    });
  }
  return { ...result, gates, passed: allPassed(gates) && result.run.interrupted !== true };
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** The broker CPU seconds from the first sample to the last, summed across restarts (cumulativeCpu). */
function runCpuSeconds(samples: readonly (BrokerStatsSample & { t: number })[]): number {
  const sorted = [...samples].sort((a, b) => a.t - b.t);
  const cum = cumulativeCpu(sorted);
  return cum[cum.length - 1]! - cum[0]!;
}
