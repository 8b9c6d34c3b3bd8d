/**
 * Output paths are checked before any work starts (before a broker is spawned), so a run is
 * never lost to a directory that turns out to be unwritable at the end.
 */
import { closeSync, existsSync, mkdirSync, openSync, realpathSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { OutputError } from "./errors.js";

/** Pseudo filesystems: writes there fail oddly or hang, never keep a report. */
const REFUSED_ROOTS = ["/proc", "/sys"];

/** The real path of `path`'s nearest existing ancestor (itself if it exists). */
function nearestExisting(path: string): string {
  let p = resolve(path);
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  return realpathSync(p);
}

function describe(err: unknown): string {
  const code = err instanceof Error && "code" in err ? String((err as NodeJS.ErrnoException).code) : undefined;
  switch (code) {
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EROFS":
      return "read-only file system";
    case "ENOTDIR":
    case "EEXIST":
      return "a file is in the way (not a directory)";
    case "EISDIR":
      return "it is a directory";
    case "ENOSPC":
      return "no space left on the device";
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

/** Why `path` cannot hold output, or undefined when it can. */
function refusal(path: string, check: (p: string) => void): { reason: string; cause?: unknown } | undefined {
  const real = nearestExisting(path);
  const root = REFUSED_ROOTS.find((r) => real === r || real.startsWith(`${r}/`));
  if (root !== undefined) return { reason: `${root} is a kernel pseudo filesystem, not a place for reports` };
  try {
    check(path);
    return undefined;
  } catch (err) {
    return { reason: describe(err), cause: err };
  }
}

function probeDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const probe = resolve(dir, `.ratatoskr-write-probe-${process.pid}`);
  writeFileSync(probe, "");
  unlinkSync(probe);
}

/**
 * Create `dir` (with parents) and prove it writable by writing and removing a probe file.
 * Throws OutputError (exit 2) with one plain sentence.
 */
export function prepareOutputDir(dir: string): void {
  const no = refusal(dir, probeDir);
  if (no) throw new OutputError(dir, no.reason, { cause: no.cause });
}

/** Prove that `file` can be written later: its directory is created and probed; an existing file must be writable. */
export function prepareOutputFile(file: string): void {
  const no = refusal(file, (f) => {
    probeDir(dirname(resolve(f)));
    // Opening for append leaves an existing file as it is, and fails if it is not writable.
    if (existsSync(f)) closeSync(openSync(f, "a"));
  });
  if (no) throw new OutputError(file, no.reason, { cause: no.cause });
}
