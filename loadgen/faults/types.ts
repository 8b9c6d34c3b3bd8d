/**
 * The fault vocabulary shared by the fault engine (scheduler, proxy, process faults), the drivers
 * that ride through faults, and the analysis that turns a run's timeline into per-fault figures
 * (docs/faults.md). Times are seconds since the start of the run, the clock of `IntervalPoint.t`
 * and `PhaseTiming` (loadgen/run).
 */

/** Faults on the broker process the harness started. */
export const PROCESS_FAULTS = ["kill", "restart", "pause"] as const;
/** Faults made by the harness's TCP proxy between generator and broker (loopback only). */
export const NETWORK_FAULTS = ["cut", "stall", "partition", "latency"] as const;
/** Faults made by the generator itself. */
export const CLIENT_FAULTS = ["slow-consumer"] as const;

export type FaultKind = (typeof PROCESS_FAULTS)[number] | (typeof NETWORK_FAULTS)[number] | (typeof CLIENT_FAULTS)[number];

/** One entry of a scenario's `faults:` block, after validation (durations in seconds). */
export interface FaultSpec {
  kind: FaultKind;
  /** First start, seconds after the measure phase starts. */
  atSeconds: number;
  /** Repeat period in seconds (absent: once). Repeats stay inside the measure phase. */
  everySeconds?: number;
  /** How long the fault holds: pause, stall, partition, latency, slow-consumer (absent for cut). */
  durationSeconds?: number;
  /** kill: how long the broker stays down before it is restarted on the same data directory. */
  downForSeconds?: number;
  /** latency: the delay added to each direction, milliseconds. */
  delayMs?: number;
  /** slow-consumer: which subscription stops reading (its index in the plan; default 0). */
  subscription?: number;
}

/** What happened when one fault was applied: written by the engine, read by the analysis. */
export interface FaultEvent {
  /** Index of the spec in `scenario.faults`. */
  spec: number;
  kind: FaultKind;
  /** Which occurrence of a repeating spec (0 for the first). */
  occurrence: number;
  /** When the fault began (the signal sent, the proxy switched), seconds since run start. */
  startSec: number;
  /**
   * When the fault was lifted: the broker restarted and accepting connections again, SIGCONT
   * sent, the proxy back to forwarding, the consumer reading again. For `cut`, equal to startSec.
   * null if the run ended first.
   */
  endSec: number | null;
  /** A line for the report, e.g. "SIGKILL pid 4121; restarted as pid 4188 after 2.0 s". */
  detail: string;
  /** Set when the fault could not be applied as asked; the run then fails with this reason. */
  error?: string;
}
