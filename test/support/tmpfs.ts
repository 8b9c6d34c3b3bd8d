// A small tmpfs for disk-full tests. Mounting needs root (CAP_SYS_ADMIN); the unit tier runs as
// root under `npm test` on CI (docs/testing.md, "Disk-full tests"). Without it the test fails
// with this reason; it is never skipped.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Tmpfs {
  readonly path: string;
  /** Unmounts and removes the mount point. */
  remove(): void;
}

/** Mounts a tmpfs of `sizeBytes` on a fresh directory. Throws a clear reason when it cannot. */
export function mountTmpfs(sizeBytes: number): Tmpfs {
  if (process.getuid?.() !== 0) {
    throw new Error("this test mounts a tmpfs and must run as root (CAP_SYS_ADMIN); run the unit tier as root, as `npm test` does on CI");
  }
  const path = mkdtempSync(join(tmpdir(), "ratatoskr-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes}`, "tmpfs", path], { stdio: "pipe" });
  } catch (err) {
    rmSync(path, { recursive: true, force: true });
    const detail = err instanceof Error && "stderr" in err ? String((err as { stderr: unknown }).stderr).trim() : String(err);
    throw new Error(`cannot mount a tmpfs on ${path} (needs root with CAP_SYS_ADMIN): ${detail}`, { cause: err });
  }
  return {
    path,
    remove: () => {
      try {
        execFileSync("umount", [path], { stdio: "pipe" });
      } finally {
        rmSync(path, { recursive: true, force: true });
      }
    },
  };
}
