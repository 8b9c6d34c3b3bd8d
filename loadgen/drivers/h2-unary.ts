/**
 * The generator's own HTTP/2 client for unary gRPC calls (docs/loadgen.md, "The unary client"):
 * frames on a socket, with no node:http2 stream per call. At 5,000 calls/s node:http2 made the
 * generator pause: Node 20's per-request AsyncResource wrappers promoted ~5.5 KB per call to the
 * old space (a 25 ms Mark-Compact every 4 s), and without them each dead stream's native handles
 * cost a 200 ms collection later (docs/performance.md, "Latency at 5,000 msg/s after the lease
 * steps"). Here a call is a promise, an object and its buffers.
 *
 * What it speaks of HTTP/2 (RFC 9113): the preface and SETTINGS, HEADERS (+ CONTINUATION) and
 * DATA both ways, flow control both ways (the peer's windows, frame size and concurrent-stream
 * limit are kept; receive windows are opened again at half), RST_STREAM, PING (answered, and sent
 * as keepalive), GOAWAY, WINDOW_UPDATE; PRIORITY and unknown frames are ignored, PUSH_PROMISE is
 * refused (push is disabled). HPACK in hpack.ts. Statuses as the Consume client reads them
 * (h2-consume.ts): the trailers' grpc-status, RST_STREAM codes mapped as grpc-js maps them, a
 * connection that closed is UNAVAILABLE, and the next call opens a new one.
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { status as Status } from "@grpc/grpc-js";
import { hostPort } from "../faults/index.js";
import { CONNECTION_WINDOW_BYTES, GRPC_PREFIX as PREFIX, grpcFramed, GrpcStatusError, readGrpcStatus, statusOfClose, STREAM_WINDOW_BYTES, type CallStatus, type H2SessionOptions } from "./h2-consume.js";
import { encodeHeaderBlock, HpackDecoder } from "./hpack.js";
import {
  PREFACE,
  FRAME_HEADER,
  Type,
  END_STREAM,
  ACK,
  END_HEADERS,
  PADDED,
  PRIORITY_FLAG,
  NO_ERROR,
  PROTOCOL_ERROR,
  FLOW_CONTROL_ERROR,
  FRAME_SIZE_ERROR,
  CANCEL,
  COMPRESSION_ERROR,
  DEFAULT_WINDOW,
  DEFAULT_MAX_FRAME,
  MAX_WINDOW,
  MAX_STREAM_ID,
  MAX_HEADER_BLOCK_BYTES,
  ConnectionError,
} from "./h2-frames.js";

/** gRPC status OK, as the number a call reads off its trailers. */
const OK: number = Status.OK;

/** One call: its request (framed), what has been sent of it, the answer as it comes. */
class Call implements CallStatus {
  id = 0;
  sent = 0;
  sendWindow = 0;
  /** Receive bytes taken on this stream since its window was last opened. */
  unacked = 0;
  status: number | undefined = undefined;
  details = "";
  answer: Buffer[] = [];
  answerBytes = 0;
  /** Prefix + length of the response message, once its prefix is in; 0 before. */
  expect = 0;
  done = false;

  constructor(
    readonly block: Buffer,
    readonly body: Buffer,
    readonly resolve: (answer: Buffer) => void,
    readonly reject: (err: Error) => void,
  ) {}
}

/** `connections` HTTP/2 connections for unary calls, one per slot, each opened again after it closed. */
export class H2UnaryClient {
  private readonly connections: (UnaryConnection | undefined)[];
  private readonly blocks = new Map<string, Buffer>();
  private closed = false;

  constructor(
    private readonly o: H2SessionOptions,
    size: number,
  ) {
    this.connections = new Array<UnaryConnection | undefined>(Math.max(1, size)).fill(undefined);
  }

  /**
   * One unary call to `path` (`/package.Service/Method`) on connection `slot` (modulo the pool):
   * resolves with the response message, rejects with a GrpcStatusError (UNAVAILABLE when the
   * connection closed).
   */
  unary(slot: number, path: string, request: Uint8Array): Promise<Buffer> {
    if (this.closed) return Promise.reject(new GrpcStatusError(Status.CANCELLED, "the driver is closed"));
    const body = grpcFramed(request);
    const block = this.block(path);
    return new Promise((resolve, reject) => this.connection(slot % this.connections.length).start(new Call(block, body, resolve, reject)));
  }

  /** Ends every connection; calls still open fail with UNAVAILABLE. */
  close(): void {
    this.closed = true;
    for (const c of this.connections) c?.close();
    this.connections.fill(undefined);
  }

  private connection(i: number): UnaryConnection {
    const open = this.connections[i];
    if (open?.usable) return open;
    open?.retire();
    const c = new UnaryConnection(this.o);
    this.connections[i] = c;
    return c;
  }

  /** The request header block for `path`: constant, as the encoder keeps no table. */
  private block(path: string): Buffer {
    let b = this.blocks.get(path);
    if (b) return b;
    const tls = this.o.tls;
    b = encodeHeaderBlock([
      [":method", "POST"],
      [":scheme", tls ? "https" : "http"],
      [":path", path],
      [":authority", tls?.serverName ?? this.o.target],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ...(this.o.token !== undefined ? [["authorization", `Bearer ${this.o.token}`, "never-indexed"] as const] : []),
    ]);
    this.blocks.set(path, b);
    return b;
  }
}

/** One HTTP/2 connection carrying unary calls. */
class UnaryConnection {
  private readonly socket: Socket | TLSSocket;
  private readonly decoder = new HpackDecoder();
  private readonly streams = new Map<number, Call>();
  /** Calls waiting for the peer's concurrent-stream limit. */
  private readonly waiting: Call[] = [];
  /** Open calls with request bytes not yet sent (flow control or frame size held them). */
  private readonly unsent: Call[] = [];
  private nextId = 1;
  private sendWindow = DEFAULT_WINDOW;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = DEFAULT_MAX_FRAME;
  private peerMaxStreams = Infinity;
  /** Receive bytes taken on the connection since its window was last opened. */
  private unacked = 0;
  /** A frame's bytes carried over to the next chunk. */
  private rest: Buffer | undefined;
  /** HEADERS fragments waiting for their CONTINUATION, and their stream. */
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  private fragmentStream = 0;
  private fragmentEnd = false;
  private corked = false;
  /** No new calls here (GOAWAY came, ids ran out, or the pool moved on). */
  private draining = false;
  private dead = false;
  private lastError = "";
  private keepalive: NodeJS.Timeout | undefined;
  private pingAnswer: NodeJS.Timeout | undefined;

  constructor(private readonly o: H2SessionOptions) {
    const { host, port } = hostPort(o.target);
    const tls = o.tls;
    this.socket = tls
      ? tlsConnect({ host, port, ca: tls.ca, cert: tls.cert, key: tls.key, ALPNProtocols: ["h2"], ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}) })
      : netConnect({ host, port });
    this.socket.setNoDelay(true);
    if (tls) {
      this.socket.once("secureConnect", () => {
        const alpn = (this.socket as TLSSocket).alpnProtocol;
        if (alpn !== "h2") this.destroy(`the broker did not agree to HTTP/2 over TLS (ALPN ${alpn === false ? "none" : alpn})`);
      });
    }
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
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

  start(call: Call): void {
    if (this.dead) return call.reject(statusOfClose(true, undefined, this.lastError));
    if (this.streams.size >= this.peerMaxStreams) {
      this.waiting.push(call);
      return;
    }
    const id = this.nextId;
    this.nextId += 2;
    // Ids are odd and at most 2^31 - 1: the pool opens a new connection for the next call.
    if (this.nextId > MAX_STREAM_ID) this.draining = true;
    call.id = id;
    call.sendWindow = this.peerInitialWindow;
    this.streams.set(id, call);
    this.headers(id, call.block);
    this.unsent.push(call);
    this.sendData();
  }

  /** No new calls: the pool has another connection; this one closes when its calls are done. */
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
    // One writev per event-loop turn for what the turn's calls wrote.
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

  private frame(type: number, flags: number, stream: number, payload: Buffer | undefined, length = payload?.length ?? 0): void {
    const head = Buffer.allocUnsafe(FRAME_HEADER);
    head.writeUIntBE(length, 0, 3);
    head[3] = type;
    head[4] = flags;
    head.writeUInt32BE(stream, 5);
    this.write(head);
    if (payload && payload.length > 0) this.write(payload);
  }

  private headers(id: number, block: Buffer): void {
    if (block.length <= this.peerMaxFrame) return this.frame(Type.HEADERS, END_HEADERS, id, block);
    for (let pos = 0; pos < block.length; pos += this.peerMaxFrame) {
      const last = pos + this.peerMaxFrame >= block.length;
      this.frame(pos === 0 ? Type.HEADERS : Type.CONTINUATION, last ? END_HEADERS : 0, id, block.subarray(pos, pos + this.peerMaxFrame));
    }
  }

  /** Sends what the windows allow of the calls' requests, oldest call first. */
  private sendData(): void {
    let i = 0;
    while (i < this.unsent.length && this.sendWindow > 0 && !this.dead) {
      const call = this.unsent[i]!;
      if (call.done) {
        this.unsent.splice(i, 1);
        continue;
      }
      const n = Math.min(call.body.length - call.sent, this.sendWindow, call.sendWindow, this.peerMaxFrame);
      if (n <= 0) {
        i++;
        continue;
      }
      const last = call.sent + n === call.body.length;
      this.frame(Type.DATA, last ? END_STREAM : 0, call.id, call.body.subarray(call.sent, call.sent + n));
      call.sent += n;
      call.sendWindow -= n;
      this.sendWindow -= n;
      if (last) this.unsent.splice(i, 1);
    }
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

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.rest) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    let pos = 0;
    try {
      while (buf.length - pos >= FRAME_HEADER && !this.dead) {
        const length = buf.readUIntBE(pos, 3);
        // We never raise SETTINGS_MAX_FRAME_SIZE.
        if (length > DEFAULT_MAX_FRAME) throw new ConnectionError(FRAME_SIZE_ERROR, `a frame of ${length} bytes, above the 16384 allowed`);
        if (buf.length - pos - FRAME_HEADER < length) break;
        const start = pos + FRAME_HEADER;
        this.onFrame(buf[pos + 3]!, buf[pos + 4]!, buf.readUInt32BE(pos + 5) & MAX_STREAM_ID, buf.subarray(start, start + length));
        pos = start + length;
      }
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      this.goaway(err.code);
      this.destroy(`HTTP/2 protocol error from the broker: ${err.message}`);
      return;
    }
    if (pos < buf.length && !this.dead) this.rest = Buffer.from(buf.subarray(pos));
  }

  private onFrame(type: number, flags: number, id: number, p: Buffer): void {
    if (this.fragmentStream !== 0 && (type !== Type.CONTINUATION || id !== this.fragmentStream)) {
      throw new ConnectionError(PROTOCOL_ERROR, `a frame of type ${type} inside a header block of stream ${this.fragmentStream}`);
    }
    switch (type) {
      case Type.DATA:
        return this.onDataFrame(flags, id, p);
      case Type.HEADERS: {
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
      case Type.CONTINUATION:
        if (this.fragmentStream === 0) throw new ConnectionError(PROTOCOL_ERROR, "CONTINUATION without a header block");
        return this.onFragment(flags, p);
      case Type.RST_STREAM: {
        if (p.length !== 4) throw new ConnectionError(FRAME_SIZE_ERROR, "RST_STREAM of a length other than 4");
        const call = this.streams.get(id);
        if (call) this.finish(call, statusOfClose(false, p.readUInt32BE(0), call.details));
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
        // Calls above its last stream were not processed: UNAVAILABLE, as for a closed connection.
        for (const call of [...this.streams.values()]) if (call.id > last) this.finish(call, new GrpcStatusError(Status.UNAVAILABLE, why));
        for (const call of this.waiting.splice(0)) call.reject(new GrpcStatusError(Status.UNAVAILABLE, why));
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
          const call = this.streams.get(id);
          if (!call) return;
          call.sendWindow += inc;
          if (inc === 0 || call.sendWindow > MAX_WINDOW) {
            this.rstStream(id, inc === 0 ? PROTOCOL_ERROR : FLOW_CONTROL_ERROR);
            this.finish(call, new GrpcStatusError(Status.INTERNAL, `bad WINDOW_UPDATE (${inc}) from the broker`));
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
    // Flow control counts the whole payload, padding included.
    this.unacked += p.length;
    if (this.unacked >= CONNECTION_WINDOW_BYTES / 2) {
      this.windowUpdate(0, this.unacked);
      this.unacked = 0;
    }
    let data = p;
    if (flags & PADDED) {
      const pad = p[0] ?? 0;
      if (pad >= p.length) throw new ConnectionError(PROTOCOL_ERROR, "DATA padding longer than the frame");
      data = p.subarray(1, p.length - pad);
    }
    const call = this.streams.get(id);
    if (!call) return; // a stream this side already ended
    call.unacked += p.length;
    if (call.unacked >= STREAM_WINDOW_BYTES / 2 && !(flags & END_STREAM)) {
      this.windowUpdate(id, call.unacked);
      call.unacked = 0;
    }
    if (data.length > 0) this.onMessageBytes(call, data);
    if (!call.done && flags & END_STREAM) this.onRemoteEnd(call);
  }

  private onMessageBytes(call: Call, data: Buffer): void {
    if (call.answerBytes < PREFIX && call.answerBytes + data.length >= PREFIX) {
      const head = call.answerBytes === 0 ? data : Buffer.concat([...call.answer, data]);
      if (head[0] !== 0) return this.cancel(call, Status.INTERNAL, "compressed message on a call without grpc-encoding");
      const length = head.readUInt32BE(1);
      if (length > this.o.maxMessageBytes) return this.cancel(call, Status.RESOURCE_EXHAUSTED, `received message larger than max (${length} vs. ${this.o.maxMessageBytes})`);
      call.expect = PREFIX + length;
    }
    // Copied: the chunk is the socket's and is reused for the next frames.
    call.answer.push(Buffer.from(data));
    call.answerBytes += data.length;
    if (call.expect > 0 && call.answerBytes > call.expect) this.cancel(call, Status.INTERNAL, "more than one response message on a unary call");
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
    const call = this.streams.get(id);
    if (!call) return;
    let http: string | undefined;
    let code: string | undefined;
    let message: string | undefined;
    for (const [name, value] of fields) {
      if (name === ":status") http = value;
      else if (name === "grpc-status") code = value;
      else if (name === "grpc-message") message = value;
    }
    readGrpcStatus(call, http, code, message);
    if (endStream) this.onRemoteEnd(call);
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
          for (const call of this.streams.values()) call.sendWindow += delta;
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

  // --- ending calls

  /** The broker ended its side (END_STREAM). */
  private onRemoteEnd(call: Call): void {
    if (call.sent < call.body.length) {
      // It answered before taking the whole request: the rest is not sent, and this side's half is reset.
      this.rstStream(call.id, CANCEL);
    }
    if (call.status === undefined) return this.finish(call, new GrpcStatusError(Status.UNKNOWN, "the broker ended the stream without a status"));
    if (call.status !== OK) return this.finish(call, new GrpcStatusError(call.status, call.details));
    if (call.answerBytes === 0) return this.finish(call, new GrpcStatusError(Status.UNIMPLEMENTED, "the broker answered OK without a response message"));
    if (call.answerBytes !== call.expect) return this.finish(call, new GrpcStatusError(Status.INTERNAL, `the response message is cut short (${call.answerBytes} bytes)`));
    const whole = call.answer.length === 1 ? call.answer[0]! : Buffer.concat(call.answer, call.answerBytes);
    this.finish(call, whole.subarray(PREFIX));
  }

  /** Ends a call from this side (RST_STREAM CANCEL) with a status of its own. */
  private cancel(call: Call, code: number, details: string): void {
    this.rstStream(call.id, CANCEL);
    this.finish(call, new GrpcStatusError(code, details));
  }

  private finish(call: Call, outcome: Buffer | Error): void {
    if (call.done) return;
    call.done = true;
    call.answer = [];
    this.streams.delete(call.id);
    if (outcome instanceof Error) call.reject(outcome);
    else call.resolve(outcome);
    this.startWaiting();
    this.closeIfIdle();
  }

  private startWaiting(): void {
    while (this.waiting.length > 0 && this.streams.size < this.peerMaxStreams && !this.dead) {
      if (this.draining) {
        // Never sent: they fail as on a closed connection, and the driver's retry rules decide.
        for (const call of this.waiting.splice(0)) call.reject(new GrpcStatusError(Status.UNAVAILABLE, "the connection stopped taking calls before this one was sent"));
        return;
      }
      this.start(this.waiting.shift()!);
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
    const open = [...this.streams.values()];
    for (const call of open) this.finish(call, statusOfClose(true, undefined, this.lastError));
    for (const call of this.waiting.splice(0)) call.reject(statusOfClose(true, undefined, this.lastError));
    this.unsent.length = 0;
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
