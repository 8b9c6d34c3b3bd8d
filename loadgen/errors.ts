/**
 * Typed errors of the load generator. The CLI maps them to exit codes in one place
 * (`exitCodeFor`): a bad scenario or an unreachable broker is exit 2, a failed gate is 1.
 */

export class LoadgenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** One problem found while validating a scenario. */
export interface ScenarioIssue {
  /** Dotted field path, e.g. `rate.perSecond`; empty for the document root. */
  path: string;
  expected: string;
  got: string;
}

/** The scenario file cannot be read, parsed or validated. */
export class ScenarioError extends LoadgenError {
  readonly file: string;
  readonly issues: ScenarioIssue[];
  constructor(file: string, issues: ScenarioIssue[], options?: { cause?: unknown }) {
    const lines = issues.map((i) => `  at ${i.path || "(root)"}: expected ${i.expected}, got ${i.got}`);
    super(`invalid scenario ${file}:\n${lines.join("\n")}`, options);
    this.file = file;
    this.issues = issues;
  }
}

/** Bad command-line usage (e.g. a malformed `--set` or `--shard`). */
export class UsageError extends LoadgenError {}

/** A driver name that is not registered (`--driver`, a set file's `drivers:`). */
export class UnknownDriverError extends UsageError {
  readonly driver: string;
  readonly known: readonly string[];
  constructor(driver: string, known: readonly string[]) {
    super(`unknown driver ${JSON.stringify(driver)}; the known drivers are ${known.join(", ")}`);
    this.driver = driver;
    this.known = known;
  }
}

/** The broker could not be started or reached. */
export class BrokerUnreachableError extends LoadgenError {
  readonly target: string;
  constructor(target: string, message: string, options?: { cause?: unknown }) {
    super(`broker at ${target} unreachable: ${message}`, options);
    this.target = target;
  }
}

/** Why a broker could not be reached, as found by the connect probe (drivers/probe.ts). */
export type ConnectFailureKind = "refused" | "timeout" | "not-grpc" | "not-nats" | "tls" | "closed" | "other";

/**
 * The broker address answered wrongly or not at all, classified: `refused` (nothing listens),
 * `timeout` (no answer within --connect-timeout), `not-grpc` / `not-nats` (something else
 * listens there), `tls` (a TLS server answered the plaintext client), `closed` (the server
 * closed the connection before answering). Exit 2 like every BrokerUnreachableError.
 */
export class BrokerConnectError extends BrokerUnreachableError {
  readonly kind: ConnectFailureKind;
  constructor(target: string, kind: ConnectFailureKind, message: string, options?: { cause?: unknown }) {
    super(target, message, options);
    // "unreachable" is the wrong word for a server that answered in another protocol.
    this.message = kind === "refused" || kind === "timeout" ? this.message : `broker at ${target}: ${message}`;
    this.kind = kind;
  }
}

/** The driver reported a failure that stops the run (setup RPCs failing, streams refused). */
export class DriverError extends LoadgenError {
  readonly driver: string;
  constructor(driver: string, message: string, options?: { cause?: unknown }) {
    super(`${driver}: ${message}`, options);
    this.driver = driver;
  }
}

/** A report file is missing or not a result this version understands. */
export class ReportError extends LoadgenError {}

/**
 * An output path (`--out`, `--junit`, `--summary-md`) that cannot be written, found before
 * any work starts: a pseudo filesystem (/proc, /sys), a permission problem, a file in the way,
 * or a report that is already there (`report render` without `--force`).
 */
export class OutputError extends UsageError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`cannot write ${path}: ${message}`, options);
    this.path = path;
  }
}

/** The run was stopped by SIGINT/SIGTERM before it had anything to report. */
export class InterruptedError extends LoadgenError {
  readonly signal: string;
  constructor(signal: string, message: string) {
    super(message);
    this.signal = signal;
  }
}

/** Exit codes of every `ratatoskr` command (docs/loadgen.md, "Exit codes"). */
export const EXIT_OK = 0;
export const EXIT_GATE_FAILED = 1;
export const EXIT_BAD_INPUT = 2;
/** 128 + SIGINT, as shells report an interrupted program; also used for SIGTERM. */
export const EXIT_INTERRUPTED = 130;

/**
 * An interrupted run is 130. Any other error that ends a run before gates could be judged
 * (bad scenario, usage, unwritable output, unreachable broker, driver failure, unreadable
 * report, or an unexpected bug) is exit 2: the run says nothing about the broker's promises.
 * Exit 1 is reserved for gates, decided in gates.ts.
 */
export function exitCodeFor(err: unknown): number {
  if (err instanceof InterruptedError) return EXIT_INTERRUPTED;
  return EXIT_BAD_INPUT;
}
