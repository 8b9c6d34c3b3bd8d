import { describe, expect, it } from "vitest";
import { FakeClock } from "../clock.js";
import type { ProcessControl } from "./process-control.js";
import type { FaultProxy } from "./proxy.js";
import { faultApplicabilityError, FaultScheduler, hostPort, type SleepUntil } from "./scheduler.js";
import type { FaultSpec } from "./types.js";

/** Sleeps that end when the test moves the FakeClock past them. */
class FakeTimers {
  private sleeping: Array<{ untilUs: number; resolve: () => void }> = [];
  constructor(readonly clock: FakeClock) {}
  readonly sleep: SleepUntil = (untilUs, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted || untilUs <= this.clock.nowUs()) return resolve();
      const entry = { untilUs, resolve };
      this.sleeping.push(entry);
      signal.addEventListener("abort", () => {
        this.sleeping = this.sleeping.filter((e) => e !== entry);
        resolve();
      }, { once: true });
    });
  /** Moves the clock to `sec` seconds after `baseUs` in steps, waking each sleeper on its time. */
  async advanceTo(baseUs: number, sec: number): Promise<void> {
    const targetUs = baseUs + sec * 1e6;
    for (;;) {
      await settleMicrotasks();
      const next = this.sleeping.filter((e) => e.untilUs <= targetUs).sort((a, b) => a.untilUs - b.untilUs)[0];
      if (!next) break;
      this.clock.setUs(Math.max(this.clock.nowUs(), next.untilUs));
      this.sleeping = this.sleeping.filter((e) => e !== next);
      next.resolve();
    }
    this.clock.setUs(Math.max(this.clock.nowUs(), targetUs));
    await settleMicrotasks();
  }
}

async function settleMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

function fakeProxy(clock: FakeClock, log: string[]): FaultProxy {
  const t = () => ((clock.nowUs() - 1_000_000) / 1e6).toFixed(1);
  return {
    host: "127.0.0.1",
    port: 1,
    cut: () => void log.push(`${t()} cut`),
    stall: (on) => void log.push(`${t()} stall ${on}`),
    partition: (on) => void log.push(`${t()} partition ${on}`),
    setLatencyMs: (ms) => void log.push(`${t()} latency ${ms}`),
    retarget: (a) => void log.push(`${t()} retarget ${a.host}:${a.port}`),
    openConnections: () => 3,
    close: async () => undefined,
  };
}

function fakeProcess(clock: FakeClock, log: string[], timers: FakeTimers, startTakesSec = 0.5): ProcessControl {
  const t = () => ((clock.nowUs() - 1_000_000) / 1e6).toFixed(1);
  let pid: number | undefined = 100;
  let port = 5000;
  return {
    name: "fake broker",
    pid: () => pid,
    address: () => `127.0.0.1:${port}`,
    kill: async () => {
      log.push(`${t()} SIGKILL ${pid}`);
      pid = undefined;
    },
    terminate: async () => {
      log.push(`${t()} SIGTERM ${pid}`);
      pid = undefined;
    },
    start: async () => {
      // Starting takes run time: it resolves once the clock has moved on.
      await timers.sleep(clock.nowUs() + startTakesSec * 1e6, new AbortController().signal);
      pid = 200 + log.length;
      port += 1;
      log.push(`${t()} started ${pid}`);
      return `127.0.0.1:${port}`;
    },
    pause: async () => void log.push(`${t()} SIGSTOP ${pid}`),
    resume: async () => void log.push(`${t()} SIGCONT ${pid}`),
  };
}

function setup(specs: FaultSpec[], measureSeconds = 30) {
  const clock = new FakeClock(1_000_000);
  const timers = new FakeTimers(clock);
  const log: string[] = [];
  const runStartUs = clock.nowUs();
  const scheduler = new FaultScheduler({
    specs,
    clock,
    runStartUs,
    measureSeconds,
    proxy: fakeProxy(clock, log),
    process: fakeProcess(clock, log, timers),
    slowConsumer: (sub, reading) => void log.push(`${((clock.nowUs() - runStartUs) / 1e6).toFixed(1)} subscription ${sub} reading ${reading}`),
    sleepUntil: timers.sleep,
  });
  return { clock, timers, log, scheduler, runStartUs };
}

describe("fault scheduler", () => {
  it("applies network faults on time after the measure start and lifts them after their duration", async () => {
    const { timers, log, scheduler, runStartUs } = setup([
      { kind: "stall", atSeconds: 2, durationSeconds: 1 },
      { kind: "cut", atSeconds: 5 },
      { kind: "latency", atSeconds: 7, durationSeconds: 2, delayMs: 40 },
      { kind: "partition", atSeconds: 10, durationSeconds: 1.5 },
    ]);
    // The measure phase starts 4 s into the run.
    await timers.advanceTo(runStartUs, 4);
    scheduler.start(runStartUs + 4e6);
    await timers.advanceTo(runStartUs, 5.9);
    expect(log).toEqual([]);
    await timers.advanceTo(runStartUs, 20);
    expect(log).toEqual(["6.0 stall true", "7.0 stall false", "9.0 cut", "11.0 latency 40", "13.0 latency 0", "14.0 partition true", "15.5 partition false"]);
    const events = await scheduler.stop();
    expect(events.map((e) => [e.kind, e.startSec, e.endSec])).toEqual([
      ["stall", 6, 7],
      ["cut", 9, 9],
      ["latency", 11, 13],
      ["partition", 14, 15.5],
    ]);
    expect(events[1]!.detail).toBe("reset 3 connections");
    expect(scheduler.failure()).toBeUndefined();
  });

  it("kills the broker every period, restarts it after downFor and retargets the proxy", async () => {
    const { timers, log, scheduler, runStartUs } = setup([{ kind: "kill", atSeconds: 5, everySeconds: 5, downForSeconds: 1 }], 16);
    scheduler.start(runStartUs);
    await timers.advanceTo(runStartUs, 30);
    expect(log).toEqual([
      "5.0 SIGKILL 100",
      "6.5 started 201",
      "6.5 retarget 127.0.0.1:5001",
      "10.0 SIGKILL 201",
      "11.5 started 204",
      "11.5 retarget 127.0.0.1:5002",
      "15.0 SIGKILL 204",
      "16.5 started 207",
      "16.5 retarget 127.0.0.1:5003",
    ]);
    const events = await scheduler.stop();
    expect(events.map((e) => [e.occurrence, e.startSec, e.endSec])).toEqual([
      [0, 5, 6.5],
      [1, 10, 11.5],
      [2, 15, 16.5],
    ]);
    expect(events[0]!.detail).toBe("SIGKILL fake broker pid 100; restarted as pid 201 at 127.0.0.1:5001 after 1.5 s down");
  });

  it("pauses and resumes by signal, restarts with SIGTERM, and stops a slow consumer", async () => {
    const { timers, log, scheduler, runStartUs } = setup([
      { kind: "pause", atSeconds: 1, durationSeconds: 2 },
      { kind: "restart", atSeconds: 5 },
      { kind: "slow-consumer", atSeconds: 8, durationSeconds: 3, subscription: 1 },
    ]);
    scheduler.start(runStartUs);
    await timers.advanceTo(runStartUs, 20);
    expect(log).toEqual(["1.0 SIGSTOP 100", "3.0 SIGCONT 100", "5.0 SIGTERM 100", "5.5 started 203", "5.5 retarget 127.0.0.1:5001", "8.0 subscription 1 reading false", "11.0 subscription 1 reading true"]);
    const events = await scheduler.stop();
    expect(events.map((e) => [e.kind, e.endSec])).toEqual([
      ["pause", 3],
      ["restart", 5.5],
      ["slow-consumer", 11],
    ]);
  });

  it("settle drops occurrences not started and waits for the ones in progress", async () => {
    const { timers, log, scheduler, runStartUs } = setup([{ kind: "stall", atSeconds: 1, everySeconds: 4, durationSeconds: 2 }]);
    scheduler.start(runStartUs);
    await timers.advanceTo(runStartUs, 2);
    let settled = false;
    const settling = scheduler.settle().then(() => (settled = true));
    await timers.advanceTo(runStartUs, 2.5);
    expect(settled).toBe(false);
    await timers.advanceTo(runStartUs, 30);
    await settling;
    expect(log).toEqual(["1.0 stall true", "3.0 stall false"]);
    expect((await scheduler.stop()).map((e) => e.endSec)).toEqual([3]);
  });

  it("stop lifts a fault in progress at once and leaves its endSec null", async () => {
    const { timers, log, scheduler, runStartUs } = setup([{ kind: "partition", atSeconds: 1, durationSeconds: 10 }]);
    scheduler.start(runStartUs);
    await timers.advanceTo(runStartUs, 2);
    const events = await scheduler.stop();
    expect(log).toEqual(["1.0 partition true", "2.0 partition false"]);
    expect(events[0]!.endSec).toBeNull();
  });

  it("records a fault that could not be applied as an error", async () => {
    const clock = new FakeClock();
    const timers = new FakeTimers(clock);
    const scheduler = new FaultScheduler({ specs: [{ kind: "cut", atSeconds: 1 }], clock, runStartUs: clock.nowUs(), measureSeconds: 10, sleepUntil: timers.sleep });
    scheduler.start(clock.nowUs());
    await timers.advanceTo(clock.nowUs(), 2);
    const events = await scheduler.stop();
    expect(events[0]!.error).toBe("no proxy in this run");
    expect(scheduler.failure()).toBe("faults[0] (cut) occurrence 0: no proxy in this run");
  });

  it("says before the run which fault cannot apply and why", () => {
    const specs: FaultSpec[] = [{ kind: "cut", atSeconds: 1 }, { kind: "kill", atSeconds: 2, downForSeconds: 1 }];
    expect(faultApplicabilityError(specs, { proxy: true, process: false, slowConsumer: true, processWhy: "--target: the harness did not start the broker and has no way to restart it" })).toBe(
      "faults[1] (kill) cannot apply: --target: the harness did not start the broker and has no way to restart it",
    );
    expect(faultApplicabilityError(specs, { proxy: true, process: true, slowConsumer: false })).toBeUndefined();
    expect(faultApplicabilityError([{ kind: "slow-consumer", atSeconds: 1, durationSeconds: 1, subscription: 0 }], { proxy: true, process: true, slowConsumer: false, slowConsumerWhy: "driver nats cannot" })).toMatch(/slow-consumer\) cannot apply: driver nats cannot/);
    expect(hostPort("[::1]:4222")).toEqual({ host: "::1", port: 4222 });
  });
});
