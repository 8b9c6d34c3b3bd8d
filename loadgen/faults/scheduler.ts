/**
 * The fault scheduler: applies a scenario's faults on the run clock, once the measure phase has
 * started, through the proxy (network faults), the process control (process faults) and a hook
 * into the consumers (slow-consumer), and records what happened as FaultEvent[] (types.ts).
 * Each occurrence runs on its own: wait for its start, apply, wait for its end, lift.
 * docs/faults.md, "The schedule".
 */
import type { Clock } from "../clock.js";
import type { FaultProxy } from "./proxy.js";
import type { ProcessControl } from "./process-control.js";
import { occurrenceStarts } from "./spec.js";
import { NETWORK_FAULTS, PROCESS_FAULTS, type FaultEvent, type FaultKind, type FaultSpec } from "./types.js";

/** Sleeps until the monotonic time `untilUs` of the run clock, or until `signal` aborts. */
export type SleepUntil = (untilUs: number, signal: AbortSignal) => Promise<void>;

export interface FaultSchedulerOptions {
  specs: readonly FaultSpec[];
  clock: Clock;
  /** Monotonic µs of the run's start: FaultEvent times are seconds since then. */
  runStartUs: number;
  /** The planned length of the measure phase: occurrences start inside it. */
  measureSeconds: number;
  proxy?: FaultProxy;
  process?: ProcessControl;
  /** slow-consumer: stop (`reading` false) or resume reading the subscription with this index. */
  slowConsumer?: (subscription: number, reading: boolean) => Promise<void> | void;
  /** Told of each event as it starts and ends (progress lines). */
  onEvent?: (event: FaultEvent) => void;
  /** Default: timers on the clock (a real clock). Tests pass one driven by a FakeClock. */
  sleepUntil?: SleepUntil;
}

/** Why a fault cannot apply with what the run has, or undefined when every one can. */
export function faultApplicabilityError(specs: readonly FaultSpec[], has: { proxy: boolean; process: boolean; slowConsumer: boolean; processWhy?: string; slowConsumerWhy?: string }): string | undefined {
  for (const [i, f] of specs.entries()) {
    if ((PROCESS_FAULTS as readonly FaultKind[]).includes(f.kind) && !has.process) return `faults[${i}] (${f.kind}) cannot apply: ${has.processWhy ?? "the harness did not start the broker, so it cannot signal or restart it"}`;
    if ((NETWORK_FAULTS as readonly FaultKind[]).includes(f.kind) && !has.proxy) return `faults[${i}] (${f.kind}) cannot apply: no fault proxy in front of the broker`;
    if (f.kind === "slow-consumer" && !has.slowConsumer) return `faults[${i}] (slow-consumer) cannot apply: ${has.slowConsumerWhy ?? "the driver's consumers cannot stop reading"}`;
  }
  return undefined;
}

export const timerSleep =
  (clock: Clock): SleepUntil =>
  (untilUs, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      let timer: NodeJS.Timeout;
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const arm = (): void => {
        const leftMs = (untilUs - clock.nowUs()) / 1000;
        if (leftMs <= 0) return done();
        timer = setTimeout(arm, Math.max(1, Math.ceil(leftMs)));
      };
      signal.addEventListener("abort", done, { once: true });
      arm();
    });

interface Occurrence {
  spec: number;
  occurrence: number;
  startUs: number;
}

export class FaultScheduler {
  private readonly events: FaultEvent[] = [];
  private readonly running = new Set<Promise<void>>();
  /** Aborted when no new occurrence may start (the measure phase ended). */
  private readonly noNewStarts = new AbortController();
  /** Aborted when faults in progress must be lifted now (teardown, interrupt). */
  private readonly liftNow = new AbortController();
  private readonly sleep: SleepUntil;
  private started = false;

  constructor(private readonly o: FaultSchedulerOptions) {
    this.sleep = o.sleepUntil ?? timerSleep(o.clock);
  }

  /** Schedules every occurrence relative to `measureStartUs` (monotonic µs of the run clock). */
  start(measureStartUs: number): void {
    if (this.started) throw new Error("fault scheduler started twice");
    this.started = true;
    const all: Occurrence[] = [];
    this.o.specs.forEach((spec, i) => occurrenceStarts(spec, this.o.measureSeconds).forEach((at, k) => all.push({ spec: i, occurrence: k, startUs: measureStartUs + at * 1e6 })));
    for (const occ of all) {
      const p = this.runOccurrence(occ).finally(() => this.running.delete(p));
      this.running.add(p);
    }
  }

  /** What happened so far, in start order. */
  faultEvents(): FaultEvent[] {
    return [...this.events].sort((a, b) => a.startSec - b.startSec);
  }

  /** The first fault that could not be applied, if any. */
  failure(): string | undefined {
    const e = this.events.find((x) => x.error !== undefined);
    return e ? `faults[${e.spec}] (${e.kind}) occurrence ${e.occurrence}: ${e.error}` : undefined;
  }

  /**
   * The measure phase ended: occurrences not yet started are dropped; resolves once the ones in
   * progress have ended on their own (their durations are bounded), so the drain sees a healed broker.
   */
  async settle(): Promise<void> {
    this.noNewStarts.abort();
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  /** Lifts whatever is still in progress at once (its endSec stays null) and returns the events. */
  async stop(): Promise<FaultEvent[]> {
    this.noNewStarts.abort();
    this.liftNow.abort();
    while (this.running.size > 0) await Promise.all([...this.running]);
    return this.faultEvents();
  }

  private sec(us: number): number {
    return (us - this.o.runStartUs) / 1e6;
  }

  private async runOccurrence(occ: Occurrence): Promise<void> {
    await this.sleep(occ.startUs, this.noNewStarts.signal);
    if (this.noNewStarts.signal.aborted) return;
    const spec = this.o.specs[occ.spec]!;
    const event: FaultEvent = { spec: occ.spec, kind: spec.kind, occurrence: occ.occurrence, startSec: this.sec(this.o.clock.nowUs()), endSec: null, detail: "" };
    this.events.push(event);
    const endOf = (fromUs: number, seconds: number | undefined): number => fromUs + (seconds ?? 0) * 1e6;
    // Holds for `seconds` unless the run is lifting everything; returns true if it ran its course.
    const hold = async (seconds: number | undefined): Promise<boolean> => {
      await this.sleep(endOf(this.o.clock.nowUs(), seconds), this.liftNow.signal);
      return !this.liftNow.signal.aborted;
    };
    const ended = (natural: boolean): void => {
      event.endSec = natural ? this.sec(this.o.clock.nowUs()) : null;
      this.o.onEvent?.(event);
    };
    try {
      switch (spec.kind) {
        case "cut": {
          const proxy = this.need(this.o.proxy, "proxy");
          const n = proxy.openConnections();
          proxy.cut();
          event.detail = `reset ${n} connection${n === 1 ? "" : "s"}`;
          event.endSec = event.startSec;
          this.o.onEvent?.(event);
          return;
        }
        case "stall":
        case "partition": {
          const proxy = this.need(this.o.proxy, "proxy");
          const set = (on: boolean) => (spec.kind === "stall" ? proxy.stall(on) : proxy.partition(on));
          set(true);
          event.detail = `${spec.kind === "stall" ? "held every byte" : "black-holed every connection"} for ${spec.durationSeconds} s (${proxy.openConnections()} open)`;
          this.o.onEvent?.(event);
          const natural = await hold(spec.durationSeconds);
          set(false);
          ended(natural);
          return;
        }
        case "latency": {
          const proxy = this.need(this.o.proxy, "proxy");
          proxy.setLatencyMs(spec.delayMs ?? 0);
          event.detail = `+${spec.delayMs} ms each direction for ${spec.durationSeconds} s`;
          this.o.onEvent?.(event);
          const natural = await hold(spec.durationSeconds);
          proxy.setLatencyMs(0);
          ended(natural);
          return;
        }
        case "pause": {
          const proc = this.need(this.o.process, "process control");
          const pid = proc.pid();
          await proc.pause();
          event.detail = `SIGSTOP ${proc.name} pid ${pid}`;
          this.o.onEvent?.(event);
          const natural = await hold(spec.durationSeconds);
          await proc.resume();
          event.detail += `; SIGCONT after ${(this.sec(this.o.clock.nowUs()) - event.startSec).toFixed(1)} s`;
          ended(natural);
          return;
        }
        case "kill":
        case "restart": {
          const proc = this.need(this.o.process, "process control");
          const pid = proc.pid();
          if (spec.kind === "kill") await proc.kill();
          else await proc.terminate();
          const downAtSec = this.sec(this.o.clock.nowUs());
          event.detail = `${spec.kind === "kill" ? "SIGKILL" : "SIGTERM"} ${proc.name} pid ${pid}`;
          this.o.onEvent?.(event);
          // The broker is brought back even when the run is ending: teardown needs it (durable data, final stats).
          if (spec.kind === "kill") await hold(spec.downForSeconds);
          const address = await proc.start();
          this.o.proxy?.retarget(hostPort(address));
          const upSec = this.sec(this.o.clock.nowUs());
          event.detail += `; restarted as pid ${proc.pid()} at ${address} after ${(upSec - downAtSec).toFixed(1)} s down`;
          ended(true);
          return;
        }
        case "slow-consumer": {
          const hook = this.need(this.o.slowConsumer, "slow-consumer hook");
          const sub = spec.subscription ?? 0;
          await hook(sub, false);
          event.detail = `subscription ${sub} stopped reading for ${spec.durationSeconds} s`;
          this.o.onEvent?.(event);
          const natural = await hold(spec.durationSeconds);
          await hook(sub, true);
          ended(natural);
          return;
        }
      }
    } catch (err) {
      event.error = err instanceof Error ? err.message : String(err);
      this.o.onEvent?.(event);
    }
  }

  private need<T>(x: T | undefined, what: string): T {
    if (x === undefined) throw new Error(`no ${what} in this run`);
    return x;
  }
}

/** `host:port` (IPv6 in brackets or not) into its parts. */
export function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(":");
  const host = address.slice(0, i).replace(/^\[|\]$/g, "");
  return { host, port: Number(address.slice(i + 1)) };
}
