import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { ConsumeResponse } from "../../../proto/gen/ratatoskr/v2/broker.js";
import { Lease, type LeaseHolder } from "../../core/lease-table.js";
import type { StoredMessage } from "../../core/types.js";
import { EncodedMessages, encodeConsumeResponse, encodeFrames } from "./consume-codec.js";

const holder: LeaseHolder = { onLeaseExpired: () => undefined };

const message: fc.Arbitrary<StoredMessage> = fc.record({
  // ASCII and not (the encoder writes short ASCII strings itself, the rest through Buffer).
  id: fc.oneof(fc.uuid(), fc.string(), fc.string({ unit: "grapheme", maxLength: 30 }), fc.string({ minLength: 65, maxLength: 90 }), fc.constant("")),
  topic: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 })),
  sequence: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
  payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  // "__proto__" is left out: the generated (ts-proto) decoder this test reads back with builds map
  // fields as plain objects, where that key cannot be an own property (docs/api-v2.md, "Attribute keys").
  attributes: fc.dictionary(
    fc.string({ maxLength: 20 }).filter((k) => k !== "__proto__"),
    fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 20 })),
    { maxKeys: 4 },
  ),
  publishTimeMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 ** 44 }), fc.constant(Number.MAX_SAFE_INTEGER)),
  producerId: fc.boolean(),
});

describe("ConsumeResponse encoder", () => {
  it("produces what the generated decoder reads back exactly, over the core's whole (safe-integer) range", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(message, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: 1, max: 2 ** 31 - 1 })), { maxLength: 20 }),
        (items) => {
          const leases = items.map(([m, ackId, attempt]) => new Lease(ackId, m, attempt, 0, holder));
          const encoded = encodeConsumeResponse(leases);
          expect(encodeFrames(leases, Number.POSITIVE_INFINITY, new EncodedMessages())[0]).toEqual(encoded);
          const decoded = ConsumeResponse.decode(encoded);
          expect(decoded.deliveries).toHaveLength(leases.length);
          decoded.deliveries.forEach((d, i) => {
            const [m, ackId, attempt] = items[i]!;
            expect(d.ackId).toBe(BigInt(ackId));
            expect(d.attempt).toBe(attempt);
            expect(d.message).toEqual({
              id: m.id,
              topic: m.topic,
              sequence: BigInt(m.sequence),
              payload: m.payload,
              attributes: { ...m.attributes },
              publishTimeMs: BigInt(m.publishTimeMs),
            });
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("writes the same frames with some bodies already shared, the rest encoded on the way, across frame cuts", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(message, fc.boolean()), { minLength: 1, maxLength: 30 }), fc.integer({ min: 64, max: 2048 }), (items, maxFrameBytes) => {
        const leases = items.map(([m], i) => new Lease(i + 1, m, 1, 0, holder));
        const shared = new EncodedMessages();
        // A second subscription delivered some of these messages already.
        const before = leases.filter((_, i) => items[i]![1]);
        if (before.length) encodeFrames(before, Number.POSITIVE_INFINITY, shared);
        expect(encodeFrames(leases, maxFrameBytes, shared)).toEqual(encodeFrames(leases, maxFrameBytes));
        expect(shared.size).toBe(leases.length);
      }),
      { numRuns: 200 },
    );
  });
});

describe("frame splitting and shared bodies", () => {
  const lease = (bytes: number, ackId: number): Lease =>
    new Lease(ackId, { id: "id", topic: "t", sequence: ackId, payload: Buffer.alloc(bytes, ackId), attributes: { a: "b" }, publishTimeMs: 1, producerId: false }, 1, bytes, holder);

  it("keeps every frame within the limit, in order, and sends an oversized delivery alone", () => {
    const batch = [100, 200, 300, 5000, 100, 100, 100].map((b, i) => lease(b, i + 1));
    const frames = encodeFrames(batch, 700);
    const decoded = frames.map((f) => ConsumeResponse.decode(f).deliveries.map((d) => d.ackId));
    expect(decoded).toEqual([[1n, 2n, 3n], [4n], [5n, 6n, 7n]]);
    for (const [i, f] of frames.entries()) if (decoded[i]!.length > 1) expect(f.length).toBeLessThanOrEqual(700);
  });

  it("encodes a message body once for every subscription delivering it in the same turn", () => {
    const shared = new EncodedMessages();
    const m = lease(50, 1).message;
    const a = encodeFrames([new Lease(10, m, 1, 50, holder)], 1 << 20, shared)[0]!;
    expect(shared.size).toBe(1);
    const b = encodeFrames([new Lease(11, m, 2, 50, holder)], 1 << 20, shared)[0]!;
    expect(shared.size).toBe(1);
    const [da, db] = [ConsumeResponse.decode(a).deliveries[0]!, ConsumeResponse.decode(b).deliveries[0]!];
    expect([da.ackId, da.attempt, db.ackId, db.attempt]).toEqual([10n, 1, 11n, 2]);
    expect(db.message).toEqual(da.message);
    expect(db.message?.payload).toEqual(m.payload);
    // Same bytes as without sharing.
    expect(encodeFrames([new Lease(11, m, 2, 50, holder)], 1 << 20)[0]).toEqual(b);
  });
});

describe("shared body cache", () => {
  const msg = (n: number): StoredMessage => ({ id: `m${n}`, topic: "t", sequence: n, payload: Buffer.alloc(10), attributes: {}, publishTimeMs: 1, producerId: false });

  it("keeps a body for one to two generations and never past its byte cap", () => {
    vi.useFakeTimers();
    try {
      const cache = new EncodedMessages(50, 25);
      const [a, b, c] = [msg(1), msg(2), msg(3)];
      cache.set(a, Buffer.alloc(10));
      cache.set(b, Buffer.alloc(10));
      cache.set(c, Buffer.alloc(10)); // over the 25-byte cap: not kept
      expect([cache.get(a), cache.get(b), cache.get(c)].map(Boolean)).toEqual([true, true, false]);
      vi.advanceTimersByTime(50);
      expect(cache.get(a)).toBeDefined(); // previous generation
      cache.set(c, Buffer.alloc(10));
      vi.advanceTimersByTime(50);
      expect([cache.get(a), cache.get(c)].map(Boolean)).toEqual([false, true]);
      vi.advanceTimersByTime(100);
      expect(cache.size).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
