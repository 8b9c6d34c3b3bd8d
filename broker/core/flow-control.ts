/** Limits of one consumer: how much it may hold unacked at once. */
export interface FlowLimits {
  maxOutstandingMessages: number;
  maxOutstandingBytes: number;
}

export const DEFAULT_MAX_OUTSTANDING_MESSAGES = 1000;
export const DEFAULT_MAX_OUTSTANDING_BYTES = 10 * 1024 * 1024;

/**
 * Backpressure for one consumer in one place: counts outstanding messages and bytes and
 * says whether one more fits. A single message bigger than `maxOutstandingBytes` is let
 * through when nothing else is outstanding, otherwise it could never be delivered.
 */
export class FlowControl {
  private messageCount = 0;
  private byteCount = 0;

  constructor(readonly limits: FlowLimits) {}

  get messages(): number {
    return this.messageCount;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** No further message fits, whatever its size. */
  get full(): boolean {
    return this.messageCount >= this.limits.maxOutstandingMessages || this.byteCount >= this.limits.maxOutstandingBytes;
  }

  /** A message of `bytes` fits now. */
  fits(bytes: number): boolean {
    if (this.messageCount >= this.limits.maxOutstandingMessages) return false;
    return this.messageCount === 0 || this.byteCount + bytes <= this.limits.maxOutstandingBytes;
  }

  take(bytes: number): void {
    this.messageCount++;
    this.byteCount += bytes;
  }

  release(bytes: number): void {
    this.messageCount--;
    this.byteCount -= bytes;
  }

  reset(): void {
    this.messageCount = 0;
    this.byteCount = 0;
  }
}
