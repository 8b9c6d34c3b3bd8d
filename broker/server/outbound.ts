/**
 * Outbound memory (docs/limits.md, "Outbound memory"): bytes handed to a stream's call and not
 * yet taken by HTTP/2 count against the stream's own cap and one broker-wide budget. grpc-js
 * calls a write's callback once the HTTP/2 stream has taken the data, which happens only as the
 * client's flow-control window allows, so a client that does not read keeps its bytes counted.
 */
export class OutboundBudget {
  private queued = 0;
  private peak = 0;
  private readonly waiters = new Set<BudgetWaiter>();

  /** `budgetBytes` 0 = unlimited. */
  constructor(readonly budgetBytes: number) {}

  get queuedBytes(): number {
    return this.queued;
  }

  /** Highest `queuedBytes` seen (statistics, tests). */
  get peakBytes(): number {
    return this.peak;
  }

  get full(): boolean {
    return this.budgetBytes > 0 && this.queued >= this.budgetBytes;
  }

  take(bytes: number): void {
    this.queued += bytes;
    if (this.queued > this.peak) this.peak = this.queued;
  }

  release(bytes: number): void {
    const wasFull = this.full;
    this.queued -= bytes;
    if (wasFull && !this.full) {
      for (const waiter of [...this.waiters]) {
        if (this.full) break;
        waiter.wake();
      }
    }
  }

  /** `waiter.wake()` runs when the budget stops being full, until `unwait`. */
  wait(waiter: BudgetWaiter): void {
    this.waiters.add(waiter);
  }

  unwait(waiter: BudgetWaiter): void {
    this.waiters.delete(waiter);
  }
}

export interface BudgetWaiter {
  wake(): void;
}

/** Who a StreamOutbound tells when it is writable again (an object, not a closure: one fewer per stream). */
export interface OutboundOwner {
  onWritable(): void;
}

/** The narrow view of a grpc-js call this file writes into. */
export interface WritableCall {
  write(chunk: Buffer, callback: (err?: Error | null) => void): boolean;
}

/**
 * One stream's outbound bytes. `write` always writes (what was leased or accepted is never
 * dropped); `writable` says whether more should be produced now: the stream is under its own
 * cap and the broker-wide budget is not full. `owner.onWritable()` runs once that turns true again.
 */
export class StreamOutbound implements BudgetWaiter {
  private pending = 0;
  private closed = false;
  private waiting = false;
  /** Writes completed so far: the stuck check looks for progress. */
  completed = 0;

  constructor(
    private readonly call: WritableCall,
    private readonly budget: OutboundBudget,
    readonly capBytes: number,
    private readonly owner: OutboundOwner,
  ) {}

  get pendingBytes(): number {
    return this.pending;
  }

  get writable(): boolean {
    return !this.closed && (this.capBytes <= 0 || this.pending < this.capBytes) && !this.budget.full;
  }

  /** Bytes that may still be produced before the stream stops being writable (at least one message always passes). */
  get roomBytes(): number {
    if (!this.writable) return 0;
    const own = this.capBytes > 0 ? this.capBytes - this.pending : Infinity;
    const shared = this.budget.budgetBytes > 0 ? this.budget.budgetBytes - this.budget.queuedBytes : Infinity;
    return Math.min(own, shared);
  }

  write(chunk: Buffer): void {
    if (this.closed) return;
    const n = chunk.length;
    this.pending += n;
    this.budget.take(n);
    this.call.write(chunk, () => {
      if (this.closed) return;
      this.pending -= n;
      this.completed++;
      this.budget.release(n);
      this.maybeWake();
    });
  }

  /** The caller stopped producing because `writable` was false: call `onWritable` when it turns. */
  waitWritable(): void {
    if (this.closed || this.waiting) return;
    this.waiting = true;
    this.budget.wait(this);
  }

  /** The stream is gone: its bytes leave the budget now, whatever HTTP/2 still holds. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.budget.unwait(this);
    this.budget.release(this.pending);
    this.pending = 0;
  }

  private maybeWake(): void {
    if (this.waiting && this.writable) this.wake();
  }

  /** The budget has room again (BudgetWaiter), or a write completed. */
  wake(): void {
    if (!this.waiting || !this.writable) return;
    this.waiting = false;
    this.budget.unwait(this);
    this.owner.onWritable();
  }
}
