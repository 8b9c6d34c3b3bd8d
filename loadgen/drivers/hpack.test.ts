import { connect, type ClientHttp2Session } from "node:http2";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { encodeHeaderBlock, HpackDecoder, HpackError, HUFFMAN_CODES, huffmanDecode, huffmanEncode } from "./hpack.js";

/** A deterministic generator, so a failing case can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("hpack: Huffman code", () => {
  it("assigns RFC 7541 Appendix B's codes", () => {
    // A few rows of the appendix: (symbol, code).
    for (const [symbol, code] of [[0, 0x1ff8], [32, 0x14], [48, 0x0], [97, 0x3], [255, 0x3ffffee], [256, 0x3fffffff], [10, 0x3ffffffc], [92, 0x7fff0]] as const) {
      expect(HUFFMAN_CODES[symbol], `symbol ${symbol}`).toBe(code);
    }
  });

  it("decodes RFC 7541 C.4.1's www.example.com", () => {
    expect(huffmanDecode(Buffer.from("f1e3c2e5f23a6ba0ab90f4ff", "hex"))).toBe("www.example.com");
  });

  it("decodes what it encodes, for strings of every octet", () => {
    const next = rng(7);
    for (let i = 0; i < 500; i++) {
      const text = Buffer.from(Array.from({ length: Math.floor(next() * 40) }, () => Math.floor(next() * 256))).toString("latin1");
      expect(huffmanDecode(huffmanEncode(text))).toBe(text);
    }
  });

  it("refuses padding longer than 7 bits, padding that is not all ones, and EOS", () => {
    expect(() => huffmanDecode(Buffer.from([0xff, 0xff]))).toThrow(HpackError);
    // '0' is 00000: the three bits after it are 000, not a prefix of EOS.
    expect(() => huffmanDecode(Buffer.from([0x00]))).toThrow(/prefix of EOS/);
    expect(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toThrow(/EOS/);
  });
});

describe("hpack: decoder", () => {
  it("reads its own encoder's blocks, names from the static table or new, plain strings", () => {
    const block = encodeHeaderBlock([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/ratatoskr.MessageBroker/PublishBatch"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ["authorization", "Bearer sesame", "never-indexed"],
    ]);
    expect(new HpackDecoder().decode(block)).toEqual([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/ratatoskr.MessageBroker/PublishBatch"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ["authorization", "Bearer sesame"],
    ]);
    // The token is never indexed (0001 prefix), with authorization's static index 23.
    expect(block.subarray(block.length - 16, block.length - 14)).toEqual(Buffer.from([0x1f, 0x08]));
  });

  it("keeps the dynamic table across blocks, evicts the oldest, and applies a size update", () => {
    const d = new HpackDecoder(100);
    // Literal with incremental indexing, new name: 0x40, "a" (1), "x" * 30 (30): entry size 63.
    const add = (name: string, value: string) => Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
    expect(d.decode(add("a", "x".repeat(30)))).toEqual([["a", "x".repeat(30)]]);
    expect(d.decode(Buffer.from([0x80 | 62]))).toEqual([["a", "x".repeat(30)]]);
    // A second entry of 63 octets does not fit beside the first (100): the first is evicted.
    d.decode(add("b", "y".repeat(30)));
    expect(d.decode(Buffer.from([0x80 | 62]))).toEqual([["b", "y".repeat(30)]]);
    expect(() => d.decode(Buffer.from([0x80 | 63]))).toThrow(/beyond the table/);
    // Size update to 0 empties the table; above the advertised size is refused.
    d.decode(Buffer.from([0x20]));
    expect(() => d.decode(Buffer.from([0x80 | 62]))).toThrow(/beyond the table/);
    expect(() => d.decode(Buffer.from([0x3f, 0x46]))).toThrow(/above the 100 allowed/);
    expect(() => d.decode(Buffer.from([0x88, 0x20]))).toThrow(/after a header field/);
  });

  it("refuses truncated blocks and index 0", () => {
    const d = new HpackDecoder();
    expect(() => d.decode(Buffer.from([0x80]))).toThrow(/index 0/);
    expect(() => d.decode(Buffer.from([0x7f]))).toThrow(/inside an integer/);
    expect(() => d.decode(Buffer.from([0x04, 0x05, 0x61]))).toThrow(/past the end/);
    expect(() => d.decode(Buffer.from([0x00, 0x01, 0x61]))).toThrow(/before a string/);
    expect(() => d.decode(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toThrow(/too large/);
  });
});

// nghttp2 (node:http2's client) as the oracle: it encodes request headers with the dynamic table
// and Huffman strings; a raw socket server reads its frames, and the decoder must give back what
// the client sent, request after request on one connection (so through insertions and evictions).
let raw: Server | undefined;
let client: ClientHttp2Session | undefined;
afterEach(async () => {
  client?.destroy();
  client = undefined;
  await new Promise<void>((resolve) => (raw ? raw.close(() => resolve()) : resolve()));
  raw = undefined;
});

describe("hpack: against nghttp2's encoder", () => {
  it("decodes 300 requests of varied headers on one connection", async () => {
    const blocks: Buffer[] = [];
    let gotAll!: () => void;
    const done = new Promise<void>((resolve) => (gotAll = resolve));
    const requests = 300;
    raw = createServer((socket: Socket) => {
      socket.on("error", () => {});
      // Empty SETTINGS, and an ACK of the client's.
      socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0]));
      let buf = Buffer.alloc(0);
      let fragments: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.subarray(0, 3).toString() === "PRI") buf = buf.subarray(24);
        while (buf.length >= 9) {
          const len = buf.readUIntBE(0, 3);
          if (buf.length < 9 + len) break;
          const type = buf[3]!;
          const flags = buf[4]!;
          let payload = buf.subarray(9, 9 + len);
          buf = buf.subarray(9 + len);
          if (type !== 1 && type !== 9) continue;
          if (type === 1 && flags & 0x08) payload = payload.subarray(1, payload.length - payload[0]!);
          if (type === 1 && flags & 0x20) payload = payload.subarray(5);
          fragments.push(Buffer.from(payload));
          if (flags & 0x04) {
            blocks.push(Buffer.concat(fragments));
            fragments = [];
            if (blocks.length === requests) gotAll();
          }
        }
      });
    });
    await new Promise<void>((resolve) => raw!.listen(0, "127.0.0.1", resolve));
    const { port } = raw.address() as AddressInfo;
    client = connect(`http://127.0.0.1:${port}`);
    client.on("error", () => {});
    const next = rng(42);
    const word = (n: number) => Buffer.from(Array.from({ length: n }, () => 0x20 + Math.floor(next() * 95))).toString("latin1");
    const sent: Record<string, string>[] = [];
    for (let i = 0; i < requests; i++) {
      const headers: Record<string, string> = { ":method": "POST", ":path": `/svc/${word(1 + Math.floor(next() * 30))}`, "content-type": "application/grpc" };
      // Repeated names and values (indexed), fresh ones (inserted), long ones (evictions).
      if (next() < 0.5) headers["x-repeat"] = "same-every-time";
      headers[`x-${i % 7}`] = word(Math.floor(next() * (next() < 0.1 ? 3000 : 40)));
      if (next() < 0.3) headers["grpc-message"] = encodeURIComponent(word(20));
      sent.push(headers);
      const stream = client.request(headers, { endStream: true });
      stream.on("error", () => {});
    }
    await done;
    const d = new HpackDecoder();
    for (let i = 0; i < requests; i++) {
      const fields = Object.fromEntries(d.decode(blocks[i]!).filter(([n]) => n !== ":scheme" && n !== ":authority"));
      expect(fields, `request ${i}`).toEqual(sent[i]);
    }
  });
});
