/**
 * Deadlines bucketed into ticks: one Set per tick, swept from one periodic timer. Adding,
 * removing and rescheduling are O(1); nothing here creates a timer per item (DESIGN §6).
 * Items fire at or after their deadline, never before: a deadline is rounded up to its tick.
 */
export class TimerWheel<T extends { tick: number }> {
  private readonly buckets = new Map<number, Set<T>>();
  private count = 0;

  constructor(readonly tickMs: number) {
    if (!(tickMs > 0)) throw new RangeError("tickMs must be > 0");
  }

  get size(): number {
    return this.count;
  }

  /** Schedules `item` at `atMs`; remembers the tick on the item for `remove`. */
  add(item: T, atMs: number): void {
    const tick = Math.ceil(atMs / this.tickMs);
    item.tick = tick;
    let bucket = this.buckets.get(tick);
    if (!bucket) {
      bucket = new Set();
      this.buckets.set(tick, bucket);
    }
    bucket.add(item);
    this.count++;
  }

  /** Returns true when the item was scheduled (and is no longer). */
  remove(item: T): boolean {
    const bucket = this.buckets.get(item.tick);
    if (!bucket || !bucket.delete(item)) return false;
    this.count--;
    if (bucket.size === 0) this.buckets.delete(item.tick);
    return true;
  }

  reschedule(item: T, atMs: number): void {
    if (this.remove(item)) this.add(item, atMs);
  }

  /** Removes every item due at `nowMs` and hands each to `fire`. */
  expire(nowMs: number, fire: (item: T) => void): void {
    if (this.count === 0) return;
    const nowTick = Math.floor(nowMs / this.tickMs);
    // Buckets are few (deadline span / tick), so scanning the keys beats keeping them sorted.
    const due: Set<T>[] = [];
    for (const [tick, bucket] of this.buckets) {
      if (tick > nowTick) continue;
      this.buckets.delete(tick);
      this.count -= bucket.size;
      due.push(bucket);
    }
    for (const bucket of due) for (const item of bucket) fire(item);
  }
}
