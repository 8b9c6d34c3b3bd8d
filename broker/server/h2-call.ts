/**
 * A bidi gRPC call served straight on its HTTP/2 stream, without grpc-js's server call
 * (docs/design.md, "Streams served on HTTP/2 directly"). A Consume stream lives as long as its
 * consumer; with 100,000 of them, grpc-js's per-call objects (the intercepting call, a Duplex
 * with both stream states, their closures) cost the broker 9.2 KB each. This call keeps what
 * gRPC over HTTP/2 needs and no more: length-prefixed messages in, pre-framed messages out,
 * headers on the first write, the status in trailers (or a trailers-only answer), a
 * `grpc-timeout` deadline, the request size limit and the connection guard's per-message checks
 * (connection-guard.ts). The connection, its settings, keepalive, idle timeout and shutdown stay
 * with grpc-js. No closure is made per call: the stream's listeners are shared functions that
 * find their call on the stream.
 */
import { constants as h2, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { gunzipSync, inflateSync } from "node:zlib";
import { Metadata, status, type Server, type ServiceError } from "@grpc/grpc-js";
import type { Access } from "./access.js";
import { statusError } from "./status.js";

/** The gRPC message prefix: 1 flag byte (compressed or not), then the length as a 32-bit big-endian integer. */
export const GRPC_PREFIX_BYTES = 5;

const RESPONSE_HEADERS = {
  [h2.HTTP2_HEADER_STATUS]: 200,
  [h2.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc+proto",
  "grpc-accept-encoding": "identity,deflate,gzip",
  "grpc-encoding": "identity",
};

/**
 * node:http2 keeps a copy of every stream's response headers for `stream.sentHeaders`, which
 * nothing here reads: a dictionary-mode object of about 450 B per stream, 45 MB at 100,000
 * streams. The key is node's internal symbol, found on the first stream that responded; if a
 * node version has none, nothing is dropped.
 */
let sentHeadersKey: symbol | null | undefined;
/** @internal (exported for its test: it must find node's key, or it would silently keep the headers). */
export function dropSentHeaders(stream: ServerHttp2Stream): void {
  if (sentHeadersKey === undefined) sentHeadersKey = Object.getOwnPropertySymbols(stream).find((k) => k.description === "sent-headers") ?? null;
  // Assigned, not deleted: deleting a property would turn the stream itself into a dictionary.
  if (sentHeadersKey !== null) (stream as unknown as Record<symbol, unknown>)[sentHeadersKey] = undefined;
}

/** What a directly served handler sees of its call: gRPC messages in, pre-framed messages out, one status at the end. */
export interface DirectCall {
  /** The request headers as gRPC metadata (empty unless the broker checks tokens). */
  readonly metadata: Metadata;
  /** The client went away (cancel, reset, connection lost) before the call ended. */
  readonly cancelled: boolean;
  /** The call's status is on its way: nothing more is written. */
  readonly writableEnded: boolean;
  /** Writes gRPC messages already framed with their 5-byte prefixes; `done` runs once HTTP/2 has taken them. */
  write(framed: Buffer, done: (err?: Error | null) => void): boolean;
  /** Ends with OK after what was written. */
  end(): void;
  /** Ends with `err`'s status after what was written. */
  endWithStatus(err: ServiceError): void;
  /** Ends with `err`'s status, and resets the stream `resetGraceMs` later if the status has not got past unread bytes by then. */
  cutOff(err: ServiceError, resetGraceMs: number): void;
}

/** What a directly served call reports to its handler, in this order: messages, then maybe half-close or cancel, then close. */
export interface DirectCallListener {
  /** One whole request message. */
  message(message: Buffer): void;
  /** The client half-closed: it sends nothing more. */
  halfClosed(): void;
  /** The client went away (cancel, reset, connection lost) before the call ended. */
  cancelled(): void;
  /** The HTTP/2 stream is closed, whatever the reason: the last call. */
  closed(): void;
}

/** A directly served method: given the call once its headers passed the checks, returns who hears of it. */
export type DirectHandler = (call: DirectCall) => DirectCallListener;

/** The connection guard's per-message checks (connection-guard.ts), which directly served calls make themselves. */
export interface DirectCallWatch {
  /** A request message not whole this long after its first byte ends the call; 0 = off. */
  readonly messageReceiveTimeoutMs: number;
  messageTimedOut(path: string): void;
  compressedWithoutEncoding(): void;
}

/** What every directly served call of one server shares. */
interface CallContext {
  readonly maxReceiveBytes: number;
  readonly withMetadata: boolean;
  readonly watch: DirectCallWatch;
}

const EMPTY_METADATA = new Metadata();
const DEADLINE = /^(\d{1,8})([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
const CALL = Symbol("ratatoskr.h2-call");
type CarryingStream = ServerHttp2Stream & { [CALL]?: H2Call };

// The stream's listeners: one function each for every call (`this` is the stream).
function onData(this: CarryingStream, chunk: Buffer): void {
  this[CALL]?.onData(chunk);
}
function onEnd(this: CarryingStream): void {
  this[CALL]?.onEnd();
}
function onWantTrailers(this: CarryingStream): void {
  this[CALL]?.onWantTrailers();
}
function onClose(this: CarryingStream): void {
  this[CALL]?.onClose();
}
function ignoreError(): void {
  // As grpc-js: every stream error is followed by 'close', which the call reports as cancelled.
}

class H2Call implements DirectCall {
  readonly metadata: Metadata;
  cancelled = false;
  writableEnded = false;
  listener: DirectCallListener | undefined;
  private closed = false;
  private readonly encoding: string;
  private timer: NodeJS.Timeout | undefined;
  /** What the timer is for: a deadline outlives a message timer; a reset follows the status. */
  private timerFor: "deadline" | "message" | "reset" | undefined;
  private deadlineAt = 0;
  /** The status to send as trailers once the last write has gone. */
  private trailers: Record<string, string> | undefined;
  // Inbound framing: the prefix being read, then the body's parts until it is whole.
  private prefix: Buffer | undefined;
  private prefixFill = 0;
  private bodyLeft = 0;
  private bodyParts: Buffer[] | undefined;
  private compressed = false;

  constructor(
    private readonly stream: CarryingStream,
    private readonly path: string,
    headers: IncomingHttpHeaders,
    private readonly context: CallContext,
  ) {
    this.metadata = context.withMetadata ? Metadata.fromHttp2Headers(headers) : EMPTY_METADATA;
    const encoding = headers["grpc-encoding"];
    this.encoding = typeof encoding === "string" ? encoding : "identity";
    stream[CALL] = this;
    stream.on("data", onData);
    stream.on("end", onEnd);
    stream.on("wantTrailers", onWantTrailers);
    // 'close' comes once: `on` spares the wrapper state and bound function `once` makes per stream.
    stream.on("close", onClose);
    const timeout = headers["grpc-timeout"];
    if (typeof timeout === "string") this.startDeadline(timeout);
  }

  write(framed: Buffer, done: (err?: Error | null) => void): boolean {
    if (this.writableEnded || this.closed) {
      done(new Error("the call has ended"));
      return false;
    }
    if (!this.stream.headersSent) {
      try {
        this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
        dropSentHeaders(this.stream);
      } catch (err) {
        // The session went away meanwhile: 'close' follows.
        done(err instanceof Error ? err : new Error(String(err)));
        return false;
      }
    }
    return this.stream.write(framed, done);
  }

  end(): void {
    this.finish(status.OK, "OK");
  }

  endWithStatus(err: ServiceError): void {
    this.finish(err.code, err.details, err.metadata);
  }

  cutOff(err: ServiceError, resetGraceMs: number): void {
    if (this.writableEnded || this.closed) return;
    this.endWithStatus(err);
    if (this.closed || this.stream.closed) return;
    this.setTimer("reset", resetGraceMs);
  }

  private finish(code: status, details: string, metadata?: Metadata): void {
    if (this.writableEnded || this.closed) return;
    this.writableEnded = true;
    this.clearTimer();
    const trailers: Record<string, string> = { "grpc-status": String(code), "grpc-message": encodeURI(details) };
    if (metadata) Object.assign(trailers, metadata.toHttp2Headers());
    const stream = this.stream;
    if (stream.closed || stream.destroyed) return;
    try {
      if (!stream.headersSent) {
        // Nothing written yet: a trailers-only answer.
        stream.respond({ ...RESPONSE_HEADERS, ...trailers }, { endStream: true });
        this.stopReading();
        return;
      }
      this.trailers = trailers;
      stream.end(); // after the queued writes; then 'wantTrailers' sends the status
    } catch {
      // The session went away meanwhile: 'close' follows.
    }
  }

  /**
   * @internal (the shared 'wantTrailers' listener). No RST_STREAM follows these trailers: a
   * grpc-js client that still had deliveries to read saw the reset before the trailers and
   * reported INTERNAL ("Received RST_STREAM with code 0") instead of the status. The client
   * closes its side once it has the status, as it does with grpc-js's server.
   */
  onWantTrailers(): void {
    if (!this.trailers) return;
    this.stream.sendTrailers(this.trailers);
  }

  /**
   * A trailers-only answer went out while the client may still be sending: RST_STREAM NO_ERROR
   * tells it to stop ("Early Server Closure" in gRPC's PROTOCOL-HTTP2.md), as the connection
   * guard's refusals do, and closes the stream here.
   */
  private stopReading(): void {
    if (!this.stream.readableEnded && !this.stream.closed) this.stream.close(h2.NGHTTP2_NO_ERROR);
  }

  /** @internal (the shared 'data' listener) */
  onData(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.closed || this.writableEnded) return;
      if (this.bodyLeft === 0) {
        // A whole prefix in this chunk needs no copy.
        if (this.prefixFill === 0 && chunk.length - at >= GRPC_PREFIX_BYTES) {
          this.startMessage(chunk[at]!, chunk.readUInt32BE(at + 1));
          at += GRPC_PREFIX_BYTES;
        } else {
          this.prefix ??= Buffer.alloc(GRPC_PREFIX_BYTES);
          this.prefix[this.prefixFill++] = chunk[at++]!;
          if (this.prefixFill === GRPC_PREFIX_BYTES) {
            this.prefixFill = 0;
            this.startMessage(this.prefix[0]!, this.prefix.readUInt32BE(1));
          }
        }
        continue;
      }
      const take = Math.min(this.bodyLeft, chunk.length - at);
      (this.bodyParts ??= []).push(chunk.subarray(at, at + take));
      this.bodyLeft -= take;
      at += take;
      if (this.bodyLeft === 0) this.deliver();
    }
    // Armed only when a chunk ends inside a message: no timer per message on the hot path.
    if ((this.prefixFill > 0 || this.bodyLeft > 0) && this.timerFor === undefined && this.context.watch.messageReceiveTimeoutMs > 0) {
      this.setTimer("message", this.context.watch.messageReceiveTimeoutMs);
    }
  }

  private startMessage(flag: number, length: number): void {
    if (flag > 1) {
      this.refuse(status.INTERNAL, `a message has flag byte ${flag}; gRPC defines 0 (uncompressed) and 1 (compressed)`);
      return;
    }
    if (flag === 1 && this.encoding === "identity") {
      this.context.watch.compressedWithoutEncoding();
      this.refuse(status.INTERNAL, "a message has the compressed flag set but the call has no grpc-encoding header");
      return;
    }
    if (length > this.context.maxReceiveBytes) {
      this.refuse(status.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs. ${this.context.maxReceiveBytes})`);
      return;
    }
    this.compressed = flag === 1;
    this.bodyLeft = length;
    if (length === 0) this.deliver();
  }

  private deliver(): void {
    if (this.timerFor === "message") {
      this.clearTimer();
      if (this.deadlineAt > 0) this.setTimer("deadline", Math.max(0, this.deadlineAt - Date.now()));
    }
    const parts = this.bodyParts;
    this.bodyParts = undefined;
    let message = parts === undefined ? Buffer.alloc(0) : parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (this.compressed) {
      try {
        if (this.encoding === "gzip") message = gunzipSync(message);
        else if (this.encoding === "deflate") message = inflateSync(message);
        else {
          this.refuse(status.UNIMPLEMENTED, `Received message compressed with unsupported encoding "${this.encoding}"`);
          return;
        }
      } catch (err) {
        this.refuse(status.INTERNAL, `could not decompress the message (${this.encoding}): ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
    }
    this.listener?.message(message);
  }

  /** Ends the call for what the client sent: the handler hears of it as a cancel (its consumer, if any, leaves). */
  private refuse(code: status, details: string): void {
    this.endWithStatus(statusError(code, details));
    this.reportCancel();
  }

  /** @internal (the shared 'end' listener) */
  onEnd(): void {
    if (this.closed || this.writableEnded) return;
    if (this.prefixFill > 0 || this.bodyLeft > 0) {
      // The gRPC spec answers a truncated request with INTERNAL.
      this.refuse(status.INTERNAL, "the request ended inside a message (truncated gRPC frame)");
      return;
    }
    this.listener?.halfClosed();
  }

  private startDeadline(header: string): void {
    const match = DEADLINE.exec(header);
    if (!match) {
      process.nextTick(() => this.refuse(status.INTERNAL, `Invalid grpc-timeout value "${header}"`));
      return;
    }
    const ms = Math.ceil(Number(match[1]) * UNIT_MS[match[2]!]!);
    this.deadlineAt = Date.now() + ms;
    this.setTimer("deadline", ms);
  }

  private setTimer(kind: "deadline" | "message" | "reset", ms: number): void {
    // A message timer never pushes a deadline further out.
    if (kind === "message" && this.deadlineAt > 0 && Date.now() + ms >= this.deadlineAt) return;
    this.clearTimer();
    this.timerFor = kind;
    this.timer = setTimeout(() => this.onTimer(), ms);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerFor = undefined;
  }

  private onTimer(): void {
    const kind = this.timerFor;
    this.timer = undefined;
    this.timerFor = undefined;
    if (this.closed) return;
    if (kind === "reset") {
      if (!this.stream.closed) this.stream.close(h2.NGHTTP2_ENHANCE_YOUR_CALM);
    } else if (kind === "deadline") {
      this.refuse(status.DEADLINE_EXCEEDED, "Deadline exceeded");
    } else if (kind === "message") {
      this.context.watch.messageTimedOut(this.path);
      const ms = this.context.watch.messageReceiveTimeoutMs;
      this.refuse(status.RESOURCE_EXHAUSTED, `the request message did not arrive whole within ${ms} ms (message-receive-timeout-ms)`);
    }
  }

  private reportCancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.listener?.cancelled();
  }

  /** @internal (the shared 'close' listener) */
  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    this.stream[CALL] = undefined;
    // Closed before its status went out whole: the client cancelled, reset, or went away.
    if (!(this.writableEnded && this.stream.rstCode === h2.NGHTTP2_NO_ERROR)) this.reportCancel();
    this.listener?.closed();
  }
}

/**
 * Serves the methods in `routes` (by their `/package.Service/Method` path) on the HTTP/2
 * streams of a bound grpc-js Server, before grpc-js sees them; every other stream goes to
 * grpc-js as before. What grpc-js does first for every stream is done here too: the idle
 * timeout counts the stream, a content type other than gRPC is answered 415, and a call
 * without a known token is refused (UNAUTHENTICATED) before its handler runs. Throws when
 * grpc-js no longer has the internals this needs (pinned to 1.14, as connection-guard.ts).
 */
export function serveDirect(server: Server, routes: ReadonlyMap<string, DirectHandler>, access: Access, maxReceiveBytes: number, watch: DirectCallWatch): void {
  const internals = server as unknown as { http2Servers?: unknown; onStreamOpened?: unknown };
  const servers = internals.http2Servers;
  if (!(servers instanceof Map) || servers.size === 0 || typeof internals.onStreamOpened !== "function") {
    throw new Error("grpc-js internals changed: Server.http2Servers or Server.onStreamOpened is missing; streams cannot be served directly");
  }
  const onStreamOpened = (internals.onStreamOpened as (stream: ServerHttp2Stream) => void).bind(server);
  const context: CallContext = { maxReceiveBytes, withMetadata: access.mode === "tokens", watch };
  for (const h2Server of servers.keys() as Iterable<Http2Server>) {
    const grpcListeners = h2Server.listeners("stream");
    if (grpcListeners.length !== 1) throw new Error(`grpc-js internals changed: ${grpcListeners.length} stream listeners on its HTTP/2 server, expected 1`);
    const grpc = grpcListeners[0] as (...args: unknown[]) => void;
    h2Server.removeListener("stream", grpc);
    h2Server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
      const path = headers[h2.HTTP2_HEADER_PATH];
      const handler = typeof path === "string" ? routes.get(path) : undefined;
      if (!handler || typeof path !== "string") {
        grpc.call(h2Server, stream, headers, ...rest);
        return;
      }
      stream.on("error", ignoreError);
      onStreamOpened(stream); // the idle timeout counts it
      const contentType = headers[h2.HTTP2_HEADER_CONTENT_TYPE];
      if (typeof contentType !== "string" || !contentType.startsWith("application/grpc")) {
        stream.respond({ [h2.HTTP2_HEADER_STATUS]: h2.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE }, { endStream: true });
        return;
      }
      const call = new H2Call(stream, path, headers, context);
      const refusal = access.admit(call.metadata);
      if (refusal) {
        call.endWithStatus(refusal);
        return;
      }
      call.listener = handler(call);
    });
  }
}
