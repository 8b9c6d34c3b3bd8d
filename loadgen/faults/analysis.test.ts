import { describe, expect, it } from "vitest";
import { analyzeFaults, worstRecovery, type AnalysisInput, type IntervalInput, type SummarizeEncoded } from "./index.js";
import type { FaultEvent, FaultKind } from "./index.js";

// Synthetic runs: 100 ms buckets from run second 0, deliveries (and as many acks) per bucket
// given by `perBucket(t)`; one 1 s interval histogram per second of measure, "encoded" as the
// label of its second so that the test sees which window each one was filed in.
const B = 0.1;

function timeline(endSec: number, perBucket: (t: number) => number): AnalysisInput["timeline"] {
  const n = Math.round(endSec / B);
  const delivered = Array.from({ length: n }, (_, k) => perBucket(Math.round(k * B * 1000) / 1000));
  return { bucketSeconds: B, startSec: 0, published: delivered.slice(), delivered };
}

function intervals(from: number, to: number): IntervalInput[] {
  const out: IntervalInput[] = [];
  for (let s = from; s < to; s++) out.push({ startSec: s, endSec: s + 1, corrected: `c${s}`, uncorrected: `u${s}` });
  return out;
}

/** "Summarizes" labels: count = how many intervals, maxUs = the latest second filed. */
const labels: SummarizeEncoded = (encoded) => ({ count: encoded.length, p50Us: 0, p99Us: 0, p999Us: 0, maxUs: Math.max(-1, ...encoded.map((e) => Number(e.slice(1)))) });
/** The seconds filed in a window, from the labels' summary trick. */
function secondsOf(input: AnalysisInput, pick: (iv: IntervalInput) => boolean): number[] {
  return input.intervals.filter(pick).map((iv) => iv.startSec);
}

function fault(kind: FaultKind, startSec: number, endSec: number | null, occurrence = 0, spec = 0): FaultEvent {
  return { spec, kind, occurrence, startSec, endSec, detail: `${kind} at ${startSec}` };
}

function input(perBucket: (t: number) => number, faults: FaultEvent[], measure = { startSec: 2, endSec: 22 }, activeEndSec = 23): AnalysisInput {
  return { timeline: timeline(24, perBucket), measure, activeEndSec, faults, intervals: intervals(measure.startSec, activeEndSec), summarize: labels };
}

describe("analyzeFaults", () => {
  it("measures a fault with a gap: unavailability, first delivery, recovery, latency windows", () => {
    // 1,000 deliveries/s; nothing from 10.0 to 12.5 (a kill restarted at 12.0 that took 0.5 s to deliver again).
    const inp = input((t) => (t >= 10 && t < 12.5 ? 0 : 100), [fault("kill", 10, 12)]);
    const a = analyzeFaults(inp);
    expect(a.preFaultDeliveryRate).toBe(1000);
    expect(a.preFaultSeconds).toBe(8); // 2..10
    expect(a.preFaultLongestGapSeconds).toBe(0);
    const f = a.faults[0]!;
    expect(f.unavailableSeconds).toBe(2.5);
    expect(f.unavailableFromSec).toBe(10);
    expect(f.unavailableUntilRunEnd).toBe(false);
    // First delivering bucket is [12.5, 12.6): at most 0.6 s after the end.
    expect(f.firstDeliveryAfterSeconds).toBe(0.6);
    // [12.4, 13.4) holds 9 full buckets = 900 = 90% of 1,000.
    expect(f.recoverySeconds).toBe(0.4);
    expect(f.notRecovered).toBeUndefined();
    expect(f.latency.inFault.corrected.count).toBe(2); // [10,11) and [11,12)
    expect(f.latency.inFault.corrected.maxUs).toBe(11);
    expect(f.latency.recovery.corrected.count).toBe(1); // [12,13)
    expect(f.latency.recovery.corrected.maxUs).toBe(12);
    expect(f.latency.recovery.uncorrected?.count).toBe(1);
    expect(a.outside.corrected.count).toBe(21 - 3); // 2..23 less the three above
    expect(secondsOf(inp, (iv) => iv.startSec >= 10 && iv.startSec < 13)).toEqual([10, 11, 12]);
  });

  it("gives a fault with no effect no unavailability and no recovery time", () => {
    const a = analyzeFaults(input(() => 100, [fault("pause", 10, 12)]));
    const f = a.faults[0]!;
    expect(f.unavailableSeconds).toBe(0);
    expect(f.unavailableFromSec).toBeNull();
    expect(f.firstDeliveryAfterSeconds).toBe(0.1); // bucket [12.0, 12.1) delivered
    expect(f.recoverySeconds).toBe(0);
    expect(f.latency.recovery.seconds).toBe(0);
    expect(f.latency.inFault.seconds).toBe(2);
    expect(a.outside.corrected.count).toBe(21 - 2);
  });

  it("says the fault did not recover when the run ends first, and files the rest of measure as its recovery window", () => {
    // After the stall the rate stays at half: never 90% again before measure ends at 22.
    const a = analyzeFaults(input((t) => (t >= 15 && t < 18 ? 0 : t >= 18 ? 50 : 100), [fault("stall", 15, 18)]));
    const f = a.faults[0]!;
    expect(f.unavailableSeconds).toBe(3);
    expect(f.recoverySeconds).toBeNull();
    expect(f.notRecovered).toBe("run-ended");
    expect(f.latency.recovery.corrected.count).toBe(4); // [18,19) .. [21,22)
    expect(worstRecovery(a.faults)).toEqual({ seconds: null, fault: f });
  });

  it("gives each occurrence of a repeating fault its own figures; recovery stops at the next fault", () => {
    // Partitions at 6, 11, 16 for 1 s each. After the first the rate is back at once; after the
    // second it stays at 40% until the third begins; after the third it is back 0.5 s later.
    const per = (t: number) => {
      if ((t >= 6 && t < 7) || (t >= 11 && t < 12) || (t >= 16 && t < 17.5)) return 0;
      if (t >= 12 && t < 16) return 40;
      return 100;
    };
    const faults = [fault("partition", 6, 7, 0), fault("partition", 11, 12, 1), fault("partition", 16, 17, 2)];
    const a = analyzeFaults(input(per, faults));
    expect(a.preFaultSeconds).toBe(4); // 2..6, before the first only
    expect(a.faults.map((f) => f.occurrence)).toEqual([0, 1, 2]);
    expect(a.faults.map((f) => f.unavailableSeconds)).toEqual([1, 1, 1.5]);
    expect(a.faults.map((f) => f.unavailableFromSec)).toEqual([6, 11, 16]);
    expect(a.faults[0]!.recoverySeconds).toBe(0);
    expect(a.faults[1]!.recoverySeconds).toBeNull();
    expect(a.faults[1]!.notRecovered).toBe("next-fault");
    expect(a.faults[2]!.recoverySeconds).toBe(0.4);
    expect(worstRecovery(a.faults).seconds).toBeNull();
    expect(worstRecovery([a.faults[0]!, a.faults[2]!]).seconds).toBe(0.4);
  });

  it("attributes the gap after a cut (an instant) to it", () => {
    const a = analyzeFaults(input((t) => (t >= 9 && t < 9.3 ? 0 : 100), [fault("cut", 9, 9)]));
    const f = a.faults[0]!;
    expect(f.unavailableSeconds).toBe(0.3);
    expect(f.firstDeliveryAfterSeconds).toBe(0.4);
    expect(f.recoverySeconds).toBe(0.2); // [9.2, 10.2) has 9 full buckets
    expect(f.latency.inFault.corrected.count).toBe(1); // [9,10) holds the instant
  });

  it("ignores gaps that do not overlap the fault, and reports the pre-fault noise floor", () => {
    // A 0.4 s gap at 4 (before the fault) and one at 20 (after recovery): neither is the fault's.
    const a = analyzeFaults(input((t) => ((t >= 4 && t < 4.4) || (t >= 20 && t < 20.4) ? 0 : 100), [fault("latency", 10, 12)]));
    expect(a.faults[0]!.unavailableSeconds).toBe(0);
    expect(a.preFaultLongestGapSeconds).toBe(0.4);
  });

  it("has no pre-fault rate when the first fault starts with the measure phase, and says so", () => {
    const a = analyzeFaults(input((t) => (t >= 2 && t < 3 ? 0 : 100), [fault("kill", 2, 2.5)]));
    expect(a.preFaultDeliveryRate).toBeNull();
    expect(a.preFaultSeconds).toBe(0);
    expect(a.faults[0]!.recoverySeconds).toBeNull();
    expect(a.faults[0]!.notRecovered).toBe("no-pre-fault-rate");
    expect(a.faults[0]!.unavailableSeconds).toBe(1);
  });

  it("marks a fault the run ended inside: not lifted, unavailable until the end", () => {
    const a = analyzeFaults(input((t) => (t >= 19 ? 0 : 100), [fault("pause", 19, null)]));
    const f = a.faults[0]!;
    expect(f.unavailableSeconds).toBe(4); // 19 .. 23 (active end)
    expect(f.unavailableUntilRunEnd).toBe(true);
    expect(f.firstDeliveryAfterSeconds).toBeNull();
    expect(f.notRecovered).toBe("fault-not-lifted");
  });

  it("leaves out faults that could not be applied (their error fails the run elsewhere)", () => {
    const a = analyzeFaults(input(() => 100, [{ ...fault("kill", 10, null), error: "kill needs a broker the harness started" }]));
    expect(a.faults).toEqual([]);
    expect(a.outside.corrected.count).toBe(21);
  });

  it("reports uncorrected percentiles as null when an interval lacks its uncorrected histogram", () => {
    const inp = input((t) => (t >= 10 && t < 11 ? 0 : 100), [fault("stall", 10, 11)]);
    const old = { ...inp, intervals: inp.intervals.map(({ uncorrected: _u, ...iv }) => iv) };
    const a = analyzeFaults(old);
    expect(a.faults[0]!.latency.inFault.corrected.count).toBe(1);
    expect(a.faults[0]!.latency.inFault.uncorrected).toBeNull();
  });
});
