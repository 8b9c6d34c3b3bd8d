// Hand-made gRPC-over-HTTP/2 requests (node:http2, no gRPC library), for sending what a real
// client never would: unframed bytes, truncated frames, lying length prefixes, bad flags.
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from "node:http2";
import { Socket } from "node:net";

/** A deterministic PRNG (mulberry32), so a failing case can be replayed from its seed. */
export function prng(seed: number): { next(): number; bytes(n: number): Buffer; int(max: number): number } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (max) => Math.floor(next() * max),
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
  };
}

/** One length-prefixed gRPC message frame: flag byte, 4-byte big-endian length, body. */
export function frame(body: Buffer, options: { compressed?: boolean; declaredLength?: number } = {}): Buffer {
  const header = Buffer.alloc(5);
  header[0] = options.compressed ? 1 : 0;
  header.writeUInt32BE(options.declaredLength ?? body.length, 1);
  return Buffer.concat([header, body]);
}

export interface RawOutcome {
  /** HTTP :status of the response headers (0 if none came). */
  httpStatus: number;
  /** grpc-status from the headers (trailers-only response) or the trailers; undefined if none. */
  grpcStatus: number | undefined;
  grpcMessage: string;
  /** How the stream ended: a normal close, a reset from the server, or our own deadline. */
  end: "closed" | "reset" | "timeout";
  /** The response's DATA bytes as received (gRPC-framed messages). */
  body: Buffer;
}

export function http2Session(address: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://${address}`);
    session.once("connect", () => resolve(session));
    session.once("error", reject);
  });
}

/** HTTP/2 sessions a test opens, destroyed together (call `destroyAll` in its afterEach). */
export class RawSessions {
  private readonly open: ClientHttp2Session[] = [];

  async connect(address: string): Promise<ClientHttp2Session> {
    const session = await http2Session(address);
    this.open.push(session);
    return session;
  }

  destroyAll(): void {
    for (const session of this.open.splice(0)) session.destroy();
  }
}

/**
 * Sends `body` (exactly these bytes) as one request to `path` and ends the request stream.
 * Resolves when the server has answered and closed the stream, or after `timeoutMs`.
 */
export function rawCall(
  session: ClientHttp2Session,
  path: string,
  body: Buffer,
  options: { timeoutMs?: number; headers?: Record<string, string>; endStream?: boolean } = {},
): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const outcome: RawOutcome = { httpStatus: 0, grpcStatus: undefined, grpcMessage: "", end: "closed", body: Buffer.alloc(0) };
    const take = (h: IncomingHttpHeaders): void => {
      if (h[":status"] !== undefined) outcome.httpStatus = Number(h[":status"]);
      if (h["grpc-status"] !== undefined) outcome.grpcStatus = Number(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) outcome.grpcMessage = decodeURIComponent(String(h["grpc-message"]));
    };
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...options.headers,
    });
    const timer = setTimeout(() => {
      outcome.end = "timeout";
      req.close(constants.NGHTTP2_CANCEL);
    }, options.timeoutMs ?? 5_000);
    req.on("response", take);
    req.on("trailers", take);
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("error", () => {
      if (outcome.end !== "timeout") outcome.end = "reset";
    });
    req.on("close", () => {
      clearTimeout(timer);
      outcome.body = Buffer.concat(chunks);
      if (outcome.end === "closed" && req.rstCode !== undefined && req.rstCode !== constants.NGHTTP2_NO_ERROR && outcome.grpcStatus === undefined) outcome.end = "reset";
      resolve(outcome);
    });
    if (options.endStream === false) req.write(body);
    else req.end(body);
  });
}

/**
 * Writes `bytes` on a plain TCP connection and reports how the server treated it: "closed" when
 * it closed the connection within `timeoutMs`, "goaway" when it answered with an HTTP/2 GOAWAY
 * frame but left closing to the client, "open" when it did neither.
 */
export function rawTcp(port: number, bytes: Buffer, timeoutMs = 5_000): Promise<"closed" | "goaway" | "open"> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let received = Buffer.alloc(0);
    let settled = false;
    const settle = (how: "closed" | "goaway" | "open"): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(how);
    };
    const timer = setTimeout(() => settle(hasGoaway(received) ? "goaway" : "open"), timeoutMs);
    socket.on("data", (d: Buffer) => {
      received = Buffer.concat([received, d]);
      if (hasGoaway(received)) settle("goaway");
    });
    socket.on("error", () => undefined);
    socket.on("close", () => settle("closed"));
    socket.connect(port, "127.0.0.1", () => socket.write(bytes));
  });
}

/** Whether these server-to-client HTTP/2 bytes hold a complete GOAWAY frame (type 7). */
function hasGoaway(bytes: Buffer): boolean {
  let i = 0;
  while (i + 9 <= bytes.length) {
    const length = bytes.readUIntBE(i, 3);
    if (bytes[i + 3] === 0x07 && i + 9 + length <= bytes.length) return true;
    i += 9 + length;
  }
  return false;
}
