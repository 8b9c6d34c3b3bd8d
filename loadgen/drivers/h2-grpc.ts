/**
 * gRPC over HTTP/2 as the generator's own HTTP/2 clients speak it (h2-connection.ts, h2-unary.ts,
 * h2-consume.ts; docs/loadgen.md, "The Consume client" and "The unary client"): the connection
 * settings a driver gives them, the receive windows, the 5-byte message prefix, and statuses read
 * as grpc-js reads them (an Error carrying `code` and `details`, so the drivers' retry rules read
 * both clients the same way).
 */
import type { Duplex } from "node:stream";
import { status as Status } from "@grpc/grpc-js";
import type { DriverOptions } from "./driver.js";
import { KEEPALIVE_MS, MAX_RECEIVE_MESSAGE_BYTES } from "./grpc-pool.js";
import { CANCEL, ENHANCE_YOUR_CALM, NO_ERROR, REFUSED_STREAM } from "./h2-frames.js";
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
  /** Messages larger than this fail the call with RESOURCE_EXHAUSTED (grpc-js's max_receive_message_length). */
  maxMessageBytes: number;
  /** Tests only: the connection's byte stream instead of a socket to `target` (h2-consume.test.ts feeds it cut anywhere). */
  socket?: (() => Duplex) | undefined;
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

/** The settings of a driver's own HTTP/2 connections: the channels' target, TLS and token, keepalive pings when it rides through faults. */
export function driverSessionOptions(options: DriverOptions, pool: { readonly tls: LoadedTls | undefined }): H2SessionOptions {
  return { target: options.target, tls: pool.tls, token: options.token, keepaliveMs: options.reconnect ? KEEPALIVE_MS : undefined, maxMessageBytes: MAX_RECEIVE_MESSAGE_BYTES };
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
    gone || rstCode === undefined || rstCode === REFUSED_STREAM || rstCode === NO_ERROR
      ? Status.UNAVAILABLE
      : rstCode === CANCEL
        ? Status.CANCELLED
        : rstCode === ENHANCE_YOUR_CALM
          ? Status.RESOURCE_EXHAUSTED
          : Status.INTERNAL;
  const why = gone ? "the connection to the broker closed" : `stream reset by the broker (RST_STREAM code ${rstCode})`;
  return new GrpcStatusError(code, details ? `${why}: ${details}` : why);
}

/** Length prefix of a gRPC message: compressed flag (1 byte) and length (4 bytes, big-endian). */
export const GRPC_PREFIX = 5;

/**
 * What is wrong with the gRPC message prefix at `buf[pos]` for a client that asked for no
 * compression and takes at most `maxBytes`: INTERNAL for a compressed message, RESOURCE_EXHAUSTED
 * for one over the limit (as grpc-js says them); undefined when it can be read.
 */
export function prefixProblem(buf: Buffer, pos: number, maxBytes: number): GrpcStatusError | undefined {
  if (buf[pos] !== 0) return new GrpcStatusError(Status.INTERNAL, "compressed message on a stream without grpc-encoding");
  const len = buf.readUInt32BE(pos + 1);
  if (len > maxBytes) return new GrpcStatusError(Status.RESOURCE_EXHAUSTED, `received message larger than max (${len} vs. ${maxBytes})`);
  return undefined;
}

/** `message` as a gRPC message on the wire: uncompressed, its length prefix, its bytes. */
export function grpcFramed(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(GRPC_PREFIX + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, GRPC_PREFIX);
  return framed;
}
