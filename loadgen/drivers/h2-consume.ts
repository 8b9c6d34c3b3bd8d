/**
 * The ratatoskr driver's Consume streams on the generator's own HTTP/2 connections
 * (h2-connection.ts; docs/loadgen.md, "The Consume client"). gRPC for this one bidi method is
 * small: a HEADERS frame, length-prefixed messages both ways, `grpc-status` in the trailers. A
 * grpc-js client call held 12.7 KB of the generator's live heap per stream, measured through tsx
 * (an interceptor chain, a retrying call, a Duplex over the HTTP/2 stream's own Duplex), a
 * node:http2 stream 4.1 KB built; this holds one object and the bytes of a message cut between
 * frames, 1.5 KB built with the driver's state (docs/performance.md, "Memory per subscription and
 * per stream").
 *
 * What it keeps of grpc-js's behaviour: a stream that ends without an OK status fails with an
 * Error carrying the gRPC `code` and `details` (so the driver's retry rules read it the same
 * way), a connection that breaks fails its streams with UNAVAILABLE and is opened again by the
 * next stream that needs it, keepalive pings (when the driver rides through faults) find a
 * silent connection, and a paused stream stops reading, so HTTP/2 flow control pushes back on
 * the broker.
 */
import { status as Status } from "@grpc/grpc-js";
import type { DriverOptions } from "./driver.js";
import { H2Pool } from "./h2-connection.js";
import { CANCEL } from "./h2-frames.js";
import { driverSessionOptions, GRPC_PREFIX as PREFIX, grpcFramed, GrpcStatusError, prefixProblem, type H2SessionOptions } from "./h2-grpc.js";
import { H2Stream, requestBlock } from "./h2-stream.js";
import type { LoadedTls } from "./security.js";

export interface ConsumeHandlers {
  /** One whole gRPC message (a ConsumeResponse): bytes `start` to `end` of `buf`, valid only during the call. */
  onMessage(buf: Buffer, start: number, end: number): void;
  /** Called once: undefined when the broker ended the stream with OK, else the status as an Error. */
  onEnd(err: Error | undefined): void;
}

const CONSUME_PATH = "/ratatoskr.v2.Broker/Consume";
/** gRPC status OK, as the number a call reads off its trailers. */
const OK: number = Status.OK;

/** A driver's Consume streams on `connections` HTTP/2 connections of their own, with the channels' TLS and token. */
export function driverConsumeClient(options: DriverOptions, pool: { readonly tls: LoadedTls | undefined }): H2ConsumeClient {
  return new H2ConsumeClient(driverSessionOptions(options, pool), options.connections);
}

/** Consume streams spread over `size` connections by slot, each connection opened again after it broke. */
export class H2ConsumeClient {
  private readonly pool: H2Pool;
  private readonly block: Buffer;

  constructor(
    private readonly o: H2SessionOptions,
    size: number,
  ) {
    this.pool = new H2Pool(o, size);
    this.block = requestBlock(o, CONSUME_PATH);
  }

  /** Opens a Consume stream on connection `slot` (modulo the pool) and writes `first` on it. */
  consume(slot: number, first: Buffer, handlers: ConsumeHandlers): ConsumeCall {
    if (this.pool.isClosed) throw new GrpcStatusError(Status.CANCELLED, "the driver is closed");
    const call = new ConsumeCall(this.block, handlers, this.o.maxMessageBytes);
    call.queue(grpcFramed(first));
    this.pool.open(slot, call);
    return call;
  }

  /** The driver cancels its streams first; then every connection ends (streams still open fail with UNAVAILABLE). */
  close(): void {
    this.pool.close();
  }
}

/** One Consume call: write requests, half-close, pause and resume reading, cancel. */
export class ConsumeCall extends H2Stream {
  /** A message cut between frames: its bytes so far (`have` of them), in a buffer of its size or, while `prefixCut`, of its prefix's. */
  private partial: Buffer | undefined;
  private have = 0;
  private prefixCut = false;
  /** What arrived while paused (copies), read on resume; `heldEnd` the peer's END_STREAM among it. */
  private held: Buffer[] | undefined;
  private heldEnd = false;
  private cancelled = false;
  private ended = false;

  constructor(
    block: Buffer,
    private readonly h: ConsumeHandlers,
    private readonly maxMessageBytes: number,
  ) {
    super(block);
  }

  /** Writes one request message (framed here). */
  write(message: Buffer): void {
    this.writeFramed(grpcFramed(message));
  }

  /** Writes one request message that carries its gRPC prefix already (AckRequestBuilder's). */
  writeFramed(framed: Buffer): void {
    if (this.ended || this.endQueued || this.released) return;
    this.queue(framed);
    this.conn?.send(this);
  }

  /** Half-closes: no more requests. */
  end(): void {
    if (this.ended || this.endQueued || this.released) return;
    this.endQueued = true;
    this.conn?.send(this);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = undefined;
    if (held) for (const b of held) if (!this.ended && !this.cancelled) this.read(b);
    if (this.heldEnd && !this.ended && !this.cancelled) {
      this.heldEnd = false;
      this.finish();
    }
    if (!this.ended && !this.cancelled) this.conn?.resumed(this);
  }

  /** Ends the call from this side (RST_STREAM CANCEL); onEnd is not called. */
  cancel(): void {
    if (this.cancelled || this.ended) return;
    this.cancelled = true;
    this.drop();
    this.conn?.reset(this, CANCEL);
  }

  onBytes(data: Buffer): void {
    if (this.ended || this.cancelled) return;
    if (this.paused) {
      // Copied: the bytes are the socket chunk's. The stream's window bounds what is held.
      (this.held ??= []).push(Buffer.from(data));
      return;
    }
    this.read(data);
  }

  onRemoteEnd(): void {
    // The broker ended the stream while this side still had it open: this side ends now too (an
    // HTTP/2 stream closes only when both sides ended) with END_STREAM, not a reset; nghttp2
    // limits the resets a connection may send it.
    if (!this.localEnded) this.conn!.endNow(this);
    if (this.paused && this.held) {
      this.heldEnd = true;
      return;
    }
    this.finish();
  }

  onAbort(err: GrpcStatusError): void {
    if (this.ended || this.cancelled) return;
    this.ended = true;
    this.drop();
    // A status the headers carried (an HTTP status other than 200) says more than the reset.
    this.h.onEnd(this.status !== undefined && this.status !== OK ? new GrpcStatusError(this.status, this.details) : err);
  }

  /** The broker's END_STREAM, after everything it sent was read. */
  private finish(): void {
    if (this.ended || this.cancelled) return;
    this.ended = true;
    this.drop();
    if (this.status === OK) return this.h.onEnd(undefined);
    if (this.status !== undefined) return this.h.onEnd(new GrpcStatusError(this.status, this.details));
    this.h.onEnd(new GrpcStatusError(Status.UNKNOWN, "the broker ended the stream without a status"));
  }

  private read(chunk: Buffer): void {
    let pos = 0;
    if (this.partial) {
      pos = this.fill(chunk);
      if (pos < 0) return;
    }
    while (chunk.length - pos >= PREFIX) {
      if (!this.checkPrefix(chunk, pos)) return;
      const len = chunk.readUInt32BE(pos + 1);
      if (chunk.length - pos - PREFIX < len) break;
      this.h.onMessage(chunk, pos + PREFIX, pos + PREFIX + len);
      if (this.ended || this.cancelled) return;
      pos += PREFIX + len;
    }
    if (pos === chunk.length) return;
    // A message cut at the end of these bytes: copied into a buffer of its size (of its prefix's
    // while the prefix is cut too), which the next bytes fill. Only the message is copied.
    const n = chunk.length - pos;
    this.prefixCut = n < PREFIX;
    this.partial = Buffer.allocUnsafe(this.prefixCut ? PREFIX : PREFIX + chunk.readUInt32BE(pos + 1));
    chunk.copy(this.partial, 0, pos);
    this.have = n;
  }

  /** Fills the cut message from the start of `chunk`: the bytes taken, or -1 when it is still not whole (or the call ended). */
  private fill(chunk: Buffer): number {
    let used = 0;
    if (this.prefixCut) {
      used = Math.min(PREFIX - this.have, chunk.length);
      chunk.copy(this.partial!, this.have, 0, used);
      this.have += used;
      if (this.have < PREFIX) return -1;
      this.prefixCut = false;
      if (!this.checkPrefix(this.partial!, 0)) return -1;
      const size = PREFIX + this.partial!.readUInt32BE(1);
      if (size > PREFIX) {
        const grown = Buffer.allocUnsafe(size);
        this.partial!.copy(grown, 0, 0, PREFIX);
        this.partial = grown;
      }
    }
    const m = this.partial!;
    const take = Math.min(m.length - this.have, chunk.length - used);
    chunk.copy(m, this.have, used, used + take);
    this.have += take;
    used += take;
    if (this.have < m.length) return -1;
    this.partial = undefined;
    this.have = 0;
    this.h.onMessage(m, PREFIX, m.length);
    return this.ended || this.cancelled ? -1 : used;
  }

  /** The prefix at `buf[pos]` is one this client reads (uncompressed, within the limit); else the call fails. */
  private checkPrefix(buf: Buffer, pos: number): boolean {
    const problem = prefixProblem(buf, pos, this.maxMessageBytes);
    if (problem) this.fail(problem);
    return problem === undefined;
  }

  private drop(): void {
    this.partial = undefined;
    this.prefixCut = false;
    this.have = 0;
    this.held = undefined;
  }

  /** Ends the call from this side with a status of its own (a malformed stream). */
  private fail(err: GrpcStatusError): void {
    this.ended = true;
    this.drop();
    this.conn?.reset(this, CANCEL);
    this.h.onEnd(err);
  }
}
