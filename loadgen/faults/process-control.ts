/**
 * The contract of a broker process the harness can fault: kill, terminate, start again on the
 * same data directory, pause and resume, by PID. Implemented for the embedded reference broker
 * and the embedded nats-server (loadgen/drivers) and, in the e2e tier, for a container.
 * docs/faults.md, "Process faults".
 */
export interface ProcessControl {
  /** What runs, for event details ("ratatoskr broker", "nats-server", "container"). */
  readonly name: string;
  /** The current process's PID (undefined while it is down or when there is none, e.g. a container). */
  pid(): number | undefined;
  /** Where clients reach it now (host:port); may change after `start()`. */
  address(): string;
  /** SIGKILL; resolves once the process has exited. */
  kill(): Promise<void>;
  /** SIGTERM; resolves once the process has exited (SIGKILL after a grace period). */
  terminate(): Promise<void>;
  /** Starts it again on the same data directory; resolves with its address once it accepts connections. */
  start(): Promise<string>;
  /** SIGSTOP; resolves once the process is stopped. Rejects when it is down. */
  pause(): Promise<void>;
  /** SIGCONT; resolves once it runs again. */
  resume(): Promise<void>;
}
