import type { Lease } from "./lease-table.js";

const INITIAL_CAPACITY = 16;
/** The storage of a consumer holding nothing: no slot at all (the next add makes the ring). */
const NO_SLOTS: readonly (Lease | undefined)[] = Object.freeze([]);
const NO_IDS: readonly number[] = Object.freeze([]);
/**
 * Dropped rings kept for the next consumer that needs one of their size: at most this many slots
 * a size (16 MiB with their ids), so 4,096 rings of 256 slots but 16 of 65,536. At ultimate a
 * quarter of this (1,024 rings of 256) ran dry between bursts, and the rings made then were a
 * third of what the broker promoted to the old space.
 */
const POOLED_SLOTS_PER_SIZE = 2 ** 20;

/**
 * Rings (slots and ids) of consumers that emptied, by size, for the next burst to take instead of
 * allocating: rings made and dropped at every burst were 22% of the broker's allocations at ultimate,
 * and lived long enough to be promoted. Every slot of a pooled ring is empty.
 */
const pool = new Map<number, { slots: (Lease | undefined)[]; ids: number[] }[]>();

/** Live leases of the ring being compacted or grown (makeRoom); every slot is empty between calls. */
const scratch: (Lease | undefined)[] = [];

/** An empty ring past INITIAL_CAPACITY to the pool, while its size has room there. */
function giveRing(slots: (Lease | undefined)[], ids: number[]): void {
  const size = slots.length;
  if (size <= INITIAL_CAPACITY) return;
  let rings = pool.get(size);
  if (rings === undefined) pool.set(size, (rings = []));
  if ((rings.length + 1) * size <= POOLED_SLOTS_PER_SIZE) rings.push({ slots, ids });
}

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
 * When the ring is full it is compacted in place if at most half of it is live, and moved to a
 * ring twice the size otherwise (pooled rings both ways). When the last lease is released a ring
 * past INITIAL_CAPACITY is dropped, and the next add takes one of the size it had (from a pool of dropped rings, or new): at the ultimate
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
    giveRing(this.slots, this.ids);
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
   * The ring is full: squeeze the holes out, or move to a ring twice the size (from the pool, the
   * old one going there) when at most half of it are holes; take one when there is none.
   */
  private makeRoom(): void {
    const capacity = this.slots.length;
    if (capacity === 0) {
      this.takeRing(this.nextCapacity);
      this.head = 0;
      return;
    }
    // The live leases in order, through a scratch array kept for every ring: no array per call.
    const mask = capacity - 1;
    let n = 0;
    for (let i = 0; i < this.span; i++) {
      const lease = this.slots[(this.head + i) & mask];
      if (lease !== undefined) scratch[n++] = lease;
    }
    if (this.live * 2 <= capacity) {
      this.slots.fill(undefined);
    } else {
      const oldSlots = this.slots;
      const oldIds = this.ids;
      this.takeRing(capacity * 2);
      oldSlots.fill(undefined);
      giveRing(oldSlots, oldIds);
    }
    for (let i = 0; i < n; i++) {
      const lease = scratch[i]!;
      scratch[i] = undefined;
      this.slots[i] = lease;
      this.ids[i] = lease.ackId;
    }
    this.head = 0;
    this.span = n;
  }

  /** A ring of `size` empty slots, pooled or new. */
  private takeRing(size: number): void {
    const pooled = pool.get(size)?.pop();
    this.slots = pooled?.slots ?? new Array<Lease | undefined>(size).fill(undefined);
    this.ids = pooled?.ids ?? new Array<number>(size).fill(0);
  }
}
