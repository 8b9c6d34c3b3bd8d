/**
 * The load generator's package door: what cli/ and other tools may use. Inside loadgen/, the
 * groups (run/, drivers/, report/, suite/) are entered through their own index.ts.
 */
export { runBench, printSummary, timestamp, checkStartAt, listCatalog, START_AT_MAX_PAST_MS, START_AT_MAX_FUTURE_MS, type BenchArgs } from "./bench.js";
export { prepareOutputDir, prepareOutputFile } from "./out-dir.js";
export { systemClock, FakeClock, type Clock } from "./clock.js";
export * from "./errors.js";
export { loadScenario, parseScenario, scenarioSchema, totalSubscriptions, buildPlan, parseShard, runScenario, setGeneratorHeapGrowth, type Scenario, type Slo, type Plan, type Shard, type RunOptions, type RunOutcome } from "./run/index.js";
export { createDriver, DRIVER_NAMES, startEmbeddedBroker, procSample, H2UnaryClient, type DriverName, type EmbeddedBroker } from "./drivers/index.js";
export type { Driver, DriverOptions, DeliverySink, SubscriptionSpec, Consumer, BrokerStatsSample } from "./drivers/index.js";
export { buildResult, judge, RESULT_SCHEMA_VERSION, RESULT_KIND, evaluateGates, allPassed, readResult, writeReport, renderReport, REPORT_FILES, mergeResults, compareMarkdown, renderJUnit, renderSummaryMarkdown, type UnreportedRun, type RunResult, type GateResult } from "./report/index.js";
export { runSuite, writeSuiteComparison, renderSuiteMarkdown, isSuiteDir, MANIFEST_FILE, type SuiteArgs, type SuiteManifest } from "./suite/index.js";
export { runCalibration, median, type CalibrateArgs, type Calibration, type CalibrationPass } from "./calibrate.js";
export { runBareClient, type BareResult } from "./bare/index.js";
export { startFaultProxy, FaultScheduler, hostPort, type FaultProxy, type FaultEvent, type FaultSpec, type ProcessControl } from "./faults/index.js";
