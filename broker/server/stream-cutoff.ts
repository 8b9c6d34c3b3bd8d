import { constants as http2 } from "node:http2";
import { Metadata, status } from "@grpc/grpc-js";
import { statusError } from "./status.js";

/** The parts of a grpc-js server stream a cut-off needs. */
export interface CuttableCall {
  destroy(): void;
  emit(event: "error", err: Error): boolean;
}

/**
 * Ends a stream whose client does not read with RESOURCE_EXHAUSTED `details`, without waiting
 * for the unread bytes ahead of the status. Ending through the Writable would first wait for
 * every queued write to reach the client; instead its buffer is dropped (destroy) and the status
 * goes straight to the underlying call. The status still queues behind data already handed to
 * HTTP/2; if the stream is open `resetGraceMs` later it is reset with ENHANCE_YOUR_CALM, which
 * clients report as RESOURCE_EXHAUSTED too, so a client that never reads cannot pin it.
 * Calls `onReset` when that reset happens.
 */
export function cutOffStream(call: CuttableCall, details: string, resetGraceMs: number, onReset?: () => void): NodeJS.Timeout | undefined {
  const inner = internals(call);
  if (!inner.sendStatus) {
    // Unknown grpc-js internals: fall back to the ordinary end (waits for queued writes).
    call.emit("error", statusError(status.RESOURCE_EXHAUSTED, details));
    return undefined;
  }
  call.destroy();
  inner.sendStatus({ code: status.RESOURCE_EXHAUSTED, details, metadata: new Metadata() });
  const stream = inner.stream;
  if (!stream || stream.closed) return undefined;
  const timer = setTimeout(() => {
    if (stream.closed || stream.destroyed) return;
    onReset?.();
    stream.close(http2.NGHTTP2_ENHANCE_YOUR_CALM);
  }, resetGraceMs);
  timer.unref();
  return timer;
}

interface UnderlyingCall {
  sendStatus?: (s: { code: status; details: string; metadata: Metadata }) => void;
  stream?: { closed: boolean; destroyed: boolean; close(code: number): void };
}

// grpc-js (1.14) keeps the transport call in `call.call` and, without interceptors, the HTTP/2
// stream in `call.call.stream`. Both are private; probe them instead of assuming.
function internals(call: CuttableCall): UnderlyingCall {
  const inner = (call as unknown as { call?: Record<string, unknown> }).call;
  if (!inner || typeof inner["sendStatus"] !== "function") return {};
  const sendStatus = (inner["sendStatus"] as NonNullable<UnderlyingCall["sendStatus"]>).bind(inner);
  const stream = inner["stream"] as UnderlyingCall["stream"] | undefined;
  const isStream = stream !== undefined && typeof stream.close === "function" && typeof stream.closed === "boolean";
  return { sendStatus, stream: isStream ? stream : undefined };
}
