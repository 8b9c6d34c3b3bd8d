/**
 * result.json: the one machine-readable record of a run (documented in result.schema.json).
 * Histograms are stored encoded (HdrHistogram compressed base64, values in µs); every
 * percentile in the file is derived from them. Bump RESULT_SCHEMA_VERSION on any
 * incompatible change.
 */
import { evaluateGates, allPassed } from "./gates.js";
import type { BrokerStatsSample } from "../drivers/index.js";
import { brokerCost, cumulativeCpu } from "./cost.js";
import { faultFiguresOf } from "./fault-figures.js";
import { rateHeldOf } from "./rate-held.js";
import type { Counts, GeneratorInfo, ResultMeta, RunResult, Throughput } from "./result-schema.js";
import { brokerCpuShare, generatorVerdict } from "./verdict.js";
import { decodeHistogram, encodeHistogram, generatorSettings, summarize, totalSubscriptions, type Plan, type RunOutcome, type Scenario } from "../run/index.js";

export type { BrokerInfo, Counts, GeneratorInfo, RateHeld, ResultMeta, RunResult, Throughput, WholeRun } from "./result-schema.js";

export const RESULT_SCHEMA_VERSION = 1;
export const RESULT_KIND = "ratatoskr-bench-result";

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
      settings: generatorSettings(),
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
