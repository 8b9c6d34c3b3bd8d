/**
 * Did a fixed-rate run hold its rate? The same verdict a `rate: max` step gets
 * (loadgen/run/rate-search.ts, docs/loadgen.md "rate: max: the highest sustainable rate"), read
 * from a written result, so that a separate fixed-rate run at a found rate confirms it by the
 * conditions that found it: rates within the tolerance, and backlog, producer lag and e2e p99
 * growing by at most queueGrowthMax of the offered work per second.
 */
import { judgeStep, searchSettings, windowFigures } from "../run/index.js";
import type { RateHeld, RunResult } from "./result-schema.js";

/** The verdict for a fixed-rate run; undefined for an unthrottled run, `rate: max`, a backlog or an `only:` run. */
export function rateHeldOf(r: RunResult): RateHeld | undefined {
  const offered = r.throughput.offeredRate;
  if (typeof r.scenario.rate !== "number" || offered === null || offered <= 0 || r.backlog !== undefined || r.only !== undefined) return undefined;
  const figures = windowFigures({
    offeredRate: offered,
    phases: r.run.phases,
    startedAtMs: Date.parse(r.run.startedAt),
    series: r.series,
    intervals: r.intervalHistograms,
    measuredPublished: r.counts.measuredPublished,
    measureSeconds: r.throughput.measureSeconds,
    timedDeliveries: r.latency.e2e.count,
    deliverySeconds: r.throughput.deliverySeconds,
    published: r.counts.published,
    expected: r.counts.expected,
    p50Us: r.latency.e2e.p50Us,
    p99Us: r.latency.e2e.p99Us,
    lost: r.counts.lost,
    publishErrors: r.counts.publishErrors,
    drainTimedOut: r.run.drainTimedOut,
  });
  const reasons = judgeStep(figures, searchSettings(r.scenario));
  const notJudged: string[] = [];
  if (figures.backlogSlope === null) {
    notJudged.push(
      r.series.some((p) => p.phase === "measure" && p.backlog !== undefined)
        ? "backlog growth (fewer than 3 samples in the measure window)"
        : "backlog growth (the series has no backlog: it is exact in one-process runs only)",
    );
  }
  if (figures.lagSlopeUsPerSec === null) notJudged.push("lag and e2e p99 growth (fewer than 3 samples in the measure window)");
  return { held: reasons.length === 0, reasons, notJudged, figures };
}
