/**
 * HTTP/2 (RFC 9113) as the generator's own HTTP/2 clients speak it (h2-connection.ts;
 * docs/loadgen.md, "The unary client" and "The Consume client"): the connection preface, frame
 * types, flags, error codes and the protocol's defaults and limits, and the error that ends a
 * connection.
 */
export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const FRAME_HEADER = 9;
/** Frame types (RFC 9113 §6). */
export const Type = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;
export const PADDED = 0x8;
export const PRIORITY_FLAG = 0x20;
/** Error codes (RFC 9113 §7). */
export const NO_ERROR = 0;
export const PROTOCOL_ERROR = 1;
export const FLOW_CONTROL_ERROR = 3;
export const FRAME_SIZE_ERROR = 6;
export const REFUSED_STREAM = 7;
export const CANCEL = 8;
export const COMPRESSION_ERROR = 9;
export const ENHANCE_YOUR_CALM = 11;
/** The defaults before the peer's SETTINGS arrive. */
export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME = 16_384;
export const MAX_WINDOW = 2 ** 31 - 1;
export const MAX_STREAM_ID = 2 ** 31 - 1;
/** A header block from the broker larger than this ends the connection: no answer of ours has one. */
export const MAX_HEADER_BLOCK_BYTES = 1 << 20;

/** A protocol violation by the broker: the connection ends with GOAWAY `code`. */
export class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
