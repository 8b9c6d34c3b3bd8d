import { describe, expect, it } from "vitest";
import { judgeTargets, medianPasses, withPeerRatios, type Row } from "./compare.js";
import { failedRuns, headline } from "./render.js";

function row(label: string, driver: string, deliveryRate: number, p99Us: number, scenario = "a"): Row {
  return {
    label, driver, scenario, storage: "memory", note: undefined, fixedRate: false, ok: true, exitCode: 0, publishRate: deliveryRate, deliveryRate,
    e2e: { p50Us: 1, p99Us, p999Us: p99Us, maxUs: p99Us }, deliveredPct: 100, brokerCpuPercent: 50, brokerCpuSeconds: 1,
    brokerPeakRssBytes: 1, brokerCpuUsPerDelivery: null, brokerCpuUsPerPublish: null, throughputVsBestPeer: null, p99VsBestPeer: null, bestPeer: null,
  };
}

describe("comparison ratios and targets", () => {
  const rows = withPeerRatios([row("ratatoskr", "ratatoskr", 60_000, 2000), row("jetstream", "jetstream", 40_000, 1000), row("jetstream-file", "jetstream", 80_000, 4000)]);

  it("divides by the best peer of the scenario: highest throughput, lowest p99", () => {
    expect(rows[0]).toMatchObject({ bestPeer: "jetstream-file", throughputVsBestPeer: 0.75, p99VsBestPeer: 2 });
    expect(rows[2]!.throughputVsBestPeer).toBe(1);
  });

  it("judges targets against the best of the named peers, in either direction", () => {
    const [tp, lat] = judgeTargets(rows, [
      { name: "tp", scenario: "a", metric: "deliveryRate", subject: "ratatoskr", peers: ["jetstream", "jetstream-file"], min: 1 },
      { name: "lat", scenario: "a", metric: "e2eP99Us", subject: "ratatoskr", peers: ["jetstream"], max: 1 },
    ]);
    expect(tp).toMatchObject({ peerLabel: "jetstream-file", ratio: 0.75, met: false });
    expect(lat).toMatchObject({ peerLabel: "jetstream", ratio: 2, met: false });
    const [half] = judgeTargets(rows, [{ name: "h", scenario: "a", metric: "deliveryRate", subject: "ratatoskr", peers: ["jetstream"], min: 0.5 }]);
    expect(half).toMatchObject({ ratio: 1.5, met: true });
  });

  it("marks a target not measured when a run is missing", () => {
    const [t] = judgeTargets(rows, [{ name: "x", scenario: "b", metric: "deliveryRate", subject: "ratatoskr", peers: ["nats"], min: 1 }]);
    expect(t).toMatchObject({ ratio: null, met: null });
  });
});

describe("targets and failed runs", () => {
  it("judges a run that failed its own gates as missing the target, and says why", () => {
    const failed = { ...row("ratatoskr", "ratatoskr", 500, 100), ok: false, exitCode: 1 };
    const [t] = judgeTargets(withPeerRatios([failed, row("jetstream", "jetstream", 5000, 200)]), [
      { name: "lat", scenario: "a", metric: "e2eP99Us", subject: "ratatoskr", peers: ["jetstream"], max: 1 },
    ]);
    expect(t).toMatchObject({ ratio: 0.5, met: false, caveats: ["ratatoskr failed its scenario gates"] });
  });
});

describe("repeated passes", () => {
  it("keeps the median pass of each run by its figure of merit, with the range over the passes", () => {
    const fixed = (p99Us: number, rate: number): Row => ({ ...row("ratatoskr", "ratatoskr", rate, p99Us, "lat"), fixedRate: true });
    const rows = medianPasses([
      row("ratatoskr", "ratatoskr", 300, 9, "tp"),
      row("ratatoskr", "ratatoskr", 100, 1, "tp"),
      row("ratatoskr", "ratatoskr", 200, 5, "tp"),
      fixed(8_000, 1),
      fixed(2_000, 2),
      fixed(9_000, 3),
      fixed(3_000, 4),
      row("nats", "nats", 500, 1, "tp"),
    ]);
    expect(rows.map((r) => [r.scenario, r.label])).toEqual([["tp", "ratatoskr"], ["lat", "ratatoskr"], ["tp", "nats"]]);
    expect(rows[0]).toMatchObject({ deliveryRate: 200, passes: { count: 3, min: 100, max: 300 } });
    // An even count takes the worse middle pass: for latency, the higher p99.
    expect(rows[1]).toMatchObject({ e2e: { p99Us: 8_000 }, deliveryRate: 1, passes: { count: 4, min: 2_000, max: 9_000 } });
    expect(rows[2]!.passes).toBeUndefined();
  });
});

describe("peers come from the driver registry", () => {
  it("compares against the drivers registered as peers, and refuses a driver it does not know", () => {
    const rows = withPeerRatios([row("ratatoskr", "ratatoskr", 100, 1), row("v1", "ratatoskr-v1", 1000, 1), row("nats", "nats", 50, 1)]);
    expect(rows.map((r) => r.bestPeer)).toEqual(["nats", "nats", "nats"]); // ratatoskr-v1 is no peer, however fast
    expect(() => withPeerRatios([row("x", "bogus", 1, 1), row("nats", "nats", 1, 1)])).toThrow(/unknown driver "bogus"/);
  });
});

describe("failed runs and the best peer", () => {
  const failed = (r: Row): Row => ({ ...r, ok: false, exitCode: 1 });

  it("never takes a peer that failed its gates as the best peer", () => {
    const rows = withPeerRatios([row("ratatoskr", "ratatoskr", 60_000, 2000), failed(row("nats", "nats", 500_000, 100)), row("jetstream", "jetstream", 40_000, 1000)]);
    expect(rows[0]).toMatchObject({ bestPeer: "jetstream", throughputVsBestPeer: 1.5, p99VsBestPeer: 2 });
  });

  it("gives a failed run no ratio, and the headline lists it apart", () => {
    const rows = withPeerRatios([
      { ...row("ratatoskr", "ratatoskr", 5000, 2000), fixedRate: true },
      { ...failed(row("ratatoskr-v1", "ratatoskr-v1", 4000, 11_000_000)), fixedRate: true },
      { ...row("nats", "nats", 5000, 1500), fixedRate: true },
    ]);
    expect(rows[1]).toMatchObject({ bestPeer: null, throughputVsBestPeer: null, p99VsBestPeer: null });
    const head = headline(rows);
    expect(head.map((c) => c[1])).toEqual(["ratatoskr"]);
    expect(head[0]).toEqual(["a", "ratatoskr", "e2e p99 2.00ms at 5000 msg/s", "nats: 1.50ms at 5000 msg/s", "1.33× (lower is better)"]);
    expect(failedRuns(rows)).toEqual([["a", "ratatoskr-v1", "1", "e2e p99 11.00s at 4000 msg/s"]]);
  });
});

describe("generator-bound runs in a comparison", () => {
  it("marks the ratio of a generator-bound run and names it in a target's caveats", () => {
    const rows = withPeerRatios([{ ...row("ratatoskr", "ratatoskr", 60_000, 2000), generatorBound: true }, row("nats", "nats", 80_000, 1000)]);
    expect(headline(rows)[0]!.at(-1)).toMatch(/⚠ ratatoskr generator-bound/);
    const [t] = judgeTargets(rows, [{ name: "tp", scenario: "a", metric: "deliveryRate", subject: "ratatoskr", peers: ["nats"], min: 0.5 }]);
    expect(t!.caveats).toEqual(["ratatoskr was generator-bound"]);
    expect(headline(withPeerRatios([row("ratatoskr", "ratatoskr", 60_000, 2000), row("nats", "nats", 80_000, 1000)]))[0]!.at(-1)).not.toMatch(/generator-bound/);
  });
});
