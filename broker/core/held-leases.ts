import type { Lease } from "./lease-table.js";

const INITIAL_CAPACITY = 16;
/** The storage of a consumer holding nothing: no slot at all (the next add makes the ring). */
const NO_SLOTS: readonly (Lease | undefined)[] = Object.freeze([]);
const NO_IDS: readonly number[] = Object.freeze([]);
/**
 * Dropped rings kept for the next consumer that needs one of their size: at most this many slots
 * a size (4 MiB with their ids), so 1,024 rings of 256 slots but 4 of 65,536.
 */
const POOLED_SLOTS_PER_SIZE = 2 ** 18;

/**
 * Rings (slots and ids) of consumers that emptied, by size, for the next burst to take instead of
 * allocating: rings made and dropped at every burst were 22% of the broker's allocations at ultimate,
 * and lived long enough to be promoted. Every slot of a pooled ring is empty.
 */
const pool = new Map<number, { slots: (Lease | undefined)[]; ids: number[] }[]>();

/** Rings of `size` slots in the pool (tests and memory figures). */
export function pooledRings(size: number): number {
  return pool.get(size)?.length ?? 0;
}

/**
 * The leases one consumer holds, found by ack id (docs/design.md, "Subscriptions and leases").
 *
 * Ack ids are handed out in increasing order, so a consumer's leases arrive sorted: they live in
 * a ring of slots in delivery order, found by binary search (a look at the oldest slot first,
 * since acks mostly come in order), and a released slot is a hole the ring's ends pass over.
 * When the ring is full it is compacted in place if at most half of it is live, and doubled
 * otherwise. When the last lease is released a ring past INITIAL_CAPACITY is dropped, and the
 * next add takes one of the size it had (from a pool of dropped rings, or new): at the ultimate
 * scenario (100,000 consumers, bursts of 100 to 200 leases about every 30 s each) the idle
 * consumers' rings of 256 slots, with their ids, were 4 KB a consumer; see
 * docs/performance.md, "Deliveries without objects and idle lease rings".
 *
 * Not a Map: at the massive scenario (10,000 consumers) the consumers' Maps reallocated their
 * hash tables each time they grew and shrank with a window of acks, and those tables lived long
 * enough to reach the old space: 35% of the bytes that survived a scavenge there
 * (docs/performance.md, "Leases without hash tables or lazy-deletion arrays").
 */
export class HeldLeases {
  private slots = NO_SLOTS as (Lease | undefined)[];
  /** The ack id of each slot, kept when the slot is released, so the search still works. */
  private ids = NO_IDS as number[];
  /** The ring's size when it was last dropped: the next one starts there. */
  private nextCapacity = INITIAL_CAPACITY;
  /** Index of the oldest slot in use (live or a hole behind a live one). */
  private head = 0;
  /** Slots in use from `head` on, holes included. */
  private span = 0;
  private live = 0;

  /** Leases held. */
  get size(): number {
    return this.live;
  }

  /** Adds a lease whose ack id is above every ack id added before. */
  add(lease: Lease): void {
    if (this.span > 0 && !(lease.ackId > this.ids[(this.head + this.span - 1) & (this.slots.length - 1)]!)) {
      throw new RangeError(`ack id ${lease.ackId} is not above the last one held`);
    }
    if (this.span === this.slots.length) this.makeRoom();
    const at = (this.head + this.span) & (this.slots.length - 1);
    this.slots[at] = lease;
    this.ids[at] = lease.ackId;
    this.span++;
    this.live++;
  }

  get(ackId: number): Lease | undefined {
    const at = this.find(ackId);
    return at < 0 ? undefined : this.slots[at];
  }

  /** Releases the lease of `ackId`; returns it, or undefined when it is not held. */
  delete(ackId: number): Lease | undefined {
    const at = this.find(ackId);
    if (at < 0) return undefined;
    const lease = this.slots[at];
    if (lease === undefined) return undefined;
    this.slots[at] = undefined;
    this.live--;
    const mask = this.slots.length - 1;
    while (this.span > 0 && this.slots[this.head] === undefined) {
      this.head = (this.head + 1) & mask;
      this.span--;
    }
    while (this.span > 0 && this.slots[(this.head + this.span - 1) & mask] === undefined) this.span--;
    if (this.span === 0) this.emptied();
    return lease;
  }

  /** The leases held, oldest first. */
  values(): Lease[] {
    const out: Lease[] = [];
    const mask = this.slots.length - 1;
    for (let i = 0; i < this.span; i++) {
      const lease = this.slots[(this.head + i) & mask];
      if (lease !== undefined) out.push(lease);
    }
    return out;
  }

  clear(): void {
    this.slots.fill(undefined);
    this.span = 0;
    this.live = 0;
    this.emptied();
  }

  /** Slots the ring has (for tests and memory figures). */
  get capacity(): number {
    return this.slots.length;
  }

  /** Nothing is held (every slot is empty): a large ring goes to the pool (the next add takes one as large). */
  private emptied(): void {
    this.head = 0;
    const size = this.slots.length;
    if (size <= INITIAL_CAPACITY) return;
    this.nextCapacity = size;
    let rings = pool.get(size);
    if (rings === undefined) pool.set(size, (rings = []));
    if ((rings.length + 1) * size <= POOLED_SLOTS_PER_SIZE) rings.push({ slots: this.slots, ids: this.ids });
    this.slots = NO_SLOTS as (Lease | undefined)[];
    this.ids = NO_IDS as number[];
  }

  /** The slot holding `ackId` (live or released), or -1. */
  private find(ackId: number): number {
    if (this.span === 0) return -1;
    const mask = this.slots.length - 1;
    if (this.ids[this.head] === ackId) return this.head;
    let lo = 0;
    let hi = this.span - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = (this.head + mid) & mask;
      const id = this.ids[at]!;
      if (id === ackId) return at;
      if (id < ackId) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /**
   * The ring is full: squeeze the holes out, or double it when at most half of it are holes;
   * make it when there is none.
   */
  private makeRoom(): void {
    const capacity = this.slots.length;
    if (capacity === 0) {
      const pooled = pool.get(this.nextCapacity)?.pop();
      this.slots = pooled?.slots ?? new Array<Lease | undefined>(this.nextCapacity).fill(undefined);
      this.ids = pooled?.ids ?? new Array<number>(this.nextCapacity).fill(0);
      this.head = 0;
      return;
    }
    const next = this.live * 2 <= capacity ? capacity : capacity * 2;
    const slots = next === capacity ? this.slots : new Array<Lease | undefined>(next).fill(undefined);
    const ids = next === capacity ? this.ids : new Array<number>(next).fill(0);
    const order = this.values();
    if (slots === this.slots) slots.fill(undefined);
    for (let i = 0; i < order.length; i++) {
      slots[i] = order[i];
      ids[i] = order[i]!.ackId;
    }
    this.slots = slots;
    this.ids = ids;
    this.head = 0;
    this.span = order.length;
  }
}
