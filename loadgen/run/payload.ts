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

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

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

  /**
   * Word views over the buffer when every header is 8-byte aligned on a little-endian host (the
   * usual case: sizes that are multiples of 8): a header is then six typed-array stores instead
   * of six Buffer write calls. Otherwise undefined, and the Buffer methods write it.
   */
  private readonly u32: Uint32Array | undefined;
  private readonly f64: Float64Array | undefined;

  constructor(readonly messageSize: number, readonly capacity: number, kind: "random" | "zeros") {
    this.buffer = Buffer.alloc(messageSize * capacity);
    if (kind === "random") randomFillSync(this.buffer);
    this.views = Array.from({ length: capacity }, (_, i) => this.buffer.subarray(i * messageSize, (i + 1) * messageSize));
    const aligned = messageSize % 8 === 0 && this.buffer.byteOffset % 8 === 0 && LITTLE_ENDIAN_HOST;
    this.u32 = aligned ? new Uint32Array(this.buffer.buffer, this.buffer.byteOffset, this.buffer.length / 4) : undefined;
    this.f64 = aligned ? new Float64Array(this.buffer.buffer, this.buffer.byteOffset, this.buffer.length / 8) : undefined;
  }

  reset(): void {
    this.length = 0;
  }

  /** Append a message header; returns its index in the batch. */
  push(producer: number, topic: number, seq: number, intendedUs: number, flags: number): number {
    const i = this.length++;
    const o = i * this.messageSize;
    const b = this.buffer;
    const w = this.u32;
    if (w !== undefined) {
      const q = o >>> 2;
      w[q] = PAYLOAD_MAGIC;
      w[q + 1] = producer;
      w[q + 2] = topic;
      w[q + 3] = seq;
      const d = o >>> 3;
      this.f64![d + 2] = intendedUs;
      this.f64![d + 3] = 0;
      b[o + 32] = flags;
      return i;
    }
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
    const f = this.f64;
    if (f !== undefined) {
      const step = this.messageSize >>> 3;
      for (let i = 0, d = 3; i < this.length; i++, d += step) f[d] = sentUs;
      return;
    }
    for (let i = 0; i < this.length; i++) this.buffer.writeDoubleLE(sentUs, i * this.messageSize + 24);
  }

  /** The filled messages (views into the shared buffer). */
  messages(): Buffer[] {
    return this.length === this.capacity ? this.views : this.views.slice(0, this.length);
  }
}

/** A new header to read into (`readHeader` reuses it for every message). */
export function emptyHeader(): DecodedHeader {
  return { producer: 0, topic: 0, seq: 0, intendedUs: 0, sentUs: 0, warmup: false };
}

// Scratch for reading a little-endian f64 out of any Uint8Array without a DataView or Buffer
// per message: its two 32-bit halves are stored into an Int32Array aliasing a Float64Array.
const f64 = new Float64Array(1);
const f64Halves = new Int32Array(f64.buffer);
const LOW = LITTLE_ENDIAN_HOST ? 0 : 1;

function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000;
}

function f64le(b: Uint8Array, o: number): number {
  f64Halves[LOW] = b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
  f64Halves[1 - LOW] = b[o + 4]! | (b[o + 5]! << 8) | (b[o + 6]! << 16) | (b[o + 7]! << 24);
  return f64[0]!;
}

/**
 * Read the header of a received payload (bytes `start` to `end` of `b`) into `into`, allocating
 * nothing (the delivery hot path): fields are read byte by byte from the buffer the client
 * handed over (a Buffer or any Uint8Array), so no view, DataView or object is made per message.
 * Returns false, leaving `into` unspecified, when the bytes are not a generator payload (too
 * short or without the magic).
 */
export function readHeader(b: Uint8Array, into: DecodedHeader, start = 0, end = b.length): boolean {
  if (end - start < HEADER_BYTES || u32(b, start) !== PAYLOAD_MAGIC) return false;
  into.producer = u32(b, start + 4);
  into.topic = u32(b, start + 8);
  into.seq = u32(b, start + 12);
  into.intendedUs = f64le(b, start + 16);
  into.sentUs = f64le(b, start + 24);
  into.warmup = (b[start + 32]! & FLAG_WARMUP) !== 0;
  return true;
}

/** The header of a generator payload as a new object; throws for anything else. */
export function decodeHeader(b: Uint8Array): DecodedHeader {
  const h = emptyHeader();
  if (!readHeader(b, h)) throw new Error(`not a generator payload (${b.length} bytes)`);
  return h;
}
