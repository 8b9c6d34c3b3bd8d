/**
 * The generator's own load over the part of a run that matters (measure start to drain end):
 * CPU seconds and share of one core, and event-loop delay (p99, max). The generator-bound
 * verdict (docs/loadgen.md, "Generator-bound verdict") judges these figures.
 *
 * CPU: in a worker thread, that thread's own CPU time from /proc/thread-self/stat (Linux; clock
 * ticks of 10 ms, so a 2 s window is exact to about 1%); in the one-process mode (and off
 * Linux), process.cpuUsage() (every thread of the process: the JS thread, GC helpers, libuv).
 * Event-loop delay: monitorEventLoopDelay of this thread's loop, less its 10 ms resolution.
 * Loop utilization: performance.eventLoopUtilization() of this thread, the share of the window
 * the loop was not waiting for I/O; a thread that was runnable but descheduled (a busy
 * machine) counts as busy, which is right for the verdict: the generator did not keep up.
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay, performance, type EventLoopUtilization } from "node:perf_hooks";
import { isMainThread } from "node:worker_threads";
import type { Clock } from "../clock.js";

export interface GeneratorUsage {
  /** CPU seconds used in the window (user + system). */
  cpuSeconds: number;
  /** Wall seconds of the window. */
  wallSeconds: number;
  /** cpuSeconds / wallSeconds: 1 = one core busy the whole window. */
  cpuShare: number;
  /** Event-loop utilization over the window, 0..1 (1 = the loop never waited for I/O). */
  loopUtilization: number;
  /** Event-loop delay beyond the monitor's resolution, ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Where the CPU figure comes from: this thread, or the whole process. */
  cpuSource: "thread" | "process";
}

/** Linux clock ticks per second (USER_HZ); 100 on every mainstream kernel build. */
const USER_HZ = 100;

/** CPU µs of this thread, if the platform says (Linux /proc/thread-self). */
export function threadCpuUs(): number | undefined {
  try {
    const stat = readFileSync("/proc/thread-self/stat", "utf8");
    // Fields after the command name (which may hold spaces) in parentheses: state is [0],
    // utime [11], stime [12] (proc(5) fields 14 and 15).
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(rest[11]) + Number(rest[12]);
    return Number.isFinite(ticks) ? (ticks * 1e6) / USER_HZ : undefined;
  } catch {
    return undefined;
  }
}

/** The CPU source a worker thread uses (its own thread), or the process's in the main thread. */
export function cpuSource(): { read: () => number; source: GeneratorUsage["cpuSource"] } {
  if (!isMainThread && threadCpuUs() !== undefined) return { read: () => threadCpuUs() ?? 0, source: "thread" };
  return {
    read: () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
    source: "process",
  };
}

const RESOLUTION_MS = 10;

/** Measures one window: `start()`, then `stop()` returns the usage since. */
export class GeneratorMeter {
  private readonly cpu = cpuSource();
  private readonly loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  private startCpuUs = 0;
  private startUs = 0;
  private startElu: EventLoopUtilization | undefined;
  private started = false;

  constructor(private readonly clock: Clock) {}

  start(): void {
    this.startCpuUs = this.cpu.read();
    this.startUs = this.clock.nowUs();
    this.startElu = performance.eventLoopUtilization();
    this.loop.reset();
    this.loop.enable();
    this.started = true;
  }

  /** The window's usage (all zero if start() was never called). */
  stop(): GeneratorUsage {
    if (!this.started) return { cpuSeconds: 0, wallSeconds: 0, cpuShare: 0, loopUtilization: 0, loopDelayP99Ms: 0, loopDelayMaxMs: 0, cpuSource: this.cpu.source };
    this.loop.disable();
    this.started = false;
    const cpuSeconds = (this.cpu.read() - this.startCpuUs) / 1e6;
    const wallSeconds = Math.max(1e-6, (this.clock.nowUs() - this.startUs) / 1e6);
    const beyond = (ns: number) => (this.loop.count === 0 ? 0 : Math.max(0, round2(ns / 1e6 - RESOLUTION_MS)));
    return {
      cpuSeconds: round3(cpuSeconds),
      wallSeconds: round3(wallSeconds),
      cpuShare: round3(cpuSeconds / wallSeconds),
      loopUtilization: round3(performance.eventLoopUtilization(this.startElu).utilization),
      loopDelayP99Ms: beyond(this.loop.percentile(99)),
      loopDelayMaxMs: beyond(this.loop.max),
      cpuSource: this.cpu.source,
    };
  }
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
