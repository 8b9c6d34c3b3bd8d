/**
 * Unary gRPC calls on the generator's own HTTP/2 connections (h2-connection.ts; docs/loadgen.md,
 * "The unary client"): the v1 driver's PublishBatch and the v2 driver's CreateSubscription. At
 * 5,000 calls/s a node:http2 stream per call made the generator pause: Node 20's per-request
 * AsyncResource wrappers promoted ~5.5 KB per call to the old space (a 25 ms Mark-Compact every
 * 4 s), and without them each dead stream's native handles cost a 200 ms collection later
 * (docs/performance.md, "Latency at 5,000 msg/s after the lease steps"). Here a call is a
 * promise, an object and its buffers.
 */
import { status as Status } from "@grpc/grpc-js";
import { H2Pool } from "./h2-connection.js";
import { CANCEL } from "./h2-frames.js";
import { GRPC_PREFIX as PREFIX, grpcFramed, GrpcStatusError, prefixProblem, type H2SessionOptions } from "./h2-grpc.js";
import { H2Stream, requestBlock } from "./h2-stream.js";

/** gRPC status OK, as the number a call reads off its trailers. */
const OK: number = Status.OK;

/** One unary call: its request (framed, sent half-closed), the answer as it comes. */
class UnaryCall extends H2Stream {
  answer: Buffer[] = [];
  answerBytes = 0;
  /** Prefix + length of the response message, once its prefix is in; 0 before. */
  expect = 0;
  private settled = false;

  constructor(
    block: Buffer,
    body: Buffer,
    private readonly maxMessageBytes: number,
    private readonly resolve: (answer: Buffer) => void,
    private readonly reject: (err: Error) => void,
  ) {
    super(block);
    this.queue(body);
    this.endQueued = true;
  }

  onBytes(data: Buffer): void {
    if (this.answerBytes < PREFIX && this.answerBytes + data.length >= PREFIX) {
      const head = this.answerBytes === 0 ? data : Buffer.concat([...this.answer, data]);
      const problem = prefixProblem(head, 0, this.maxMessageBytes);
      if (problem) return this.cancel(problem);
      this.expect = PREFIX + head.readUInt32BE(1);
    }
    // Copied: the bytes are the socket chunk's, valid only during this call.
    this.answer.push(Buffer.from(data));
    this.answerBytes += data.length;
    if (this.expect > 0 && this.answerBytes > this.expect) this.cancel(new GrpcStatusError(Status.INTERNAL, "more than one response message on a unary call"));
  }

  onRemoteEnd(): void {
    // It answered before taking the whole request: the rest is not sent, and this side's half is reset.
    if (!this.localEnded) this.conn!.reset(this, CANCEL);
    if (this.status === undefined) return this.settle(new GrpcStatusError(Status.UNKNOWN, "the broker ended the stream without a status"));
    if (this.status !== OK) return this.settle(new GrpcStatusError(this.status, this.details));
    if (this.answerBytes === 0) return this.settle(new GrpcStatusError(Status.UNIMPLEMENTED, "the broker answered OK without a response message"));
    if (this.answerBytes !== this.expect) return this.settle(new GrpcStatusError(Status.INTERNAL, `the response message is cut short (${this.answerBytes} bytes)`));
    const whole = this.answer.length === 1 ? this.answer[0]! : Buffer.concat(this.answer, this.answerBytes);
    this.settle(whole.subarray(PREFIX));
  }

  onAbort(err: GrpcStatusError): void {
    this.settle(err);
  }

  /** Ends the call from this side (RST_STREAM CANCEL) with a status of its own. */
  private cancel(err: GrpcStatusError): void {
    this.conn!.reset(this, CANCEL);
    this.settle(err);
  }

  private settle(outcome: Buffer | Error): void {
    if (this.settled) return;
    this.settled = true;
    this.answer = [];
    if (outcome instanceof Error) this.reject(outcome);
    else this.resolve(outcome);
  }
}

/** `connections` HTTP/2 connections for unary calls, one per slot, each opened again after it closed. */
export class H2UnaryClient {
  private readonly pool: H2Pool;
  private readonly blocks = new Map<string, Buffer>();

  constructor(
    private readonly o: H2SessionOptions,
    size: number,
  ) {
    this.pool = new H2Pool(o, size);
  }

  /**
   * One unary call to `path` (`/package.Service/Method`) on connection `slot` (modulo the pool):
   * resolves with the response message, rejects with a GrpcStatusError (UNAVAILABLE when the
   * connection closed).
   */
  unary(slot: number, path: string, request: Uint8Array): Promise<Buffer> {
    if (this.pool.isClosed) return Promise.reject(new GrpcStatusError(Status.CANCELLED, "the driver is closed"));
    const body = grpcFramed(request);
    let block = this.blocks.get(path);
    if (!block) {
      block = requestBlock(this.o, path);
      this.blocks.set(path, block);
    }
    const b = block;
    return new Promise((resolve, reject) => this.pool.open(slot, new UnaryCall(b, body, this.o.maxMessageBytes, resolve, reject)));
  }

  /** Ends every connection; calls still open fail with UNAVAILABLE. */
  close(): void {
    this.pool.close();
  }
}
