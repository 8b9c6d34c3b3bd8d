/**
 * HDR histogram helpers. All latency values are integer microseconds, 1 µs .. 1 hour, three
 * significant digits. Histograms are stored encoded (compressed base64, the HdrHistogram
 * standard format); percentiles are always derived from them.
 */
import * as hdr from "hdr-histogram-js";

export type Histogram = hdr.Histogram;

export const HIGHEST_TRACKABLE_US = 3_600_000_000;
export const SIGNIFICANT_DIGITS = 3;

let wasmReady = false;

/**
 * A histogram for the hot path: the WebAssembly backend (about 5× faster to record than the
 * JS one). It holds WASM memory: call `destroy()` when done.
 */
export function newFastHistogram(): Histogram {
  if (!wasmReady) {
    hdr.initWebAssemblySync();
    wasmReady = true;
  }
  return hdr.build({
    useWebAssembly: true,
    bitBucketSize: 64,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_US,
    autoResize: false,
  });
}

export function newHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 32,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_US,
    autoResize: false,
  });
}

/** Clamp and round a microsecond value into the histogram's range. */
export function clampUs(us: number): number {
  if (!(us > 0)) return 0;
  return us >= HIGHEST_TRACKABLE_US ? HIGHEST_TRACKABLE_US : Math.round(us);
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function decodeHistogram(b64: string): Histogram {
  const decoded = hdr.decodeFromCompressedBase64(b64, 32, false);
  // Re-home into a histogram with our fixed range, so that merges never overflow or resize.
  const h = newHistogram();
  h.add(decoded);
  return h;
}

/** Lossless merge of encoded histograms. */
export function mergeEncoded(list: readonly string[]): Histogram {
  const h = newHistogram();
  for (const b64 of list) h.add(hdr.decodeFromCompressedBase64(b64, 32, false));
  return h;
}

export interface LatencySummary {
  count: number;
  minUs: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  p9999Us: number;
  maxUs: number;
}

/**
 * Figures of a histogram. An empty one has count 0 and zeros (count says nothing was recorded);
 * `minUs` is the lowest recorded value, 0 included
 * (hdr's minNonZeroValue is Number.MAX_SAFE_INTEGER when only zeros were recorded).
 */
export function summarize(h: Histogram): LatencySummary {
  const empty = h.totalCount === 0;
  return {
    count: h.totalCount,
    minUs: empty ? 0 : h.getValueAtPercentile(0), // not minNonZeroValue: recorded zeros are the minimum
    meanUs: empty ? 0 : Math.round(h.mean * 10) / 10,
    p50Us: h.getValueAtPercentile(50),
    p90Us: h.getValueAtPercentile(90),
    p99Us: h.getValueAtPercentile(99),
    p999Us: h.getValueAtPercentile(99.9),
    p9999Us: h.getValueAtPercentile(99.99),
    maxUs: empty ? 0 : h.maxValue,
  };
}


/** Java-compatible .hgrm text, values in milliseconds. */
export function percentileDistribution(h: Histogram): string {
  return h.totalCount === 0 ? "#[empty histogram]\n" : h.outputPercentileDistribution(5, 1000);
}

/** Points of the percentile curve for plots: [percentile, valueUs]. */
export function percentileCurve(h: Histogram, maxPercentile = 99.9999): [number, number][] {
  const out: [number, number][] = [];
  if (h.totalCount === 0) return out;
  for (let i = 0; ; i++) {
    // 0, 50, 75, 87.5, ... halving the remaining distance, plus intermediate quarters.
    const p = 100 - 100 / Math.pow(2, i / 4);
    if (p > maxPercentile) break;
    out.push([p, h.getValueAtPercentile(p)]);
  }
  out.push([100, h.maxValue]);
  return out;
}

export interface HlogInterval {
  startMs: number;
  endMs: number;
  histogram: string;
}

/** Standard HdrHistogram interval log (.hlog) text. */
export function writeHlog(startTimeMs: number, intervals: readonly HlogInterval[]): string {
  let out = "";
  const writer = new hdr.HistogramLogWriter((s: string) => {
    out += s;
  });
  // Interval timestamps relative to the start time, as HdrHistogram's own tools write them.
  writer.baseTime = startTimeMs;
  writer.outputLogFormatVersion();
  writer.outputStartTime(startTimeMs);
  writer.outputComment(`[BaseTime: ${(startTimeMs / 1000).toFixed(3)} (seconds since epoch)]`);
  writer.outputLegend();
  for (const iv of intervals) {
    const h = hdr.decodeFromCompressedBase64(iv.histogram, 32, false);
    h.startTimeStampMsec = iv.startMs;
    h.endTimeStampMsec = iv.endMs;
    writer.outputIntervalHistogram(h);
  }
  return out;
}
