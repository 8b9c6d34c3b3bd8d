/**
 * Signals to an embedded server by PID, shared by the embedded-server modules (broker-process,
 * nats-server, rabbitmq-server, peer-server): stop by PID with a grace period, and for the
 * process faults SIGSTOP/SIGCONT that resolve once the kernel shows the new state.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Sends `sig` to the child by PID unless it has exited. */
export function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  if (!exited(child)) child.kill(sig);
}

/** SIGTERM by PID, SIGKILL after `graceMs`; resolves when the process has exited. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** Sends `sig` and resolves once the child has exited. */
export function signalAndWait(child: ChildProcess, sig: NodeJS.Signals): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill(sig);
  });
}

/** The state letter of /proc/<pid>/stat (T = stopped), or undefined without /proc. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

/**
 * SIGSTOP or SIGCONT, resolved once /proc shows the process stopped (or no longer stopped):
 * signal delivery is asynchronous, and a fault's start time is when the process stopped. No
 * event reports the state, so it is polled (every 2 ms, at most 2 s). Rejects when the process is down.
 */
export async function stopOrContinue(child: ChildProcess, sig: "SIGSTOP" | "SIGCONT", name: string): Promise<void> {
  if (exited(child)) throw new Error(`${name} is down (pid ${child.pid} exited): cannot ${sig === "SIGSTOP" ? "pause" : "resume"} it`);
  child.kill(sig);
  const pid = child.pid!;
  for (let i = 0; i < 1000; i++) {
    const state = procState(pid);
    if (state === undefined || (sig === "SIGSTOP") === (state === "T")) return;
    await new Promise<void>((r) => setTimeout(r, 2));
  }
  throw new Error(`${name} pid ${pid}: still ${sig === "SIGSTOP" ? "running" : "stopped"} 2 s after ${sig}`);
}
