import { constants as http2, type Http2Server, type Http2Session, type ServerHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import type { Socket } from "node:net";
import type { Server } from "@grpc/grpc-js";
import type { DirectCallWatch } from "./h2-call.js";
import type { Logger } from "./logger.js";

/** What the guard enforces (docs/limits.md, "Connections, streams and timeouts"); 0 = off. */
export interface ConnectionLimits {
  maxConnections: number;
  handshakeTimeoutMs: number;
  messageReceiveTimeoutMs: number;
}

/** Statistics of the guard, for tests and logs. */
export interface ConnectionGuardStats {
  open: number;
  refused: number;
  handshakeTimeouts: number;
  messageTimeouts: number;
  compressedWithoutEncoding: number;
}

/**
 * Watches the HTTP/2 servers grpc-js listens with: counts TCP connections and closes those past
 * `maxConnections` at once, closes a connection whose HTTP/2 handshake (client preface and
 * SETTINGS) has not arrived within `handshakeTimeoutMs`, ends a call whose request message has
 * not arrived whole within `messageReceiveTimeoutMs` of its first byte, and refuses a message
 * with the compressed flag on a call without `grpc-encoding`. `destroyAll` ends every connection
 * (the last step of shutdown, whatever state they are in). Calls served on HTTP/2 directly
 * (h2-call.ts) make the per-message checks themselves and report them here (DirectCallWatch).
 */
export class ConnectionGuard implements DirectCallWatch {
  readonly stats: ConnectionGuardStats = { open: 0, refused: 0, handshakeTimeouts: 0, messageTimeouts: 0, compressedWithoutEncoding: 0 };
  private readonly sockets = new Map<string, Connection>();
  private closing = false;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
  ) {}

  get messageReceiveTimeoutMs(): number {
    return this.limits.messageReceiveTimeoutMs;
  }

  messageTimedOut(path: string): void {
    this.stats.messageTimeouts++;
    this.log.warn("call ended: request message not received whole in time", { messageReceiveTimeoutMs: this.limits.messageReceiveTimeoutMs, path });
  }

  compressedWithoutEncoding(): void {
    this.stats.compressedWithoutEncoding++;
  }

  /**
   * Attaches to every HTTP/2 server of a bound grpc-js Server; throws if grpc-js no longer
   * exposes them. Streams of `directPaths` are left to their calls' own checks.
   */
  attach(server: Server, directPaths: ReadonlySet<string> = new Set()): void {
    const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
    if (!(servers instanceof Map) || servers.size === 0) {
      throw new Error("grpc-js internals changed: Server.http2Servers is not a Map of HTTP/2 servers; the connection limits cannot be enforced");
    }
    for (const h2 of servers.keys() as Iterable<Http2Server>) {
      h2.prependListener("connection", (socket: Socket) => this.onConnection(socket));
      h2.on("session", (session: Http2Session) => this.onSession(session));
      h2.prependListener("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
        if (!directPaths.has(headers[":path"] ?? "")) this.onStream(stream, headers);
      });
    }
  }

  /** Shutdown has begun: refuse new connections, close those that never completed a handshake. */
  beginShutdown(): void {
    this.closing = true;
    for (const entry of this.sockets.values()) if (entry.timer) drop(entry);
  }

  /** Ends every connection at once. */
  destroyAll(): void {
    for (const entry of this.sockets.values()) drop(entry);
  }

  private onConnection(socket: Socket): void {
    const { maxConnections, handshakeTimeoutMs } = this.limits;
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (maxConnections > 0 && this.sockets.size >= maxConnections) {
      this.stats.refused++;
      // One line per refusal would let a flood fill the log; every 1,000th is enough to see it.
      if (this.stats.refused % 1000 === 1) {
        this.log.warn("connection refused: max-connections reached", { maxConnections, remote: `${socket.remoteAddress}:${socket.remotePort}`, refusedSoFar: this.stats.refused });
      }
      socket.destroy();
      return;
    }
    const key = keyOf(socket);
    const entry: Connection = { socket, session: undefined, timer: undefined };
    if (handshakeTimeoutMs > 0) {
      entry.timer = setTimeout(() => {
        entry.timer = undefined;
        this.stats.handshakeTimeouts++;
        this.log.debug("connection closed: no HTTP/2 handshake in time", { handshakeTimeoutMs, remote: key });
        drop(entry);
      }, handshakeTimeoutMs);
      entry.timer.unref();
    }
    this.sockets.set(key, entry);
    this.stats.open = this.sockets.size;
    socket.once("close", () => {
      if (entry.timer) clearTimeout(entry.timer);
      if (this.sockets.get(key) === entry) this.sockets.delete(key);
      this.stats.open = this.sockets.size;
    });
  }

  private onSession(session: Http2Session): void {
    // session.socket is a proxy of the connection: match it by its remote address.
    const socket = session.socket as Socket | undefined;
    const entry = socket ? this.sockets.get(keyOf(socket)) : undefined;
    if (!entry) return;
    entry.session = session;
    session.once("remoteSettings", () => {
      if (entry.timer) clearTimeout(entry.timer);
      entry.timer = undefined;
    });
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const encoded = typeof headers["grpc-encoding"] === "string" && headers["grpc-encoding"] !== "identity";
    const timeoutMs = this.limits.messageReceiveTimeoutMs;
    // The gRPC length-prefixed framing: 1 flag byte, 4 length bytes, then the message.
    let headerFill = 0;
    const header = Buffer.alloc(5);
    let bodyLeft = 0;
    let timer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      if (timer) clearTimeout(timer);
      timer = undefined;
    };
    const onData = (chunk: Buffer): void => {
      let at = 0;
      while (at < chunk.length) {
        if (bodyLeft > 0) {
          const take = Math.min(bodyLeft, chunk.length - at);
          bodyLeft -= take;
          at += take;
          if (bodyLeft === 0) stop();
          continue;
        }
        header[headerFill++] = chunk[at++]!;
        if (headerFill < 5) continue;
        headerFill = 0;
        if (header[0] === 1 && !encoded) {
          stop();
          this.compressedWithoutEncoding();
          stream.off("data", onData);
          refuse(stream, 13 /* INTERNAL */, "a message has the compressed flag set but the call has no grpc-encoding header");
          return;
        }
        bodyLeft = header.readUInt32BE(1);
        if (bodyLeft === 0) stop();
      }
      // Armed only when a chunk ends inside a message: no timer per message on the hot path.
      if ((headerFill > 0 || bodyLeft > 0) && timeoutMs > 0 && !timer) {
        timer = setTimeout(() => {
          timer = undefined;
          this.messageTimedOut(headers[":path"] ?? "");
          refuse(stream, 8 /* RESOURCE_EXHAUSTED */, `the request message did not arrive whole within ${timeoutMs} ms (message-receive-timeout-ms)`);
        }, timeoutMs);
        timer.unref();
      }
    };
    stream.on("data", onData);
    // The client half-closed in the middle of a message: the request is truncated, which the
    // gRPC spec answers with INTERNAL (grpc-js would say UNIMPLEMENTED, "no request message").
    stream.once("end", () => {
      if (headerFill === 0 && bodyLeft === 0) return;
      stop();
      refuse(stream, 13 /* INTERNAL */, "the request ended inside a message (truncated gRPC frame)");
    });
    stream.once("close", stop);
  }
}

/**
 * Ends a call with `code` before grpc-js sees more of it: a trailers-only response when no
 * headers went out yet, else a reset (gRPC maps ENHANCE_YOUR_CALM to RESOURCE_EXHAUSTED and
 * PROTOCOL_ERROR to INTERNAL). The stream is closed synchronously so grpc-js, which reads
 * the same data events after this listener, treats the call as cancelled.
 */
function refuse(stream: ServerHttp2Stream, code: number, details: string): void {
  if (stream.closed || stream.destroyed) return;
  let answered = false;
  if (!stream.headersSent) {
    try {
      stream.respond(
        { ":status": 200, "content-type": "application/grpc", "grpc-status": String(code), "grpc-message": encodeURIComponent(details) },
        { endStream: true },
      );
      answered = true;
    } catch {
      // The session went away meanwhile; the reset below is all that is left.
    }
  }
  // After a trailers-only answer, RST_STREAM NO_ERROR ("Early Server Closure" in gRPC's
  // PROTOCOL-HTTP2.md) stops the client sending the rest of its message.
  stream.close(answered ? http2.NGHTTP2_NO_ERROR : code === 8 ? http2.NGHTTP2_ENHANCE_YOUR_CALM : http2.NGHTTP2_PROTOCOL_ERROR);
}

interface Connection {
  socket: Socket;
  /** Once HTTP/2 took the socket over, closing it goes through the session. */
  session: Http2Session | undefined;
  timer: NodeJS.Timeout | undefined;
}

function drop(entry: Connection): void {
  if (entry.session && !entry.session.destroyed) entry.session.destroy();
  entry.socket.destroy();
}

function keyOf(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}
