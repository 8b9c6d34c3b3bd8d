/**
 * HTTP/2 frames out of a connection's byte stream (RFC 9113 §4.1), for the generator's own client
 * (h2-connection.ts): socket reads cut frames anywhere. A cut DATA frame goes to its stream in
 * pieces as its bytes arrive (no copy of the frame: at 100,000 Consume streams the copies were 15%
 * of the generator, docs/performance.md, "Consume streams without node:http2");
 * any other cut frame, and a padded DATA frame, is joined first. HEADERS and CONTINUATION are put
 * together into header blocks and decoded (HPACK, hpack.ts: the dynamic table is the connection's).
 */
import {
  COMPRESSION_ERROR,
  ConnectionError,
  DEFAULT_MAX_FRAME,
  END_HEADERS,
  END_STREAM,
  FRAME_HEADER,
  FRAME_SIZE_ERROR,
  MAX_HEADER_BLOCK_BYTES,
  MAX_STREAM_ID,
  PADDED,
  PRIORITY_FLAG,
  PROTOCOL_ERROR,
  Type,
} from "./h2-frames.js";
import { HpackDecoder } from "./hpack.js";

/** Where a FrameReader's frames go. */
export interface FrameSink {
  /** False once the connection is gone: the rest of the read is dropped. */
  readonly reading: boolean;
  /** A whole frame other than HEADERS and CONTINUATION. */
  onFrame(type: number, flags: number, id: number, payload: Buffer): void;
  /** A header block (HEADERS and its CONTINUATIONs), decoded; `endStream` from its HEADERS. */
  onHeaders(id: number, fields: [string, string][], endStream: boolean): void;
  /** A piece of an unpadded DATA frame that a read cut; `last` is its final piece (where END_STREAM counts). */
  onDataPiece(flags: number, id: number, data: Buffer, last: boolean): void;
}

const EMPTY = Buffer.alloc(0);

export class FrameReader {
  /** The start of a frame the last read cut, carried over to the next (cut DATA frames excepted: below). */
  private rest: Buffer | undefined;
  /** A DATA frame the last read cut: its stream, flags and the payload bytes still to come. */
  private dataStream = 0;
  private dataFlags = 0;
  private dataLeft = 0;
  /** HEADERS fragments waiting for their CONTINUATION, and their stream. */
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  private fragmentStream = 0;
  private fragmentEnd = false;
  private readonly decoder = new HpackDecoder();

  constructor(private readonly sink: FrameSink) {}

  /** One read's bytes; throws ConnectionError on a frame this side refuses (too large, DATA on stream 0). */
  push(chunk: Buffer): void {
    let pos = 0;
    if (this.rest) {
      // Only the frame header the last read cut is joined, or a whole frame other than DATA.
      let r = this.rest;
      if (r.length < FRAME_HEADER) {
        const take = Math.min(FRAME_HEADER - r.length, chunk.length);
        r = Buffer.concat([r, chunk.subarray(0, take)]);
        pos = take;
        if (r.length < FRAME_HEADER) {
          this.rest = r;
          return;
        }
        if (this.startCutData(r, 0)) {
          this.rest = undefined;
          if (this.dataLeft === 0) this.sink.onDataPiece(this.dataFlags, this.dataStream, EMPTY, true);
        }
      }
      if (this.rest) {
        const total = FRAME_HEADER + frameLength(r, 0);
        const take = Math.min(total - r.length, chunk.length - pos);
        r = Buffer.concat([r, chunk.subarray(pos, pos + take)]);
        pos += take;
        if (r.length < total) {
          this.rest = r;
          return;
        }
        this.rest = undefined;
        this.frame(r[3]!, r[4]!, r.readUInt32BE(5) & MAX_STREAM_ID, r.subarray(FRAME_HEADER));
      }
    }
    if (this.dataLeft > 0) {
      // The rest of a DATA frame the last read cut goes straight to its stream.
      const n = Math.min(this.dataLeft, chunk.length - pos);
      this.dataLeft -= n;
      this.sink.onDataPiece(this.dataFlags, this.dataStream, chunk.subarray(pos, pos + n), this.dataLeft === 0);
      pos += n;
      if (this.dataLeft > 0) return;
    }
    while (chunk.length - pos >= FRAME_HEADER && this.sink.reading) {
      const length = frameLength(chunk, pos);
      const start = pos + FRAME_HEADER;
      if (chunk.length - start < length) {
        if (!this.startCutData(chunk, pos)) break;
        this.dataLeft -= chunk.length - start;
        this.sink.onDataPiece(this.dataFlags, this.dataStream, chunk.subarray(start), false);
        return;
      }
      this.frame(chunk[pos + 3]!, chunk[pos + 4]!, chunk.readUInt32BE(pos + 5) & MAX_STREAM_ID, chunk.subarray(start, start + length));
      pos = start + length;
    }
    if (pos < chunk.length && this.sink.reading) this.rest = Buffer.from(chunk.subarray(pos));
  }

  private frame(type: number, flags: number, id: number, p: Buffer): void {
    if (this.fragmentStream !== 0 && (type !== Type.CONTINUATION || id !== this.fragmentStream)) {
      throw new ConnectionError(PROTOCOL_ERROR, `a frame of type ${type} inside a header block of stream ${this.fragmentStream}`);
    }
    if (type === Type.HEADERS) {
      if (id === 0) throw new ConnectionError(PROTOCOL_ERROR, "HEADERS on stream 0");
      let from = 0;
      let to = p.length;
      if (flags & PADDED) {
        to -= p[0] ?? 0;
        from = 1;
      }
      if (flags & PRIORITY_FLAG) from += 5;
      if (from > to) throw new ConnectionError(PROTOCOL_ERROR, "HEADERS padding longer than the frame");
      this.fragmentStream = id;
      this.fragmentEnd = (flags & END_STREAM) !== 0;
      return this.onFragment(flags, p.subarray(from, to));
    }
    if (type === Type.CONTINUATION) {
      if (this.fragmentStream === 0) throw new ConnectionError(PROTOCOL_ERROR, "CONTINUATION without a header block");
      return this.onFragment(flags, p);
    }
    this.sink.onFrame(type, flags, id, p);
  }

  private onFragment(flags: number, fragment: Buffer): void {
    this.fragmentBytes += fragment.length;
    if (this.fragmentBytes > MAX_HEADER_BLOCK_BYTES) throw new ConnectionError(PROTOCOL_ERROR, `a header block above ${MAX_HEADER_BLOCK_BYTES} bytes`);
    this.fragments.push(Buffer.from(fragment));
    if (!(flags & END_HEADERS)) return;
    const block = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments);
    const id = this.fragmentStream;
    const endStream = this.fragmentEnd;
    this.fragments = [];
    this.fragmentBytes = 0;
    this.fragmentStream = 0;
    let fields: [string, string][];
    try {
      // Every block is decoded, a stream's or not: the table is the connection's.
      fields = this.decoder.decode(block);
    } catch (err) {
      throw new ConnectionError(COMPRESSION_ERROR, (err as Error).message);
    }
    this.sink.onHeaders(id, fields, endStream);
  }

  /** When the frame whose header is at `buf[at]` is an unpadded DATA frame, notes its stream, flags and length (dataLeft) and says yes. */
  private startCutData(buf: Buffer, at: number): boolean {
    const length = frameLength(buf, at);
    const flags = buf[at + 4]!;
    // Inside a header block it is joined, and frame() refuses it.
    if (buf[at + 3] !== Type.DATA || flags & PADDED || this.fragmentStream !== 0) return false;
    const id = buf.readUInt32BE(at + 5) & MAX_STREAM_ID;
    if (id === 0) throw new ConnectionError(PROTOCOL_ERROR, "DATA on stream 0");
    this.dataStream = id;
    this.dataFlags = flags;
    this.dataLeft = length;
    return true;
  }
}

function frameLength(buf: Buffer, at: number): number {
  const length = buf.readUIntBE(at, 3);
  // This side never raises SETTINGS_MAX_FRAME_SIZE.
  if (length > DEFAULT_MAX_FRAME) throw new ConnectionError(FRAME_SIZE_ERROR, `a frame of ${length} bytes, above the 16384 allowed`);
  return length;
}
