import type { PublishOutcome } from "../../core/index.js";

// Publish and PublishStream answers written straight from the core's outcomes into one buffer:
// no PublishResult object or BigInt per message, no BinaryWriter chunks (the answer carries a
// result per published message, so this is on the per-message path). The bytes are those of the
// generated encoder (publish-response-codec.test.ts compares them), fields in number order and
// proto3 defaults left out. Field numbers follow proto/ratatoskr/v2/broker.proto:
//   PublishResponse       { repeated PublishResult results = 1; int64 publish_time_ms = 2; }
//   PublishStreamResponse { repeated PublishResult results = 1; int64 publish_time_ms = 2;
//                           uint64 request_id = 3; int32 error_code = 4; string error_message = 5; }
//   PublishResult         { string message_id = 1; int64 sequence = 2; bool duplicate = 3; }
// A PublishResponse is a PublishStreamResponse with request_id, error_code and error_message
// unset, so one encoder serves both. Sequences and times are core numbers: non-negative safe
// integers.

/** Bytes of a non-negative safe integer as a varint. */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
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

/** A uint64 as lo/hi 32-bit halves → varint bytes (request ids use the full range). */
function u64Size(lo: number, hi: number): number {
  if (hi === 0) return varintSize(lo);
  let size = 5; // the low 35 bits take five bytes once anything is above 2^32
  let rest = Math.floor(hi / 8); // bits from 35 up
  while (rest > 0) {
    size++;
    rest = Math.floor(rest / 0x80);
  }
  return size;
}

function writeU64(buf: Buffer, pos: number, lo: number, hi: number): number {
  if (hi === 0) return writeVarint(buf, pos, lo);
  for (let i = 0; i < 4; i++) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  // Bits 28..34: four of lo, three of hi.
  let b = lo | ((hi & 0x07) << 4);
  hi >>>= 3;
  while (hi > 0) {
    buf[pos++] = b | 0x80;
    b = hi & 0x7f;
    hi >>>= 7;
  }
  buf[pos++] = b;
  return pos;
}

function resultSize(o: PublishOutcome): number {
  const id = Buffer.byteLength(o.id, "utf8");
  let size = id > 0 ? 1 + varintSize(id) + id : 0;
  if (o.sequence !== 0) size += 1 + varintSize(o.sequence);
  if (o.duplicate) size += 2;
  return size;
}

/**
 * A PublishStreamResponse (with `requestId`) or, with requestId 0n and no error, a
 * PublishResponse. `outcomes` empty and no error: publish_time_ms is `nowMs`.
 */
export function encodePublishAnswer(requestId: bigint, outcomes: readonly PublishOutcome[], nowMs: number, errorCode = 0, errorMessage = ""): Buffer {
  const n = outcomes.length;
  const publishTimeMs = errorCode !== 0 ? 0 : (outcomes[0]?.publishTimeMs ?? nowMs);
  const lo = Number(requestId & 0xffffffffn);
  const hi = Number((requestId >> 32n) & 0xffffffffn);
  const errorBytes = errorMessage.length > 0 ? Buffer.byteLength(errorMessage, "utf8") : 0;
  let size = 0;
  for (let i = 0; i < n; i++) {
    const r = resultSize(outcomes[i]!);
    size += 1 + varintSize(r) + r;
  }
  if (publishTimeMs !== 0) size += 1 + varintSize(publishTimeMs);
  if (requestId !== 0n) size += 1 + u64Size(lo, hi);
  // int32: a negative code is sign-extended to ten bytes.
  if (errorCode !== 0) size += 1 + (errorCode < 0 ? 10 : varintSize(errorCode));
  if (errorBytes > 0) size += 1 + varintSize(errorBytes) + errorBytes;

  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const o = outcomes[i]!;
    buf[pos++] = 0x0a;
    pos = writeVarint(buf, pos, resultSize(o));
    if (o.id.length > 0) {
      const id = Buffer.byteLength(o.id, "utf8");
      buf[pos++] = 0x0a;
      pos = writeVarint(buf, pos, id);
      pos += buf.write(o.id, pos, id, "utf8");
    }
    if (o.sequence !== 0) {
      buf[pos++] = 0x10;
      pos = writeVarint(buf, pos, o.sequence);
    }
    if (o.duplicate) {
      buf[pos++] = 0x18;
      buf[pos++] = 1;
    }
  }
  if (publishTimeMs !== 0) {
    buf[pos++] = 0x10;
    pos = writeVarint(buf, pos, publishTimeMs);
  }
  if (requestId !== 0n) {
    buf[pos++] = 0x18;
    pos = writeU64(buf, pos, lo, hi);
  }
  if (errorCode !== 0) {
    buf[pos++] = 0x20;
    if (errorCode < 0) pos = writeU64(buf, pos, errorCode >>> 0, 0xffffffff);
    else pos = writeVarint(buf, pos, errorCode);
  }
  if (errorBytes > 0) {
    buf[pos++] = 0x2a;
    pos = writeVarint(buf, pos, errorBytes);
    pos += buf.write(errorMessage, pos, errorBytes, "utf8");
  }
  if (pos !== size) throw new Error(`publish answer encoder wrote ${pos} bytes, sized ${size}`);
  return buf;
}
