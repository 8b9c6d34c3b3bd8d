/**
 * What ran and the headline, in words: the scenario parameters, the headline figures, the
 * partial-merge notice and gate values with their units. Shared by report.md and report.html so
 * that both open with the same statement of the run.
 */
import { fmtCount, fmtUs, searchSettings, totalSubscriptions } from "../run/index.js";
import type { GateResult } from "./gates.js";
import type { RunResult } from "./result.js";

const rate = (v: number | null) => (v === null ? "unthrottled" : `${fmtCount(v)} msg/s`);

/** True when this result covers one shard of a sharded run (not a merge). */
export function isShard(r: RunResult): boolean {
  return r.run.shard.count > 1 && r.run.shardsMerged === 1;
}

/** The parameters the run was given, as [parameter, value] rows; a shard states its share and the whole run's. */
export function parameterRows(r: RunResult): [string, string][] {
  const s = r.scenario;
  const c = r.counts;
  const whole = r.run.whole ?? {
    producers: s.producers,
    topics: s.topics,
    subscriptions: totalSubscriptions(s),
    offeredRate: typeof s.rate === "number" ? s.rate : null,
  };
  const share = (own: string, all: string) => (isShard(r) ? `${own} (this shard ${r.run.shard.index}/${r.run.shard.count}; whole run ${all})` : all);
  const measure = r.run.phases.find((p) => p.phase === "measure");
  const measured =
    s.rate === "max" ? searchMeasured(r) : s.messages !== undefined ? `${fmtCount(s.messages)} messages` : `${s.durationSeconds ?? 0} s`;
  const phases = r.run.phases.map((p) => `${p.phase} ${(p.endSec - p.startSec).toFixed(1)} s`).join(", ");
  return [
    ["offered rate", share(rate(r.throughput.offeredRate), rate(whole.offeredRate))],
    ["batch", `${s.batchSize} messages, linger ${s.lingerMs} ms, ${s.maxInFlightBatches} batches in flight per producer`],
    ["message size", `${s.messageSizeBytes} B (${s.payload})`],
    ["producers", share(String(c.producers), String(whole.producers))],
    ["topics", share(String(c.topics), String(whole.topics))],
    ["subscriptions", share(String(c.subscriptions), String(whole.subscriptions))],
    ["consumers", `${c.consumers} (${s.consumersPerSubscription} per subscription)`],
    ["connections", `${s.connections}${r.broker.tls === "on" ? ", tls: on" : ""}`],
    [
      "phases",
      `warmup ${s.warmupSeconds} s, measure ${measured}${measure ? ` (took ${(measure.endSec - measure.startSec).toFixed(1)} s)` : ""}, drain timeout ${s.drainTimeoutSeconds} s` +
        (phases ? `; as run: ${phases}` : ""),
    ],
  ];
}

/** One sentence: e2e latency and the achieved against the offered rate. */
export function headline(r: RunResult): string {
  const l = r.latency.e2e;
  const t = r.throughput;
  const p = (v: number | null | undefined) => (v === null || v === undefined ? "n/a" : fmtUs(v));
  const achieved =
    t.offeredRate === null
      ? `${fmtCount(t.publishRate)} msg/s published (unthrottled)`
      : `${fmtCount(t.publishRate)} msg/s published of ${fmtCount(t.offeredRate)} msg/s offered (${t.achievedRateRatio === null ? "n/a" : `${(t.achievedRateRatio * 100).toFixed(1)}%`})`;
  return `e2e latency p50 ${p(l.p50Us)}, p99 ${p(l.p99Us)}, p99.9 ${p(l.p999Us)}, max ${p(l.maxUs)} (${fmtCount(l.count)} timed deliveries of ${fmtCount(r.counts.measuredPublished)} measured messages); ${achieved}, ${fmtCount(t.deliveryRate)} deliveries/s.`;
}

/** The warning a partial merge opens with, or undefined for a whole result. */
export function partialNotice(r: RunResult): string | undefined {
  if (!r.run.partial) return undefined;
  const missing = r.run.missingShards ?? [];
  return `PARTIAL: merged ${r.run.shardsMerged} of ${r.run.shard.count} shards; shard${missing.length === 1 ? "" : "s"} ${missing.join(", ")} missing. The figures cover only the shards present, and the run fails.`;
}

/** A gate value with its unit: ratios as percentages, latencies in ms, counts in messages. */
export function gateValue(g: GateResult, v: number | null): string {
  if (v === null) return "n/a";
  if (g.unit === "") return `${Number((v * 100).toFixed(3))}%`;
  return `${v} ${g.unit}`;
}

/**
 * What a rate: max result's figures measured: the confirmation step when it held (its own
 * length), else the found (or lowest) step, as rate-search.ts chooses it.
 */
function searchMeasured(r: RunResult): string {
  const search = searchSettings(r.scenario);
  if (r.rateSearch?.confirmed === true) return `rate: max, the confirmation step of ${r.rateSearch.confirmSeconds ?? search.stepSeconds} s at the found rate`;
  const found = r.rateSearch?.foundRate;
  return `rate: max, the ${found === null || found === undefined ? "lowest-rate" : "found rate's"} step of ${search.stepSeconds} s${r.rateSearch?.confirmed === false ? " (its confirmation failed)" : ""}`;
}
