import { readFileSync, readdirSync } from "node:fs";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { healthCheck, Waiters } from "../../test/support/index.js";
import { systemClock } from "../clock.js";
import { startEmbeddedBroker, startNatsServer } from "../drivers/index.js";
import { startFaultProxy } from "./proxy.js";
import { FaultScheduler, hostPort } from "./scheduler.js";
import type { FaultEvent, FaultSpec } from "./types.js";

/** The process state letter from /proc (R, S, T = stopped, ...), or "gone". */
function procState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]!;
  } catch {
    return "gone";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once a NATS server answers INFO on `port`. */
function natsInfo(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("data", (d: Buffer) => {
      s.destroy();
      resolve(d.toString().split(" ")[0]!);
    });
    s.once("error", reject);
  });
}

describe("process faults on the embedded reference broker", () => {
  it("kills, restarts on the same data directory and pauses the durable broker on schedule; it comes back", async () => {
    const broker = await startEmbeddedBroker({ storage: "durable", fsync: false, args: [] });
    const control = broker.control!;
    const proxy = await startFaultProxy({ target: hostPort(broker.address) });
    const firstPid = broker.pid;
    const waiters = new Waiters();
    const seen: FaultEvent[] = [];
    const observed: { stateDuringPause?: string; pausedPid?: number } = {};
    try {
      expect(await healthCheck(`127.0.0.1:${proxy.port}`)).toBe("SERVING");
      const dataFiles = readdirSync(broker.dataDir!);
      const runStartUs = systemClock.nowUs();
      const schedule = (specs: FaultSpec[]) =>
        new FaultScheduler({
          specs,
          clock: systemClock,
          runStartUs,
          measureSeconds: 10,
          proxy,
          process: control,
          onEvent: (e) => {
            seen.push({ ...e });
            if (e.kind === "pause" && e.endSec === null) {
              observed.pausedPid = control.pid();
              observed.stateDuringPause = procState(control.pid() ?? 0);
            }
            waiters.notify();
          },
        });
      const kills = schedule([{ kind: "kill", atSeconds: 0.2, downForSeconds: 0.3 }]);
      kills.start(runStartUs);
      // Generous: a broker start under tsx takes seconds, and many on a busy machine.
      await waiters.until(() => seen.some((e) => e.kind === "kill" && (e.endSec !== null || e.error !== undefined)), "the killed broker to be back", 150_000);
      expect(seen.find((e) => e.error !== undefined)).toBeUndefined();
      expect(alive(firstPid)).toBe(false);
      const secondPid = control.pid();
      expect(secondPid).toBeTypeOf("number");
      expect(secondPid).not.toBe(firstPid);
      // Through the proxy (retargeted to the new port) the broker answers, on the same data directory.
      expect(await healthCheck(`127.0.0.1:${proxy.port}`)).toBe("SERVING");
      expect(readdirSync(broker.dataDir!)).toEqual(expect.arrayContaining(dataFiles));
      expect(broker.endedProcesses!().map((p) => p.pid)).toEqual([firstPid]);
      const [kill] = await kills.stop();
      expect(kill!.startSec).toBeGreaterThanOrEqual(0.2);
      expect(kill!.endSec! - kill!.startSec).toBeGreaterThanOrEqual(0.3);
      expect(kill!.detail).toMatch(new RegExp(`^SIGKILL ratatoskr broker pid ${firstPid}; restarted as pid ${secondPid} at 127\\.0\\.0\\.1:\\d+ after \\d+\\.\\d s down$`));
      expect(kills.failure()).toBeUndefined();

      // A pause of the restarted broker, scheduled from now.
      const pauseAt = (systemClock.nowUs() - runStartUs) / 1e6 + 0.2;
      const pauses = schedule([{ kind: "pause", atSeconds: pauseAt, durationSeconds: 0.5 }]);
      pauses.start(runStartUs);
      await waiters.until(() => seen.some((e) => e.kind === "pause" && e.endSec !== null), "the pause to end", 30_000);
      expect(observed).toEqual({ pausedPid: secondPid, stateDuringPause: "T" });
      expect(procState(secondPid!)).not.toBe("T");
      expect(await healthCheck(`127.0.0.1:${proxy.port}`)).toBe("SERVING");
      const [pause] = await pauses.stop();
      expect(pause!.startSec).toBeGreaterThanOrEqual(pauseAt);
      expect(pause!.endSec! - pause!.startSec).toBeGreaterThanOrEqual(0.5);
      const scheduler = pauses;
      expect(scheduler.failure()).toBeUndefined();
    } finally {
      await proxy.close();
      await broker.stop();
    }
    expect(alive(control.pid() ?? firstPid)).toBe(false);
  }, 240_000);

  it("stop() ends a paused broker", async () => {
    const broker = await startEmbeddedBroker({ storage: "memory", fsync: false, args: [] });
    await broker.control!.pause();
    expect(procState(broker.pid)).toBe("T");
    await broker.stop();
    expect(alive(broker.pid)).toBe(false);
  }, 60_000);
});

describe("process faults on the embedded nats-server", () => {
  it("kills and restarts it on the same JetStream store directory, and pauses it", async () => {
    const server = await startNatsServer();
    const control = server.control!;
    try {
      const firstPid = server.pid;
      expect(await natsInfo(hostPort(server.address).port)).toBe("INFO");
      await control.kill();
      expect(alive(firstPid)).toBe(false);
      expect(control.pid()).toBeUndefined();
      const address = await control.start();
      expect(control.pid()).not.toBe(firstPid);
      expect(server.args).toEqual(expect.arrayContaining(["-sd", server.storeDir]));
      expect(readFileSync(`/proc/${control.pid()}/cmdline`, "utf8")).toContain(server.storeDir);
      expect(await natsInfo(hostPort(address).port)).toBe("INFO");
      await control.pause();
      expect(procState(control.pid()!)).toBe("T");
      await control.resume();
      expect(procState(control.pid()!)).not.toBe("T");
      await control.terminate();
      expect(control.pid()).toBeUndefined();
      expect(server.endedProcesses!().length).toBe(2);
      await control.start();
    } finally {
      await server.stop();
    }
  });
});
