/**
 * The generator's own HTTP/2 connection (docs/loadgen.md, "The unary client" and "The Consume
 * client"): frames on a socket, with no node:http2 session or stream. Two kinds of gRPC call ride
 * on it as subclasses of H2Stream (h2-stream.ts): unary calls (h2-unary.ts) and Consume streams
 * (h2-consume.ts). Frames are cut out of the socket's reads by h2-frame-reader.ts.
 * A node:http2 stream per call or per Consume stream is what made the generator pause at 5,000
 * calls/s (Node 20's per-request AsyncResource wrappers, and each dead stream's native handles)
 * and what held 4.1 KB of its heap per open Consume stream, built (docs/performance.md, "Memory
 * per subscription and per stream"); here a stream is one object and its buffers.
 *
 * What it speaks of HTTP/2 (RFC 9113): the preface and SETTINGS, HEADERS (+ CONTINUATION) and
 * DATA both ways, flow control both ways (the peer's windows, frame size and concurrent-stream
 * limit are kept; receive windows are opened again at half, a paused stream's only when it reads
 * again), RST_STREAM, PING (answered, and sent as keepalive), GOAWAY, WINDOW_UPDATE; PRIORITY and
 * unknown frames are ignored, PUSH_PROMISE is refused (push is disabled). HPACK in hpack.ts.
 * Statuses as h2-grpc.ts reads them: the trailers' grpc-status, RST_STREAM codes mapped as grpc-js
 * maps them, a connection that closed is UNAVAILABLE, and the pool opens a new one for the next
 * stream.
 */
import { connect as netConnect, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { status as Status } from "@grpc/grpc-js";
import { hostPort } from "../faults/index.js";
import {
  ACK,
  ConnectionError,
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  END_HEADERS,
  END_STREAM,
  FLOW_CONTROL_ERROR,
  FRAME_HEADER,
  FRAME_SIZE_ERROR,
  MAX_STREAM_ID,
  MAX_WINDOW,
  NO_ERROR,
  PADDED,
  PREFACE,
  PROTOCOL_ERROR,
  Type,
} from "./h2-frames.js";
import { FrameReader, type FrameSink } from "./h2-frame-reader.js";
import { CONNECTION_WINDOW_BYTES, GrpcStatusError, readGrpcStatus, statusOfClose, STREAM_WINDOW_BYTES, type H2SessionOptions } from "./h2-grpc.js";
import { NO_OUT, type H2Stream, type StreamConnection } from "./h2-stream.js";
import { BudgetedReads } from "./read-budget.js";

/** Frames up to this size go out as one buffer (header and payload copied together): one socket write instead of two. */
const JOIN_BELOW = 1024;

/** `size` connections, one per slot, each replaced once it closed or stopped taking streams. */
export class H2Pool {
  private readonly connections: (H2Connection | undefined)[];
  private closed = false;

  constructor(
    private readonly o: H2SessionOptions,
    size: number,
  ) {
    this.connections = new Array<H2Connection | undefined>(Math.max(1, size)).fill(undefined);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Opens `stream` on connection `slot` (modulo the pool). */
  open(slot: number, stream: H2Stream): void {
    this.connection(slot % this.connections.length).open(stream);
  }

  /** Ends every connection; streams still open fail with UNAVAILABLE. */
  close(): void {
    this.closed = true;
    for (const c of this.connections) c?.close();
    this.connections.fill(undefined);
  }

  private connection(i: number): H2Connection {
    const open = this.connections[i];
    if (open?.usable) return open;
    open?.retire();
    const c = new H2Connection(this.o);
    this.connections[i] = c;
    return c;
  }
}

/** One HTTP/2 connection to the broker. */
export class H2Connection implements StreamConnection, FrameSink {
  private readonly socket: Socket | TLSSocket | Duplex;
  private readonly streams = new Map<number, H2Stream>();
  /** Streams waiting for the peer's concurrent-stream limit. */
  private readonly waiting: H2Stream[] = [];
  /**
   * Open streams with request bytes (or END_STREAM) not yet sent, oldest first from `unsentHead`.
   * A queue, not a scan: when the broker's connection window is used up, thousands of Consume
   * streams' acks wait here, and each new one is O(1).
   */
  private unsent: H2Stream[] = [];
  private unsentHead = 0;
  private nextId = 1;
  private sendWindow = DEFAULT_WINDOW;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = DEFAULT_MAX_FRAME;
  private peerMaxStreams = Infinity;
  /** Receive bytes taken on the connection since its window was last opened. */
  private unacked = 0;
  private readonly reader = new FrameReader(this);
  private corked = false;
  /** No new streams here (GOAWAY came, ids ran out, or the pool moved on). */
  private draining = false;
  private dead = false;
  private lastError = "";
  private keepalive: NodeJS.Timeout | undefined;
  private pingAnswer: NodeJS.Timeout | undefined;

  constructor(private readonly o: H2SessionOptions) {
    const { host, port } = hostPort(o.target);
    const tls = o.tls;
    this.socket = o.socket
      ? o.socket()
      : tls
        ? tlsConnect({ host, port, ca: tls.ca, cert: tls.cert, key: tls.key, ALPNProtocols: ["h2"], ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}) })
        : netConnect({ host, port });
    if (this.socket instanceof Socket) this.socket.setNoDelay(true);
    if (tls) {
      this.socket.once("secureConnect", () => {
        const alpn = (this.socket as TLSSocket).alpnProtocol;
        if (alpn !== "h2") this.destroy(`the broker did not agree to HTTP/2 over TLS (ALPN ${alpn === false ? "none" : alpn})`);
      });
    }
    // Reads share the loop turn's budget with the other connections (read-budget.ts).
    new BudgetedReads(this.socket, (chunk) => this.onData(chunk));
    this.socket.on("error", (err: Error) => (this.lastError ||= err.message));
    this.socket.on("close", () => this.onSocketClose());
    // SETTINGS: no push, our stream receive window; then open the connection's window.
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(0x2, 0);
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(0x4, 6);
    settings.writeUInt32BE(STREAM_WINDOW_BYTES, 8);
    this.write(PREFACE);
    this.frame(Type.SETTINGS, 0, 0, settings);
    this.windowUpdate(0, CONNECTION_WINDOW_BYTES - DEFAULT_WINDOW);
    if (o.keepaliveMs !== undefined) this.startKeepalive(o.keepaliveMs);
  }

  get usable(): boolean {
    return !this.dead && !this.draining;
  }

  /** Opens `stream`: HEADERS now, or once the peer's concurrent-stream limit lets it. */
  open(stream: H2Stream): void {
    stream.conn = this;
    if (this.dead) return this.abort(stream, statusOfClose(true, undefined, this.lastError));
    if (this.streams.size >= this.peerMaxStreams) {
      this.waiting.push(stream);
      return;
    }
    const id = this.nextId;
    this.nextId += 2;
    // Ids are odd and at most 2^31 - 1: the pool opens a new connection for the next stream.
    if (this.nextId > MAX_STREAM_ID) this.draining = true;
    stream.id = id;
    stream.sendWindow = this.peerInitialWindow;
    this.streams.set(id, stream);
    this.headers(id, stream.block);
    this.send(stream);
  }

  /** `stream` queued request bytes or its END_STREAM: sends what the windows allow. */
  send(stream: H2Stream): void {
    if (stream.id === 0 || stream.released || stream.localEnded) return;
    if (!stream.queued) {
      stream.queued = true;
      this.unsent.push(stream);
    }
    // With the connection's window used up, the broker's WINDOW_UPDATE sends what waits.
    if (this.sendWindow > 0) this.sendData();
  }

  /** Ends `stream` from this side now: what it has not sent is dropped, END_STREAM goes out, and once the peer ended too the stream is released. */
  endNow(stream: H2Stream): void {
    stream.out = NO_OUT;
    stream.outSent = 0;
    stream.endQueued = true;
    if (stream.id === 0) return this.unwait(stream);
    if (stream.released || stream.localEnded) return;
    this.frame(Type.DATA, END_STREAM, stream.id, undefined);
    this.localEnd(stream);
  }

  /** Resets `stream` (RST_STREAM `code`) and releases it; no callback follows. */
  reset(stream: H2Stream, code: number): void {
    if (stream.id === 0) return this.unwait(stream);
    if (stream.released) return;
    this.rstStream(stream.id, code);
    this.release(stream);
  }

  /** A paused stream reads again: its window is opened by what it took meanwhile. */
  resumed(stream: H2Stream): void {
    if (stream.released || stream.remoteEnded || stream.unacked === 0) return;
    this.windowUpdate(stream.id, stream.unacked);
    stream.unacked = 0;
  }

  /** No new streams: the pool has another connection; this one closes when its streams are done. */
  retire(): void {
    this.draining = true;
    this.closeIfIdle();
  }

  close(): void {
    this.draining = true;
    if (this.dead) return;
    this.goaway(NO_ERROR);
    this.destroy("the driver is closed");
  }

  // --- sending

  private write(buf: Buffer): void {
    if (this.dead) return;
    // One writev per event-loop turn for what the turn's streams wrote.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(buf);
  }

  private frame(type: number, flags: number, stream: number, payload: Buffer | undefined): void {
    const length = payload?.length ?? 0;
    const join = length > 0 && length < JOIN_BELOW;
    const head = Buffer.allocUnsafe(join ? FRAME_HEADER + length : FRAME_HEADER);
    head.writeUIntBE(length, 0, 3);
    head[3] = type;
    head[4] = flags;
    head.writeUInt32BE(stream, 5);
    if (join) {
      payload!.copy(head, FRAME_HEADER);
      return this.write(head);
    }
    this.write(head);
    if (payload && length > 0) this.write(payload);
  }

  private headers(id: number, block: Buffer): void {
    if (block.length <= this.peerMaxFrame) return this.frame(Type.HEADERS, END_HEADERS, id, block);
    for (let pos = 0; pos < block.length; pos += this.peerMaxFrame) {
      const last = pos + this.peerMaxFrame >= block.length;
      this.frame(pos === 0 ? Type.HEADERS : Type.CONTINUATION, last ? END_HEADERS : 0, id, block.subarray(pos, pos + this.peerMaxFrame));
    }
  }

  /** Sends what the windows allow of the streams' queued bytes, oldest stream first. */
  private sendData(): void {
    const q = this.unsent;
    /** Streams held by their own window (not the connection's): they go to the back of the queue. */
    let held: H2Stream[] | undefined;
    while (this.unsentHead < q.length && this.sendWindow > 0 && !this.dead) {
      const s = q[this.unsentHead++]!;
      if (s.released || s.localEnded) {
        s.queued = false;
        continue;
      }
      while (s.out.length > 0 && this.sendWindow > 0 && s.sendWindow > 0) {
        const head = s.out[0]!;
        const n = Math.min(head.length - s.outSent, this.sendWindow, s.sendWindow, this.peerMaxFrame);
        const whole = s.outSent === 0 && n === head.length;
        const lastOfAll = s.out.length === 1 && s.outSent + n === head.length && s.endQueued;
        this.frame(Type.DATA, lastOfAll ? END_STREAM : 0, s.id, whole ? head : head.subarray(s.outSent, s.outSent + n));
        s.sendWindow -= n;
        this.sendWindow -= n;
        s.outSent += n;
        if (s.outSent === head.length) {
          if (s.out.length === 1) s.out = NO_OUT;
          else s.out.shift();
          s.outSent = 0;
        }
        if (lastOfAll) {
          this.localEnd(s);
          break;
        }
      }
      if (!s.released && !s.localEnded && s.out.length === 0 && s.endQueued) {
        // END_STREAM with nothing left to send: an empty DATA frame, which no window holds.
        this.frame(Type.DATA, END_STREAM, s.id, undefined);
        this.localEnd(s);
      }
      if (s.released || s.localEnded || s.out.length === 0) {
        s.queued = false;
        continue;
      }
      if (this.sendWindow > 0) (held ??= []).push(s);
      else this.unsentHead--; // the connection's window ran out: it stays first
    }
    if (this.unsentHead === q.length) {
      this.unsent = held ?? [];
      this.unsentHead = 0;
      return;
    }
    if (held) for (const s of held) q.push(s);
    if (this.unsentHead > 1024 && this.unsentHead * 2 > q.length) {
      this.unsent = q.slice(this.unsentHead);
      this.unsentHead = 0;
    }
  }

  private localEnd(s: H2Stream): void {
    s.localEnded = true;
    if (s.remoteEnded) this.release(s);
  }

  private windowUpdate(stream: number, increment: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(increment, 0);
    this.frame(Type.WINDOW_UPDATE, 0, stream, p);
  }

  private rstStream(stream: number, code: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.frame(Type.RST_STREAM, 0, stream, p);
  }

  private goaway(code: number): void {
    const p = Buffer.alloc(8);
    p.writeUInt32BE(code, 4);
    this.frame(Type.GOAWAY, 0, 0, p);
  }

  // --- receiving

  get reading(): boolean {
    return !this.dead;
  }

  private onData(chunk: Buffer): void {
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      this.goaway(err.code);
      this.destroy(`HTTP/2 protocol error from the broker: ${err.message}`);
    }
  }

  /** A piece of a DATA frame that a socket read cut (FrameReader). */
  onDataPiece(flags: number, id: number, data: Buffer, last: boolean): void {
    this.onDataBytes(flags, id, data, last);
  }

  /** A whole frame (FrameReader). */
  onFrame(type: number, flags: number, id: number, p: Buffer): void {
    switch (type) {
      case Type.DATA:
        return this.onDataFrame(flags, id, p);
      case Type.RST_STREAM: {
        if (p.length !== 4) throw new ConnectionError(FRAME_SIZE_ERROR, "RST_STREAM of a length other than 4");
        const s = this.streams.get(id);
        if (s) this.abort(s, statusOfClose(false, p.readUInt32BE(0), s.details));
        return;
      }
      case Type.SETTINGS:
        return this.onSettings(flags, id, p);
      case Type.PING:
        if (p.length !== 8 || id !== 0) throw new ConnectionError(PROTOCOL_ERROR, "malformed PING");
        if (flags & ACK) {
          clearTimeout(this.pingAnswer);
          this.pingAnswer = undefined;
        } else this.frame(Type.PING, ACK, 0, Buffer.from(p));
        return;
      case Type.GOAWAY: {
        if (p.length < 8) throw new ConnectionError(FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes");
        const last = p.readUInt32BE(0) & MAX_STREAM_ID;
        const why = `the broker is closing the connection (GOAWAY code ${p.readUInt32BE(4)})`;
        this.draining = true;
        // Streams above its last were not processed: UNAVAILABLE, as for a closed connection.
        for (const s of [...this.streams.values()]) if (s.id > last) this.abort(s, new GrpcStatusError(Status.UNAVAILABLE, why));
        for (const s of this.waiting.splice(0)) this.abort(s, new GrpcStatusError(Status.UNAVAILABLE, why));
        this.closeIfIdle();
        return;
      }
      case Type.WINDOW_UPDATE: {
        if (p.length !== 4) throw new ConnectionError(FRAME_SIZE_ERROR, "WINDOW_UPDATE of a length other than 4");
        const inc = p.readUInt32BE(0) & MAX_WINDOW;
        if (id === 0) {
          if (inc === 0) throw new ConnectionError(PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection");
          this.sendWindow += inc;
          if (this.sendWindow > MAX_WINDOW) throw new ConnectionError(FLOW_CONTROL_ERROR, "connection send window above 2^31 - 1");
        } else {
          const s = this.streams.get(id);
          if (!s) return;
          s.sendWindow += inc;
          if (inc === 0 || s.sendWindow > MAX_WINDOW) {
            this.rstStream(id, inc === 0 ? PROTOCOL_ERROR : FLOW_CONTROL_ERROR);
            this.abort(s, new GrpcStatusError(Status.INTERNAL, `bad WINDOW_UPDATE (${inc}) from the broker`));
            return;
          }
        }
        return this.sendData();
      }
      case Type.PUSH_PROMISE:
        throw new ConnectionError(PROTOCOL_ERROR, "PUSH_PROMISE, with push disabled");
      default:
        // PRIORITY and frame types this side does not know are ignored (RFC 9113 §4.1, §5.5).
        return;
    }
  }

  private onDataFrame(flags: number, id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(PROTOCOL_ERROR, "DATA on stream 0");
    if (!(flags & PADDED)) return this.onDataBytes(flags, id, p, true);
    const pad = p[0] ?? 0;
    if (pad >= p.length) throw new ConnectionError(PROTOCOL_ERROR, "DATA padding longer than the frame");
    // Flow control counts the whole payload: the pad length byte and the padding too.
    this.onDataBytes(flags, id, p.subarray(1, p.length - pad), true, 1 + pad);
  }

  /**
   * DATA payload for stream `id`, the whole of a frame's or a piece of one (`last`: its final
   * piece, where END_STREAM counts). Flow control counts each piece as it comes, with the frame's
   * `padding` bytes; the windows are opened again at half. The connection's is opened whatever its
   * streams do: a paused stream is held back by its own window alone.
   */
  private onDataBytes(flags: number, id: number, data: Buffer, last: boolean, padding = 0): void {
    const end = last && (flags & END_STREAM) !== 0;
    const n = data.length + padding;
    this.unacked += n;
    if (this.unacked >= CONNECTION_WINDOW_BYTES / 2) {
      this.windowUpdate(0, this.unacked);
      this.unacked = 0;
    }
    const s = this.streams.get(id);
    if (!s || s.remoteEnded) return; // a stream this side already ended
    s.unacked += n;
    if (s.unacked >= STREAM_WINDOW_BYTES / 2 && !end && !s.paused) {
      this.windowUpdate(id, s.unacked);
      s.unacked = 0;
    }
    if (data.length > 0) s.onBytes(data);
    if (end && !s.released) this.remoteEnd(s);
  }

  /** A header block, decoded (FrameReader): the response's headers or trailers. */
  onHeaders(id: number, fields: [string, string][], endStream: boolean): void {
    const s = this.streams.get(id);
    if (!s || s.remoteEnded) return;
    let http: string | undefined;
    let code: string | undefined;
    let message: string | undefined;
    for (const [name, value] of fields) {
      if (name === ":status") http = value;
      else if (name === "grpc-status") code = value;
      else if (name === "grpc-message") message = value;
    }
    readGrpcStatus(s, http, code, message);
    if (endStream) this.remoteEnd(s);
  }

  private onSettings(flags: number, id: number, p: Buffer): void {
    if (id !== 0) throw new ConnectionError(PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & ACK) return;
    if (p.length % 6 !== 0) throw new ConnectionError(FRAME_SIZE_ERROR, "SETTINGS of a length not a multiple of 6");
    for (let pos = 0; pos < p.length; pos += 6) {
      const value = p.readUInt32BE(pos + 2);
      switch (p.readUInt16BE(pos)) {
        case 0x3: // MAX_CONCURRENT_STREAMS
          this.peerMaxStreams = value;
          break;
        case 0x4: {
          // INITIAL_WINDOW_SIZE: applies to the open streams too, by the difference.
          if (value > MAX_WINDOW) throw new ConnectionError(FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31 - 1");
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const s of this.streams.values()) s.sendWindow += delta;
          break;
        }
        case 0x5: // MAX_FRAME_SIZE
          if (value < DEFAULT_MAX_FRAME || value > 2 ** 24 - 1) throw new ConnectionError(PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
          this.peerMaxFrame = value;
          break;
        default:
          // HEADER_TABLE_SIZE: our encoder uses no table. ENABLE_PUSH, MAX_HEADER_LIST_SIZE and unknown ones: nothing to do.
          break;
      }
    }
    this.frame(Type.SETTINGS, ACK, 0, undefined);
    this.sendData();
    this.startWaiting();
  }

  // --- ending streams

  /** The peer ended its side (END_STREAM): the stream decides what this side does (onRemoteEnd). */
  private remoteEnd(s: H2Stream): void {
    s.remoteEnded = true;
    if (s.localEnded) this.release(s);
    s.onRemoteEnd();
  }

  /** The stream ended without the peer's END_STREAM. */
  private abort(s: H2Stream, err: GrpcStatusError): void {
    if (s.released) return;
    if (s.id === 0) this.unwait(s);
    else this.release(s);
    s.onAbort(err);
  }

  private release(s: H2Stream): void {
    if (s.released) return;
    s.released = true;
    s.out = NO_OUT;
    this.streams.delete(s.id);
    this.startWaiting();
    this.closeIfIdle();
  }

  /** A stream that never opened (it waited for the concurrent-stream limit) leaves the queue. */
  private unwait(s: H2Stream): void {
    s.released = true;
    const i = this.waiting.indexOf(s);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  private startWaiting(): void {
    while (this.waiting.length > 0 && this.streams.size < this.peerMaxStreams && !this.dead) {
      if (this.draining) {
        // Never sent: they fail as on a closed connection, and the driver's retry rules decide.
        for (const s of this.waiting.splice(0)) {
          s.released = true;
          s.onAbort(new GrpcStatusError(Status.UNAVAILABLE, "the connection stopped taking calls before this one was sent"));
        }
        return;
      }
      this.open(this.waiting.shift()!);
    }
  }

  private closeIfIdle(): void {
    if (this.draining && !this.dead && this.streams.size === 0 && this.waiting.length === 0) {
      this.goaway(NO_ERROR);
      this.destroy("the connection was closed after its last call");
    }
  }

  private destroy(why: string): void {
    if (this.dead) return;
    this.lastError ||= why;
    // Written frames (a GOAWAY) go out before the socket ends.
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.onSocketClose();
  }

  private onSocketClose(): void {
    if (this.dead) return;
    this.dead = true;
    clearInterval(this.keepalive);
    clearTimeout(this.pingAnswer);
    this.unsent = [];
    this.unsentHead = 0;
    const gone = statusOfClose(true, undefined, this.lastError);
    for (const s of [...this.streams.values()]) this.abort(s, gone);
    for (const s of this.waiting.splice(0)) {
      s.released = true;
      s.onAbort(gone);
    }
  }

  private startKeepalive(everyMs: number): void {
    this.keepalive = setInterval(() => {
      if (this.dead || this.pingAnswer) return;
      this.pingAnswer = setTimeout(() => this.destroy("keepalive ping not answered"), everyMs);
      this.pingAnswer.unref();
      this.frame(Type.PING, 0, 0, Buffer.alloc(8));
    }, everyMs);
    this.keepalive.unref();
  }
}
