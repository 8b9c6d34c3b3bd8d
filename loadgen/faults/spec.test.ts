import { describe, expect, it } from "vitest";
import { ScenarioError } from "../errors.js";
import { parseScenario } from "../run/index.js";
import { durationSeconds, occurrenceStarts } from "./spec.js";

const base = "name: f\ntopics: 1\nsubscriptions: {perTopic: 2}\nproducers: 1\ndurationSeconds: 60\nrate: 100\n";

function issuesOf(text: string) {
  try {
    parseScenario(text, "bad.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return (err as ScenarioError).issues;
  }
  throw new Error("expected a ScenarioError");
}

describe("the faults block", () => {
  it("parses every kind into FaultSpec, in seconds", () => {
    const s = parseScenario(
      `${base}faults:
  - {kind: kill, every: 10s, downFor: 2s}
  - {kind: restart, at: 5}
  - {kind: pause, at: 20s, duration: 1500ms}
  - {kind: cut, at: 0.5m}
  - {kind: stall, at: 12s, every: 15s, duration: 1s}
  - {kind: partition, at: 30s, duration: 2s}
  - {kind: latency, at: 40s, duration: 5s, delay: 50}
  - {kind: slow-consumer, at: 45s, duration: 3s, subscription: 1}
`,
      "ok.yaml",
    );
    expect(s.faults).toEqual([
      { kind: "kill", atSeconds: 10, everySeconds: 10, downForSeconds: 2 },
      { kind: "restart", atSeconds: 5 },
      { kind: "pause", atSeconds: 20, durationSeconds: 1.5 },
      { kind: "cut", atSeconds: 30 },
      { kind: "stall", atSeconds: 12, everySeconds: 15, durationSeconds: 1 },
      { kind: "partition", atSeconds: 30, durationSeconds: 2 },
      { kind: "latency", atSeconds: 40, durationSeconds: 5, delayMs: 50 },
      { kind: "slow-consumer", atSeconds: 45, durationSeconds: 3, subscription: 1 },
    ]);
    expect(parseScenario(base, "none.yaml").faults).toEqual([]);
  });

  it("requires a duration where the fault holds and refuses it for cut", () => {
    expect(issuesOf(`${base}faults: [{kind: stall, at: 5s}]\n`)).toEqual([{ path: "faults.0.duration", expected: "duration for stall (how long it holds)", got: "nothing (missing)" }]);
    expect(issuesOf(`${base}faults: [{kind: cut, at: 5s, duration: 1s}]\n`)).toEqual([{ path: "faults.0.duration", expected: "no duration for cut (a cut is instantaneous)", got: '"1s"' }]);
  });

  it("requires downFor for kill, delay for latency, and refuses them elsewhere", () => {
    expect(issuesOf(`${base}faults: [{kind: kill, at: 5s}]\n`)[0]).toMatchObject({ path: "faults.0.downFor" });
    expect(issuesOf(`${base}faults: [{kind: latency, at: 5s, duration: 1s}]\n`)[0]).toMatchObject({ path: "faults.0.delay" });
    expect(issuesOf(`${base}faults: [{kind: pause, at: 5s, duration: 1s, downFor: 1s}]\n`)[0]).toMatchObject({ path: "faults.0.downFor", expected: "no downFor for pause (only kill takes downFor)" });
    expect(issuesOf(`${base}faults: [{kind: cut, at: 5s, subscription: 0}]\n`)[0]).toMatchObject({ path: "faults.0.subscription" });
  });

  it("names unknown kinds, unknown fields and bad durations", () => {
    expect(issuesOf(`${base}faults: [{kind: meteor, at: 5s}]\n`)[0]).toMatchObject({ path: "faults.0.kind", got: '"meteor"' });
    expect(issuesOf(`${base}faults: [{kind: cut, at: 5s, when: 3}]\n`)[0]).toMatchObject({ path: "faults.0.when", expected: "a known field (this one is unknown)" });
    expect(issuesOf(`${base}faults: [{kind: cut, at: soon}]\n`)[0]).toMatchObject({ path: "faults.0.at", got: '"soon"' });
    expect(issuesOf(`${base}faults: [{kind: cut}]\n`)[0]).toMatchObject({ path: "faults.0.at" });
  });

  it("refuses starts outside the measure phase", () => {
    expect(issuesOf(`${base}faults: [{kind: cut, at: 60s}]\n`)).toEqual([{ path: "faults.0.at", expected: "a start inside the measure phase (0 to 60 s; it starts after 60 s)", got: '"60s"' }]);
    // messages at a fixed rate: 1000 / 100 = 10 s of measure.
    const byCount = base.replace("durationSeconds: 60", "messages: 1000");
    expect(issuesOf(`${byCount}faults: [{kind: cut, at: 12s}]\n`)[0]).toMatchObject({ path: "faults.0.at" });
    expect(parseScenario(`${byCount}faults: [{kind: cut, at: 9s}]\n`, "ok.yaml").faults).toHaveLength(1);
    const unthrottled = byCount.replace("rate: 100", "rate: unthrottled");
    expect(issuesOf(`${unthrottled}faults: [{kind: cut, at: 1s}]\n`)[0]).toMatchObject({ path: "faults", expected: "faults need a measure phase of known length: durationSeconds, or messages at a fixed rate" });
  });

  it("refuses a period no longer than the fault and a subscription the plan does not have", () => {
    expect(issuesOf(`${base}faults: [{kind: stall, every: 2s, duration: 2s}]\n`)[0]).toMatchObject({ path: "faults.0.every" });
    expect(issuesOf(`${base}faults: [{kind: slow-consumer, at: 1s, duration: 1s, subscription: 2}]\n`)[0]).toMatchObject({ path: "faults.0.subscription", expected: "a subscription index below 2 (the plan's subscriptions)" });
  });

  it("lists every occurrence of a repeating fault inside the measure phase", () => {
    expect(occurrenceStarts({ kind: "kill", atSeconds: 10, everySeconds: 10, downForSeconds: 1 }, 45)).toEqual([10, 20, 30, 40]);
    expect(occurrenceStarts({ kind: "cut", atSeconds: 5 }, 45)).toEqual([5]);
    expect(occurrenceStarts({ kind: "cut", atSeconds: 50 }, 45)).toEqual([]);
    expect(durationSeconds("250ms")).toBe(0.25);
    expect(() => durationSeconds("5 s")).toThrow(/duration/);
  });
});
