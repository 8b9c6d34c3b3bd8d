/**
 * The fine timeline: how many publishes were acknowledged and how many first deliveries arrived
 * in each 100 ms bucket of the run (docs/faults.md, "Reading the figures"). It is what the
 * per-fault figures are computed from (unavailability, time to first delivery, recovery), at a
 * resolution the 1 s series cannot give.
 *
 * Two growable Uint32Arrays, no object per message: recording is an index computation and an
 * increment. Buckets sit on the wall clock's 100 ms grid (bucket 0 starts at the multiple of
 * 100 ms at or before the run's start), so the timelines of workers and shards that share a
 * clock merge losslessly by adding buckets with the same start.
 */

/** Bucket width of the fine timeline. */
export const TIMELINE_BUCKET_MS = 100;

/** The fine timeline as result.json keeps it. */
export interface FineTimelineData {
  /** Bucket width in milliseconds (100). */
  bucketMs: number;
  /** Wall-clock epoch ms at which bucket 0 starts (a multiple of bucketMs). */
  startMs: number;
  /** Publishes acknowledged by the broker per bucket (all phases). */
  published: number[];
  /** First deliveries per bucket (all phases; duplicates not counted). */
  delivered: number[];
}

export class FineTimeline {
  private published = new Uint32Array(1024);
  private delivered = new Uint32Array(1024);
  private length = 0;
  private originUs = 0;
  private gridStartMs = 0;
  /** Monotonic µs of bucket 0's start; NaN until started. */
  private bucket0Us = Number.NaN;
  private readonly bucketUs = TIMELINE_BUCKET_MS * 1000;

  /**
   * Start at the run's start: `nowUs` (monotonic) and `wallMs` (epoch) read at the same moment.
   * Recordings before start() are ignored.
   */
  start(nowUs: number, wallMs: number): void {
    this.originUs = nowUs;
    this.gridStartMs = Math.floor(wallMs / TIMELINE_BUCKET_MS) * TIMELINE_BUCKET_MS;
    this.bucket0Us = nowUs - (wallMs - this.gridStartMs) * 1000;
  }

  get started(): boolean {
    return !Number.isNaN(this.bucket0Us);
  }

  recordPublished(atUs: number, count: number): void {
    const i = this.index(atUs);
    if (i >= 0) this.published[i]! += count;
  }

  recordDelivered(atUs: number, count: number): void {
    const i = this.index(atUs);
    if (i >= 0) this.delivered[i]! += count;
  }

  private index(atUs: number): number {
    // NaN (not started) fails both comparisons below and is dropped.
    const i = Math.floor((atUs - this.bucket0Us) / this.bucketUs);
    if (!(i >= 0)) return -1;
    if (i >= this.published.length) this.grow(i + 1);
    if (i >= this.length) this.length = i + 1;
    return i;
  }

  private grow(min: number): void {
    let size = this.published.length * 2;
    while (size < min) size *= 2;
    const p = new Uint32Array(size);
    p.set(this.published);
    const d = new Uint32Array(size);
    d.set(this.delivered);
    this.published = p;
    this.delivered = d;
  }

  /** The timeline for result.json; undefined if it never started. */
  data(): FineTimelineData | undefined {
    if (!this.started) return undefined;
    return {
      bucketMs: TIMELINE_BUCKET_MS,
      startMs: this.gridStartMs,
      published: Array.from(this.published.subarray(0, this.length)),
      delivered: Array.from(this.delivered.subarray(0, this.length)),
    };
  }

  /** Monotonic µs at which the timeline started (the run's start). */
  get startUs(): number {
    return this.originUs;
  }
}

/**
 * Add timelines up bucket by bucket, aligned on their wall-clock start (lossless: every count
 * lands in the bucket it was recorded in). Undefined entries (results written before the
 * timeline existed) make the merge undefined: a partial timeline would show gaps that were none.
 */
export function mergeTimelines(list: readonly (FineTimelineData | undefined)[]): FineTimelineData | undefined {
  if (list.length === 0 || list.some((t) => t === undefined)) return undefined;
  const all = list as readonly FineTimelineData[];
  const bucketMs = all[0]!.bucketMs;
  if (all.some((t) => t.bucketMs !== bucketMs)) return undefined;
  const startMs = Math.min(...all.map((t) => t.startMs));
  const offset = (t: FineTimelineData) => Math.round((t.startMs - startMs) / bucketMs);
  const length = Math.max(...all.map((t) => offset(t) + t.published.length));
  const published = new Array<number>(length).fill(0);
  const delivered = new Array<number>(length).fill(0);
  for (const t of all) {
    const o = offset(t);
    t.published.forEach((n, i) => (published[o + i]! += n));
    t.delivered.forEach((n, i) => (delivered[o + i]! += n));
  }
  return { bucketMs, startMs, published, delivered };
}
