import type { AckState } from "./types.js";

/**
 * What a subscription has acked: every sequence <= `floor`, plus sparse acks above it.
 * Acks usually arrive close to sequence order, so the sparse set stays small and the floor
 * advances as soon as the gap below it closes.
 */
export class AckSet {
  private currentFloor: number;
  /** Made on the first ack out of order (an empty Set's table is about 150 B a subscription). */
  private above: Set<number> | undefined;

  constructor(floor: number, above: readonly number[] = []) {
    this.currentFloor = floor;
    for (const s of above) if (s > floor) (this.above ??= new Set()).add(s);
    this.advance();
  }

  /** Every sequence <= floor is acked. */
  get floor(): number {
    return this.currentFloor;
  }

  /** Acks above the floor (the floor cannot pass a gap below them). */
  get sparseCount(): number {
    return this.above?.size ?? 0;
  }

  /** Records an ack; returns true when the floor moved. */
  ack(sequence: number): boolean {
    if (sequence <= this.currentFloor) return false;
    if (sequence !== this.currentFloor + 1) {
      (this.above ??= new Set()).add(sequence);
      return false;
    }
    this.currentFloor = sequence;
    this.advance();
    return true;
  }

  has(sequence: number): boolean {
    return sequence <= this.currentFloor || (this.above !== undefined && this.above.has(sequence));
  }

  /** Treats everything <= `floor` as acked (retention dropped it); returns true when the floor moved. */
  skipTo(floor: number): boolean {
    if (floor <= this.currentFloor) return false;
    this.currentFloor = floor;
    if (this.above) for (const s of this.above) if (s <= floor) this.above.delete(s);
    this.advance();
    return true;
  }

  snapshot(): AckState {
    return { floor: this.currentFloor, above: this.above ? [...this.above].sort((a, b) => a - b) : [] };
  }

  private advance(): void {
    const above = this.above;
    if (above === undefined || above.size === 0) return;
    let f = this.currentFloor;
    while (above.delete(f + 1)) f++;
    this.currentFloor = f;
  }
}
