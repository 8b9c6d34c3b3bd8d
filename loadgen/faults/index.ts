/**
 * faults/: the fault vocabulary (types.ts) shared by the fault engine, the drivers that ride
 * through faults and the reports, and the per-fault analysis (analysis.ts) that turns a run's
 * fine timeline into figures. Other folders enter here.
 */
export { PROCESS_FAULTS, NETWORK_FAULTS, CLIENT_FAULTS, type FaultKind, type FaultSpec, type FaultEvent } from "./types.js";
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
