import { constants as http2 } from "node:http2";
import { Metadata, status, type ServerWritableStream, type handleServerStreamingCall } from "@grpc/grpc-js";
import type { LiveEndReason, LiveSink, LiveSubscription, StoredMessage, TopicRegistry } from "../../core/index.js";
import type { SubscribeRequest } from "../../../proto/gen/ratatoskr.js";
import { OPEN_ACCESS, type Access } from "../access.js";
import { serverStream } from "../handlers.js";
import type { Logger } from "../logger.js";
import { statusError } from "../status.js";
import { encodeV1Message, isWellFormedRef, SUBSCRIPTION_REF_HEADER } from "./v1-wire.js";

type SubscribeCall = ServerWritableStream<SubscribeRequest, Buffer>;

export interface V1SubscribeOptions {
  /** Bytes queued for one subscriber (not yet handed to HTTP/2) before it is cut off. */
  bufferBytes: number;
  /**
   * After a cut-off the RESOURCE_EXHAUSTED status queues behind data the client has not read.
   * If the stream is still open after this long it is reset with ENHANCE_YOUR_CALM, which
   * clients report as RESOURCE_EXHAUSTED too, so a client that never reads cannot pin it.
   */
  resetGraceMs: number;
}

/** Live v1 subscriber streams, for statistics and tests of the memory bound. */
export class V1Subscribers {
  readonly active = new Set<V1StreamSink>();
  cutOffCount = 0;
  /** Cut-off streams reset because the client had not read their status within the grace. */
  resetCount = 0;
  /** Highest bytes ever queued for a single subscriber. */
  peakQueuedBytes = 0;

  /** Bytes currently queued over every live v1 subscriber. */
  queuedBytes(): number {
    let n = 0;
    for (const s of this.active) n += s.queuedBytes;
    return n;
  }
}

/**
 * One Subscribe stream as a core LiveSink. Fan-out calls `deliver` synchronously; it never
 * blocks: bytes go to the call while it accepts them, then into a local queue until 'drain'.
 * Everything accepted but not yet handed to HTTP/2 counts against `bufferBytes`; past it the
 * subscriber is cut off at once and its queue dropped.
 */
export class V1StreamSink implements LiveSink {
  queuedBytes = 0;
  // Waiting for 'drain'; `head` is the next to write (no Array.shift: the queue can hold
  // many thousands of small messages).
  private queue: (Buffer | undefined)[] = [];
  private head = 0;
  private blocked = false;
  private done = false;
  private subscription: LiveSubscription | undefined;
  private resetTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly call: SubscribeCall,
    private readonly registry: V1Subscribers,
    private readonly options: V1SubscribeOptions,
    private readonly log: Logger,
  ) {
    registry.active.add(this);
  }

  attach(subscription: LiveSubscription): void {
    this.subscription = subscription;
  }

  deliver(message: StoredMessage): void {
    if (this.done) return;
    const bytes = encodeV1Message(message);
    // At least one message is always accepted, so a message larger than the buffer still flows.
    if (this.queuedBytes > 0 && this.queuedBytes + bytes.length > this.options.bufferBytes) {
      this.cutOff();
      return;
    }
    this.queuedBytes += bytes.length;
    if (this.queuedBytes > this.registry.peakQueuedBytes) this.registry.peakQueuedBytes = this.queuedBytes;
    if (this.blocked) this.queue.push(bytes);
    else this.write(bytes);
  }

  /** The broker ended the subscription: send what is queued, then the status. */
  end(reason: LiveEndReason): void {
    if (this.done) return;
    this.log.debug("v1 subscription ended", { topic: this.call.request.topic, ref: this.subscription?.ref, reason });
    this.finish();
    for (let i = this.head; i < this.queue.length; i++) this.call.write(this.queue[i]!);
    this.dropQueue();
    if (reason === "unsubscribed") this.call.end();
    else if (reason === "topic_deleted") this.call.emit("error", statusError(status.NOT_FOUND, `topic ${JSON.stringify(this.call.request.topic)} was deleted`));
    else this.call.emit("error", statusError(status.UNAVAILABLE, "the broker is shutting down"));
  }

  /** The client went away (cancel, deadline, connection loss). */
  onCancelled(): void {
    if (this.subscription) this.subscription.cancel();
    this.finish();
    this.dropQueue();
    if (this.resetTimer) clearTimeout(this.resetTimer);
  }

  private write(bytes: Buffer): void {
    const ok = this.call.write(bytes, () => {
      if (!this.done) this.queuedBytes -= bytes.length;
    });
    if (!ok) {
      this.blocked = true;
      this.call.once("drain", this.onDrain);
    }
  }

  private readonly onDrain = (): void => {
    this.blocked = false;
    while (!this.done && !this.blocked && this.head < this.queue.length) {
      const bytes = this.queue[this.head]!;
      this.queue[this.head++] = undefined; // written: only the call holds it now
      this.write(bytes);
    }
    if (this.head === this.queue.length) this.dropQueue();
    else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  };

  private dropQueue(): void {
    this.queue = [];
    this.head = 0;
  }

  private finish(): void {
    this.done = true;
    this.queuedBytes = 0;
    this.registry.active.delete(this);
  }

  private cutOff(): void {
    const queued = this.queuedBytes;
    this.subscription?.cancel();
    this.finish();
    this.dropQueue();
    this.registry.cutOffCount++;
    const details =
      `slow consumer: more than ${this.options.bufferBytes} bytes were queued for this subscriber ` +
      `(${queued} pending); it was disconnected and later messages are not kept for it`;
    this.log.warn("v1 subscriber cut off", { topic: this.call.request.topic, ref: this.subscription?.ref, queuedBytes: queued });
    const inner = internals(this.call);
    if (!inner.sendStatus) {
      // Unknown grpc-js internals: fall back to the ordinary end (waits for queued writes).
      this.call.emit("error", statusError(status.RESOURCE_EXHAUSTED, details));
      return;
    }
    // Ending through the Writable would first wait for every queued write to reach the slow
    // client. Instead drop the Writable's buffer now (destroy) and send the status straight on
    // the underlying call: at most the one message already handed to HTTP/2 stays behind it.
    this.call.destroy();
    inner.sendStatus({ code: status.RESOURCE_EXHAUSTED, details, metadata: new Metadata() });
    const stream = inner.stream;
    if (stream && !stream.closed) {
      this.resetTimer = setTimeout(() => {
        if (stream.closed || stream.destroyed) return;
        this.registry.resetCount++;
        stream.close(http2.NGHTTP2_ENHANCE_YOUR_CALM);
      }, this.options.resetGraceMs);
      this.resetTimer.unref();
    }
  }
}

interface UnderlyingCall {
  sendStatus?: (s: { code: status; details: string; metadata: Metadata }) => void;
  stream?: { closed: boolean; destroyed: boolean; close(code: number): void };
}

// grpc-js (1.14) keeps the transport call in `call.call` and, without interceptors, the HTTP/2
// stream in `call.call.stream`. Both are private; probe them instead of assuming.
function internals(call: SubscribeCall): UnderlyingCall {
  const inner = (call as unknown as { call?: Record<string, unknown> }).call;
  if (!inner || typeof inner["sendStatus"] !== "function") return {};
  const sendStatus = (inner["sendStatus"] as NonNullable<UnderlyingCall["sendStatus"]>).bind(inner);
  const stream = inner["stream"] as UnderlyingCall["stream"] | undefined;
  const isStream = stream !== undefined && typeof stream.close === "function" && typeof stream.closed === "boolean";
  return { sendStatus, stream: isStream ? stream : undefined };
}

/** The v1 Subscribe handler: NOT_FOUND on a missing topic, the ref header at once, then messages. */
export function subscribeHandler(
  broker: TopicRegistry,
  registry: V1Subscribers,
  options: V1SubscribeOptions,
  log: Logger,
  access: Access = OPEN_ACCESS,
): handleServerStreamingCall<SubscribeRequest, Buffer> {
  return serverStream<SubscribeRequest, Buffer>(log, (call) => {
    const { topic, subscriberId } = call.request;
    access.require(call.metadata, "consume", topic);
    if (subscriberId !== "" && !isWellFormedRef(subscriberId)) {
      throw statusError(status.INVALID_ARGUMENT, "Invalid subscription reference: subscriber_id must be 1-255 characters without control characters");
    }
    if (call.cancelled) return;
    const sink = new V1StreamSink(call, registry, options, log);
    let subscription: LiveSubscription;
    try {
      subscription = broker.subscribeLive(topic, sink, subscriberId);
    } catch (err) {
      registry.active.delete(sink);
      throw err;
    }
    sink.attach(subscription);
    log.debug("v1 subscribed", { topic, ref: subscription.ref, subscriberId: subscription.subscriberId, peer: call.getPeer() });
    call.on("cancelled", () => {
      log.debug("v1 subscriber went away", { topic, ref: subscription.ref });
      sink.onCancelled();
    });
    const headers = new Metadata();
    headers.set(SUBSCRIPTION_REF_HEADER, subscription.ref);
    call.sendMetadata(headers);
  });
}
