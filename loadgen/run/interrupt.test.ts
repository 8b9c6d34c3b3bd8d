import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { InterruptedError } from "../errors.js";
import { buildPlan, parseScenario, Progress, runScenario } from "./index.js";

// An interrupt (the CLI's Ctrl-C) reaches the runner as an AbortSignal.
function progressAborting(controller: AbortController, atPhase: string): Progress {
  return new Progress({
    write(s: string) {
      if (s.startsWith(`phase ${atPhase} `)) controller.abort("SIGINT");
      return true;
    },
  });
}

describe("runScenario with an abort signal", () => {
  const scenario = parseScenario("name: interrupt\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 2\ndurationSeconds: 600\nrate: 2000\nbatchSize: 10\ndrainTimeoutSeconds: 600\n", "i.yaml");
  const plan = buildPlan(scenario, "i1", { index: 0, count: 1 });

  it("stops a running 600 s measure phase when aborted, drains and says it was interrupted", async () => {
    const controller = new AbortController();
    // Aborts from inside the measure phase, after its 50th batch.
    class AbortingDriver extends FakeDriver {
      batches = 0;
      override publish(...args: Parameters<FakeDriver["publish"]>) {
        if (++this.batches === 50) controller.abort("SIGINT");
        return super.publish(...args);
      }
    }
    const driver = new AbortingDriver();
    const outcome = await runScenario(scenario, plan, driver, { clock: systemClock, signal: controller.signal, interruptDrainMs: 500 });
    expect(outcome.interrupted).toBe(true);
    expect(outcome.phases.map((p) => p.phase)).toEqual(["connect", "measure", "drain", "teardown"]);
    // Producers stopped at the abort: at most the batches of the tick in progress followed (2 producers × 4 in flight).
    expect(driver.batches).toBeLessThanOrEqual(50 + 2 * 4);
    expect(outcome.recorder.measuredPublished).toBeGreaterThan(0);
    expect(outcome.accounting.delivered).toBe(outcome.accounting.expected);
    outcome.recorder.destroy();
  });

  it("skips the measure phase when aborted as it begins", async () => {
    const controller = new AbortController();
    const outcome = await runScenario(scenario, plan, new FakeDriver(), { clock: systemClock, signal: controller.signal, progress: progressAborting(controller, "measure"), interruptDrainMs: 500 });
    expect(outcome.interrupted).toBe(true);
    expect(outcome.phases.map((p) => p.phase)).toEqual(["connect", "measure", "drain", "teardown"]);
    expect(outcome.accounting.delivered).toBe(outcome.accounting.expected);
    outcome.recorder.destroy();
  });

  it("throws InterruptedError when aborted before the measure phase", async () => {
    const controller = new AbortController();
    const warm = { ...scenario, warmupSeconds: 600 };
    await expect(runScenario(warm, plan, new FakeDriver(), { clock: systemClock, signal: controller.signal, progress: progressAborting(controller, "warmup") })).rejects.toBeInstanceOf(InterruptedError);
  });

  it("runs to the end without a signal's abort", async () => {
    const controller = new AbortController();
    const short = parseScenario("name: short\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 100\n", "s.yaml");
    const outcome = await runScenario(short, buildPlan(short, "s1", { index: 0, count: 1 }), new FakeDriver(), { clock: systemClock, signal: controller.signal });
    expect(outcome.interrupted).toBe(false);
    expect(outcome.accounting.delivered).toBe(100);
    outcome.recorder.destroy();
  });
});
