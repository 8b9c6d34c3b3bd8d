import { describe, expect, it } from "vitest";
import { allPassed, evaluateGates, type GateInput } from "./gates.js";

const input: GateInput = {
  expected: 1000,
  delivered: 990,
  lost: 10,
  duplicates: 2,
  outOfOrder: 0,
  publishErrors: 0,
  e2eP50Us: 1500,
  e2eP99Us: 42_000,
  e2eP999Us: 90_000,
  publishP99Us: 3000,
  achievedRateRatio: 0.97,
};

describe("gates", () => {
  it("makes one gate per slo field and nothing else", () => {
    expect(evaluateGates({}, input)).toEqual([]);
    expect(evaluateGates({ lostMax: 0, e2eP99MaxMs: 50 }, input).map((g) => g.name)).toEqual(["lost", "e2e p99"]);
  });

  it("says which gate failed and by how much", () => {
    const gates = evaluateGates({ deliveredRatioMin: 1, lostMax: 0, duplicatesMax: 5, e2eP99MaxMs: 40, achievedRateRatioMin: 0.95 }, input);
    expect(gates.map((g) => [g.name, g.passed])).toEqual([
      ["delivered ratio", false],
      ["lost", false],
      ["duplicates", true],
      ["e2e p99", false],
      ["achieved/offered rate", true],
    ]);
    expect(gates[1]!.detail).toBe("lost 10 fails <= 0 (off by 10)");
    expect(gates[3]!.detail).toBe("e2e p99 42 ms fails <= 40 ms (off by 2 ms)");
    expect(gates[0]!.detail).toBe("delivered ratio 99.000% fails >= 100.000% (off by 1.000%)");
    expect(allPassed(gates)).toBe(false);
  });

  it("fails a rate gate that cannot be measured in an unthrottled run", () => {
    const [g] = evaluateGates({ achievedRateRatioMin: 0.9 }, { ...input, achievedRateRatio: undefined });
    expect(g).toMatchObject({ passed: false, actual: null });
    expect(g!.detail).toMatch(/not measurable/);
  });

  it("judges the producers' lateness p99 at a fixed rate, and cannot in an unthrottled run", () => {
    expect(evaluateGates({ latenessP99MaxMs: 100 }, { ...input, latenessP99Us: 40_000 })).toMatchObject([{ name: "lateness p99", passed: true, actual: 40 }]);
    const [behind] = evaluateGates({ latenessP99MaxMs: 100 }, { ...input, latenessP99Us: 1_340_000 });
    expect(behind!.detail).toBe("lateness p99 1340 ms fails <= 100 ms (off by 1240 ms)");
    expect(evaluateGates({ latenessP99MaxMs: 100 }, input)).toMatchObject([{ passed: false, actual: null }]);
  });

  it("makes rateHeld: true a gate on the fixed-rate verdict, not measurable without one", () => {
    expect(evaluateGates({ rateHeld: true }, { ...input, rateHeld: { held: true, reasons: [] } })).toMatchObject([{ name: "rate held", passed: true, actual: 1 }]);
    const [no] = evaluateGates({ rateHeld: true }, { ...input, rateHeld: { held: false, reasons: ["backlog grew 40 deliveries/s"] } });
    expect(no).toMatchObject({ passed: false, actual: 0, detail: "rate held: no (backlog grew 40 deliveries/s)" });
    expect(evaluateGates({ rateHeld: true }, input)).toMatchObject([{ passed: false, actual: null, detail: "rate held: not measurable (needs a fixed-rate run)" }]);
  });

  it("passes exact limits", () => {
    expect(allPassed(evaluateGates({ lostMax: 10, duplicatesMax: 2, e2eP99MaxMs: 42 }, input))).toBe(true);
  });

  it("makes generatorBound: false a gate that fails a generator-bound run and cannot pass without a verdict", () => {
    expect(evaluateGates({ generatorBound: false }, { ...input, generatorBound: false })).toMatchObject([{ name: "generator bound", passed: true, actual: 0 }]);
    const [bound] = evaluateGates({ generatorBound: false }, { ...input, generatorBound: true });
    expect(bound).toMatchObject({ passed: false, actual: 1 });
    expect(bound!.detail).toMatch(/fails generatorBound: false/);
    expect(evaluateGates({ generatorBound: false }, input)).toMatchObject([{ passed: false, actual: null }]);
  });
});
