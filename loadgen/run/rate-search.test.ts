import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { buildResult, captureEnvironment } from "../report/index.js";
import { buildPlan } from "./plan.js";
import { judgeStep, RateSearchPlanner, runRateSearch, slope, stepFigures, stepScenario as stepScenarioAt, type StepFigures } from "./rate-search.js";
import { runScenario } from "./runner.js";
import { parseScenario, searchSettings, type Scenario } from "./scenario.js";

const settings = searchSettings(parseScenario("name: s\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nrate: max\n", "s.yaml"));

/** Drive the planner against a broker that holds every rate up to `capacity`. */
function plannedRates(capacity: number, overrides: Partial<typeof settings> = {}): { rates: number[]; found: number | undefined; why: string } {
  const p = new RateSearchPlanner({ ...settings, ...overrides });
  const rates: number[] = [];
  for (let n = p.next(); n; n = p.next()) {
    rates.push(n.rate);
    p.record(n.rate, n.rate <= capacity);
  }
  return { rates, found: p.foundRate, why: p.stoppedBecause };
}

const steady: StepFigures = {
  offeredRate: 1000,
  achievedRate: 1000,
  deliveryRate: 2000,
  fanOut: 2,
  p50Us: 1000,
  p99Us: 3000,
  p99FirstHalfUs: 3000,
  p99SecondHalfUs: 3100,
  p99SlopeUsPerSec: 100,
  backlogSlope: 5,
  backlogEnd: 40,
  lagSlopeUsPerSec: 200,
  lagEndUs: 1500,
  lost: 0,
  publishErrors: 0,
  drainTimedOut: false,
};

describe("the rate: max planner", () => {
  it("ramps by the growth factor, then bisects to within the precision of the capacity", () => {
    const { rates, found, why } = plannedRates(7300);
    expect(rates.slice(0, 4)).toEqual([1000, 2000, 4000, 8000]);
    expect(rates[4]).toBe(6000); // halfway between 4000 (held) and 8000 (failed)
    expect(found).toBeLessThanOrEqual(7300);
    expect((7300 - found!) / found!).toBeLessThanOrEqual(settings.precision * 1.01 + 0.05);
    expect(why).toMatch(/within 5% of the lowest failing/);
  });

  it("steps down by the growth factor while no rate held", () => {
    const { rates, found } = plannedRates(300);
    expect(rates.slice(0, 3)).toEqual([1000, 500, 250]);
    expect(found).toBeGreaterThanOrEqual(250);
    expect(found).toBeLessThanOrEqual(300);
  });

  it("stops at maxRate when it holds, and after maxSteps", () => {
    expect(plannedRates(1e9, { maxRate: 3000 })).toMatchObject({ rates: [1000, 2000, 3000], found: 3000, why: "maxRate 3000 msg/s held" });
    const capped = plannedRates(1e9, { maxSteps: 3 });
    expect(capped.rates).toEqual([1000, 2000, 4000]);
    expect(capped.why).toBe("maxSteps (3) ran");
  });

  it("withdraws a found rate whose confirmation failed and searches below it", () => {
    const p = new RateSearchPlanner({ ...settings, precision: 0.05 });
    for (const [rate, held] of [[1000, true], [2000, true], [4000, false], [3000, true], [3500, false], [3250, true], [3375, false]] as const) {
      expect(p.next()?.rate).toBe(rate);
      p.record(rate, held);
    }
    expect(p.next()).toBeUndefined();
    expect(p.foundRate).toBe(3250);
    p.withdraw(3250);
    expect(p.foundRate).toBe(3000);
    expect(p.next()).toEqual({ rate: 3125, kind: "bisect" });
  });

  it("reports no rate when not even 1 msg/s holds", () => {
    const { found, why } = plannedRates(0, { maxSteps: 50 });
    expect(found).toBeUndefined();
    expect(why).toMatch(/no rate of 1 msg\/s or more held|no whole rate/);
  });
});

describe("a step's verdict", () => {
  it("holds for a steady step and names every condition a failing one broke", () => {
    expect(judgeStep(steady, settings)).toEqual([]);
    expect(judgeStep({ ...steady, achievedRate: 900 }, settings).join()).toMatch(/published 90.0% of the offered rate/);
    expect(judgeStep({ ...steady, deliveryRate: 1800 }, settings).join()).toMatch(/delivered 90.0% of the offered deliveries/);
    expect(judgeStep({ ...steady, backlogSlope: 150 }, settings).join()).toMatch(/backlog grew 150 deliveries\/s \(> 1.0% of 2000\)/);
    expect(judgeStep({ ...steady, lagSlopeUsPerSec: 40_000, lagEndUs: 400_000 }, settings).join()).toMatch(/producers fell behind their schedule: lateness p99 grew 40 ms per second \(> 10 ms\/s\), to 400 ms/);
    expect(judgeStep({ ...steady, p99SlopeUsPerSec: 25_000 }, settings).join()).toMatch(/e2e p99 grew 25 ms per second \(> 10 ms\/s\)/);
    // The halves test only when latencyGrowthMax is set: one slow second in the second half is not a trend by default.
    expect(judgeStep({ ...steady, p99FirstHalfUs: 12_000, p99SecondHalfUs: 30_000 }, settings)).toEqual([]);
    expect(judgeStep({ ...steady, p99FirstHalfUs: 12_000, p99SecondHalfUs: 30_000 }, { ...settings, latencyGrowthMax: 2 }).join()).toMatch(/e2e p99 grew from 12 ms/);
    expect(judgeStep({ ...steady, drainTimedOut: true, lost: 3, publishErrors: 2 }, settings)).toHaveLength(3);
    expect(judgeStep(steady, { ...settings, p99MaxMs: 2 }).join()).toMatch(/p99MaxMs 2 ms/);
  });

  it("fails a step 4% behind its schedule although its rates are within the tolerance: its queues grow", () => {
    // 96% published and delivered: the rate conditions hold, but the lag gains 40 ms every second
    // and the backlog 2% of the offered deliveries every second; neither is bounded.
    const behind = { ...steady, achievedRate: 960, deliveryRate: 1920, lagSlopeUsPerSec: 40_000, backlogSlope: 40 };
    const reasons = judgeStep(behind, settings);
    expect(reasons.join()).not.toMatch(/published|delivered/);
    expect(reasons).toHaveLength(2);
    // Queue growth under the limit (1% of the offered work per second) holds.
    expect(judgeStep({ ...behind, lagSlopeUsPerSec: 9_000, backlogSlope: 19 }, settings)).toEqual([]);
    // A result written before the lag figure is judged without it.
    const { lagSlopeUsPerSec: _l, lagEndUs: _e, ...old } = steady;
    expect(judgeStep(old, settings)).toEqual([]);
  });

  it("lets p99 grow under the floor (sub-millisecond noise is not a trend)", () => {
    expect(judgeStep({ ...steady, p99FirstHalfUs: 500, p99SecondHalfUs: 19_000 }, { ...settings, latencyGrowthMax: 2 })).toEqual([]);
  });

  it("runs the confirmation step for confirmSeconds, 3 × stepSeconds unless set", () => {
    const s = searchScenario();
    expect(stepScenarioAt(s, 1000).durationSeconds).toBe(2);
    expect(stepScenarioAt(s, 1000, "confirm").durationSeconds).toBe(6);
    expect(stepScenarioAt({ ...s, search: { ...searchSettings(s), confirmSeconds: 9 } }, 1000, "confirm").durationSeconds).toBe(9);
  });

  it("fits the backlog slope by least squares", () => {
    expect(slope([[0, 10], [1, 30], [2, 50], [3, 70]])).toBeCloseTo(20, 9);
    expect(slope([[0, 5], [1, 5], [2, 5]])).toBe(0);
  });
});

// The fake driver with a capacity: it hands over at most `deliveriesPerSecond` deliveries a second.
// Off the search's grid (1000, 2000, 4000, 3000, 3500): the rate found has a margin below it.
const CAPACITY = 3700;

function searchScenario(extra = ""): Scenario {
  return parseScenario(
    `name: rs-test\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 2\nrate: max\nbatchSize: 20\nlingerMs: 2\n` +
      // Latency trends are judged loosely here: this test is about the capacity, on a busy machine.
      `search: {stepSeconds: 2, warmupSeconds: 0.5, startRate: 1000, precision: 0.15, maxSteps: 6, drainTimeoutSeconds: 3, latencyGrowthMax: 10, latencyFloorMs: 250, queueGrowthMax: 0.03}\n${extra}`,
    "rs-test.yaml",
  );
}

async function fakeStep(s: Scenario, runId: string, driver: FakeDriver) {
  const plan = buildPlan(s, runId);
  const outcome = await runScenario(s, plan, driver, { clock: systemClock, intervalMs: 250, cleanup: true });
  return { outcome, plan, scenario: s };
}

describe("rate: max against the fake driver with a capacity", () => {
  it("sees producers fall behind a publish capacity the rates hide: 4% over it publishes 96% and its lag grows", async () => {
    const intake = 2000;
    const s = parseScenario(
      `name: rs-lag\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 2\nrate: max\nbatchSize: 20\nlingerMs: 2\nmaxInFlightBatches: 2\n` +
        // 15 ms/s: 4% behind gains 40 ms/s; one 100 ms stall of a busy machine at the window's end adds 9 ms/s.
        `search: {stepSeconds: 4, warmupSeconds: 0.5, drainTimeoutSeconds: 3, queueGrowthMax: 0.015}\n`,
      "rs-lag.yaml",
    );
    const at = async (rate: number) => {
      const run = await fakeStep(stepScenarioAt(s, rate), `rs-lag-${rate}`, new FakeDriver({ publishesPerSecond: intake }));
      const f = stepFigures(run.outcome, rate);
      run.outcome.recorder.destroy();
      return f;
    };
    const over = await at(Math.round(intake * 1.04));
    expect(over.achievedRate / over.offeredRate).toBeGreaterThan(1 - searchSettings(s).tolerance);
    expect(over.lagSlopeUsPerSec!).toBeGreaterThan(searchSettings(s).queueGrowthMax * 1e6);
    expect(judgeStep(over, searchSettings(s)).join()).toMatch(/producers fell behind their schedule/);
    // Under the capacity the producers keep their schedule.
    const under = await at(Math.round(intake * 0.7));
    expect(judgeStep(under, searchSettings(s))).toEqual([]);
  }, 30_000);

  it("fails a separate fixed-rate run 4% over a publish capacity on rateHeld, which achievedRateRatioMin passes", async () => {
    const intake = 2000;
    const fixed = parseScenario(
      `name: rs-held\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 2\nrate: ${intake * 1.04}\nbatchSize: 20\nlingerMs: 2\nmaxInFlightBatches: 2\n` +
        `durationSeconds: 4\nwarmupSeconds: 0.5\ndrainTimeoutSeconds: 3\nslo: {achievedRateRatioMin: 0.95, rateHeld: true}\n`,
      "rs-held.yaml",
    );
    const run = await fakeStep(fixed, "rs-held", new FakeDriver({ publishesPerSecond: intake }));
    const result = buildResult(fixed, run.plan, run.outcome, { runId: "rs-held", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "in-process", args: [], storage: "memory", fsync: false } });
    run.outcome.recorder.destroy();
    expect(result.gates.map((g) => [g.name, g.passed])).toEqual([["rate held", false], ["achieved/offered rate", true]]);
    expect(result.rateHeld!.reasons.join("; ")).toMatch(/producers fell behind their schedule/);
    expect(result.gates[0]!.detail).toMatch(/^rate held: no \(producers fell behind/);
  }, 30_000);

  it("judges a step at twice the capacity unsustainable: the backlog grows and deliveries fall short", async () => {
    const s = searchScenario();
    const step = stepScenarioAt(s, CAPACITY * 2);
    const run = await fakeStep(step, "rs-over", new FakeDriver({ deliveriesPerSecond: CAPACITY }));
    const f = stepFigures(run.outcome, CAPACITY * 2);
    run.outcome.recorder.destroy();
    expect(f.backlogSlope!).toBeGreaterThan(CAPACITY * 0.5);
    const reasons = judgeStep(f, searchSettings(s)).join("; ");
    expect(reasons).toMatch(/backlog grew/);
    expect(reasons).toMatch(/delivered \d+\.\d% of the offered deliveries/);
  }, 30_000);

  it("finds a rate under the capacity, fails every step well over it, and a fixed-rate run at the found rate holds", async () => {
    const s = searchScenario();
    // One fake for the whole search, as one broker serves every step.
    const fake = new FakeDriver({ deliveriesPerSecond: CAPACITY });
    const { report, chosen } = await runRateSearch(s, (step, i) => fakeStep(step, `rs${i}`, fake));
    for (const x of report.steps.filter((y) => y.offeredRate > CAPACITY * 1.08)) {
      expect(x.sustainable, `step at ${x.offeredRate}`).toBe(false);
      expect(x.reasons.join()).toMatch(/backlog grew|delivered|p99 grew|drain timed out/);
    }
    expect(report.foundRate).not.toBeNull();
    expect(report.foundRate!).toBeLessThanOrEqual(CAPACITY * 1.08);
    expect(report.foundRate!).toBeGreaterThanOrEqual(CAPACITY * 0.5);
    expect(report.steps[report.steps.length - 1]).toMatchObject({ kind: "confirm", offeredRate: report.foundRate });
    expect(chosen.scenario.rate).toBe(report.foundRate);
    chosen.outcome.recorder.destroy();

    // The confirmation as a user runs it: the same scenario at a fixed rate, an ordinary run with gates.
    const fixed = parseScenario(
      `name: rs-fixed\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 2\nrate: ${report.foundRate}\nbatchSize: 20\nlingerMs: 2\n` +
        `durationSeconds: 2\nwarmupSeconds: 0.5\ndrainTimeoutSeconds: 3\nslo: {achievedRateRatioMin: 0.95, latenessP99MaxMs: 100, rateHeld: true, lostMax: 0}\n`,
      "rs-fixed.yaml",
    );
    const run = await fakeStep(fixed, "rs-fixed", new FakeDriver({ deliveriesPerSecond: CAPACITY }));
    const result = buildResult(fixed, run.plan, run.outcome, { runId: "rs-fixed", driver: "fake", environment: captureEnvironment(), broker: { embedded: false, target: "in-process", args: [], storage: "memory", fsync: false } });
    expect(result.gates.map((g) => [g.name, g.passed])).toEqual([["rate held", true], ["lost", true], ["achieved/offered rate", true], ["lateness p99", true]]);
    expect(result.rateHeld).toMatchObject({ held: true, reasons: [], notJudged: [] });
    expect(judgeStep(stepFigures(run.outcome, report.foundRate!), searchSettings(s))).toEqual([]);
    run.outcome.recorder.destroy();
  }, 120_000);
});
