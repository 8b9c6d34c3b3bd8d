/**
 * Hand-rolled protobuf for the generator's hot paths: publish requests are encoded straight
 * from payload views into one Buffer, and deliveries are decoded to payload views (no copy, no
 * per-message objects beyond the view). Only the fields the generator reads are decoded; the
 * rest are skipped. Cold paths use the generated ts-proto code.
 *
 * Layouts (field numbers from proto/):
 *  v2 PublishRequest     { 1: topic string, 2: repeated PublishMessage { 1: payload bytes, 3: message_id string } }
 *  v2 PublishStreamRequest  PublishRequest + { 3: request_id uint64 }
 *  v2 PublishStreamResponse { 3: request_id uint64, 4: error_code int32, 5: error_message string }
 *  v2 ConsumeResponse    { 1: repeated Delivery { 1: ack_id int64, 2: attempt int32,
 *                          3: Message { 4: payload bytes } } }
 *  v1 PublishBatchRequest{ 1: topic string, 2: repeated PublishRequest { 1: topic, 2: payload } }
 *  v1 Message            { 3: payload bytes }
 *
 * 64-bit fields (request_id, ack_id) are bigint, as in the generated code (forceLong=bigint),
 * and round-trip their whole range; values up to 2^53 take a number fast path.
 */

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, o: number, n: number): number {
  while (n >= 0x80) {
    buf[o++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[o++] = n;
  return o;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Bytes of a 64-bit varint; a negative int64 is its two's complement (10 bytes), as protobuf writes it. */
function varint64Size(v: bigint): number {
  if (v >= 0n && v <= MAX_SAFE) return varintSize(Number(v));
  let u = BigInt.asUintN(64, v);
  let size = 1;
  while (u >= 0x80n) {
    u >>= 7n;
    size++;
  }
  return size;
}

function writeVarint64(buf: Buffer, o: number, v: bigint): number {
  if (v >= 0n && v <= MAX_SAFE) return writeVarint(buf, o, Number(v));
  let u = BigInt.asUintN(64, v);
  while (u >= 0x80n) {
    buf[o++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  buf[o++] = Number(u);
  return o;
}

function writeLenField(buf: Buffer, o: number, tag: number, len: number): number {
  buf[o++] = tag;
  return writeVarint(buf, o, len);
}

/**
 * Encode `{topic, messages: payloads.map(p => ({payload: p}))}`. Works for both v2
 * PublishRequest (inner field 1 = payload) and, with `innerPayloadField = 2` and the topic
 * repeated per item, v1 PublishBatchRequest.
 */
function encodeBatch(topic: string, payloads: readonly Uint8Array[], innerPayloadField: 1 | 2, itemTopic: boolean, requestId?: bigint, messageIds?: readonly string[]): Buffer {
  const topicBytes = Buffer.from(topic, "utf8");
  const innerTopicLen = itemTopic ? 1 + varintSize(topicBytes.length) + topicBytes.length : 0;
  let total = 1 + varintSize(topicBytes.length) + topicBytes.length;
  if (requestId !== undefined) total += 1 + varint64Size(requestId);
  // v2 PublishMessage.message_id (field 3); ids are ASCII, so their length is their byte length.
  const idLen = (i: number): number => (messageIds ? 1 + varintSize(messageIds[i]!.length) + messageIds[i]!.length : 0);
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i]!;
    const inner = innerTopicLen + 1 + varintSize(p.length) + p.length + idLen(i);
    total += 1 + varintSize(inner) + inner;
  }
  const buf = Buffer.allocUnsafe(total);
  let o = writeLenField(buf, 0, (1 << 3) | 2, topicBytes.length);
  o += topicBytes.copy(buf, o);
  const payloadTag = (innerPayloadField << 3) | 2;
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i]!;
    const inner = innerTopicLen + 1 + varintSize(p.length) + p.length + idLen(i);
    o = writeLenField(buf, o, (2 << 3) | 2, inner);
    if (itemTopic) {
      o = writeLenField(buf, o, (1 << 3) | 2, topicBytes.length);
      o += topicBytes.copy(buf, o);
    }
    o = writeLenField(buf, o, payloadTag, p.length);
    buf.set(p, o);
    o += p.length;
    if (messageIds) {
      const id = messageIds[i]!;
      o = writeLenField(buf, o, (3 << 3) | 2, id.length);
      o += buf.write(id, o, "latin1");
    }
  }
  if (requestId !== undefined) {
    buf[o++] = (3 << 3) | 0;
    writeVarint64(buf, o, requestId);
  }
  return buf;
}

export function encodeV2Publish(topic: string, payloads: readonly Uint8Array[], messageIds?: readonly string[]): Buffer {
  return encodeBatch(topic, payloads, 1, false, undefined, messageIds);
}

/**
 * A v2 PublishRequest (from encodeV2Publish) as a `PublishStreamRequest` with `request_id`:
 * the id is field 3 after the messages, so a retry re-sends the same body under a new id.
 */
export function withRequestId(publishRequest: Buffer, requestId: bigint): Buffer {
  const buf = Buffer.allocUnsafe(publishRequest.length + 1 + varint64Size(requestId));
  publishRequest.copy(buf, 0);
  buf[publishRequest.length] = (3 << 3) | 0;
  writeVarint64(buf, publishRequest.length + 1, requestId);
  return buf;
}

/** v2 `PublishStreamRequest`: a PublishRequest (same fields 1 and 2) plus `request_id` (field 3). */
export function encodeV2PublishStream(requestId: bigint, topic: string, payloads: readonly Uint8Array[]): Buffer {
  return encodeBatch(topic, payloads, 1, false, requestId);
}

export function encodeV1PublishBatch(topic: string, payloads: readonly Uint8Array[]): Buffer {
  // Items leave their own topic empty: the request's topic applies (docs/design.md, "v1 wire contract").
  return encodeBatch(topic, payloads, 2, false);
}

/** v2 `ConsumeRequest { ack_ids: [...] }` (field 2, packed int64). */
export function encodeAckRequest(ackIds: readonly bigint[]): Buffer {
  let len = 0;
  for (const id of ackIds) len += varint64Size(id);
  const buf = Buffer.allocUnsafe(1 + varintSize(len) + len);
  let o = writeLenField(buf, 0, (2 << 3) | 2, len);
  for (const id of ackIds) o = writeVarint64(buf, o, id);
  return buf;
}

/** Reader state, reused; decoding never allocates besides the payload views. */
class Reader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  varint(): number {
    const b = this.buf;
    let result = 0;
    let mul = 1;
    for (;;) {
      const byte = b[this.pos++]!;
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) return result;
      mul *= 128;
    }
  }
  /** A 64-bit varint, exact over the whole range: int64 (`signed`) or uint64. */
  varint64(signed: boolean): bigint {
    const b = this.buf;
    const start = this.pos;
    // Up to 7 bytes (49 bits) fit a number exactly.
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 7; i++) {
      const byte = b[this.pos++]!;
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) return BigInt(result);
      mul *= 128;
    }
    this.pos = start;
    let big = 0n;
    let shift = 0n;
    for (;;) {
      const byte = b[this.pos++]!;
      big |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) break;
      shift += 7n;
    }
    return signed ? BigInt.asIntN(64, big) : BigInt.asUintN(64, big);
  }
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        return;
      case 2: {
        const len = this.varint();
        this.pos += len;
        return;
      }
      case 5:
        this.pos += 4;
        return;
      default:
        throw new Error(`unsupported wire type ${wireType}`);
    }
  }
}

/** A decoded batch of deliveries; arrays are reused by the next decode of the same object. */
export interface DeliveryBatch {
  count: number;
  ackIds: bigint[];
  attempts: number[];
  payloads: Buffer[];
}

const reader = new Reader();

export function decodeConsumeResponse(buf: Buffer): DeliveryBatch {
  const out: DeliveryBatch = { count: 0, ackIds: [], attempts: [], payloads: [] };
  const r = reader;
  r.buf = buf;
  r.pos = 0;
  while (r.pos < buf.length) {
    const tag = r.varint();
    if (tag !== ((1 << 3) | 2)) {
      r.skip(tag & 7);
      continue;
    }
    const dLen = r.varint();
    const end = r.pos + dLen;
    let ackId = 0n;
    let attempt = 1;
    let payload: Buffer = EMPTY;
    while (r.pos < end) {
      const t = r.varint();
      const field = t >>> 3;
      if (field === 1 && (t & 7) === 0) ackId = r.varint64(true);
      else if (field === 2 && (t & 7) === 0) attempt = r.varint();
      else if (field === 3 && (t & 7) === 2) {
        const mLen = r.varint();
        const mEnd = r.pos + mLen;
        while (r.pos < mEnd) {
          const mt = r.varint();
          if (mt === ((4 << 3) | 2)) {
            const len = r.varint();
            payload = buf.subarray(r.pos, r.pos + len);
            r.pos += len;
          } else r.skip(mt & 7);
        }
      } else r.skip(t & 7);
    }
    out.ackIds.push(ackId);
    out.attempts.push(attempt);
    out.payloads.push(payload);
    out.count++;
  }
  return out;
}

const EMPTY = Buffer.alloc(0);

/** What the generator reads of a v2 `PublishStreamResponse`: the request it answers and its status. */
export interface PublishStreamAck {
  requestId: bigint;
  /** gRPC status code; 0 = stored. */
  errorCode: number;
  errorMessage: string;
}

export function decodePublishStreamAck(buf: Buffer): PublishStreamAck {
  const r = reader;
  r.buf = buf;
  r.pos = 0;
  const out: PublishStreamAck = { requestId: 0n, errorCode: 0, errorMessage: "" };
  while (r.pos < buf.length) {
    const t = r.varint();
    if (t === ((3 << 3) | 0)) out.requestId = r.varint64(false);
    else if (t === ((4 << 3) | 0)) out.errorCode = r.varint();
    else if (t === ((5 << 3) | 2)) {
      const len = r.varint();
      out.errorMessage = buf.toString("utf8", r.pos, r.pos + len);
      r.pos += len;
    } else r.skip(t & 7);
  }
  return out;
}

/** v1 `Message` → its payload (a view into the frame). */
export function decodeV1MessagePayload(buf: Buffer): Buffer {
  const r = reader;
  r.buf = buf;
  r.pos = 0;
  let payload: Buffer = EMPTY;
  while (r.pos < buf.length) {
    const t = r.varint();
    if (t === ((3 << 3) | 2)) {
      const len = r.varint();
      payload = buf.subarray(r.pos, r.pos + len);
      r.pos += len;
    } else r.skip(t & 7);
  }
  return payload;
}
