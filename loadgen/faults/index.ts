/**
 * faults/: faults inside a measured run (docs/faults.md). The vocabulary shared with the drivers
 * and the analysis (types.ts), the scenario's `faults:` block (spec.ts), the TCP fault proxy
 * (proxy.ts), the process controls' contract (process-control.ts) and the scheduler that applies
 * the faults on the run clock (scheduler.ts). The bottom group: it imports only the base files.
 */
export * from "./types.js";
export { durationSeconds, faultEntrySchema, faultsSchema, FAULT_KINDS, faultScheduleIssues, occurrenceStarts, plannedMeasureSeconds } from "./spec.js";
export { startFaultProxy, type FaultProxy, type FaultProxyOptions } from "./proxy.js";
export type { ProcessControl } from "./process-control.js";
export { FaultScheduler, faultApplicabilityError, hostPort, timerSleep, type FaultSchedulerOptions, type SleepUntil } from "./scheduler.js";
