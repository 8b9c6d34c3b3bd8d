// Typed errors of the store package. Startup code (the CLI) prints `message` as its one error
// line; nothing matches on the text.

/** Why a data directory could not be opened. */
export type StoreOpenProblem =
  /** The path exists but is not a directory, or the data file is not an LMDB file / unreadable. */
  | "corrupt"
  /** The directory was written by an incompatible store format version. */
  | "version"
  /** The process may not create, read or write the directory or its files. */
  | "permission"
  /** Another live process (a broker) holds the directory's lock file. */
  | "locked"
  /** The path is on a kernel pseudo-filesystem (/proc, /sys), where no store can live. */
  | "pseudo-filesystem"
  /** Anything else the operating system or LMDB reported. */
  | "io";

/** The durable store could not open its data directory. The broker must not start. */
export class StoreOpenError extends Error {
  override readonly name = "StoreOpenError";
  constructor(
    readonly dataDir: string,
    readonly problem: StoreOpenProblem,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot open data directory ${dataDir}: ${detail}`, options);
  }
}

/**
 * The store takes no more writes: it is closed, or a commit failed and it stopped accepting
 * writes so that nothing is acknowledged that was not stored. The server answers UNAVAILABLE.
 */
export class StoreUnavailableError extends Error {
  override readonly name: string = "StoreUnavailableError";
}

/**
 * A write failed on the disk (ENOSPC, EIO, …) or was refused because one did: nothing of it is
 * visible. The store accepts writes again once the disk does (it retries on its own). The
 * server answers UNAVAILABLE; reads and acks go on.
 */
export class StoreWriteError extends StoreUnavailableError {
  override readonly name: string = "StoreWriteError";
}
