import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { median, runCalibration, type Calibration } from "./calibrate.js";
import { UsageError } from "./errors.js";

const dir = mkdtempSync(join(tmpdir(), "rt-calibrate-"));
const scenario = (extra: string) => {
  const file = join(dir, `s-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, `name: calibrate-tiny\ndriver: nats\ntopics: 1\nsubscriptions: {perTopic: 2}\nproducers: 1\nmessageSizeBytes: 64\nbatchSize: 100\nconnections: 2\nmaxInFlightBatches: 2\ndrainTimeoutSeconds: 20\n${extra}`);
  return file;
};

describe("ratatoskr calibrate", () => {
  it("takes the median of the finite values (the mean of the middle two for an even count)", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
  });

  it("alternates bare and harness runs on one embedded server, and writes each pass's rates, ratio and the medians", async () => {
    const out = join(dir, "cal.json");
    const lines: string[] = [];
    const c = await runCalibration({ scenario: scenario("messages: 3000\nwarmupSeconds: 0.2\n"), passes: 2, out }, (s) => lines.push(s));
    const written = JSON.parse(readFileSync(out, "utf8")) as Calibration;
    expect(written).toEqual(c);
    expect(c).toMatchObject({ kind: "ratatoskr-calibration", driver: "nats", embedded: true });
    expect(c.passes.map((p) => p.first)).toEqual(["bare", "harness"]);
    for (const p of c.passes) {
      expect(p.bareDeliveriesPerSecond).toBeGreaterThan(0);
      expect(p.harnessDeliveriesPerSecond).toBeGreaterThan(0);
      expect(p.ratio).toBeCloseTo(p.harnessDeliveriesPerSecond / p.bareDeliveriesPerSecond, 2);
    }
    // The median ratio is the median of the pass ratios, rounded to three decimals as they are.
    expect(c.median.ratio).toBe(Math.round(median(c.passes.map((p) => p.ratio)) * 1000) / 1000);
    expect(lines.filter((l) => l.startsWith("pass "))).toHaveLength(2);
    expect(lines.some((l) => l.startsWith("median of 2: bare "))).toBe(true);
  }, 120_000);

  it("refuses a duration scenario (a bare run needs a message count) before starting anything", async () => {
    await expect(runCalibration({ scenario: scenario("durationSeconds: 1\n"), out: join(dir, "no.json") }, () => undefined)).rejects.toThrow(UsageError);
    await expect(runCalibration({ scenario: scenario("durationSeconds: 1\n"), out: join(dir, "no.json") }, () => undefined)).rejects.toThrow(/messages:/);
  });
});
