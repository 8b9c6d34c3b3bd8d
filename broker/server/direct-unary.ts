/**
 * A unary method served on its HTTP/2 stream directly (docs/design.md, "Streams served on HTTP/2
 * directly"), for the methods called once per message: v1 Publish and PublishBatch. grpc-js's
 * server call costs a unary call an intercepting call, a Duplex with both stream states, a
 * metadata object and a chain of closures; at 5,000 calls/s those were most of what the broker
 * spent per v1 message (docs/performance.md, "The v1 unary path served directly").
 *
 * What it does as grpc-js's unary handling does: exactly one request message (a second one, or
 * none before the half-close, ends the call with UNIMPLEMENTED, grpc-js's words), a request that
 * does not decode is INTERNAL, the handler's result goes out as one message and status OK, a
 * throw or rejection as the status `toStatus` maps it to. A call cancelled before its answer is
 * ready gets nothing written.
 */
import { status, type Metadata } from "@grpc/grpc-js";
import { GRPC_PREFIX_BYTES, type DirectCall, type DirectCallListener, type DirectHandler } from "./h2-call.js";
import type { Logger } from "./logger.js";
import { statusError, toStatus } from "./status.js";

/** The parts of a generated method definition a unary call needs. */
export interface UnaryMethod<Req, Res> {
  readonly path: string;
  readonly requestDeserialize: (bytes: Buffer) => Req;
  readonly responseSerialize: (value: Res) => Buffer;
}

/** What a directly served unary handler sees of its call. */
export interface UnaryCallInfo {
  readonly metadata: Metadata;
}

export type UnaryFn<Req, Res> = (request: Req, call: UnaryCallInfo) => Promise<Res> | Res;

/** `fn` served as `method` on HTTP/2 directly (pass the result to serveDirect by `method.path`). */
export function directUnary<Req, Res>(log: Logger, method: UnaryMethod<Req, Res>, fn: UnaryFn<Req, Res>): DirectHandler {
  return (call) => new UnaryCall(call, log, method, fn);
}

/** A gRPC message with its 5-byte prefix (uncompressed). */
function frameMessage(body: Buffer): Buffer {
  const framed = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + body.length);
  framed[0] = 0;
  framed.writeUInt32BE(body.length, 1);
  body.copy(framed, GRPC_PREFIX_BYTES);
  return framed;
}

const ignoreWritten = (): void => {};

class UnaryCall<Req, Res> implements DirectCallListener {
  private request: Buffer | undefined;

  constructor(
    private readonly call: DirectCall,
    private readonly log: Logger,
    private readonly method: UnaryMethod<Req, Res>,
    private readonly fn: UnaryFn<Req, Res>,
  ) {}

  message(message: Buffer): void {
    if (this.request !== undefined) {
      this.call.endWithStatus(statusError(status.UNIMPLEMENTED, `Received a second request message for server streaming method ${this.method.path}`));
      return;
    }
    this.request = message;
  }

  halfClosed(): void {
    const call = this.call;
    if (call.writableEnded || call.cancelled) return;
    const bytes = this.request;
    if (bytes === undefined) {
      call.endWithStatus(statusError(status.UNIMPLEMENTED, `Received no request message for server streaming method ${this.method.path}`));
      return;
    }
    let request: Req;
    try {
      request = this.method.requestDeserialize(bytes);
    } catch {
      call.endWithStatus(statusError(status.INTERNAL, "Error deserializing request"));
      return;
    }
    let result: Promise<Res>;
    try {
      result = Promise.resolve(this.fn(request, call));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (response) => this.answer(response),
      (err: unknown) => {
        if (!call.writableEnded && !call.cancelled) call.endWithStatus(toStatus(err, this.log));
      },
    );
  }

  private answer(response: Res): void {
    const call = this.call;
    if (call.writableEnded || call.cancelled) return;
    let framed: Buffer;
    try {
      framed = frameMessage(this.method.responseSerialize(response));
    } catch (err) {
      call.endWithStatus(toStatus(err, this.log));
      return;
    }
    call.write(framed, ignoreWritten);
    call.end();
  }

  cancelled(): void {}

  closed(): void {}
}
