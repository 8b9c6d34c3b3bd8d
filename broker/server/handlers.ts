import type {
  handleBidiStreamingCall,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  sendUnaryData,
  ServerDuplexStream,
  ServerUnaryCall,
  ServerWritableStream,
} from "@grpc/grpc-js";
import type { Logger } from "./logger.js";
import { toStatus } from "./status.js";

/** The handler grpc-js calls for one method of a service definition, typed by what its (de)serializers produce. */
export type HandlerFor<M> = M extends {
  requestStream: infer ClientStreams;
  responseStream: infer ServerStreams;
  requestDeserialize: (bytes: Buffer) => infer Req;
  responseSerialize: (value: infer Res) => Buffer;
}
  ? ClientStreams extends true
    ? ServerStreams extends true
      ? handleBidiStreamingCall<Req, Res> & StreamTypes<Req, Res>
      : handleClientStreamingCall<Req, Res> & StreamTypes<Req, Res>
    : ServerStreams extends true
      ? handleServerStreamingCall<Req, Res> & StreamTypes<Req, Res>
      : handleUnaryCall<Req, Res>
  : never;

/**
 * grpc-js types a stream's messages as `any & T`, so a stream handler for the wrong message
 * types would still be accepted. The stream wrappers below carry their types in this phantom
 * (never set at runtime) and ServedHandlers compares it invariantly.
 */
export interface StreamTypes<Req, Res> {
  readonly streamTypes?: (request: Req, response: Res) => [Req, Res];
}

/**
 * The handler table a served definition needs: one handler per method, each typed by the
 * definition's (de)serializers. For a definition spread from the generated one, this is the
 * generated `...Server` interface with the pass-through methods' Buffers in place of messages;
 * a table checked with `satisfies ServedHandlers<typeof definition>` fails to compile when a
 * handler is missing, misnamed, or reads a request field the proto does not have.
 */
export type ServedHandlers<Definition> = { [K in keyof Definition]: HandlerFor<Definition[K]> };

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
export function serverStream<Req, Res>(log: Logger, fn: (call: ServerWritableStream<Req, Res>) => Promise<void> | void): handleServerStreamingCall<Req, Res> & StreamTypes<Req, Res> {
  return (call) => {
    Promise.resolve()
      .then(() => fn(call))
      .catch((err: unknown) => {
        if (!call.cancelled && !call.writableEnded) call.emit("error", toStatus(err, log));
      });
  };
}

/** Bidi stream: same contract as serverStream. */
export function bidiStream<Req, Res>(log: Logger, fn: (call: ServerDuplexStream<Req, Res>) => Promise<void> | void): handleBidiStreamingCall<Req, Res> & StreamTypes<Req, Res> {
  return (call) => {
    Promise.resolve()
      .then(() => fn(call))
      .catch((err: unknown) => {
        if (!call.cancelled && !call.writableEnded) call.emit("error", toStatus(err, log));
      });
  };
}
