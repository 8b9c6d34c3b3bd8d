/**
 * faults/: faults inside a measured run (docs/faults.md). The vocabulary shared with the drivers
 * and the analysis (types.ts), the scenario's `faults:` block (spec.ts), the TCP fault proxy
 * (proxy.ts), the process controls' contract (process-control.ts), the scheduler that applies
 * the faults on the run clock (scheduler.ts), and the per-fault analysis (analysis.ts) that turns
 * a run's fine timeline into figures. The bottom group: it imports only the base files.
 */
export * from "./types.js";
export { durationSeconds, faultEntrySchema, faultsSchema, FAULT_KINDS, faultScheduleIssues, occurrenceStarts, plannedMeasureSeconds } from "./spec.js";
export { startFaultProxy, type FaultProxy, type FaultProxyOptions } from "./proxy.js";
export type { ProcessControl } from "./process-control.js";
export { FaultScheduler, faultApplicabilityError, hostPort, timerSleep, type FaultSchedulerOptions, type SleepUntil } from "./scheduler.js";
export {
  analyzeFaults,
  worstRecovery,
  RECOVERY_THRESHOLD,
  RECOVERY_WINDOW_SECONDS,
  type AnalysisInput,
  type FaultAnalysis,
  type FaultFigures,
  type IntervalInput,
  type NotRecovered,
  type SummarizeEncoded,
  type TimelineInput,
  type WindowLatency,
  type WindowPercentiles,
} from "./analysis.js";
