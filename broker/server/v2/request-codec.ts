import type { ConsumerCommands, PublishInput } from "../../core/index.js";
import type { ConsumeStart } from "../../../proto/gen/ratatoskr/v2/broker.js";

// Hand decoders for the two requests every message passes through: PublishStream (and Publish)
// requests and Consume acks, nacks and extensions. They read the frame straight into what the
// core takes (PublishInput[], ConsumerCommands with number ack ids) with no reader object,
// intermediate request objects or 64-bit BigInts per field (docs/design.md, "Encode once"; the
// decode side of the same hot path). Field numbers follow proto/ratatoskr/v2/broker.proto:
//   PublishStreamRequest { string topic = 1; repeated PublishMessage messages = 2; uint64 request_id = 3; }
//   PublishRequest       { string topic = 1; repeated PublishMessage messages = 2; }
//   PublishMessage       { bytes payload = 1; map<string,string> attributes = 2; string message_id = 3; }
//   ConsumeRequest       { ConsumeStart start = 1; repeated int64 ack_ids = 2; repeated int64 nack_ids = 3;
//                          DeadlineExtension extend = 4; }
//   ConsumeStart         { string subscription = 1; int32 max_outstanding_messages = 2;
//                          int64 max_outstanding_bytes = 3; string consumer_name = 4; }
//   DeadlineExtension    { repeated int64 ack_ids = 1; int32 extend_ms = 2; }
// request-codec.test.ts holds them to the generated (ts-proto) decoders on random messages over
// the full 64-bit range of every int64/uint64 field, with unknown fields of every wire type,
// packed and unpacked ids, and on corrupted frames. On every well-formed frame the result is the
// generated decoder's (mapped as v2-wire.ts maps it). They are stricter on malformed frames:
// a field number 0, a stray end-group, wire types 6 and 7, and a field that runs past the end of
// its enclosing message are errors here, where the generated decoder stops or reads on.

/** A frame that is not a valid encoding of the expected message. */
export class MalformedFrameError extends Error {}

// The reader's state: decoding is synchronous, so one module-level cursor serves every call.
let buf: Buffer = Buffer.alloc(0);
let pos = 0;
/** The low and high 32 bits of the last varint read with readVarint64. */
let lo = 0;
let hi = 0;

function fail(what: string): never {
  throw new MalformedFrameError(`${what} at byte ${pos}`);
}

/** A varint's low 32 bits as an unsigned number (tags, lengths, int32 fields); at most 10 bytes. */
function readVarint32(limit: number): number {
  if (pos >= limit) fail("truncated varint");
  let b = buf[pos++]!;
  if (b < 0x80) return b;
  let result = b & 0x7f;
  let shift = 7;
  for (let i = 1; i < 10; i++) {
    if (pos >= limit) fail("truncated varint");
    b = buf[pos++]!;
    if (shift < 32) result |= (b & 0x7f) << shift;
    shift += 7;
    if (b < 0x80) return result >>> 0;
  }
  if (pos > limit) fail("truncated varint");
  return fail("varint longer than 10 bytes");
}

/** A 64-bit varint into lo/hi (two's complement halves, as uint32 and int32). */
function readVarint64(limit: number): void {
  let l = 0;
  let h: number;
  let b: number;
  for (let i = 0; i < 4; i++) {
    if (pos >= limit) fail("truncated varint");
    b = buf[pos++]!;
    l |= (b & 0x7f) << (7 * i);
    if (b < 0x80) {
      lo = l >>> 0;
      hi = 0;
      return;
    }
  }
  if (pos >= limit) fail("truncated varint");
  b = buf[pos++]!;
  l |= (b & 0x0f) << 28;
  h = (b & 0x70) >> 4;
  if (b >= 0x80) {
    for (let shift = 3; ; shift += 7) {
      if (shift > 31) fail("varint longer than 10 bytes");
      if (pos >= limit) fail("truncated varint");
      b = buf[pos++]!;
      h |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
  }
  lo = l >>> 0;
  hi = h | 0;
}

const TWO_32 = 4294967296;
const HI_MIN_SAFE = -0x200000; // hi of -(2^53): one below Number.MIN_SAFE_INTEGER when lo = 0

/** The last int64 read as a number if it is a safe integer, else undefined (an id no lease has). */
function safeInt64(): number | undefined {
  if (hi >= 0) return hi < 0x200000 ? hi * TWO_32 + lo : undefined;
  return hi > HI_MIN_SAFE || (hi === HI_MIN_SAFE && lo >= 1) ? hi * TWO_32 + lo : undefined;
}

const LENGTH_DELIMITED = 2;

/** A length prefix and the end it gives, which must lie within `limit`. */
function readLength(limit: number): number {
  const len = readVarint32(limit);
  const end = pos + len;
  if (end > limit) fail("length beyond the end of its message");
  return end;
}

function readString(limit: number): string {
  const end = readLength(limit);
  const s = end === pos ? "" : buf.toString("utf8", pos, end);
  pos = end;
  return s;
}

/** Reads a tag; returns it, failing on field number 0 and on wire types that cannot start a field. */
function readTag(limit: number): number {
  const tag = readVarint32(limit);
  const wireType = tag & 7;
  if (tag >>> 3 === 0) fail("field number 0");
  if (wireType === 4 || wireType > 5) fail(`wire type ${wireType}`);
  return tag;
}

/** Skips the value of an unknown field (or a known field of another wire type). */
function skipField(tag: number, limit: number, depth = 0): void {
  switch (tag & 7) {
    case 0:
      readVarint64(limit);
      return;
    case 1:
      pos += 8;
      break;
    case 2:
      pos = readLength(limit);
      return;
    case 3: {
      if (depth >= 100) fail("groups nested too deep");
      const field = tag >>> 3;
      for (;;) {
        if (pos >= limit) fail("unterminated group");
        const inner = readVarint32(limit);
        if ((inner & 7) === 4) {
          if (inner >>> 3 !== field) fail("mismatched end group");
          return;
        }
        if (inner >>> 3 === 0 || (inner & 7) > 5) fail("bad tag in group");
        skipField(inner, limit, depth + 1);
      }
    }
    case 5:
      pos += 4;
      break;
  }
  if (pos > limit) fail("truncated field");
}

// ---------------------------------------------------------------- publish

function readPublishMessage(end: number): PublishInput {
  let payload: Buffer | undefined;
  const attributes: Record<string, string> = {};
  let messageId = "";
  while (pos < end) {
    const tag = readTag(end);
    if (tag === 0x0a) {
      const e = readLength(end);
      payload = Buffer.from(buf.subarray(pos, e)); // a copy: the store keeps it past this frame
      pos = e;
    } else if (tag === 0x12) {
      const e = readLength(end);
      let key = "";
      let value = "";
      while (pos < e) {
        const t = readTag(e);
        if (t === 0x0a) key = readString(e);
        else if (t === 0x12) value = readString(e);
        else skipField(t, e);
      }
      attributes[key] = value;
    } else if (tag === 0x1a) {
      messageId = readString(end);
    } else skipField(tag, end);
  }
  payload ??= Buffer.alloc(0);
  // An empty message_id is "unset" on the wire: the broker makes one (v2-wire.ts, publishRequestFromWire).
  return messageId === "" ? { payload, attributes } : { payload, attributes, messageId };
}

/** A PublishStreamRequest (or a PublishRequest, whose fields are its first two) as the core takes it. */
export interface DecodedPublish {
  topic: string;
  messages: PublishInput[];
  /** request_id (uint64, full range); 0n when absent, as in a PublishRequest. */
  requestId: bigint;
}

/** Decodes a PublishStreamRequest or PublishRequest frame; MalformedFrameError if it is not one. */
export function decodePublishRequest(frame: Buffer): DecodedPublish {
  buf = frame;
  pos = 0;
  const end = frame.length;
  let topic = "";
  const messages: PublishInput[] = [];
  let requestId = 0n;
  try {
    while (pos < end) {
      const tag = readTag(end);
      if (tag === 0x0a) topic = readString(end);
      else if (tag === 0x12) messages.push(readPublishMessage(readLength(end)));
      else if (tag === 0x18) {
        readVarint64(end);
        requestId = hi === 0 ? BigInt(lo) : (BigInt(hi >>> 0) << 32n) | BigInt(lo);
      } else skipField(tag, end);
    }
  } finally {
    buf = EMPTY; // do not keep the frame alive
  }
  return { topic, messages, requestId };
}

const EMPTY = Buffer.alloc(0);

// ---------------------------------------------------------------- consume

/** A ConsumeRequest: `start` as the generated type (v2-wire.ts validates it), the rest as core commands. */
export interface DecodedConsume {
  start: ConsumeStart | undefined;
  /** ack_ids, nack_ids and extend as v2-wire.ts's consumeCommandsFromWire makes them. */
  commands: ConsumerCommands;
  /** The frame carried ack or nack ids (in range or not). */
  acksOrNacks: boolean;
}

/**
 * Reads the ids of a repeated int64 field numbered `field` (one unpacked id or a packed run)
 * into `into`, keeping the safe integers; returns how many were on the wire, or -1 when `tag`
 * is not that field with a wire type it may have.
 */
function readIds(tag: number, field: number, limit: number, into: number[]): number {
  if (tag === field << 3) {
    readVarint64(limit);
    const id = safeInt64();
    if (id !== undefined) into.push(id);
    return 1;
  }
  if (tag === ((field << 3) | LENGTH_DELIMITED)) {
    const e = readLength(limit);
    let n = 0;
    for (; pos < e; n++) {
      readVarint64(e);
      const id = safeInt64();
      if (id !== undefined) into.push(id);
    }
    return n;
  }
  return -1;
}

function readStart(end: number): ConsumeStart {
  const start: ConsumeStart = { subscription: "", maxOutstandingMessages: 0, maxOutstandingBytes: 0n, consumerName: "" };
  while (pos < end) {
    const tag = readTag(end);
    if (tag === 0x0a) start.subscription = readString(end);
    else if (tag === 0x10) start.maxOutstandingMessages = readVarint32(end) | 0;
    else if (tag === 0x18) {
      readVarint64(end);
      start.maxOutstandingBytes = BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo));
    } else if (tag === 0x22) start.consumerName = readString(end);
    else skipField(tag, end);
  }
  return start;
}

/** Decodes a ConsumeRequest frame; MalformedFrameError if it is not one. */
export function decodeConsumeRequest(frame: Buffer): DecodedConsume {
  buf = frame;
  pos = 0;
  const end = frame.length;
  let start: ConsumeStart | undefined;
  const ackIds: number[] = [];
  const nackIds: number[] = [];
  let acksOnWire = 0;
  let nacksOnWire = 0;
  let extend: { ackIds: number[]; extendMs: number } | undefined;
  try {
    while (pos < end) {
      const tag = readTag(end);
      const field = tag >>> 3;
      let n = -1;
      if (field === 2) n = readIds(tag, 2, end, ackIds);
      else if (field === 3) n = readIds(tag, 3, end, nackIds);
      if (n >= 0) {
        if (field === 2) acksOnWire += n;
        else nacksOnWire += n;
        continue;
      }
      if (tag === 0x0a) start = readStart(readLength(end));
      else if (tag === 0x22) {
        const e = readLength(end);
        const x = { ackIds: [] as number[], extendMs: 0 };
        while (pos < e) {
          const t = readTag(e);
          if (t >>> 3 === 1 && readIds(t, 1, e, x.ackIds) >= 0) continue;
          if (t === 0x10) x.extendMs = readVarint32(e) | 0;
          else skipField(t, e);
        }
        extend = x;
      } else skipField(tag, end);
    }
  } finally {
    buf = EMPTY;
  }
  // As consumeCommandsFromWire: a list is present when the frame had ids, in range or not.
  const commands: ConsumerCommands = {};
  if (acksOnWire > 0) commands.ackIds = ackIds;
  if (nacksOnWire > 0) commands.nackIds = nackIds;
  if (extend) commands.extend = extend;
  return { start, commands, acksOrNacks: acksOnWire > 0 || nacksOnWire > 0 };
}
