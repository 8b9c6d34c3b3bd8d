/**
 * HPACK (RFC 7541) for the generator's own HTTP/2 unary client (docs/loadgen.md, "The unary
 * client"): a decoder for what the broker sends (static and dynamic table, Huffman-coded strings,
 * table size updates) and an encoder for the client's few request headers, which writes every
 * field as a literal without indexing (or never indexed, for a token) and plain strings, so it
 * keeps no state and a request's header block is a constant per method.
 */

/** RFC 7541 Appendix A: entry i + 1 is STATIC_TABLE[i]. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"], [":path", "/index.html"],
  [":scheme", "http"], [":scheme", "https"], [":status", "200"], [":status", "204"], [":status", "206"],
  [":status", "304"], [":status", "400"], [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""], ["accept", ""],
  ["access-control-allow-origin", ""], ["age", ""], ["allow", ""], ["authorization", ""], ["cache-control", ""],
  ["content-disposition", ""], ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""], ["date", ""], ["etag", ""],
  ["expect", ""], ["expires", ""], ["from", ""], ["host", ""], ["if-match", ""], ["if-modified-since", ""],
  ["if-none-match", ""], ["if-range", ""], ["if-unmodified-since", ""], ["last-modified", ""], ["link", ""],
  ["location", ""], ["max-forwards", ""], ["proxy-authenticate", ""], ["proxy-authorization", ""], ["range", ""],
  ["referer", ""], ["refresh", ""], ["retry-after", ""], ["server", ""], ["set-cookie", ""],
  ["strict-transport-security", ""], ["transfer-encoding", ""], ["user-agent", ""], ["vary", ""], ["via", ""],
  ["www-authenticate", ""],
];

/**
 * RFC 7541 Appendix B as code lengths, symbols 0–255 then EOS (256). The code is canonical: codes
 * are assigned in order of (length, symbol), which reproduces the appendix's bit patterns
 * (hpack.test.ts checks a few against it).
 */
// prettier-ignore
const HUFFMAN_LENGTHS = Uint8Array.of(
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
);
const EOS = 256;

/** Each symbol's code (the low HUFFMAN_LENGTHS[s] bits), assigned canonically. */
export const HUFFMAN_CODES: Uint32Array = (() => {
  const order = Array.from(HUFFMAN_LENGTHS.keys()).sort((a, b) => HUFFMAN_LENGTHS[a]! - HUFFMAN_LENGTHS[b]! || a - b);
  const codes = new Uint32Array(HUFFMAN_LENGTHS.length);
  let code = 0;
  let length = HUFFMAN_LENGTHS[order[0]!]!;
  for (const s of order) {
    code *= 2 ** (HUFFMAN_LENGTHS[s]! - length);
    length = HUFFMAN_LENGTHS[s]!;
    codes[s] = code++;
  }
  return codes;
})();

/**
 * The decoding tree as one flat array: node n's children are TREE[2n] (bit 0) and TREE[2n + 1]
 * (bit 1); a child > 0 is a node, a child < 0 is the leaf of symbol -child - 1. The code is
 * complete, so every child is one or the other.
 */
const TREE: Int32Array = (() => {
  const tree = new Int32Array(2 * HUFFMAN_LENGTHS.length);
  let nodes = 1;
  for (let s = 0; s < HUFFMAN_LENGTHS.length; s++) {
    const length = HUFFMAN_LENGTHS[s]!;
    let node = 0;
    for (let i = length - 1; i > 0; i--) {
      const slot = 2 * node + (Math.floor(HUFFMAN_CODES[s]! / 2 ** i) & 1);
      if (tree[slot] === 0) tree[slot] = nodes++;
      node = tree[slot]!;
    }
    tree[2 * node + (HUFFMAN_CODES[s]! & 1)] = -s - 1;
  }
  return tree;
})();

/** A header block the decoder cannot read: the connection cannot go on (COMPRESSION_ERROR). */
export class HpackError extends Error {}

/** Decodes a Huffman-coded string (RFC 7541 §5.2): octets, as latin1. */
export function huffmanDecode(buf: Uint8Array, start = 0, end = buf.length): string {
  // Each symbol takes at least 5 bits.
  const out = Buffer.allocUnsafe(Math.ceil(((end - start) * 8) / 5));
  let n = 0;
  let node = 0;
  let bits = 0; // bits read since the last symbol
  let ones = true; // and all of them were 1
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >> b) & 1;
      const next = TREE[2 * node + bit]!;
      bits++;
      ones &&= bit === 1;
      if (next > 0) {
        node = next;
        continue;
      }
      const symbol = -next - 1;
      if (symbol === EOS) throw new HpackError("Huffman string holds the EOS symbol");
      out[n++] = symbol;
      node = 0;
      bits = 0;
      ones = true;
    }
  }
  // What is left must be padding: fewer than 8 bits, the most significant bits of EOS (all 1).
  if (bits > 7) throw new HpackError("Huffman padding longer than 7 bits");
  if (!ones) throw new HpackError("Huffman padding is not a prefix of EOS");
  return out.toString("latin1", 0, n);
}

/** Huffman-codes `text` (latin1 octets): for tests, which feed the decoder strings of every kind. */
export function huffmanEncode(text: string): Buffer {
  const bytes = Buffer.from(text, "latin1");
  let bits = 0;
  for (const b of bytes) bits += HUFFMAN_LENGTHS[b]!;
  const out = Buffer.alloc(Math.ceil(bits / 8));
  let pos = 0;
  for (const b of bytes) {
    const length = HUFFMAN_LENGTHS[b]!;
    for (let i = length - 1; i >= 0; i--, pos++) if (Math.floor(HUFFMAN_CODES[b]! / 2 ** i) & 1) out[pos >> 3]! |= 0x80 >> (pos & 7);
  }
  for (; pos < out.length * 8; pos++) out[pos >> 3]! |= 0x80 >> (pos & 7);
  return out;
}

/** Entry overhead (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;

/**
 * One connection's decoding context. `maxTableSize` is the SETTINGS_HEADER_TABLE_SIZE this side
 * advertised (the default, 4096, unless it sent another): the broker's encoder may use up to that.
 */
export class HpackDecoder {
  /** Newest first: dynamic index 62 is entries[0]. */
  private readonly entries: [string, string][] = [];
  private size = 0;
  private capacity: number;
  private pos = 0;

  constructor(private readonly maxTableSize = 4096) {
    this.capacity = maxTableSize;
  }

  /** The fields of one whole header block, in order, as [name, value]. */
  decode(block: Uint8Array): [string, string][] {
    const fields: [string, string][] = [];
    this.pos = 0;
    while (this.pos < block.length) {
      const first = block[this.pos]!;
      if (first & 0x80) {
        const index = this.integer(block, 7);
        if (index === 0) throw new HpackError("indexed header field with index 0");
        const [name, value] = this.entry(index);
        fields.push([name, value]);
      } else if (first & 0x40) {
        const field = this.literal(block, 6);
        this.add(field[0], field[1]);
        fields.push(field);
      } else if (first & 0x20) {
        // A table size update comes only at the start of a block (§4.2).
        if (fields.length > 0) throw new HpackError("dynamic table size update after a header field");
        const size = this.integer(block, 5);
        if (size > this.maxTableSize) throw new HpackError(`dynamic table size update to ${size}, above the ${this.maxTableSize} allowed`);
        this.capacity = size;
        this.evict(0);
      } else {
        // Literal without indexing (0000) or never indexed (0001): the same for a decoder.
        fields.push(this.literal(block, 4));
      }
    }
    return fields;
  }

  private entry(index: number): readonly [string, string] {
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const e = this.entries[index - STATIC_TABLE.length - 1];
    if (!e) throw new HpackError(`header index ${index} is beyond the table (${STATIC_TABLE.length + this.entries.length} entries)`);
    return e;
  }

  private literal(block: Uint8Array, prefixBits: number): [string, string] {
    const index = this.integer(block, prefixBits);
    const name = index === 0 ? this.string(block) : this.entry(index)[0];
    return [name, this.string(block)];
  }

  private add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.evict(size);
    // An entry larger than the table empties it and is not added (§4.4).
    if (size > this.capacity) return;
    this.entries.unshift([name, value]);
    this.size += size;
  }

  /** Evicts the oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    while (this.entries.length > 0 && this.size + room > this.capacity) {
      const [name, value] = this.entries.pop()!;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }

  /** An integer with an N-bit prefix (§5.1), at this.pos. */
  private integer(block: Uint8Array, prefixBits: number): number {
    if (this.pos >= block.length) throw new HpackError("header block ends inside an integer");
    const max = (1 << prefixBits) - 1;
    let value = block[this.pos++]! & max;
    if (value < max) return value;
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= block.length) throw new HpackError("header block ends inside an integer");
      // 2^28 and beyond is no size or index a header block can carry.
      if (shift > 21) throw new HpackError("integer in a header block is too large");
      const b = block[this.pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
  }

  /** A string literal (§5.2), at this.pos: plain octets or Huffman-coded. */
  private string(block: Uint8Array): string {
    if (this.pos >= block.length) throw new HpackError("header block ends before a string");
    const huffman = (block[this.pos]! & 0x80) !== 0;
    const length = this.integer(block, 7);
    const start = this.pos;
    const end = start + length;
    if (end > block.length) throw new HpackError("string literal runs past the end of the header block");
    this.pos = end;
    return huffman ? huffmanDecode(block, start, end) : Buffer.from(block.buffer, block.byteOffset + start, length).toString("latin1");
  }
}

/** How the encoder writes a field: literal without indexing, or never indexed (a credential, §7.1.3). */
export type FieldMode = "literal" | "never-indexed";

/**
 * A header block of literal fields (plain strings, names from the static table where it has
 * them); `:method POST` and `:scheme` are written as their static entries. It depends on no table
 * state, so the broker's decoder reads it the same whatever came before.
 */
export function encodeHeaderBlock(fields: readonly (readonly [string, string, FieldMode?])[]): Buffer {
  const parts: number[] = [];
  for (const [name, value, mode] of fields) {
    const exact = STATIC_TABLE.findIndex(([n, v]) => n === name && v === value);
    if (mode !== "never-indexed" && exact >= 0 && (name === ":method" || name === ":scheme")) {
      integer(parts, exact + 1, 7, 0x80);
      continue;
    }
    const named = STATIC_TABLE.findIndex(([n]) => n === name);
    integer(parts, named + 1, 4, mode === "never-indexed" ? 0x10 : 0x00);
    if (named < 0) plain(parts, name);
    plain(parts, value);
  }
  return Buffer.from(parts);
}

function integer(out: number[], value: number, prefixBits: number, flags: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function plain(out: number[], text: string): void {
  const bytes = Buffer.from(text, "latin1");
  integer(out, bytes.length, 7, 0x00);
  for (const b of bytes) out.push(b);
}
