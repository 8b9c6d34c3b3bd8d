/**
 * What every topic's de-duplication window holds together, counted so the broker can bound it
 * (docs/limits.md, "De-duplication window"): entries and their approximate memory.
 */
export class DedupUsage {
  entries = 0;
  bytes = 0;
}

/** Memory of one entry besides its id: the Map slot and the entry object (approximate, V8). */
export const DEDUP_ENTRY_OVERHEAD_BYTES = 96;

/** Approximate memory one remembered id costs. */
export function dedupEntryBytes(id: string): number {
  return id.length + DEDUP_ENTRY_OVERHEAD_BYTES;
}

/**
 * Producer message ids seen within a time window, for safe publisher retries.
 * Entries are kept in insertion order; publish times never decrease, so pruning
 * only ever looks at the front.
 */
export class DedupWindow {
  private readonly seen = new Map<string, { sequence: number; atMs: number }>();

  constructor(
    private windowMs: number,
    private readonly usage: DedupUsage = new DedupUsage(),
  ) {}

  setWindow(windowMs: number): void {
    this.windowMs = windowMs;
  }

  /** The sequence stored for `id` within the window, if any. */
  lookup(id: string, nowMs: number): number | undefined {
    this.prune(nowMs);
    return this.seen.get(id)?.sequence;
  }

  remember(id: string, sequence: number, atMs: number): void {
    if (!this.seen.has(id)) {
      this.usage.entries++;
      this.usage.bytes += dedupEntryBytes(id);
    }
    this.seen.set(id, { sequence, atMs });
  }

  /** Forgets `id` if it is remembered for `sequence` (a publish that was not stored after all). */
  forget(id: string, sequence?: number): void {
    const entry = this.seen.get(id);
    if (!entry || (sequence !== undefined && entry.sequence !== sequence)) return;
    this.seen.delete(id);
    this.usage.entries--;
    this.usage.bytes -= dedupEntryBytes(id);
  }

  /** Forgets every id remembered for a sequence above `sequence`. */
  forgetAbove(sequence: number): void {
    for (const [id, entry] of this.seen) if (entry.sequence > sequence) this.forget(id);
  }

  /** Forgets everything (the topic was deleted). */
  clear(): void {
    for (const id of [...this.seen.keys()]) this.forget(id);
  }

  get size(): number {
    return this.seen.size;
  }

  /** Drops ids older than the window (also run by the core's periodic sweep, so idle topics let go of them). */
  prune(nowMs: number): void {
    const oldest = nowMs - this.windowMs;
    for (const [id, entry] of this.seen) {
      if (entry.atMs >= oldest) break;
      this.forget(id);
    }
  }
}
