import type { Lease } from "../core/lease-table.js";
import type { StoredMessage } from "../core/types.js";

// A ConsumeResponse frame written straight from the core's leases into one buffer: a size
// pass, then a write pass, no intermediate objects or writer chunks (DESIGN §6: the consume
// path is the hot one). Field numbers follow proto/ratatoskr/v2/broker.proto:
//   ConsumeResponse { repeated Delivery deliveries = 1; }
//   Delivery { int64 ack_id = 1; int32 attempt = 2; Message message = 3; }
//   Message { string id = 1; string topic = 2; int64 sequence = 3; bytes payload = 4;
//             map<string,string> attributes = 5; int64 publish_time_ms = 6; }
// consume-codec.test.ts checks the output against the generated decoder.

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

/** Encoded size of one lease inside a ConsumeResponse (tag and length included). */
export function deliverySize(lease: Lease): number {
  const msg = messageSize(lease.message);
  const delivery = 1 + varintSize(lease.ackId) + 1 + varintSize(lease.attempt) + 1 + varintSize(msg) + msg;
  return 1 + varintSize(delivery) + delivery;
}

/**
 * Cuts a batch into runs whose frames stay within `maxFrameBytes` (gRPC refuses to send a
 * message above its max send size). A single delivery larger than that goes alone.
 */
export function splitFrames(batch: Lease[], maxFrameBytes: number): Lease[][] {
  let total = 0;
  let start = 0;
  let frames: Lease[][] | undefined;
  for (let i = 0; i < batch.length; i++) {
    const size = deliverySize(batch[i]!);
    if (i > start && total + size > maxFrameBytes) {
      (frames ??= []).push(batch.slice(start, i));
      start = i;
      total = 0;
    }
    total += size;
  }
  if (!frames) return [batch];
  frames.push(batch.slice(start));
  return frames;
}

let sizes = new Float64Array(1024);

/** Serializes a batch of leases as a `ratatoskr.v2.ConsumeResponse`. */
export function encodeConsumeResponse(batch: readonly Lease[]): Buffer {
  if (sizes.length < batch.length * 2) sizes = new Float64Array(batch.length * 2);
  let total = 0;
  for (let i = 0; i < batch.length; i++) {
    const lease = batch[i]!;
    const msg = messageSize(lease.message);
    const delivery = 1 + varintSize(lease.ackId) + 1 + varintSize(lease.attempt) + 1 + varintSize(msg) + msg;
    sizes[2 * i] = msg;
    sizes[2 * i + 1] = delivery;
    total += 1 + varintSize(delivery) + delivery;
  }
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let i = 0; i < batch.length; i++) {
    const lease = batch[i]!;
    buf[pos++] = TAG_DELIVERY;
    pos = writeVarint(buf, pos, sizes[2 * i + 1]!);
    buf[pos++] = TAG_ACK_ID;
    pos = writeVarint(buf, pos, lease.ackId);
    buf[pos++] = TAG_ATTEMPT;
    pos = writeVarint(buf, pos, lease.attempt);
    buf[pos++] = TAG_MESSAGE;
    pos = writeVarint(buf, pos, sizes[2 * i]!);
    pos = writeMessage(buf, pos, lease.message);
  }
  if (pos !== total) throw new Error(`ConsumeResponse encoder wrote ${pos} bytes, sized ${total}`);
  return buf;
}
