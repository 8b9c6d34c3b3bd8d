/**
 * The per-fault figures of a result: its fine timeline, interval histograms and fault events
 * placed on the run's clock and handed to the analysis (loadgen/faults/analysis.ts), with the
 * histogram code it needs to merge a window's interval histograms. Recomputed whenever a result
 * is judged, so a merge of shards or workers gets figures from the merged timeline.
 */
import { analyzeFaults, type FaultAnalysis, type IntervalInput } from "../faults/index.js";
import { mergeEncoded, summarize } from "../run/index.js";
import type { RunResult } from "./result-schema.js";

/** Undefined when the run had no faults, or the result lacks a fine timeline (written before it existed). */
export function faultFiguresOf(r: RunResult): FaultAnalysis | undefined {
  const faults = r.faults ?? [];
  const tl = r.timeline;
  if (faults.length === 0 || !tl) return undefined;
  const startMs = Date.parse(r.run.startedAt);
  const phase = (name: string) => r.run.phases.find((p) => p.phase === name);
  const measure = phase("measure");
  if (!measure) return undefined;
  const activeEndSec = phase("drain")?.endSec ?? measure.endSec;
  const intervals: IntervalInput[] = r.intervalHistograms.map((iv) => ({
    startSec: (iv.startMs - startMs) / 1000,
    endSec: (iv.endMs - startMs) / 1000,
    corrected: iv.histogram,
    uncorrected: iv.uncorrected,
  }));
  return analyzeFaults({
    timeline: { bucketSeconds: tl.bucketMs / 1000, startSec: (tl.startMs - startMs) / 1000, published: tl.published, delivered: tl.delivered },
    measure: { startSec: measure.startSec, endSec: measure.endSec },
    activeEndSec,
    faults,
    intervals,
    summarize: (encoded) => {
      const s = summarize(mergeEncoded(encoded));
      return { count: s.count, p50Us: s.p50Us, p99Us: s.p99Us, p999Us: s.p999Us, maxUs: s.maxUs };
    },
  });
}
