import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, readSync, realpathSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { StoreOpenError } from "./store-errors.js";

// The data directory's guards, checked before LMDB touches it: it is a directory we may use,
// no other live broker holds it, and its data file (if any) looks like LMDB. LMDB can crash
// the process on a data file that is not LMDB at all, so that check happens first.

export const LOCK_FILE = "ratatoskr.lock";
export const DATA_FILE = "data.mdb";

/** Lock files held by this process, so a stale lock that happens to carry our PID (a container's PID 1 after a restart) is told apart from a second open in this process. */
const heldHere = new Set<string>();

export interface DirLock {
  readonly path: string;
  release(): void;
}

/** Creates the directory if needed, takes its lock file and checks the data file's header. */
export function prepareDataDir(dir: string): DirLock {
  refusePseudoFilesystem(dir);
  ensureDirectory(dir);
  const lock = acquireLock(dir);
  try {
    checkDataFile(dir);
  } catch (err) {
    lock.release();
    throw err;
  }
  return lock;
}

/** Kernel pseudo-filesystems: LMDB cannot live there (on /proc its writes spin forever). */
const PSEUDO_ROOTS = ["/proc", "/sys"];

/**
 * Refuses a path under /proc or /sys before anything is created or opened there. The check is
 * on the real path of the nearest existing ancestor (plus the rest of the path), so a symlink
 * or `..` into /proc is caught too.
 */
function refusePseudoFilesystem(dir: string): void {
  const real = realPathOfNearestAncestor(resolve(dir));
  const root = PSEUDO_ROOTS.find((r) => real === r || real.startsWith(`${r}/`));
  if (root !== undefined) {
    throw new StoreOpenError(dir, "pseudo-filesystem", `${real} is under ${root}, a kernel pseudo-filesystem; use a directory on a real disk`);
  }
}

function realPathOfNearestAncestor(path: string): string {
  const rest: string[] = [];
  let at = path;
  for (;;) {
    try {
      return join(realpathSync(at), ...rest.reverse());
    } catch (err) {
      const parent = dirname(at);
      // Not there (or not a directory on the way): climb. Anything else (EACCES): check the text.
      if (parent === at || (errnoOf(err) !== "ENOENT" && errnoOf(err) !== "ENOTDIR")) return join(at, ...rest.reverse());
      rest.push(basename(at));
      at = parent;
    }
  }
}

function ensureDirectory(dir: string): void {
  try {
    const st = statSync(dir, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) throw new StoreOpenError(dir, "corrupt", "the path exists and is not a directory");
    if (!st) mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    throw asOpenError(dir, err, "cannot create the directory");
  }
}

function acquireLock(dir: string): DirLock {
  const path = join(dir, LOCK_FILE);
  if (heldHere.has(path)) {
    throw new StoreOpenError(dir, "locked", `it is already open in this process (pid ${process.pid}, lock file ${path})`);
  }
  const me: LockOwner = { pid: process.pid, start: processStartTime(process.pid) };
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (err) {
      if (errnoOf(err) !== "EEXIST") throw asOpenError(dir, err, `cannot create the lock file ${path}`);
      const owner = readOwner(path);
      if (owner && isAlive(owner) && owner.pid !== process.pid) {
        throw new StoreOpenError(dir, "locked", `it is in use by another process (pid ${owner.pid}, lock file ${path}); stop that broker or use another directory`);
      }
      // Stale: its owner is gone (killed, crashed). Take it over.
      try {
        unlinkSync(path);
      } catch (unlinkErr) {
        if (errnoOf(unlinkErr) !== "ENOENT") throw asOpenError(dir, unlinkErr, `cannot remove the stale lock file ${path}`);
      }
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(me)}\n`);
    } finally {
      closeSync(fd);
    }
    heldHere.add(path);
    let released = false;
    return {
      path,
      release: () => {
        if (released) return;
        released = true;
        heldHere.delete(path);
        if (readOwner(path)?.pid === me.pid) {
          try {
            unlinkSync(path);
          } catch {
            // Already gone; nothing to release.
          }
        }
      },
    };
  }
  throw new StoreOpenError(dir, "locked", `another process keeps taking the lock file ${path}`);
}

interface LockOwner {
  pid: number;
  /** Process start time (clock ticks since boot, from /proc), to survive PID reuse; null where unknown. */
  start: number | null;
}

function readOwner(path: string): LockOwner | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as Partial<LockOwner>;
    if (typeof parsed.pid !== "number" || !Number.isSafeInteger(parsed.pid) || parsed.pid <= 0) return undefined;
    return { pid: parsed.pid, start: typeof parsed.start === "number" ? parsed.start : null };
  } catch {
    return undefined; // unreadable or half-written: treat as stale
  }
}

function isAlive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if (errnoOf(err) !== "EPERM") return false;
  }
  // The PID exists; with a recorded start time it must also be the same process.
  const start = processStartTime(owner.pid);
  return owner.start === null || start === null || start === owner.start;
}

function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime), counted after the parenthesised command name, which may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const value = Number(fields[19]);
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

const LMDB_MAGIC = 0xbeefc0de;

/** An existing data file must carry LMDB's magic number in its first meta page. */
function checkDataFile(dir: string): void {
  const path = join(dir, DATA_FILE);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return; // a new store
    throw asOpenError(dir, err, `cannot read ${path}`);
  }
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (err) {
    closeSync(fd);
    throw asOpenError(dir, err, `cannot write ${path}`);
  }
  try {
    const header = Buffer.alloc(32);
    const n = readSync(fd, header, 0, header.length, 0);
    if (n === 0) return; // created but never written: LMDB initialises it
    if (n < header.length || header.readUInt32LE(24) !== LMDB_MAGIC) {
      throw new StoreOpenError(dir, "corrupt", `${path} is not an LMDB data file (damaged, or not written by Ratatoskr)`);
    }
  } finally {
    closeSync(fd);
  }
}

export function errnoOf(err: unknown): string | undefined {
  if (err instanceof Error && "code" in err && typeof err.code === "string") return err.code;
  return undefined;
}

/** Wraps an OS error as a StoreOpenError with a readable reason. */
export function asOpenError(dir: string, err: unknown, what: string): StoreOpenError {
  if (err instanceof StoreOpenError) return err;
  const code = errnoOf(err);
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new StoreOpenError(dir, "permission", `${what}: permission denied (${code})`, { cause: err });
  }
  if (code === "ENOTDIR") return new StoreOpenError(dir, "corrupt", `${what}: a parent of the path is not a directory`, { cause: err });
  const detail = err instanceof Error ? err.message : String(err);
  return new StoreOpenError(dir, "io", `${what}: ${detail}`, { cause: err });
}
