/**
 * run/: what flows through one run. A scenario is validated and planned, producers publish at
 * the offered rate, the delivery sink accounts and times what arrives, the recorder keeps the
 * histograms, and the runner moves through the phases. Other folders enter here.
 */
export { loadScenario, parseScenario, applyOverride, scenarioSchema, scenarioForDriver, reconnectPolicyOf, totalSubscriptions, subscriptionCount, searchSettings, type Scenario, type Slo, type SearchSettings, type BacklogTarget } from "./scenario.js";
export { runRateSearch, stepScenario, judgeStep, stepFigures, windowFigures, RateSearchPlanner, type RateSearchReport, type RateSearchStep, type StepFigures, type StepRun, type WindowInput } from "./rate-search.js";
export { backlogMessages, backlogQuotas, type BacklogReport } from "./backlog.js";
export { buildPlan, parseShard, expectedPerTopic, type Plan, type Shard } from "./plan.js";
export { runScenario, type RunOptions, type RunOutcome, type PhaseTiming, type PhaseCoordinator, type PhaseTotals, type RunFaults } from "./runner.js";
export { splitPlan, partPlan, type WorkerPart, type WorkerRole } from "./worker-split.js";
export { GeneratorMeter, type GeneratorUsage } from "./generator-usage.js";
export type { StreamErrorInfo } from "./delivery-sink.js";
export type { BrokerSample, GeneratorProbe } from "./sampler.js";
export { CPU_COUNTER_NOISE_SECONDS, cpuCounterStep, cpuUsedBetween } from "./sampler.js";
export { RateLimiter } from "./rate-limiter.js";
export { Accounting, type AccountingTotals, type UnackedRange } from "./accounting.js";
export { Recorder, type IntervalPoint, type EncodedInterval, type Phase } from "./recorder.js";
export { FineTimeline, mergeTimelines, TIMELINE_BUCKET_MS, type FineTimelineData } from "./timeline.js";
export { Progress, fmtBytes, fmtCount, fmtUs, type ProgressState } from "./progress.js";
export {
  decodeHistogram,
  encodeHistogram,
  mergeEncoded,
  percentileCurve,
  percentileDistribution,
  summarize,
  writeHlog,
  type Histogram,
  type LatencySummary,
} from "./histogram.js";
export { generatorSettings, setGeneratorHeapGrowth, GENERATOR_HEAP_GROWTH_PERCENT, type GeneratorSettings } from "./generator-settings.js";
