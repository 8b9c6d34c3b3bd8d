/**
 * The load generator's public surface. Everything else in loadgen/ is internal.
 */
export { runBench, printSummary, type BenchArgs } from "./bench.js";
export { loadScenario, parseScenario, scenarioSchema, totalSubscriptions, type Scenario, type Slo } from "./scenario.js";
export { buildPlan, parseShard, type Plan, type Shard } from "./plan.js";
export { runScenario, type RunOptions, type RunOutcome } from "./runner.js";
export { RateLimiter } from "./rate-limiter.js";
export { Accounting, type AccountingTotals } from "./accounting.js";
export { Recorder, type IntervalPoint } from "./recorder.js";
export { monotonicClock, FakeClock, type Clock } from "./clock.js";
export { createDriver, DRIVER_NAMES, type DriverName } from "./drivers/index.js";
export type { Driver, DriverOptions, DeliverySink, SubscriptionSpec, Consumer, BrokerStatsSample } from "./drivers/index.js";
export { startEmbeddedBroker, type EmbeddedBroker } from "./broker-process.js";
export { buildResult, judge, RESULT_SCHEMA_VERSION, RESULT_KIND, type RunResult } from "./result.js";
export { evaluateGates, allPassed, type GateResult } from "./gates.js";
export { readResult, writeReport, renderReport, REPORT_FILES } from "./report-files.js";
export { mergeResults } from "./report-merge.js";
export { compareMarkdown } from "./report-compare.js";
export { mergeEncoded, decodeHistogram, encodeHistogram, summarize, type LatencySummary } from "./histogram.js";
export * from "./errors.js";
