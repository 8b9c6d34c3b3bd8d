/**
 * How much of the broker's data the generator handles in one turn of its event loop
 * (docs/loadgen.md, "Reads per loop turn"). libuv reads a readable socket up to 32 times in a
 * row, and the poll phase serves every ready socket before timers run again: after a pause (a
 * garbage collection) let data pile up in the kernel's buffers, one turn handled 14 to 32 MB from
 * the 64 connections of the ultimate scenario and timers waited 150 to 320 ms. Here the turn's
 * reads share a budget: a socket whose chunk finds it spent is paused with the chunk put back in
 * front of its buffer, and the next turn (setImmediate) resumes the sockets that waited longest.
 * Nothing is dropped or reordered, and a socket's end stays behind its data; the data waits in
 * the socket, and HTTP/2 flow control tells the broker when the generator has not caught up.
 */
import type { Duplex } from "node:stream";

/** Bytes of socket reads one loop turn handles before sockets wait for the next turn (about 6 to 10 ms of frames at ultimate). */
export const TURN_READ_BYTES = 1 << 20;

/** One loop turn's share of reads, shared by every connection of a thread. */
export class ReadBudget {
  private left: number;
  private readonly waiting: BudgetedReads[] = [];
  private armed = false;
  private readonly onTurn = (): void => this.turn();

  constructor(
    readonly bytesPerTurn = TURN_READ_BYTES,
    private readonly nextTurn: (turn: () => void) => void = setImmediate,
  ) {
    this.left = bytesPerTurn;
  }

  /** Charges `bytes` to this turn: false when the turn's budget was spent before them. */
  spend(bytes: number): boolean {
    this.arm();
    if (this.left <= 0) return false;
    this.left -= bytes;
    return true;
  }

  /** `reads` was paused holding a chunk and waits for a turn with budget left. */
  wait(reads: BudgetedReads): void {
    this.waiting.push(reads);
    this.arm();
  }

  /** Sockets paused and waiting for a turn. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    this.nextTurn(this.onTurn);
  }

  /**
   * A new turn: the budget is whole again, and the readers that waited longest resume, as many as
   * what they hold fits (each hands it over on its stream's next tick, charged as it comes).
   */
  private turn(): void {
    this.armed = false;
    this.left = this.bytesPerTurn;
    let room = this.left;
    let n = this.waiting.length;
    while (n-- > 0 && room > 0) {
      const reads = this.waiting.shift()!;
      room -= reads.heldBytes;
      reads.release();
    }
    if (this.waiting.length > 0) this.arm();
  }
}

/** The generator's budget: one per thread, so each worker of a run has its own. */
export const turnReads = new ReadBudget();

/**
 * Socket reads handed over so far on this thread. The delivery sink stamps a burst once per read
 * (docs/loadgen.md, "Receive time"): sockets resumed in one turn hand over their reads one after
 * another in one tick queue, with no microtask between them.
 */
export const readsHandedOver = { count: 0 };

/** A socket's reads handed to `consume` in order, within `budget`. */
export class BudgetedReads {
  constructor(
    private readonly socket: Duplex,
    private readonly consume: (chunk: Buffer) => void,
    private readonly budget: ReadBudget = turnReads,
  ) {
    socket.on("data", (chunk: Buffer) => this.onChunk(chunk));
  }

  /** Bytes the paused socket holds for its next turn. */
  get heldBytes(): number {
    return this.socket.destroyed ? 0 : this.socket.readableLength;
  }

  private onChunk(chunk: Buffer): void {
    if (this.budget.spend(chunk.length)) {
      readsHandedOver.count++;
      this.consume(chunk);
      return;
    }
    // The chunk goes back into the socket, in front of what it reads next (once it holds a
    // high-water mark's worth it stops reading): its end and close stay behind the chunk.
    this.socket.pause();
    this.socket.unshift(chunk);
    this.budget.wait(this);
  }

  /** The budget's turn came: the socket hands over what it holds, then reads again (a destroyed one, nothing). */
  release(): void {
    if (!this.socket.destroyed) this.socket.resume();
  }
}
