import { describe, expect, it } from "vitest";
import type { RateSearchStep } from "../run/index.js";
import { bracketNote, generatorNote } from "./workloads.js";

const step = (offeredRate: number, sustainable: boolean, generatorBound?: string[]): RateSearchStep => ({
  index: 0,
  kind: "ramp",
  offeredRate,
  achievedRate: offeredRate,
  deliveryRate: offeredRate,
  fanOut: 1,
  p50Us: 1000,
  p99Us: 2000,
  p99FirstHalfUs: 2000,
  p99SecondHalfUs: 2000,
  backlogSlope: 0,
  backlogEnd: 0,
  lost: 0,
  publishErrors: 0,
  drainTimedOut: false,
  sustainable,
  reasons: sustainable ? [] : ["x"],
  ...(generatorBound ? { generatorBound } : {}),
});

type Search = Parameters<typeof generatorNote>[0];
const search = (foundRate: number | null, steps: RateSearchStep[]) => ({ foundRate, steps }) as unknown as Search;

describe("the rate search's generator note", () => {
  it("calls the found rate a lower bound when every failing step above it was generator-bound", () => {
    const note = generatorNote(search(4000, [step(2000, true, []), step(4000, true, []), step(8000, false, ["worker 0 was saturated"]), step(6000, false, ["stalled"])]));
    expect(note).toMatch(/Every step that failed above the found rate was generator-bound\*\* \(8000, 6000 msg\/s\)/);
    expect(note).toMatch(/a lower bound for the broker's/);
    expect(note).not.toMatch(/own steps/);
    const atLimit = generatorNote(search(4000, [step(4000, true, ["worker 0 was saturated"]), step(8000, false, ["stalled"])]));
    expect(atLimit).toMatch(/a lower bound for the broker's\. The found rate's own steps were generator-bound too\./);
  });

  it("counts the generator-bound ones when only some were, and says nothing when none was or none was judged", () => {
    expect(generatorNote(search(4000, [step(4000, true, []), step(8000, false, ["stalled"]), step(6000, false, [])]))).toMatch(/^1 of the 2 steps that failed above the found rate were generator-bound \(8000 msg\/s\)/);
    expect(generatorNote(search(4000, [step(4000, true, []), step(8000, false, [])]))).toBe("");
    expect(generatorNote(search(4000, [step(4000, true), step(8000, false)]))).toBe("");
    // A generator-bound step below the found rate does not make the found rate the generator's.
    expect(generatorNote(search(4000, [step(2000, false, ["stalled"]), step(4000, true, []), step(8000, false, [])]))).toBe("");
  });
});

describe("the rate search's bracket note", () => {
  const settings = { precision: 0.05 } as Parameters<typeof bracketNote>[0]["settings"];
  const confirm = (x: RateSearchStep): RateSearchStep => ({ ...x, kind: "confirm" });

  it("names a withdrawn rate and the bracket the search left when it ran out of steps", () => {
    const steps = [step(80_000, true), step(160_000, true), step(320_000, false), confirm(step(160_000, false)), confirm(step(80_000, true))];
    const note = bracketNote({ foundRate: 80_000, steps, settings });
    expect(note).toMatch(/Withdrawn after a failed confirmation: 160.0K msg\/s\./);
    expect(note).toMatch(/lies between 80.0K \(held\) and 160.0K msg\/s \(failed\)\*\*: the search stopped before narrowing it to 5.0%/);
  });

  it("says nothing when the search narrowed the rate to its precision", () => {
    expect(bracketNote({ foundRate: 100_000, steps: [step(100_000, true), step(104_000, false), confirm(step(100_000, true))], settings })).toBe("");
  });
});
