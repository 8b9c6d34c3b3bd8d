/**
 * Producer message ids seen within a time window, for safe publisher retries.
 * Entries are kept in insertion order; publish times never decrease, so pruning
 * only ever looks at the front.
 */
export class DedupWindow {
  private readonly seen = new Map<string, { sequence: number; atMs: number }>();

  constructor(private windowMs: number) {}

  setWindow(windowMs: number): void {
    this.windowMs = windowMs;
  }

  /** The sequence stored for `id` within the window, if any. */
  lookup(id: string, nowMs: number): number | undefined {
    this.prune(nowMs);
    return this.seen.get(id)?.sequence;
  }

  remember(id: string, sequence: number, atMs: number): void {
    this.seen.set(id, { sequence, atMs });
  }

  forget(id: string): void {
    this.seen.delete(id);
  }

  get size(): number {
    return this.seen.size;
  }

  private prune(nowMs: number): void {
    const oldest = nowMs - this.windowMs;
    for (const [id, entry] of this.seen) {
      if (entry.atMs >= oldest) break;
      this.seen.delete(id);
    }
  }
}
