import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import { ConsumeRequest, PublishRequest, PublishStreamRequest } from "../../../proto/gen/ratatoskr/v2/broker.js";
import { decodeConsumeRequest, decodePublishRequest, MalformedFrameError } from "./request-codec.js";
import { consumeCommandsFromWire, publishRequestFromWire } from "./v2-wire.js";

// The hand decoders against the generated (ts-proto) ones: random messages written field by
// field in random order (fields repeated, unknown fields of every wire type, packed and unpacked
// ids, strings of random bytes), over the full 64-bit range of every int64/uint64 field.

/** xorshift32, seeded: a failure names its seed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof rng>;

const U64_EDGES = [0n, 1n, 127n, 128n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];
const I64_EDGES = [...U64_EDGES.filter((v) => v < 2n ** 63n), -1n, -2n, -(2n ** 31n), -(2n ** 53n - 1n), -(2n ** 53n), -(2n ** 53n + 1n), -(2n ** 63n)];

function randomU64(r: Rng): bigint {
  if (r.chance(0.3)) return U64_EDGES[r.int(U64_EDGES.length)]!;
  const bits = 1 + r.int(64);
  let v = 0n;
  for (let i = 0; i < bits; i += 16) v = (v << 16n) | BigInt(r.int(65536));
  return BigInt.asUintN(bits, v);
}

function randomI64(r: Rng): bigint {
  if (r.chance(0.3)) return I64_EDGES[r.int(I64_EDGES.length)]!;
  return BigInt.asIntN(64, randomU64(r));
}

function randomI32(r: Rng): number {
  const edges = [0, 1, -1, 0x7fffffff, -0x80000000, 1000];
  return r.chance(0.3) ? edges[r.int(edges.length)]! : (r.int(4294967296) | 0);
}

function randomBytes(r: Rng, max: number): Uint8Array {
  const b = new Uint8Array(r.int(max + 1));
  for (let i = 0; i < b.length; i++) b[i] = r.int(256);
  return b;
}

const TEXT = ["", "a", "topic-1", "é", "日本語", "\u{1F600}", "\uFEFFbom", "__proto__", "constructor", "k=v"];

/** A string field's bytes: valid text mostly, random (often invalid UTF-8) bytes sometimes. */
function randomText(r: Rng): Uint8Array {
  if (r.chance(0.25)) return randomBytes(r, 12);
  let s = "";
  for (let i = r.int(3); i >= 0; i--) s += TEXT[r.int(TEXT.length)]!;
  return new TextEncoder().encode(s);
}

/** An unknown field numbered `field` of a random wire type (a group with nested content too). */
function unknownField(w: BinaryWriter, r: Rng, field: number, depth = 0): void {
  switch (r.int(depth < 2 ? 5 : 4)) {
    case 0:
      w.uint32((field << 3) | 0).uint64(randomU64(r));
      break;
    case 1:
      w.uint32((field << 3) | 1).fixed64(randomU64(r));
      break;
    case 2:
      w.uint32((field << 3) | 2).bytes(randomBytes(r, 20));
      break;
    case 3:
      w.uint32((field << 3) | 5).fixed32(r.int(4294967296));
      break;
    default: {
      w.uint32((field << 3) | 3);
      for (let i = r.int(3); i > 0; i--) unknownField(w, r, 1 + r.int(30), depth + 1);
      w.uint32((field << 3) | 4);
    }
  }
}

/** Writes `parts` (each writes one field) in random order. */
function shuffled(w: BinaryWriter, r: Rng, parts: ((w: BinaryWriter) => void)[]): void {
  for (let i = parts.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [parts[i], parts[j]] = [parts[j]!, parts[i]!];
  }
  for (const p of parts) p(w);
}

function times(r: Rng, max: number, f: () => (w: BinaryWriter) => void): ((w: BinaryWriter) => void)[] {
  return Array.from({ length: r.int(max + 1) }, f);
}

function sub(w: BinaryWriter, tag: number, body: (w: BinaryWriter) => void): void {
  w.uint32(tag).fork();
  body(w);
  w.join();
}

function publishMessage(w: BinaryWriter, r: Rng): void {
  shuffled(w, r, [
    ...times(r, 2, () => (w) => void w.uint32(0x0a).bytes(randomBytes(r, 40))),
    ...times(r, 3, () => (w) =>
      sub(w, 0x12, (w) =>
        shuffled(w, r, [
          ...times(r, 1, () => (w) => void w.uint32(0x0a).bytes(randomText(r))),
          ...(r.chance(0.9) ? [(w: BinaryWriter) => void w.uint32(0x12).bytes(randomText(r))] : []),
          ...times(r, 1, () => (w) => unknownField(w, r, 3 + r.int(10))),
        ]),
      ),
    ),
    ...times(r, 2, () => (w) => void w.uint32(0x1a).bytes(randomText(r))),
    ...times(r, 2, () => (w) => unknownField(w, r, 4 + r.int(100))),
    // A known field with another wire type is skipped as unknown.
    ...times(r, 1, () => (w) => void w.uint32((3 << 3) | 0).uint64(randomU64(r))),
  ]);
}

function publishFrame(r: Rng): Uint8Array {
  const w = new BinaryWriter();
  shuffled(w, r, [
    ...times(r, 2, () => (w) => void w.uint32(0x0a).bytes(randomText(r))),
    ...times(r, 5, () => (w) => sub(w, 0x12, (w) => publishMessage(w, r))),
    ...times(r, 2, () => (w) => void w.uint32(0x18).uint64(randomU64(r))),
    ...times(r, 3, () => (w) => unknownField(w, r, 4 + r.int(2000))),
    ...times(r, 1, () => (w) => void w.uint32((1 << 3) | 5).fixed32(7)),
  ]);
  return w.finish();
}

function ids(w: BinaryWriter, r: Rng, field: number): void {
  if (r.chance(0.5)) {
    w.uint32(field << 3).int64(randomI64(r));
    return;
  }
  w.uint32((field << 3) | 2).fork();
  for (let i = r.int(6); i > 0; i--) w.int64(randomI64(r));
  w.join();
}

function consumeFrame(r: Rng): Uint8Array {
  const w = new BinaryWriter();
  shuffled(w, r, [
    ...times(r, 2, () => (w) =>
      sub(w, 0x0a, (w) =>
        shuffled(w, r, [
          ...times(r, 2, () => (w) => void w.uint32(0x0a).bytes(randomText(r))),
          ...times(r, 2, () => (w) => void w.uint32(0x10).int32(randomI32(r))),
          ...times(r, 2, () => (w) => void w.uint32(0x18).int64(randomI64(r))),
          ...times(r, 2, () => (w) => void w.uint32(0x22).bytes(randomText(r))),
          ...times(r, 2, () => (w) => unknownField(w, r, 5 + r.int(50))),
        ]),
      ),
    ),
    ...times(r, 4, () => (w) => ids(w, r, 2)),
    ...times(r, 4, () => (w) => ids(w, r, 3)),
    ...times(r, 2, () => (w) =>
      sub(w, 0x22, (w) =>
        shuffled(w, r, [...times(r, 3, () => (w) => ids(w, r, 1)), ...times(r, 2, () => (w) => void w.uint32(0x10).int32(randomI32(r))), ...times(r, 1, () => (w) => unknownField(w, r, 3 + r.int(9)))]),
      ),
    ),
    ...times(r, 3, () => (w) => unknownField(w, r, 5 + r.int(500))),
  ]);
  return w.finish();
}

const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** What the server made of a publish frame before: the generated decoder, then v2-wire.ts. */
function generatedPublish(frame: Uint8Array) {
  const g = PublishStreamRequest.decode(frame);
  return { ...publishRequestFromWire(g), requestId: g.requestId };
}

function generatedConsume(frame: Uint8Array) {
  const g = ConsumeRequest.decode(frame);
  return { start: g.start, commands: consumeCommandsFromWire(g), acksOrNacks: g.ackIds.length > 0 || g.nackIds.length > 0 };
}

/** Corrupts a frame: truncates it, flips a byte, or splices random bytes in. */
function corrupt(frame: Uint8Array, r: Rng): Uint8Array {
  const b = Uint8Array.from(frame);
  switch (r.int(3)) {
    case 0:
      return b.subarray(0, r.int(b.length));
    case 1:
      if (b.length) b[r.int(b.length)] = r.int(256);
      return b;
    default: {
      const at = r.int(b.length + 1);
      return Uint8Array.from([...b.subarray(0, at), ...randomBytes(r, 6), ...b.subarray(at)]);
    }
  }
}

const CASES = 1500;

describe("hand decoder of PublishStreamRequest and PublishRequest", () => {
  it("decodes every random frame as the generated decoder does", () => {
    const seed = 0x5eed0001;
    const r = rng(seed);
    let withRequestId = 0;
    for (let i = 0; i < CASES; i++) {
      const frame = publishFrame(r);
      const expected = generatedPublish(frame);
      if (expected.requestId > BigInt(Number.MAX_SAFE_INTEGER)) withRequestId++;
      expect(decodePublishRequest(asBuffer(frame)), `seed ${seed} case ${i}`).toEqual(expected);
      // A unary PublishRequest has the same first two fields; request_id is an unknown field there.
      const unary = publishRequestFromWire(PublishRequest.decode(frame));
      const { requestId: _id, ...hand } = decodePublishRequest(asBuffer(frame));
      expect(hand, `seed ${seed} case ${i} (unary)`).toEqual(unary);
    }
    expect(withRequestId).toBeGreaterThan(50); // the range above 2^53 was exercised
  });

  it("gives the full uint64 range of request_id exactly", () => {
    for (const id of U64_EDGES) {
      const frame = PublishStreamRequest.encode({ topic: "t", messages: [], requestId: id }).finish();
      expect(decodePublishRequest(asBuffer(frame)).requestId).toBe(id);
    }
  });

  it("copies payloads out of the frame", () => {
    const frame = asBuffer(PublishStreamRequest.encode({ topic: "t", messages: [{ payload: Buffer.from("abc"), attributes: {}, messageId: "" }], requestId: 1n }).finish());
    const decoded = decodePublishRequest(frame);
    frame.fill(0);
    expect(decoded.messages[0]!.payload.toString()).toBe("abc");
  });

  it("on a corrupted frame either fails with MalformedFrameError or agrees with the generated decoder", () => {
    const seed = 0x5eed0002;
    const r = rng(seed);
    let refused = 0;
    for (let i = 0; i < CASES; i++) {
      const frame = corrupt(publishFrame(r), r);
      let hand;
      try {
        hand = decodePublishRequest(asBuffer(frame));
      } catch (err) {
        expect(err, `seed ${seed} case ${i}`).toBeInstanceOf(MalformedFrameError);
        refused++;
        continue;
      }
      expect(hand, `seed ${seed} case ${i}`).toEqual(generatedPublish(frame));
    }
    expect(refused).toBeGreaterThan(CASES / 10);
  });

  it("refuses what the generated decoder lets through: field number 0, a stray end-group, a field past its message", () => {
    expect(() => decodePublishRequest(Buffer.from([0x02, 0x00]))).toThrow(MalformedFrameError); // field 0, wire type 2
    expect(() => decodePublishRequest(Buffer.from([0x0c]))).toThrow(/wire type 4/);
    // messages[0] is 2 bytes long, but its payload field claims 3.
    expect(() => decodePublishRequest(Buffer.from([0x12, 0x02, 0x0a, 0x03, 0x61, 0x62, 0x63]))).toThrow(/length beyond the end/);
  });
});

describe("hand decoder of ConsumeRequest", () => {
  it("decodes every random frame as the generated decoder and consumeCommandsFromWire do", () => {
    const seed = 0x5eed0003;
    const r = rng(seed);
    let unsafe = 0;
    for (let i = 0; i < CASES; i++) {
      const frame = consumeFrame(r);
      const g = ConsumeRequest.decode(frame);
      const max = BigInt(Number.MAX_SAFE_INTEGER);
      unsafe += [...g.ackIds, ...g.nackIds].filter((id) => id > max || id < -max).length;
      expect(decodeConsumeRequest(asBuffer(frame)), `seed ${seed} case ${i}`).toEqual(generatedConsume(frame));
    }
    expect(unsafe).toBeGreaterThan(100); // ids outside the safe range were exercised (and dropped alike)
  });

  it("keeps ack ids at the edges of the safe range and drops those just past them", () => {
    const edge = BigInt(Number.MAX_SAFE_INTEGER);
    const frame = ConsumeRequest.encode({ ackIds: [edge, edge + 1n, -edge, -edge - 1n, -(2n ** 63n), 2n ** 63n - 1n, 0n, -1n], nackIds: [], start: undefined, extend: undefined }).finish();
    expect(decodeConsumeRequest(asBuffer(frame)).commands).toEqual({ ackIds: [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0, -1] });
  });

  it("gives the full int64 range of max_outstanding_bytes and int32 of max_outstanding_messages", () => {
    for (const bytes of I64_EDGES) {
      const start = { subscription: "s", maxOutstandingMessages: -0x80000000, maxOutstandingBytes: bytes, consumerName: "c" };
      const frame = ConsumeRequest.encode({ start, ackIds: [], nackIds: [], extend: undefined }).finish();
      expect(decodeConsumeRequest(asBuffer(frame)).start).toEqual(start);
    }
  });

  it("on a corrupted frame either fails with MalformedFrameError or agrees with the generated decoder", () => {
    const seed = 0x5eed0004;
    const r = rng(seed);
    let refused = 0;
    for (let i = 0; i < CASES; i++) {
      const frame = corrupt(consumeFrame(r), r);
      let hand;
      try {
        hand = decodeConsumeRequest(asBuffer(frame));
      } catch (err) {
        expect(err, `seed ${seed} case ${i}`).toBeInstanceOf(MalformedFrameError);
        refused++;
        continue;
      }
      expect(hand, `seed ${seed} case ${i}`).toEqual(generatedConsume(frame));
    }
    expect(refused).toBeGreaterThan(CASES / 10);
  });
});
