/**
 * The ratatoskr driver's Consume streams over node:http2, without
 * grpc-js's per-call layers (docs/loadgen.md, "The Consume client"). gRPC for this one bidi method is small: a HEADERS
 * frame, length-prefixed messages both ways, `grpc-status` in the trailers. A grpc-js client
 * call costs the generator 12.7 KB of live heap per stream (an interceptor chain, a retrying
 * call, a Duplex over the HTTP/2 stream's own Duplex); this costs about 2 KB, which is what
 * lets one generator process hold 100,000 streams (docs/performance.md, "Memory per
 * subscription and per stream"). Unary calls (CreateSubscription, v1 PublishBatch) go over the
 * generator's own client instead (h2-unary.ts), which shares this file's status helpers.
 *
 * What it keeps of grpc-js's behaviour: a stream that ends without an OK status fails with an
 * Error carrying the gRPC `code` and `details` (so the driver's retry rules read it the same
 * way), a connection that breaks fails its streams with UNAVAILABLE and is opened again by the
 * next stream that needs it, keepalive pings (when the driver rides through faults) find a
 * silent connection, and a paused stream stops reading, so HTTP/2 flow control pushes back on
 * the broker.
 */
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import { connect as tlsConnect } from "node:tls";
import { status as Status } from "@grpc/grpc-js";
import type { DriverOptions } from "./driver.js";
import { KEEPALIVE_MS, MAX_RECEIVE_MESSAGE_BYTES } from "./grpc-pool.js";
import type { LoadedTls } from "./security.js";

/** A gRPC status as an Error, shaped like grpc-js's ServiceError where the driver reads it. */
export class GrpcStatusError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`${code} ${Status[code] ?? "UNKNOWN"}: ${details}`);
  }
}

export interface H2SessionOptions {
  /** host:port */
  target: string;
  tls?: LoadedTls | undefined;
  token?: string | undefined;
  /** Ping each connection this often and drop it when a ping is not answered within the same time; absent = no pings. */
  keepaliveMs?: number | undefined;
  /** Messages larger than this fail the stream with RESOURCE_EXHAUSTED (grpc-js's max_receive_message_length). */
  maxMessageBytes: number;
}

/**
 * Receive windows. With HTTP/2's defaults (64 KiB per stream and per connection) a connection
 * carrying hundreds of Consume streams stalled: massive (625 streams per connection) fell to
 * ~4,000 deliveries/s with acks no longer reaching the broker. These let a connection carry a
 * frame for many streams at once and still bound what an unread stream holds (the slow-consumer
 * fault): a stream takes at most STREAM_WINDOW_BYTES before the broker's outbound budget holds
 * the rest, a connection at most CONNECTION_WINDOW_BYTES.
 */
export const STREAM_WINDOW_BYTES = 256 * 1024;
export const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * A driver's own HTTP/2 connections to the broker its grpc-js `pool` reaches: `connections` of
 * them, the channels' TLS and token, keepalive pings when it rides through faults.
 */
export function driverSessions(options: DriverOptions, pool: { readonly tls: LoadedTls | undefined }): H2Sessions {
  return new H2Sessions(driverSessionOptions(options, pool), options.connections);
}

/** The settings of a driver's own HTTP/2 connections (these and the unary client's). */
export function driverSessionOptions(options: DriverOptions, pool: { readonly tls: LoadedTls | undefined }): H2SessionOptions {
  return { target: options.target, tls: pool.tls, token: options.token, keepaliveMs: options.reconnect ? KEEPALIVE_MS : undefined, maxMessageBytes: MAX_RECEIVE_MESSAGE_BYTES };
}

/** HTTP/2 connections for Consume streams, one per slot, each opened again after it broke. */
export class H2Sessions {
  private readonly sessions: (ClientHttp2Session | undefined)[];
  private readonly headers: Record<string, string>;
  private closed = false;

  constructor(
    private readonly o: H2SessionOptions,
    size: number,
  ) {
    this.sessions = new Array<ClientHttp2Session | undefined>(Math.max(1, size)).fill(undefined);
    this.headers = {
      [constants.HTTP2_HEADER_METHOD]: "POST",
      [constants.HTTP2_HEADER_PATH]: "/ratatoskr.v2.Broker/Consume",
      [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
      [constants.HTTP2_HEADER_TE]: "trailers",
      ...(o.tls?.serverName !== undefined ? { [constants.HTTP2_HEADER_AUTHORITY]: o.tls.serverName } : {}),
      ...(o.token !== undefined ? { authorization: `Bearer ${o.token}` } : {}),
    };
  }

  /** Opens a Consume stream on connection `slot` (modulo the pool) and writes `first` on it. */
  consume(slot: number, first: Buffer, handlers: ConsumeHandlers): ConsumeCall {
    const session = this.session(slot % this.sessions.length);
    return new ConsumeCall(session, this.headers, first, handlers, this.o.maxMessageBytes);
  }

  /** Cancels nothing by itself: the driver cancels its streams first; then every connection ends. */
  close(): void {
    this.closed = true;
    for (const s of this.sessions) {
      if (!s) continue;
      s.close();
      // A connection whose streams did not end (a broker that no longer answers) is not waited for.
      setTimeout(() => s.destroy(), 1000).unref();
    }
    this.sessions.fill(undefined);
  }

  private session(i: number): ClientHttp2Session {
    const open = this.sessions[i];
    if (open && !open.closed && !open.destroyed) return open;
    if (this.closed) throw new GrpcStatusError(Status.CANCELLED, "the driver is closed");
    const tls = this.o.tls;
    // As grpc-js sets it: Node's default session memory limit (10 MB of buffered frames and
    // headers) degrades a connection that carries hundreds of busy streams.
    const base = { maxSessionMemory: Number.MAX_SAFE_INTEGER, maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER, settings: { initialWindowSize: STREAM_WINDOW_BYTES } };
    // TLS through our own socket: http2.connect would send the IP address of a loopback target as
    // the SNI name (which RFC 6066 forbids, and Node warns about); without --tls-server-name the
    // certificate is checked against the address, as grpc-js does.
    const session = tls
      ? connect(`https://${this.o.target}`, {
          ...base,
          createConnection: (url: URL) =>
            tlsConnect({ host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port), ca: tls.ca, cert: tls.cert, key: tls.key, ALPNProtocols: ["h2"], ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}) }),
        })
      : connect(`http://${this.o.target}`, base);
    // A connection's error reaches its streams (they close with it); the session itself only logs nothing.
    session.on("error", () => {});
    session.once("remoteSettings", () => session.setLocalWindowSize(CONNECTION_WINDOW_BYTES));
    if (this.o.keepaliveMs !== undefined) this.keepalive(session, this.o.keepaliveMs);
    this.sessions[i] = session;
    return session;
  }

  private keepalive(session: ClientHttp2Session, everyMs: number): void {
    const timer = setInterval(() => {
      if (session.closed || session.destroyed) return;
      const silent = setTimeout(() => session.destroy(new Error("keepalive ping not answered")), everyMs);
      try {
        session.ping((err) => {
          clearTimeout(silent);
          if (err) session.destroy(err);
        });
      } catch {
        clearTimeout(silent);
      }
    }, everyMs);
    timer.unref();
    session.once("close", () => clearInterval(timer));
  }
}

export interface ConsumeHandlers {
  /** One whole gRPC message (a ConsumeResponse), valid only during the call. */
  onMessage(message: Buffer): void;
  /** Called once: undefined when the broker ended the stream with OK, else the status as an Error. */
  onEnd(err: Error | undefined): void;
}

/** What a call learned of its status so far, from headers and trailers. */
export interface CallStatus {
  status: number | undefined;
  details: string;
}

/**
 * Reads a gRPC status off response headers or trailers as grpc-js does: an HTTP status other
 * than 200 is UNKNOWN (unless a grpc-status follows), `grpc-message` is percent-decoded.
 */
export function readGrpcStatus(into: CallStatus, httpStatus: string | number | undefined, grpcStatus: string | undefined, grpcMessage: string | undefined): void {
  const http = Number(httpStatus ?? 200);
  if (http !== 200) {
    into.status ??= Status.UNKNOWN;
    into.details ||= `HTTP status ${http}`;
  }
  if (grpcStatus === undefined) return;
  into.status = Number(grpcStatus);
  if (grpcMessage === undefined) return;
  try {
    into.details = decodeURIComponent(grpcMessage);
  } catch {
    into.details = grpcMessage;
  }
}

/**
 * The status of a call that closed without one: its connection went away (`gone`: UNAVAILABLE,
 * as grpc-js says) or the broker reset the stream (grpc-js's mapping of RST_STREAM codes).
 */
export function statusOfClose(gone: boolean, rstCode: number | undefined, details: string): GrpcStatusError {
  const code =
    gone || rstCode === undefined || rstCode === constants.NGHTTP2_REFUSED_STREAM || rstCode === constants.NGHTTP2_NO_ERROR
      ? Status.UNAVAILABLE
      : rstCode === constants.NGHTTP2_CANCEL
        ? Status.CANCELLED
        : rstCode === constants.NGHTTP2_ENHANCE_YOUR_CALM
          ? Status.RESOURCE_EXHAUSTED
          : Status.INTERNAL;
  const why = gone ? "the connection to the broker closed" : `stream reset by the broker (RST_STREAM code ${rstCode})`;
  return new GrpcStatusError(code, details ? `${why}: ${details}` : why);
}

/** Length prefix of a gRPC message: compressed flag (1 byte) and length (4 bytes, big-endian). */
export const GRPC_PREFIX = 5;
const PREFIX = GRPC_PREFIX;

/** `message` as a gRPC message on the wire: uncompressed, its length prefix, its bytes. */
export function grpcFramed(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(PREFIX + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, PREFIX);
  return framed;
}

/** One call on an HTTP/2 stream (a Consume stream): write requests, half-close, pause and resume reading, cancel. */
export class ConsumeCall {
  private readonly stream: ClientHttp2Stream;
  /** The chunks of an incomplete message, carried over until it is whole. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the incomplete message needs in all (prefix + body); 0 until its prefix is whole. */
  private need = 0;
  /** Read by readGrpcStatus. */
  status: number | undefined;
  details = "";
  private cancelled = false;
  private ended = false;

  constructor(
    private readonly session: ClientHttp2Session,
    headers: Record<string, string>,
    first: Buffer,
    private readonly h: ConsumeHandlers,
    private readonly maxMessageBytes: number,
  ) {
    this.stream = session.request(headers);
    this.stream.on("response", (head) => this.readStatus(head));
    this.stream.on("trailers", (trailers: IncomingHttpHeaders) => this.readStatus(trailers));
    this.stream.on("data", (chunk: Buffer) => this.onData(chunk));
    this.stream.on("error", (err: Error) => {
      if (!this.details) this.details = err.message;
    });
    // The broker's END_STREAM (after its trailers) ends the call. A stream whose requests are
    // still open (a Consume stream the broker ended) is then closed from this side too (an HTTP/2
    // stream closes only when both sides ended); one that half-closed already closes by itself.
    // Closing that one too sent an RST_STREAM per call when unary calls went this way, and
    // nghttp2's reset rate limit (a burst of 1,000, then 33 a second) made the broker end the
    // connection with INTERNAL_ERROR after about 1,150 calls. `close` covers resets and a
    // connection that went away.
    this.stream.on("end", () => {
      this.onClose(true);
      if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.close();
    });
    this.stream.on("close", () => this.onClose(false));
    this.write(first);
  }

  /** Writes one request message (framed here). */
  write(message: Buffer): void {
    if (this.ended || this.stream.destroyed) return;
    this.stream.write(grpcFramed(message));
  }

  /** Half-closes: no more requests. */
  end(): void {
    if (!this.ended && !this.stream.destroyed) this.stream.end();
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  /** Ends the call from this side (RST_STREAM CANCEL); onEnd is not called. */
  cancel(): void {
    this.cancelled = true;
    if (!this.stream.destroyed) this.stream.close(constants.NGHTTP2_CANCEL);
  }

  private readStatus(h: IncomingHttpHeaders): void {
    const one = (name: string) => {
      const v = h[name];
      return typeof v === "string" || typeof v === "number" ? String(v) : undefined;
    };
    readGrpcStatus(this, one(constants.HTTP2_HEADER_STATUS), one("grpc-status"), one("grpc-message"));
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      // A message that spans chunks is joined once, when it is whole, not once per chunk.
      if (this.need > this.pendingBytes) return;
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.dropPending();
    }
    let pos = 0;
    while (buf.length - pos >= PREFIX) {
      const len = buf.readUInt32BE(pos + 1);
      if (buf[pos] !== 0) return this.fail(Status.INTERNAL, "compressed message on a stream without grpc-encoding");
      if (len > this.maxMessageBytes) return this.fail(Status.RESOURCE_EXHAUSTED, `received message larger than max (${len} vs. ${this.maxMessageBytes})`);
      if (buf.length - pos - PREFIX < len) break;
      this.h.onMessage(buf.subarray(pos + PREFIX, pos + PREFIX + len));
      if (this.ended || this.cancelled) return;
      pos += PREFIX + len;
    }
    if (pos === buf.length) return;
    const rest = Buffer.from(buf.subarray(pos));
    this.pending.push(rest);
    this.pendingBytes = rest.length;
    // Unknown (0) until the length prefix is whole: the next chunk is then joined and read again.
    this.need = rest.length >= PREFIX ? PREFIX + rest.readUInt32BE(1) : 0;
  }

  private dropPending(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.need = 0;
  }

  /** Ends the call from this side with a status of its own (a malformed stream). */
  private fail(code: number, details: string): void {
    this.status = code;
    this.details = details;
    this.dropPending();
    this.stream.close(constants.NGHTTP2_CANCEL);
  }

  /** `remoteEnded`: the broker ended its side of the stream (END_STREAM), with or without trailers. */
  private onClose(remoteEnded: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.dropPending();
    if (this.cancelled) return;
    if (this.status === Status.OK) return this.h.onEnd(undefined);
    if (this.status !== undefined) return this.h.onEnd(new GrpcStatusError(this.status, this.details));
    // No status: its connection went away (UNAVAILABLE, as grpc-js says), the broker ended the
    // stream without one, or it reset the stream (grpc-js's mapping of RST_STREAM codes).
    const gone = this.session.destroyed || this.session.closed;
    if (remoteEnded && !gone) return this.h.onEnd(new GrpcStatusError(Status.UNKNOWN, "the broker ended the stream without a status"));
    this.h.onEnd(statusOfClose(gone, this.stream.rstCode, this.details));
  }
}
