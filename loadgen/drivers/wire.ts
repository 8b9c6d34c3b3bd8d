/**
 * Hand-rolled protobuf for the generator's hot paths: publish requests are encoded straight
 * from payload views into one Buffer, and deliveries are decoded to byte ranges of the frame
 * (no copy and no object per message). Only the fields the generator reads are decoded; the
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
 * 64-bit fields (request_id) are bigint, as in the generated code (forceLong=bigint), and
 * round-trip their whole range; values up to 2^53 take a number fast path. An ack_id is never
 * read as a number: its varint's bytes go from the delivery into the AckRequest as they are.
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

/** Reader state, reused; decoding allocates nothing but the views decodeV1MessagePayload returns. */
class Reader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  /**
   * A varint as a number. Up to 4 bytes (28 bits: every length and tag) in integer arithmetic,
   * so the positions derived from it stay small integers: a float here made every position a
   * double, and each one passed to a call that is not inlined a HeapNumber allocation.
   */
  varint(): number {
    const b = this.buf;
    let byte = b[this.pos++]!;
    if (byte < 0x80) return byte;
    let result = byte & 0x7f;
    for (let shift = 7; shift < 28; shift += 7) {
      byte = b[this.pos++]!;
      result |= (byte & 0x7f) << shift;
      if (byte < 0x80) return result;
    }
    let mul = 2 ** 28;
    let big = result;
    for (;;) {
      byte = b[this.pos++]!;
      big += (byte & 0x7f) * mul;
      if (byte < 0x80) return big;
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

/**
 * Receives the deliveries of a ConsumeResponse as they are decoded: byte ranges of the frame,
 * no object per delivery. `ackStart`..`ackEnd` is the ack id's varint as the broker wrote it, to
 * be copied into an AckRequest as is (an int64 on the wire, so no BigInt is made to carry it);
 * an empty range is ack id 0, which proto3 encoders leave out.
 */
export interface DeliveryVisitor {
  delivery(buf: Buffer, ackStart: number, ackEnd: number, attempt: number, payloadStart: number, payloadEnd: number): void;
}

const reader = new Reader();

/**
 * v2 `ConsumeResponse` (bytes `start` to `end` of `buf`) → each delivery to `v`, in order; the
 * count. A delivery without a payload or an ack id (proto3 leaves out an empty or zero field) has
 * an empty range for it.
 */
export function readConsumeResponse(buf: Buffer, start: number, end: number, v: DeliveryVisitor): number {
  const r = reader;
  r.buf = buf;
  r.pos = start;
  let count = 0;
  while (r.pos < end) {
    const tag = r.varint();
    if (tag !== ((1 << 3) | 2)) {
      r.skip(tag & 7);
      continue;
    }
    const dLen = r.varint();
    const dEnd = r.pos + dLen;
    let ackStart = 0;
    let ackEnd = 0;
    let attempt = 1;
    let payloadStart = 0;
    let payloadEnd = 0;
    while (r.pos < dEnd) {
      const t = r.varint();
      const field = t >>> 3;
      if (field === 1 && (t & 7) === 0) {
        ackStart = r.pos;
        r.skip(0);
        ackEnd = r.pos;
      } else if (field === 2 && (t & 7) === 0) attempt = r.varint();
      else if (field === 3 && (t & 7) === 2) {
        const mEnd = r.varint() + r.pos;
        while (r.pos < mEnd) {
          const mt = r.varint();
          if (mt === ((4 << 3) | 2)) {
            payloadEnd = r.varint() + r.pos;
            payloadStart = r.pos;
            r.pos = payloadEnd;
          } else r.skip(mt & 7);
        }
      } else r.skip(t & 7);
    }
    count++;
    // The reader is the module's: whatever the visitor decodes meanwhile, this frame's position is kept.
    const pos = r.pos;
    v.delivery(buf, ackStart, ackEnd, attempt, payloadStart, payloadEnd);
    r.buf = buf;
    r.pos = pos;
  }
  return count;
}

/**
 * Ack ids gathered as the varints the broker sent them in (readConsumeResponse) and taken as one
 * gRPC-framed `ConsumeRequest { ack_ids }` message (field 2, packed): no BigInt and no array per
 * ack. The buffer is made on the first id after a take and grows by doubling; the room for the
 * gRPC prefix, the tag and the length is kept in front of the ids and filled on take.
 */
export class AckRequestBuilder {
  private buf: Buffer | undefined;
  private pos = ACK_HEAD;
  /** Ids gathered since the last take. */
  count = 0;

  /** The ack id whose varint is bytes `start` to `end` of `src` (none: id 0). */
  add(src: Uint8Array, start: number, end: number): void {
    const n = Math.max(1, end - start);
    if (this.buf === undefined) this.buf = Buffer.allocUnsafe(ACK_FIRST_BYTES);
    if (this.pos + n > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.pos + n));
      this.buf.copy(grown, 0, 0, this.pos);
      this.buf = grown;
    }
    if (start === end) this.buf[this.pos++] = 0;
    for (let i = start; i < end; i++) this.buf[this.pos++] = src[i]!;
    this.count++;
  }

  /** The gathered ids as one gRPC message, prefix included (undefined when there are none); the builder is empty after. */
  take(): Buffer | undefined {
    const buf = this.buf;
    if (buf === undefined || this.count === 0) return undefined;
    const ids = this.pos - ACK_HEAD;
    const message = 1 + varintSize(ids) + ids;
    const at = ACK_HEAD - (message - ids) - GRPC_PREFIX_BYTES;
    buf[at] = 0; // uncompressed
    buf.writeUInt32BE(message, at + 1);
    writeLenField(buf, at + GRPC_PREFIX_BYTES, (2 << 3) | 2, ids);
    const framed = buf.subarray(at, this.pos);
    this.clear();
    return framed;
  }

  /** Forgets the gathered ids (their stream ended: its leases are the broker's to redeliver). */
  clear(): void {
    this.buf = undefined;
    this.pos = ACK_HEAD;
    this.count = 0;
  }
}

/** gRPC's message prefix: a compressed flag and a 4-byte length. */
const GRPC_PREFIX_BYTES = 5;
/** Room in front of the ids: the gRPC prefix, ack_ids' tag and a length of up to 5 varint bytes (2^35 B). */
const ACK_HEAD = GRPC_PREFIX_BYTES + 1 + 5;
/** A first buffer holds ~80 small ids; a linger flush usually takes fewer. */
const ACK_FIRST_BYTES = 256;

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
