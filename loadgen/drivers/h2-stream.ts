/**
 * A gRPC call's HTTP/2 stream on the generator's own connection (h2-connection.ts; docs/loadgen.md,
 * "The unary client" and "The Consume client"): the state the connection keeps for it, what a
 * subclass (a unary call, h2-unary.ts; a Consume stream, h2-consume.ts) does with the peer's bytes
 * and ends, and the request header block.
 */
import type { CallStatus, GrpcStatusError, H2SessionOptions } from "./h2-grpc.js";
import { encodeHeaderBlock } from "./hpack.js";

/** What a stream asks of its connection. */
export interface StreamConnection {
  /** The stream queued request bytes or its END_STREAM: they go out as the windows allow. */
  send(stream: H2Stream): void;
  /** Ends the stream from this side now: what it has not sent is dropped, END_STREAM goes out. */
  endNow(stream: H2Stream): void;
  /** Resets the stream (RST_STREAM `code`); no callback follows. */
  reset(stream: H2Stream, code: number): void;
  /** A paused stream reads again: its window is opened by what it took meanwhile. */
  resumed(stream: H2Stream): void;
}

/**
 * The send queue of a stream with nothing queued, shared and frozen (a push onto it throws): an
 * empty array of its own per stream, with room for 17, was 14 MB of the generator's heap at
 * 100,000 Consume streams, which its collector marked at every full collection.
 */
export const NO_OUT: Buffer[] = Object.freeze([]) as unknown as Buffer[];

/**
 * One gRPC call's HTTP/2 stream as its connection drives it: the request bytes queued for
 * sending, the windows both ways, the status the headers carried. A subclass reads the DATA and
 * decides what the peer's END_STREAM and an abort mean for its caller.
 */
export abstract class H2Stream implements CallStatus {
  /** 0 until the connection opened the stream. */
  id = 0;
  conn: StreamConnection | undefined;
  sendWindow = 0;
  /** Receive bytes taken on this stream since its window was last opened. */
  unacked = 0;
  status: number | undefined = undefined;
  details = "";
  /** Request bytes not yet sent, in order; the first is sent up to `outSent`. NO_OUT when none (`queue` adds). */
  out: Buffer[] = NO_OUT;
  outSent = 0;
  /** END_STREAM follows the queued bytes. */
  endQueued = false;
  localEnded = false;
  remoteEnded = false;
  /** No longer the connection's (both sides ended, reset, or the connection closed). */
  released = false;
  /** A paused stream's window is not opened again until it reads (flow control pushes back on the peer). */
  paused = false;
  /** In its connection's send queue. */
  queued = false;

  constructor(readonly block: Buffer) {}

  /** Queues request bytes to send. */
  queue(bytes: Buffer): void {
    if (this.out === NO_OUT) this.out = [bytes];
    else this.out.push(bytes);
  }

  /** DATA bytes (padding removed), valid only during the call. */
  abstract onBytes(data: Buffer): void;
  /** The peer's END_STREAM: `status` holds what its headers and trailers said. */
  abstract onRemoteEnd(): void;
  /** The stream ended without the peer's END_STREAM: it was reset, refused by GOAWAY, or its connection closed. */
  abstract onAbort(err: GrpcStatusError): void;
}

/** A request header block for `path` (`/package.Service/Method`): constant, as the encoder keeps no table. */
export function requestBlock(o: H2SessionOptions, path: string): Buffer {
  const tls = o.tls;
  return encodeHeaderBlock([
    [":method", "POST"],
    [":scheme", tls ? "https" : "http"],
    [":path", path],
    [":authority", tls?.serverName ?? o.target],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...(o.token !== undefined ? [["authorization", `Bearer ${o.token}`, "never-indexed"] as const] : []),
  ]);
}
