import { describe, expect, it, vi } from "vitest";
import { FakeClock } from "../clock.js";
import type { BrokerStatsSample } from "../drivers/index.js";
import type { ProgressState } from "./progress.js";
import { Recorder } from "./recorder.js";
import { cpuUsedBetween, IntervalSampler, type GeneratorProbe } from "./sampler.js";

/** A probe reporting fixed figures: 250 ms of CPU per call, a 3 ms loop delay, 100 MB RSS. */
function fixedProbe(): GeneratorProbe & { closed: boolean } {
  return { cpuUsedUs: () => 250_000, loopDelayMaxMs: () => 3, rssBytes: () => 100e6, closed: false, close() { this.closed = true; } };
}

function setup(sampleBroker?: () => Promise<BrokerStatsSample | undefined>, finalSampleBroker?: () => Promise<BrokerStatsSample | undefined>) {
  const clock = new FakeClock(0);
  const recorder = new Recorder();
  const updates: ProgressState[] = [];
  const probe = fixedProbe();
  const sampler = new IntervalSampler({
    clock,
    recorder,
    progress: { update: (s) => void updates.push(s) },
    elapsedSec: () => clock.nowUs() / 1e6,
    expected: () => 42,
    sampleBroker,
    finalSampleBroker,
    intervalMs: 1000,
    probe,
  });
  const second = () => clock.advanceUs(1_000_000);
  return { clock, recorder, updates, probe, sampler, second };
}

const sample = (cpuSeconds: number, rssBytes: number): BrokerStatsSample => ({ rssBytes, cpuUserSeconds: cpuSeconds, cpuSystemSeconds: 0 });

describe("the per-second sampler", () => {
  it("closes one interval per tick with the generator's own figures", () => {
    const { recorder, updates, sampler, second } = setup();
    second();
    void sampler.tick();
    expect(recorder.series).toHaveLength(1);
    expect(recorder.series[0]).toMatchObject({ t: 1, generatorCpuPercent: 25, generatorLoopDelayMaxMs: 3, generatorRssBytes: 100e6 });
    expect(updates[0]).toMatchObject({ elapsedSec: 1, expected: 42 });
  });

  it("derives broker CPU from two samples and their times, and reports the latest RSS", async () => {
    const samples = [sample(1, 10e6), sample(1.5, 20e6), sample(3.5, 30e6)];
    const { recorder, sampler, second } = setup(async () => samples.shift());
    second();
    await sampler.tick(); // takes sample 1 at t=1
    second();
    await sampler.tick(); // RSS of sample 1; takes sample 2 at t=2
    second();
    await sampler.tick(); // 0.5 CPU-seconds over 1 s
    second();
    void sampler.tick(); // 2 CPU-seconds over 1 s
    expect(recorder.series.map((p) => p.brokerRssBytes)).toEqual([undefined, 10e6, 20e6, 30e6]);
    expect(recorder.series.map((p) => p.brokerCpuPercent)).toEqual([undefined, undefined, 50, 200]);
    expect(sampler.brokerSamples.map((s) => s.t)).toEqual([1, 2, 3]);
  });

  it("asks the broker again only once the previous sample is back", async () => {
    let asked = 0;
    let answer: (s: BrokerStatsSample) => void = () => undefined;
    const { sampler, second } = setup(() => {
      asked++;
      return new Promise((resolve) => (answer = resolve));
    });
    const first = sampler.tick();
    second();
    expect(sampler.tick()).toBeUndefined();
    expect(asked).toBe(1);
    answer(sample(1, 1));
    await first;
    second();
    expect(sampler.tick()).toBeDefined();
    expect(asked).toBe(2);
  });

  it("keeps sampling when the broker does not answer a sample", async () => {
    const { sampler, second } = setup(() => Promise.reject(new Error("gone")));
    await sampler.tick();
    second();
    await expect(sampler.tick()).resolves.toBeUndefined();
    expect(sampler.brokerSamples).toEqual([]);
  });

  it("stop() closes the last partial interval and releases the probe", () => {
    const { recorder, probe, sampler, second } = setup();
    sampler.start();
    second();
    sampler.stop();
    expect(recorder.series).toHaveLength(1);
    expect(probe.closed).toBe(true);
  });

  it("samples the broker at least every 250 ms between the per-second points", async () => {
    vi.useFakeTimers();
    try {
      let asked = 0;
      const { recorder, sampler } = setup(async () => (asked++, sample(asked, asked)));
      sampler.start();
      await vi.advanceTimersByTimeAsync(999);
      expect(recorder.series).toHaveLength(0);
      expect(asked).toBeGreaterThanOrEqual(3);
      sampler.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it("takes a final sample at teardown, from the final sampler when there is one", async () => {
    const peak = { ...sample(0.7, 50e6), peakRssBytes: 80e6 };
    const { sampler, second } = setup(async () => sample(0.1, 10e6), async () => peak);
    second();
    sampler.stop();
    await sampler.final();
    expect(sampler.brokerSamples.at(-1)).toMatchObject({ t: 1, cpuUserSeconds: 0.7, peakRssBytes: 80e6 });
  });
});

describe("CPU used between two readings of a broker's CPU counter", () => {
  it("is the difference, a restarted process's own reading after a drop, and nothing for a dip of a few ms", () => {
    expect(cpuUsedBetween(10, 10.5)).toBeCloseTo(0.5, 9);
    // A kill and restart: the new process counts from 0, so its 0.2 s is what it used.
    expect(cpuUsedBetween(11, 0.2)).toBe(0.2);
    // The broker's µs figure, then /proc's 10 ms ticks at teardown: the same process.
    expect(cpuUsedBetween(25.8246, 25.82)).toBe(0);
  });
});
