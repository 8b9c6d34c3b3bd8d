import type { StoredMessage } from "./records.js";

// Compact binary encodings for the LMDB store. Keys are big-endian so LMDB's byte order is
// numeric order: a topic's messages are one contiguous, sequence-ordered key range.

/** Message key: topic id (u32) + sequence (u64 as two u32). */
export const MESSAGE_KEY_BYTES = 12;

export function messageKey(topicId: number, sequence: number): Buffer {
  const key = Buffer.allocUnsafe(MESSAGE_KEY_BYTES);
  key.writeUInt32BE(topicId, 0);
  key.writeUInt32BE(Math.floor(sequence / 0x1_0000_0000), 4);
  key.writeUInt32BE(sequence >>> 0, 8);
  return key;
}

export function readMessageKey(key: Buffer): { topicId: number; sequence: number } {
  return { topicId: key.readUInt32BE(0), sequence: key.readUInt32BE(4) * 0x1_0000_0000 + key.readUInt32BE(8) };
}

/** Start (inclusive) and end (exclusive) keys covering every sequence of a topic. */
export function topicKeyRange(topicId: number): { start: Buffer; end: Buffer } {
  return { start: messageKey(topicId, 0), end: messageKey(topicId + 1, 0) };
}

const FORMAT = 1;
const FLAG_PRODUCER_ID = 1;
// Header: format u8, flags u8, publishTimeMs f64, id length u16, attribute count u16.
const HEADER_BYTES = 14;

/**
 * Value layout: header, id (utf-8), per attribute [key length u16, key, value length u32,
 * value], then the payload to the end. Topic and sequence live in the key, not the value.
 */
export function encodeMessage(m: StoredMessage): Buffer {
  const id = Buffer.from(m.id, "utf8");
  if (id.length > 0xffff) throw new RangeError(`message id is ${id.length} bytes; the store's limit is 65535`);
  const attrs: Array<[Buffer, Buffer]> = [];
  let size = HEADER_BYTES + id.length + m.payload.length;
  for (const k in m.attributes) {
    const kb = Buffer.from(k, "utf8");
    if (kb.length > 0xffff) throw new RangeError(`attribute key is ${kb.length} bytes; the store's limit is 65535`);
    const vb = Buffer.from(m.attributes[k] ?? "", "utf8");
    attrs.push([kb, vb]);
    size += 6 + kb.length + vb.length;
  }
  if (attrs.length > 0xffff) throw new RangeError(`${attrs.length} attributes; the store's limit is 65535`);
  const out = Buffer.allocUnsafe(size);
  out.writeUInt8(FORMAT, 0);
  out.writeUInt8(m.producerId ? FLAG_PRODUCER_ID : 0, 1);
  out.writeDoubleLE(m.publishTimeMs, 2);
  out.writeUInt16LE(id.length, 10);
  out.writeUInt16LE(attrs.length, 12);
  let at = HEADER_BYTES;
  at += id.copy(out, at);
  for (const [kb, vb] of attrs) {
    out.writeUInt16LE(kb.length, at);
    at += 2;
    at += kb.copy(out, at);
    out.writeUInt32LE(vb.length, at);
    at += 4;
    at += vb.copy(out, at);
  }
  m.payload.copy(out, at);
  return out;
}

/** Thrown when a stored value does not decode: the data file is damaged. */
export class CorruptRecordError extends Error {
  override readonly name = "CorruptRecordError";
}

/** Decodes a value from encodeMessage. `value` must not be reused by the caller afterwards. */
export function decodeMessage(topic: string, sequence: number, value: Buffer): StoredMessage {
  if (value.length < HEADER_BYTES || value[0] !== FORMAT) {
    throw new CorruptRecordError(`message ${topic}/${sequence}: unknown record format`);
  }
  const flags = value.readUInt8(1);
  const publishTimeMs = value.readDoubleLE(2);
  const idLength = value.readUInt16LE(10);
  const attrCount = value.readUInt16LE(12);
  let at = HEADER_BYTES;
  const need = (n: number): void => {
    if (at + n > value.length) throw new CorruptRecordError(`message ${topic}/${sequence}: truncated record`);
  };
  need(idLength);
  const id = value.toString("utf8", at, at + idLength);
  at += idLength;
  const attributes: Record<string, string> = {};
  for (let i = 0; i < attrCount; i++) {
    need(2);
    const kl = value.readUInt16LE(at);
    at += 2;
    need(kl + 4);
    const key = value.toString("utf8", at, at + kl);
    at += kl;
    const vl = value.readUInt32LE(at);
    at += 4;
    need(vl);
    attributes[key] = value.toString("utf8", at, at + vl);
    at += vl;
  }
  return {
    id,
    topic,
    sequence,
    payload: value.subarray(at),
    attributes,
    publishTimeMs,
    producerId: (flags & FLAG_PRODUCER_ID) !== 0,
  };
}

/** The publish time alone, without decoding the rest (for time-based seeks). */
export function readPublishTime(value: Buffer): number {
  return value.readDoubleLE(2);
}
