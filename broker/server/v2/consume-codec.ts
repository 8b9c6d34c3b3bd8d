import type { Lease, StoredMessage } from "../../core/index.js";
import { GRPC_PREFIX_BYTES } from "../h2-call.js";

// ConsumeResponse frames written straight from the core's leases: a size pass, then a write
// pass into one buffer per frame, no intermediate objects or writer chunks (docs/design.md, "Encode once": the
// consume path is the hot one). The server writes these Buffers, gRPC prefix included, straight
// on the Consume stream's HTTP/2 stream (h2-call.ts). Field numbers follow proto/ratatoskr/v2/broker.proto:
//   ConsumeResponse { repeated Delivery deliveries = 1; }
//   Delivery { int64 ack_id = 1; int32 attempt = 2; Message message = 3; }
//   Message { string id = 1; string topic = 2; int64 sequence = 3; bytes payload = 4;
//             map<string,string> attributes = 5; int64 publish_time_ms = 6; }
// consume-codec.test.ts checks the output against the generated decoder. The int64 fields are
// written from core numbers, which are non-negative safe integers (< 2^53), so the number varint
// writers below are exact for every value that can occur.

const TAG_DELIVERY = 0x0a; // field 1, length-delimited
const TAG_ACK_ID = 0x08; // field 1, varint
const TAG_ATTEMPT = 0x10; // field 2, varint
const TAG_MESSAGE = 0x1a; // field 3, length-delimited
const TAG_ID = 0x0a;
const TAG_TOPIC = 0x12;
const TAG_SEQUENCE = 0x18;
const TAG_PAYLOAD = 0x22;
const TAG_ATTRIBUTE = 0x2a;
const TAG_PUBLISH_TIME = 0x30;
const TAG_KEY = 0x0a;
const TAG_VALUE = 0x12;

/** Bytes of a non-negative integer (< 2^53) as a protobuf varint. */
function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  n = Math.floor(n / 0x10000000);
  while (n > 0) {
    size++;
    n = Math.floor(n / 0x80);
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80000000) {
    buf[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

function stringFieldSize(s: string): number {
  if (s.length === 0) return 0;
  const len = Buffer.byteLength(s, "utf8");
  return 1 + varintSize(len) + len;
}

function writeString(buf: Buffer, pos: number, tag: number, s: string): number {
  if (s.length === 0) return pos;
  const len = Buffer.byteLength(s, "utf8");
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, len);
  return pos + buf.write(s, pos, len, "utf8");
}

function attributeEntrySize(key: string, value: string): number {
  return stringFieldSize(key) + stringFieldSize(value);
}

/** Encoded size of a Message (without its own tag and length). */
export function messageSize(m: StoredMessage): number {
  let size = stringFieldSize(m.id) + stringFieldSize(m.topic);
  if (m.sequence !== 0) size += 1 + varintSize(m.sequence);
  const payloadLength = m.payload.length;
  if (payloadLength > 0) size += 1 + varintSize(payloadLength) + payloadLength;
  const attributes = m.attributes;
  for (const key in attributes) {
    const entry = attributeEntrySize(key, attributes[key]!);
    size += 1 + varintSize(entry) + entry;
  }
  if (m.publishTimeMs !== 0) size += 1 + varintSize(m.publishTimeMs);
  return size;
}

function writeMessage(buf: Buffer, pos: number, m: StoredMessage): number {
  pos = writeString(buf, pos, TAG_ID, m.id);
  pos = writeString(buf, pos, TAG_TOPIC, m.topic);
  if (m.sequence !== 0) {
    buf[pos++] = TAG_SEQUENCE;
    pos = writeVarint(buf, pos, m.sequence);
  }
  const payloadLength = m.payload.length;
  if (payloadLength > 0) {
    buf[pos++] = TAG_PAYLOAD;
    pos = writeVarint(buf, pos, payloadLength);
    pos += m.payload.copy(buf, pos);
  }
  const attributes = m.attributes;
  for (const key in attributes) {
    const value = attributes[key]!;
    buf[pos++] = TAG_ATTRIBUTE;
    pos = writeVarint(buf, pos, attributeEntrySize(key, value));
    pos = writeString(buf, pos, TAG_KEY, key);
    pos = writeString(buf, pos, TAG_VALUE, value);
  }
  if (m.publishTimeMs !== 0) {
    buf[pos++] = TAG_PUBLISH_TIME;
    pos = writeVarint(buf, pos, m.publishTimeMs);
  }
  return pos;
}

/**
 * Encoded message bodies shared by the subscriptions that deliver the same message within a
 * short time of each other (fan-out: one encode, many frames; subscriptions paced by their
 * consumers' acks drift apart by some milliseconds). Two generations rotate every
 * `generationMs`, so a body lives at most two generations, and a generation stops taking
 * bodies past `maxBytes`: the cache never holds retained messages for long or without bound.
 */
export class EncodedMessages {
  private current = new Map<StoredMessage, Buffer>();
  private previous = new Map<StoredMessage, Buffer>();
  private currentBytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly generationMs = 50,
    private readonly maxBytes = 16 * 1024 * 1024,
  ) {}

  get(m: StoredMessage): Buffer | undefined {
    return this.current.get(m) ?? this.previous.get(m);
  }

  set(m: StoredMessage, body: Buffer): void {
    if (this.currentBytes + body.length > this.maxBytes) return;
    this.current.set(m, body);
    this.currentBytes += body.length;
    if (!this.timer) {
      this.timer = setTimeout(() => this.rotate(), this.generationMs);
      this.timer.unref();
    }
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  /** Drops everything (shutdown). */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.current = new Map();
    this.previous = new Map();
    this.currentBytes = 0;
  }

  private rotate(): void {
    this.timer = undefined;
    this.previous = this.current;
    this.current = new Map();
    this.currentBytes = 0;
    if (this.previous.size > 0) {
      this.timer = setTimeout(() => this.rotate(), this.generationMs);
      this.timer.unref();
    }
  }
}

let scratch = new Float64Array(2048);
/** The shared bodies found in the size pass, so the write pass does not look each up again. */
const bodies: (Buffer | undefined)[] = [];

/**
 * Encodes a batch of leases as `ratatoskr.v2.ConsumeResponse` frames of at most
 * `maxFrameBytes` each (gRPC refuses to send a message above its max send size; a single
 * delivery larger than that goes alone). With `shared`, message bodies are encoded once and
 * reused across subscriptions. With `grpcPrefix`, each frame starts with gRPC's 5-byte message
 * prefix (uncompressed, its length), ready for a call that writes framed messages (h2-call.ts).
 */
export function encodeFrames(batch: readonly Lease[], maxFrameBytes: number, shared?: EncodedMessages, grpcPrefix = false): Buffer[] {
  const n = batch.length;
  if (scratch.length < n * 2) scratch = new Float64Array(n * 2);
  // Size pass: body and delivery lengths, and where frames are cut.
  const cuts: number[] = [];
  const totals: number[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const lease = batch[i]!;
    const body = shared?.get(lease.message);
    if (shared) bodies[i] = body;
    const msg = body ? body.length : messageSize(lease.message);
    const delivery = 1 + varintSize(lease.ackId) + 1 + varintSize(lease.attempt) + 1 + varintSize(msg) + msg;
    const entry = 1 + varintSize(delivery) + delivery;
    if (i > 0 && total + entry > maxFrameBytes) {
      cuts.push(i);
      totals.push(total);
      total = 0;
    }
    scratch[2 * i] = msg;
    scratch[2 * i + 1] = delivery;
    total += entry;
  }
  cuts.push(n);
  totals.push(total);
  // Write pass: one buffer per frame.
  const frames = new Array<Buffer>(cuts.length);
  let i = 0;
  const head = grpcPrefix ? GRPC_PREFIX_BYTES : 0;
  for (let f = 0; f < cuts.length; f++) {
    const buf = Buffer.allocUnsafe(head + totals[f]!);
    let pos = 0;
    if (grpcPrefix) {
      buf[0] = 0;
      buf.writeUInt32BE(totals[f]!, 1);
      pos = GRPC_PREFIX_BYTES;
    }
    for (const end = cuts[f]!; i < end; i++) {
      const lease = batch[i]!;
      buf[pos++] = TAG_DELIVERY;
      pos = writeVarint(buf, pos, scratch[2 * i + 1]!);
      buf[pos++] = TAG_ACK_ID;
      pos = writeVarint(buf, pos, lease.ackId);
      buf[pos++] = TAG_ATTEMPT;
      pos = writeVarint(buf, pos, lease.attempt);
      buf[pos++] = TAG_MESSAGE;
      const msg = scratch[2 * i]!;
      pos = writeVarint(buf, pos, msg);
      if (shared) {
        let body = bodies[i];
        if (!body) {
          body = Buffer.allocUnsafe(msg);
          writeMessage(body, 0, lease.message);
          shared.set(lease.message, body);
        }
        pos += body.copy(buf, pos);
      } else {
        pos = writeMessage(buf, pos, lease.message);
      }
    }
    if (pos !== buf.length) throw new Error(`ConsumeResponse encoder wrote ${pos} bytes, sized ${buf.length}`);
    frames[f] = buf;
  }
  if (shared) bodies.fill(undefined, 0, n); // hold no body past this call
  return frames;
}

/** One ConsumeResponse holding every lease of `batch` (tests, small batches). */
export function encodeConsumeResponse(batch: readonly Lease[]): Buffer {
  return encodeFrames(batch, Number.POSITIVE_INFINITY)[0]!;
}
