/**
 * `report merge`: combine the results of the shards of one run into one result. Counts add up,
 * histograms merge losslessly (whole-run and per-second interval histograms, matched by their
 * start second), and every percentile is derived again from the merged histograms. Gates are
 * judged again on the merged figures. A set must be whole (every shard i/N once, one run id,
 * scenario and driver) unless `allowPartial`, and then the merge says so and fails.
 */
import { ReportError } from "../errors.js";
import { encodeHistogram, mergeEncoded, mergeTimelines, summarize, type EncodedInterval, type GeneratorSettings, type IntervalPoint } from "../run/index.js";
import { combineCosts } from "./cost.js";
import { judge, type Counts, type RunResult } from "./result.js";
import type { GeneratorBound } from "./verdict.js";

export interface MergeOptions {
  /**
   * Merge a set that lacks shards: the result is marked `run.partial` (shown at the top of the
   * reports) and its "complete shards" gate fails. Duplicates and mismatched runs are refused
   * regardless.
   */
  allowPartial?: boolean;
}

/**
 * Check that `results` are the shards of one run, each once, and say which shards are missing.
 * Throws a ReportError on duplicates, mismatched run ids, scenarios, drivers or shard counts.
 */
export function checkShardSet(results: readonly RunResult[]): { count: number; missing: number[] } {
  const first = results[0];
  if (!first) throw new ReportError("report merge needs at least one result");
  const name = (r: RunResult) => `${r.run.scenario}/${r.run.id} (${r.run.driver}, shard ${r.run.shard.index}/${r.run.shard.count})`;
  for (const r of results) {
    if (r.run.scenario !== first.run.scenario || r.run.id !== first.run.id || r.run.driver !== first.run.driver) {
      throw new ReportError(`cannot merge ${name(r)} with ${name(first)}: shards of one run share scenario, driver and run id`);
    }
    if (r.run.shard.count !== first.run.shard.count) {
      throw new ReportError(`cannot merge ${name(r)} with ${name(first)}: the shard counts differ`);
    }
    if (r.run.shardsMerged !== 1 || r.run.partial) {
      throw new ReportError(`${name(r)} is already a merge of ${r.run.shardsMerged} shards; merge the shard results themselves`);
    }
  }
  const indices = results.map((r) => r.run.shard.index);
  const dup = indices.filter((i, k) => indices.indexOf(i) !== k);
  if (dup.length) throw new ReportError(`the same shard appears twice: shard ${[...new Set(dup)].join(", ")} of ${results.map(name).join(", ")}`);
  const count = first.run.shard.count;
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !indices.includes(i));
  return { count, missing };
}

export function mergeResults(results: readonly RunResult[], options: MergeOptions = {}): RunResult {
  const { count, missing } = checkShardSet(results);
  const first = results[0]!;
  if (missing.length && !options.allowPartial) {
    throw new ReportError(
      `incomplete shard set for ${first.run.scenario}/${first.run.id}: have ${results.length} of ${count} shards, missing shard${missing.length === 1 ? "" : "s"} ${missing.join(", ")} (pass --allow-partial to merge them anyway, marked partial and failed)`,
    );
  }
  const merged = combineResults(results, count, missing);
  const verdict = mergeVerdicts(results);
  return judge(verdict ? { ...merged, generatorBound: verdict } : merged);
}

/**
 * The figures of several parts of one run added up: counts, histograms (lossless), rates,
 * series and interval histograms, errors; the parts' generator workers listed together. Used
 * for shards (above) and for the workers of one process (loadgen/workers.ts). Not judged.
 */
export function combineResults(results: readonly RunResult[], count: number, missing: number[] = []): RunResult {
  const first = results[0]!;

  const counts = Object.fromEntries(
    (Object.keys(first.counts) as (keyof Counts)[]).map((k) => [k, results.reduce((a, r) => a + (r.counts[k] ?? 0), 0)]),
  ) as unknown as Counts;
  // Topics and subscriptions partition over the shards, producers do not: a producer whose topics
  // fall in several shards runs in each. A whole set had the whole run's producers.
  if (!missing.length && first.run.whole) counts.producers = first.run.whole.producers;
  const hist = (k: keyof RunResult["histograms"]) => mergeEncoded(results.map((r) => r.histograms[k]));
  const e2e = hist("e2e");
  const e2eUncorrected = hist("e2eUncorrected");
  const publish = hist("publish");
  const lateness = hist("lateness");

  const publishRate = results.reduce((a, r) => a + r.throughput.publishRate, 0);
  const offered = results.every((r) => r.throughput.offeredRate !== null) ? results.reduce((a, r) => a + (r.throughput.offeredRate ?? 0), 0) : null;
  const { series, intervals } = mergeSeries(results);
  const timeline = mergeTimelines(results.map((r) => r.timeline));
  // The faults are the run's (applied once, to its one broker): the first part that recorded them.
  const faults = results.find((r) => r.faults?.length)?.faults;
  const { timeline: _t, faults: _f, faultFigures: _ff, ...firstRest } = first;

  const merged: RunResult = {
    ...firstRest,
    ...(timeline ? { timeline } : {}),
    ...(faults ? { faults } : {}),
    run: {
      ...first.run,
      startedAt: results.map((r) => r.run.startedAt).sort()[0]!,
      durationSeconds: Math.max(...results.map((r) => r.run.durationSeconds)),
      shard: { index: 0, count },
      shardsMerged: results.length,
      ...(missing.length ? { partial: true, missingShards: missing } : {}),
      drainTimedOut: results.some((r) => r.run.drainTimedOut),
      ...(results.some((r) => r.run.interrupted) ? { interrupted: true } : {}),
    },
    broker: {
      ...first.broker,
      peakRssBytes: maxOrNull(results.map((r) => r.broker.peakRssBytes)),
      cpuSeconds: maxOrNull(results.map((r) => r.broker.cpuSeconds)),
      ...(results.some((r) => r.broker.cost !== undefined) ? { cost: combineCosts(results.map((r) => r.broker.cost)) } : {}),
    },
    counts,
    throughput: {
      measureSeconds: Math.max(...results.map((r) => r.throughput.measureSeconds)),
      deliverySeconds: Math.max(...results.map((r) => r.throughput.deliverySeconds)),
      publishRate,
      deliveryRate: results.reduce((a, r) => a + r.throughput.deliveryRate, 0),
      offeredRate: offered,
      achievedRateRatio: offered === null || offered === 0 ? null : Math.round((publishRate / offered) * 1000) / 1000,
    },
    latency: { e2e: summarize(e2e), e2eUncorrected: summarize(e2eUncorrected), publish: summarize(publish), lateness: summarize(lateness) },
    histograms: {
      e2e: encodeHistogram(e2e),
      e2eUncorrected: encodeHistogram(e2eUncorrected),
      publish: encodeHistogram(publish),
      lateness: encodeHistogram(lateness),
    },
    series,
    intervalHistograms: intervals,
    errors: {
      streams: results.flatMap((r) => r.errors.streams).slice(0, 20),
      publishes: results.flatMap((r) => r.errors.publishes).slice(0, 20),
    },
    ...(results.every((r) => r.generator)
      ? {
          generator: {
            mode: results.some((r) => r.generator!.mode === "workers") ? "workers" : "single",
            workers: results.reduce((a, r) => a + r.generator!.workers, 0),
            perWorker: results.flatMap((r) => r.generator!.perWorker.map((w) => (count > 1 ? { ...w, shard: r.run.shard.index } : w))),
            ...sameSettings(results),
          },
        }
      : {}),
  };
  return merged;
}

/** The shards' generator settings when every shard ran with the same ones; none when they differed. */
function sameSettings(results: readonly RunResult[]): { settings?: GeneratorSettings } {
  const first = results[0]?.generator?.settings;
  const key = JSON.stringify(first);
  return first && results.every((r) => JSON.stringify(r.generator?.settings) === key) ? { settings: first } : {};
}

/** Shards are judged apart (each on its own machine's figures): bound if any was, each reason naming its shard. */
function mergeVerdicts(results: readonly RunResult[]): GeneratorBound | undefined {
  const verdicts = results.map((r) => r.generatorBound);
  if (!verdicts.every((v): v is GeneratorBound => v !== undefined)) return undefined;
  return {
    ...verdicts[0]!,
    bound: verdicts.some((v) => v.bound),
    reasons: results.flatMap((r, i) => verdicts[i]!.reasons.map((x) => (results.length > 1 ? `shard ${r.run.shard.index}: ${x}` : x))),
    brokerCpuShare: maxOrNull(verdicts.map((v) => v.brokerCpuShare)),
  };
}

function maxOrNull(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? Math.max(...v) : null;
}

/** Per-second points added up by second since each shard's start; percentiles from merged intervals. */
function mergeSeries(results: readonly RunResult[]): { series: IntervalPoint[]; intervals: EncodedInterval[] } {
  const bySecond = new Map<number, IntervalPoint>();
  for (const r of results) {
    for (const p of r.series) {
      const k = Math.round(p.t);
      const cur = bySecond.get(k);
      if (!cur) {
        bySecond.set(k, { ...p, t: k });
        continue;
      }
      cur.published += p.published;
      cur.delivered += p.delivered;
      cur.publishRate += p.publishRate;
      cur.deliveryRate += p.deliveryRate;
      cur.e2eP50Us = Math.max(cur.e2eP50Us, p.e2eP50Us);
      cur.e2eP99Us = Math.max(cur.e2eP99Us, p.e2eP99Us);
      cur.e2eP999Us = Math.max(cur.e2eP999Us, p.e2eP999Us);
      cur.e2eMaxUs = Math.max(cur.e2eMaxUs, p.e2eMaxUs);
      cur.publishP99Us = Math.max(cur.publishP99Us, p.publishP99Us);
      cur.latenessP99Us = Math.max(cur.latenessP99Us, p.latenessP99Us);
      if (p.backlog !== undefined) cur.backlog = (cur.backlog ?? 0) + p.backlog;
      // Generator CPU adds up over the parts (each its own thread or process); loop delay is the worst.
      if (p.generatorCpuPercent !== undefined) cur.generatorCpuPercent = Math.round(((cur.generatorCpuPercent ?? 0) + p.generatorCpuPercent) * 10) / 10;
      if (p.generatorLoopDelayMaxMs !== undefined) cur.generatorLoopDelayMaxMs = Math.max(cur.generatorLoopDelayMaxMs ?? 0, p.generatorLoopDelayMaxMs);
      if (p.brokerCpuPercent !== undefined) cur.brokerCpuPercent = Math.max(cur.brokerCpuPercent ?? 0, p.brokerCpuPercent);
    }
  }
  // Interval histograms: merge those starting in the same wall-clock second.
  const ivBySecond = new Map<number, EncodedInterval[]>();
  for (const r of results) {
    for (const iv of r.intervalHistograms) {
      const k = Math.round(iv.startMs / 1000);
      const list = ivBySecond.get(k) ?? [];
      list.push(iv);
      ivBySecond.set(k, list);
    }
  }
  const intervals = [...ivBySecond.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([, list]) => ({
      startMs: Math.min(...list.map((i) => i.startMs)),
      endMs: Math.max(...list.map((i) => i.endMs)),
      histogram: list.length === 1 ? list[0]!.histogram : encodeHistogram(mergeEncoded(list.map((i) => i.histogram))),
      // Uncorrected only when every part has it (a part written before it would make it partial).
      ...(list.every((i) => i.uncorrected !== undefined)
        ? { uncorrected: list.length === 1 ? list[0]!.uncorrected! : encodeHistogram(mergeEncoded(list.map((i) => i.uncorrected!))) }
        : {}),
    }));
  return { series: [...bySecond.values()].sort((a, b) => a.t - b.t), intervals };
}
