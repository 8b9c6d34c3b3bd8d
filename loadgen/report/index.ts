/**
 * report/: what a run leaves behind. result.json (the record, schema in result.schema.json),
 * its gates, and the files rendered from it (report.md, report.html, .hgrm, .hlog); merging
 * shards and comparing runs. Other folders enter here.
 */
export { buildResult, judge, withVerdict, workerFigures, RESULT_SCHEMA_VERSION, RESULT_KIND, type RunResult, type Counts, type BrokerInfo, type GeneratorInfo, type ResultMeta } from "./result.js";
export { generatorVerdict, brokerCpuShare, GENERATOR_BOUND_THRESHOLDS, type GeneratorBound, type VerdictInput, type WorkerFigures } from "./verdict.js";
export { brokerCost, brokerCpuBetween, combineCosts, costOf, costText, cumulativeCpu, measureWindow, type BrokerCost, type CostSource, type CpuSample } from "./cost.js";
export { evaluateGates, allPassed, type GateResult } from "./gates.js";
export { readResult, writeReport, renderReport, REPORT_FILES } from "./files.js";
export { mergeResults, combineResults } from "./merge.js";
export { compareMarkdown } from "./compare.js";
export { SEED_HEADER, seedRow, configurationLabel, renderMarkdown, faultCountsLine, rateHeldLine } from "./md.js";
export { rateHeldOf } from "./rate-held.js";
export type { RateHeld } from "./result-schema.js";
export { renderChart, renderHtml } from "./html.js";
export { captureEnvironment, type Environment } from "./environment.js";
export { renderJUnit, renderSummaryMarkdown, xmlEscape, gateLabel, type UnreportedRun } from "./junit.js";
