/**
 * Deadlines bucketed into ticks, swept from one periodic timer: nothing here creates a timer
 * per item (docs/design.md, "Timer wheel"). Items fire at or after their deadline, never before: a deadline is
 * rounded up to its tick.
 *
 * A bucket is a doubly linked list threaded through the items themselves (their `prev` and
 * `next`), because adding and removing are on the hot path (every delivery and every ack): both
 * are O(1), allocate nothing, and a removed item is no longer referenced from here. (Buckets were
 * arrays with lazy deletion: an acked lease stayed reachable from its bucket until a compaction,
 * long enough to be promoted to the old space, and the arrays' growth and compaction were most of
 * the rest of what the broker promoted per delivery:
 * docs/performance.md, "Leases without hash tables or lazy-deletion arrays".)
 */
export interface WheelItem<T> {
  /** The item's tick while scheduled, -1 otherwise. */
  tick: number;
  prev: T | undefined;
  next: T | undefined;
}

interface Bucket<T> {
  readonly tick: number;
  head: T | undefined;
  tail: T | undefined;
}

export class TimerWheel<T extends WheelItem<T>> {
  private readonly buckets = new Map<number, Bucket<T>>();
  /** The bucket `expire` is firing, already out of `buckets`: a handler may remove its items. */
  private firing: Bucket<T> | undefined;
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
    if (item.tick >= 0) throw new RangeError("item is already scheduled");
    let tick = Math.ceil(atMs / this.tickMs);
    // The tick being fired belongs to its bucket alone (remove finds an item's bucket by its
    // tick): an item a handler adds there goes one tick later, still never before its deadline.
    if (tick === this.firing?.tick) tick++;
    let bucket = this.buckets.get(tick);
    if (!bucket) {
      bucket = { tick, head: undefined, tail: undefined };
      this.buckets.set(tick, bucket);
    }
    item.tick = tick;
    item.prev = bucket.tail;
    item.next = undefined;
    if (bucket.tail) bucket.tail.next = item;
    else bucket.head = item;
    bucket.tail = item;
    this.count++;
  }

  /** Returns true when the item was scheduled (and is no longer). */
  remove(item: T): boolean {
    const tick = item.tick;
    if (tick < 0) return false;
    const bucket = this.firing?.tick === tick ? this.firing : this.buckets.get(tick)!;
    this.unlink(bucket, item);
    if (bucket.head === undefined && bucket !== this.firing) this.buckets.delete(tick);
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
    const due: number[] = [];
    for (const tick of this.buckets.keys()) if (tick <= nowTick) due.push(tick);
    for (const tick of due) {
      const bucket = this.buckets.get(tick);
      if (!bucket) continue;
      this.buckets.delete(tick);
      this.firing = bucket;
      // One at a time from the head: `fire` may remove (or reschedule) items still queued here.
      // Items it adds at a due tick go to a new bucket, fired by a later sweep.
      for (let item = bucket.head; item !== undefined; item = bucket.head) {
        this.unlink(bucket, item);
        fire(item);
      }
      this.firing = undefined;
    }
  }

  private unlink(bucket: Bucket<T>, item: T): void {
    const { prev, next } = item;
    if (prev) prev.next = next;
    else bucket.head = next;
    if (next) next.prev = prev;
    else bucket.tail = prev;
    item.prev = undefined;
    item.next = undefined;
    item.tick = -1;
    this.count--;
  }
}
