import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeHeader, emptyHeader, FLAG_WARMUP, HEADER_BYTES, PAYLOAD_MAGIC, PayloadBatch, readHeader } from "./payload.js";

describe("payload layout", () => {
  it("writes the documented header: magic, producer, topic, seq, intended and sent time, flags", () => {
    const batch = new PayloadBatch(64, 2, "zeros");
    batch.push(7, 3, 42, 1234.5, FLAG_WARMUP);
    batch.push(8, 4, 43, 99, 0);
    batch.stampSent(2000.25);
    const [a, b] = batch.messages();
    expect(a!.length).toBe(64);
    // The layout as documented at the top of payload.ts; a change to it must show up here.
    expect([a!.readUInt32LE(0), a!.readUInt32LE(4), a!.readUInt32LE(8), a!.readUInt32LE(12)]).toEqual([0x4b544152, 7, 3, 42]);
    expect([a!.readDoubleLE(16), a!.readDoubleLE(24), a![32]]).toEqual([1234.5, 2000.25, 1]);
    expect([b!.readUInt32LE(4), b!.readUInt32LE(8), b!.readUInt32LE(12), b!.readDoubleLE(16), b![32]]).toEqual([8, 4, 43, 99, 0]);
    expect(PAYLOAD_MAGIC).toBe(0x4b544152);
    expect(HEADER_BYTES).toBe(40);
  });

  it("writes the same bytes whether the message size is 8-byte aligned (word stores) or not (Buffer writes)", () => {
    for (const size of [64, 61]) {
      const batch = new PayloadBatch(size, 3, "zeros");
      for (let i = 0; i < 3; i++) batch.push(0xfffffff0 + i, i, 2 ** 31 + i, 1e15 + i / 4, i % 2);
      batch.stampSent(-0.5);
      for (const [i, m] of batch.messages().entries()) {
        expect([m.readUInt32LE(0), m.readUInt32LE(4), m.readUInt32LE(8), m.readUInt32LE(12)]).toEqual([PAYLOAD_MAGIC, 0xfffffff0 + i, i, 2 ** 31 + i]);
        expect([m.readDoubleLE(16), m.readDoubleLE(24), m[32]]).toEqual([1e15 + i / 4, -0.5, i % 2]);
        expect(m.subarray(33).every((x) => x === 0)).toBe(true);
      }
    }
  });

  it("reads back what it wrote, into one reused header", () => {
    const batch = new PayloadBatch(40, 2, "random");
    batch.push(1, 2, 3, 4.5, 0);
    batch.push(5, 6, 7, 8.5, FLAG_WARMUP);
    batch.stampSent(10.5);
    const h = emptyHeader();
    const [a, b] = batch.messages();
    expect(readHeader(a!, h)).toBe(true);
    expect(h).toEqual({ producer: 1, topic: 2, seq: 3, intendedUs: 4.5, sentUs: 10.5, warmup: false });
    expect(readHeader(b!, h)).toBe(true);
    expect(h).toEqual({ producer: 5, topic: 6, seq: 7, intendedUs: 8.5, sentUs: 10.5, warmup: true });
    expect(decodeHeader(b!)).toEqual(h);
  });

  it("refuses what is not a generator payload: too short, or without the magic", () => {
    const batch = new PayloadBatch(40, 1, "zeros");
    batch.push(1, 2, 3, 4, 0);
    const ok = batch.messages()[0]!;
    expect(readHeader(ok.subarray(0, HEADER_BYTES - 1), emptyHeader())).toBe(false);
    const foreign = Buffer.from(ok);
    foreign.writeUInt32LE(0x12345678, 0);
    expect(readHeader(foreign, emptyHeader())).toBe(false);
    expect(() => decodeHeader(foreign)).toThrow(/not a generator payload/);
  });

  it("reads back any header the encoder writes, from a plain Uint8Array view at any byte offset", () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const time = fc.double({ noNaN: false });
    fc.assert(
      fc.property(u32, u32, u32, time, time, fc.boolean(), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 40, max: 200 }), (producer, topic, seq, intendedUs, sentUs, warmup, offset, size) => {
        const batch = new PayloadBatch(size, 1, "random");
        batch.push(producer, topic, seq, intendedUs, warmup ? FLAG_WARMUP : 0);
        batch.stampSent(sentUs);
        // What a client hands over: a view into a larger receive buffer, not necessarily aligned.
        const chunk = new Uint8Array(offset + size + 7);
        chunk.set(batch.messages()[0]!, offset);
        const view = new Uint8Array(chunk.buffer, offset, size);
        const h = emptyHeader();
        expect(readHeader(view, h)).toBe(true);
        expect(h).toEqual({ producer, topic, seq, intendedUs, sentUs, warmup });
      }),
      { numRuns: 2000 },
    );
  });
});
