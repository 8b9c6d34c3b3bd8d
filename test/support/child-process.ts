// Test support (not a test file): child processes for the store's restart and crash tests.
// Lines from the child are observed as they arrive, so tests wait on conditions, not sleeps.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

export const REPO_ROOT = join(import.meta.dirname, "..", "..");

export interface Child {
  readonly proc: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves with the first stdout line that matches (rejects on exit or timeout). */
  waitForLine(match: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
}

/** Children still running; killed when this process exits (a timed-out test never reaches its cleanup). */
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const proc of live) proc.kill("SIGKILL");
});

/** Runs a TypeScript file (or `cli/main.ts` with arguments) under tsx, in the repository root. */
export function spawnTs(script: string, args: string[], options: { uid?: number; gid?: number } = {}): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    ...options,
  });
  live.add(proc);
  const stdout: string[] = [];
  const stderr: string[] = [];
  let waiters: Array<() => void> = [];
  let exitedWith: number | string | undefined;
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };
  lines(proc.stdout!, (l) => {
    stdout.push(l);
    notify();
  });
  lines(proc.stderr!, (l) => stderr.push(l));
  const exited = new Promise<number | string>((resolve) => {
    proc.on("exit", (code, signal) => {
      live.delete(proc);
      exitedWith = code ?? signal ?? -1;
      resolve(exitedWith);
      notify();
    });
  });
  return {
    proc,
    stdout,
    stderr,
    exited,
    kill: (signal) => {
      if (exitedWith === undefined) proc.kill(signal);
    },
    waitForLine: (match, what, timeoutMs = 20_000) =>
      new Promise<string>((resolve, reject) => {
        let seen = 0;
        const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}; stderr: ${stderr.join(" | ")}`)), timeoutMs);
        const done = (err: Error | undefined, line?: string): void => {
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== check);
          if (err) reject(err);
          else resolve(line!);
        };
        const check = (): void => {
          for (; seen < stdout.length; seen++) {
            if (match(stdout[seen]!)) return done(undefined, stdout[seen]);
          }
          if (exitedWith !== undefined) done(new Error(`process exited (${exitedWith}) before ${what}; stderr: ${stderr.join(" | ")}`));
        };
        waiters.push(check);
        check();
      }),
  };
}

function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buffered = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      onLine(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  });
  stream.on("end", () => {
    if (buffered !== "") onLine(buffered);
  });
}

/** Starts `ratatoskr broker` on 127.0.0.1:0; resolves once it logged "listening" with its address. */
export async function startCliBroker(args: string[]): Promise<{ child: Child; address: string }> {
  const child = spawnTs("cli/main.ts", ["broker", "--port", "0", "--log-level", "info", ...args]);
  // Generous: tsx compiles the broker at every start, and test machines can be busy.
  const line = await child.waitForLine((l) => l.includes('"listening"'), "the broker's listening line", 90_000).catch(async (err: unknown) => {
    child.kill("SIGKILL"); // never leave a half-started broker behind
    await child.exited;
    throw err;
  });
  const address = (JSON.parse(line) as { address: string }).address;
  return { child, address };
}
