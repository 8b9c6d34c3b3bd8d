/**
 * Deadlines bucketed into ticks, swept from one periodic timer: nothing here creates a timer
 * per item (docs/design.md, "Timer wheel"). Items fire at or after their deadline, never before: a deadline is
 * rounded up to its tick.
 *
 * Buckets are plain arrays with lazy deletion, because adding and removing are on the hot
 * path (every delivery and every ack): `remove` only marks the item (tick = -1) and counts
 * the dead entry; a bucket is compacted once most of it is dead, so memory stays within
 * about twice the live items, and dropped when it is all dead.
 */
export class TimerWheel<T extends { tick: number }> {
  private readonly buckets = new Map<number, Bucket<T>>();
  private count = 0;

  constructor(readonly tickMs: number) {
    if (!(tickMs > 0)) throw new RangeError("tickMs must be > 0");
  }

  /** Items scheduled and not yet fired or removed. */
  get size(): number {
    return this.count;
  }

  /** Schedules `item` (not currently scheduled) at `atMs`. */
  add(item: T, atMs: number): void {
    const tick = Math.ceil(atMs / this.tickMs);
    item.tick = tick;
    let bucket = this.buckets.get(tick);
    if (!bucket) {
      bucket = { tick, items: [], dead: 0 };
      this.buckets.set(tick, bucket);
    }
    bucket.items.push(item);
    this.count++;
  }

  /** Returns true when the item was scheduled (and is no longer). */
  remove(item: T): boolean {
    const tick = item.tick;
    if (tick < 0) return false;
    item.tick = -1;
    this.count--;
    const bucket = this.buckets.get(tick);
    if (bucket) {
      bucket.dead++;
      if (bucket.dead >= bucket.items.length) this.buckets.delete(tick);
      else if (bucket.dead > 32 && bucket.dead * 2 > bucket.items.length) compact(bucket);
    }
    return true;
  }

  /** Moves a scheduled item to a new deadline; does nothing for an unscheduled one. */
  reschedule(item: T, atMs: number): void {
    if (item.tick < 0) return;
    if (Math.ceil(atMs / this.tickMs) === item.tick) return;
    this.remove(item);
    this.add(item, atMs);
  }

  /** Removes every item due at `nowMs` and hands each to `fire`. */
  expire(nowMs: number, fire: (item: T) => void): void {
    if (this.count === 0) return;
    const nowTick = Math.floor(nowMs / this.tickMs);
    // Buckets are few (deadline span / tick), so scanning the keys beats keeping them sorted.
    const due: Bucket<T>[] = [];
    for (const [tick, bucket] of this.buckets) {
      if (tick > nowTick) continue;
      this.buckets.delete(tick);
      due.push(bucket);
    }
    for (const bucket of due) {
      for (const item of bucket.items) {
        // Skips removed items and stale entries of items moved to another tick (or moved
        // away and back, which leaves two entries: the first one fires, the second skips).
        if (item.tick !== bucket.tick) continue;
        item.tick = -1;
        this.count--;
        fire(item);
      }
    }
  }
}

interface Bucket<T extends { tick: number }> {
  readonly tick: number;
  items: T[];
  /** Entries in `items` that no longer belong here. */
  dead: number;
}

function compact<T extends { tick: number }>(bucket: Bucket<T>): void {
  bucket.items = bucket.items.filter((item) => item.tick === bucket.tick);
  bucket.dead = 0;
}
