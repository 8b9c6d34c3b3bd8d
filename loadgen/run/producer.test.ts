import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import type { Driver } from "../drivers/index.js";
import { decodeHeader, type DecodedHeader } from "./payload.js";
import { buildPlan, expectedPerTopic } from "./plan.js";
import { PublisherGroup } from "./producer.js";
import { Recorder } from "./recorder.js";
import { parseScenario } from "./scenario.js";

/** A driver that records what was published and acknowledges on a later turn. */
function recordingDriver() {
  const sent: { topic: string; headers: DecodedHeader[] }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const driver = {
    publish(topic: string, payloads: readonly Buffer[]) {
      sent.push({ topic, headers: payloads.map((p) => decodeHeader(p)) });
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise<number>((resolve) =>
        setImmediate(() => {
          inFlight--;
          resolve(payloads.length);
        }),
      );
    },
  } as unknown as Driver;
  return { driver, sent, maxInFlight: () => maxInFlight };
}

function group(overrides: string[]) {
  const s = parseScenario("name: prod\ntopics: 5\nsubscriptions: {perTopic: 1}\nproducers: 3\nmessages: 3001\nbatchSize: 64\nmaxInFlightBatches: 3\n", "prod.yaml", overrides);
  const plan = buildPlan(s, "p");
  const rec = new Recorder();
  rec.phase = "measure";
  rec.measuring = true;
  const d = recordingDriver();
  const published = new Float64Array(5);
  const g = new PublisherGroup(plan.producers, d.driver, plan.topicNames, systemClock, rec, { onPublished: (t, n) => (published[t] = published[t]! + n), onPublishError: () => undefined }, s);
  return { s, plan, rec, d, g, published };
}

describe("PublisherGroup", () => {
  it("publishes each topic's quota in gap-free per-stream sequences within the in-flight window", async () => {
    const { s, plan, rec, d, g, published } = group([]);
    await g.runPhase({ warmup: false, totalRate: Infinity, totalProducers: s.producers, endUs: Infinity, useQuotas: true });
    expect(Array.from(published)).toEqual(Array.from(expectedPerTopic(plan, 5)));
    expect(rec.published).toBe(3001);
    expect(Math.max(...d.sent.map((b) => b.headers.length))).toBeLessThanOrEqual(64);
    expect(d.maxInFlight()).toBeLessThanOrEqual(3 * 3);
    const streams = new Map<string, number[]>();
    for (const b of d.sent) {
      for (const h of b.headers) {
        expect(plan.topicNames[h.topic]).toBe(b.topic);
        const key = `${h.producer}/${h.topic}`;
        streams.set(key, [...(streams.get(key) ?? []), h.seq]);
      }
    }
    for (const seqs of streams.values()) expect(seqs).toEqual(seqs.map((_, i) => i));
  });

  it("stamps intended send times exactly 1/rate apart whatever the batching", async () => {
    const { s, d, g } = group(["producers=1", "topics=1", "lingerMs=3", "batchSize=20"]);
    await g.runPhase({ warmup: false, totalRate: 4000, totalProducers: s.producers, endUs: Infinity, useQuotas: true });
    const intended = d.sent.flatMap((b) => b.headers.map((h) => h.intendedUs));
    expect(intended).toHaveLength(3001);
    for (let i = 1; i < intended.length; i++) expect(intended[i]! - intended[i - 1]!).toBeCloseTo(250, 6);
    for (const b of d.sent) for (const h of b.headers) expect(h.sentUs).toBeGreaterThanOrEqual(h.intendedUs);
    expect(Math.max(...d.sent.map((b) => b.headers.length))).toBeLessThanOrEqual(20);
  });

  it("flags warmup messages and does not time them", async () => {
    const { s, rec, d, g } = group(["producers=1", "topics=1"]);
    rec.measuring = false;
    await g.runPhase({ warmup: true, totalRate: 20_000, totalProducers: s.producers, endUs: systemClock.nowUs() + 50_000, useQuotas: false });
    expect(d.sent.length).toBeGreaterThan(0);
    expect(d.sent.every((b) => b.headers.every((h) => h.warmup))).toBe(true);
    expect(rec.publishLatency.totalCount).toBe(0);
  });
});
