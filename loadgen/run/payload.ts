/**
 * Message payload layout (little endian). Every message carries who sent it, its place in its
 * (producer, topic) stream and its timing, so consumers can account and time each delivery.
 *
 *   0  u32  magic 0x4b544152 ("RATK")
 *   4  u32  producer id
 *   8  u32  topic index
 *  12  u32  sequence within (producer, topic), from 0, gap-free
 *  16  f64  intended send time, monotonic µs
 *  24  f64  actual send time, monotonic µs
 *  32  u8   flags (bit 0: warmup)
 *  33..     padding up to the message size (random or zeros)
 */
import { randomFillSync } from "node:crypto";

export const PAYLOAD_MAGIC = 0x4b544152;
export const HEADER_BYTES = 40;
export const FLAG_WARMUP = 1;

export interface DecodedHeader {
  producer: number;
  topic: number;
  seq: number;
  intendedUs: number;
  sentUs: number;
  warmup: boolean;
}

/**
 * Builds a batch of payloads in one allocation. The padding is written once per buffer; a
 * batch only rewrites the 40-byte headers, so a producer reuses its buffers between batches
 * once the previous batch was serialized (serialization copies; see drivers).
 */
export class PayloadBatch {
  readonly buffer: Buffer;
  readonly views: Buffer[];
  length = 0;

  constructor(readonly messageSize: number, readonly capacity: number, kind: "random" | "zeros") {
    this.buffer = Buffer.alloc(messageSize * capacity);
    if (kind === "random") randomFillSync(this.buffer);
    this.views = Array.from({ length: capacity }, (_, i) => this.buffer.subarray(i * messageSize, (i + 1) * messageSize));
  }

  reset(): void {
    this.length = 0;
  }

  /** Append a message header; returns its index in the batch. */
  push(producer: number, topic: number, seq: number, intendedUs: number, flags: number): number {
    const i = this.length++;
    const o = i * this.messageSize;
    const b = this.buffer;
    b.writeUInt32LE(PAYLOAD_MAGIC, o);
    b.writeUInt32LE(producer, o + 4);
    b.writeUInt32LE(topic, o + 8);
    b.writeUInt32LE(seq, o + 12);
    b.writeDoubleLE(intendedUs, o + 16);
    b.writeDoubleLE(0, o + 24);
    b[o + 32] = flags;
    return i;
  }

  /** Stamp the actual send time into every message of the batch (just before sending). */
  stampSent(sentUs: number): void {
    for (let i = 0; i < this.length; i++) this.buffer.writeDoubleLE(sentUs, i * this.messageSize + 24);
  }

  /** The filled messages (views into the shared buffer). */
  messages(): Buffer[] {
    return this.length === this.capacity ? this.views : this.views.slice(0, this.length);
  }
}

/** True when `b` looks like a generator payload. */
export function isPayload(b: Uint8Array): boolean {
  return b.length >= HEADER_BYTES && readU32(b, 0) === PAYLOAD_MAGIC;
}

export function readU32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000;
}

const f64 = new Float64Array(1);
const f64bytes = new Uint8Array(f64.buffer);

/** Read a little-endian double from any Uint8Array without allocating. */
export function readF64(b: Uint8Array, o: number): number {
  for (let i = 0; i < 8; i++) f64bytes[i] = b[o + i]!;
  return f64[0]!;
}

export function decodeHeader(b: Uint8Array): DecodedHeader {
  return {
    producer: readU32(b, 4),
    topic: readU32(b, 8),
    seq: readU32(b, 12),
    intendedUs: readF64(b, 16),
    sentUs: readF64(b, 24),
    warmup: (b[32]! & FLAG_WARMUP) !== 0,
  };
}
