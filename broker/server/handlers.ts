import type {
  handleBidiStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  sendUnaryData,
  ServerDuplexStream,
  ServerUnaryCall,
  ServerWritableStream,
} from "@grpc/grpc-js";
import type { Logger } from "./logger.js";
import { toStatus } from "./status.js";

// grpc-js ignores the promises handlers return. Every handler is wrapped once here, so a
// rejection becomes a status and nothing escapes as an unhandled rejection. A stream ends
// with a status through emit("error"): grpc-js then flushes queued writes and sends it
// (destroy() would skip the status).

export function unary<Req, Res>(log: Logger, fn: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res> | Res): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    let result: Promise<Res>;
    try {
      result = Promise.resolve(fn(call.request, call));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (res) => callback(null, res),
      (err: unknown) => callback(toStatus(err, log)),
    );
  };
}

/** Server stream: `fn` runs the stream; a throw or rejection ends it with the mapped status. */
export function serverStream<Req, Res>(log: Logger, fn: (call: ServerWritableStream<Req, Res>) => Promise<void> | void): handleServerStreamingCall<Req, Res> {
  return (call) => {
    Promise.resolve()
      .then(() => fn(call))
      .catch((err: unknown) => {
        if (!call.cancelled && !call.writableEnded) call.emit("error", toStatus(err, log));
      });
  };
}

/** Bidi stream: same contract as serverStream. */
export function bidiStream<Req, Res>(log: Logger, fn: (call: ServerDuplexStream<Req, Res>) => Promise<void> | void): handleBidiStreamingCall<Req, Res> {
  return (call) => {
    Promise.resolve()
      .then(() => fn(call))
      .catch((err: unknown) => {
        if (!call.cancelled && !call.writableEnded) call.emit("error", toStatus(err, log));
      });
  };
}
