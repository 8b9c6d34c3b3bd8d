import { status } from "@grpc/grpc-js";
import { type Consumer, type ConsumerEndReason, type ConsumerSink, InvalidArgumentError, type Lease, type SubscriptionRegistry } from "../../core/index.js";
import { encodeFrames, type EncodedMessages } from "./consume-codec.js";
import { OPEN_ACCESS, type Access } from "../access.js";
import type { DirectCall, DirectCallListener, DirectHandler } from "../h2-call.js";
import type { Logger } from "../logger.js";
import { NO_METRICS, type BrokerObserver } from "../metrics.js";
import { statusError, toStatus } from "../status.js";
import { type OutboundBudget, type OutboundOwner, StreamOutbound } from "../outbound.js";
import { decodeConsumeRequest, type DecodedConsume } from "./request-codec.js";
import { flowLimitsFromWire } from "./v2-wire.js";

/** Outbound memory of Consume streams (docs/limits.md, "Outbound memory"). */
export interface ConsumeOutboundOptions {
  budget: OutboundBudget;
  /** Bytes one stream may have written and unread before no more is written to it; 0 = no own cap. */
  streamCapBytes: number;
  /** A stream not writable and with no write completing for this long is cut off; 0 = never. */
  stuckTimeoutMs: number;
  /** After the cut-off status, reset the stream if it is still open this much later. */
  resetGraceMs: number;
}

/** The Consume stream as the handler sees it: ConsumeRequest bytes in (decoded here), framed ConsumeResponse messages out (served on HTTP/2 directly, h2-call.ts). */
export type ConsumeCall = DirectCall;

/** What every Consume stream of one broker shares. */
interface ConsumeContext {
  readonly registry: SubscriptionRegistry;
  readonly log: Logger;
  /** Live streams, so shutdown can end even those that never sent `start`. */
  readonly open: Set<ConsumeStream>;
  readonly maxFrameBytes: number;
  readonly shared: EncodedMessages;
  readonly outbound: ConsumeOutboundOptions;
  readonly access: Access;
  readonly observer: BrokerObserver;
}

/**
 * Consume: the first frame must carry `start` (else INVALID_ARGUMENT); the stream then
 * becomes one consumer of the subscription. Later frames carry acks, nacks and extensions.
 * A frame that is not a ConsumeRequest ends the stream with INVALID_ARGUMENT.
 * When the client goes away (cancel, half-close, error) its leases are redelivered.
 * `open` tracks live streams so shutdown can end even those that never sent `start`
 * (`shutdown()` on each).
 */
export function consumeHandler(
  registry: SubscriptionRegistry,
  log: Logger,
  open: Set<ConsumeStream>,
  maxFrameBytes: number,
  shared: EncodedMessages,
  outbound: ConsumeOutboundOptions,
  access: Access = OPEN_ACCESS,
  observer: BrokerObserver = NO_METRICS,
): DirectHandler {
  const context: ConsumeContext = { registry, log, open, maxFrameBytes, shared, outbound, access, observer };
  return (call) => new ConsumeStream(call, context);
}

/**
 * One Consume stream: what the call hears (DirectCallListener), what the consumer writes to
 * (ConsumerSink) and what its outbound bytes wake (OutboundOwner), in one object with no
 * closures of its own, since a broker may hold 100,000 of them.
 */
export class ConsumeStream implements DirectCallListener, ConsumerSink, OutboundOwner {
  private consumer: Consumer | undefined;
  private finished = false;
  private stuckTimer: NodeJS.Timeout | undefined;
  private stuckSeen = 0;
  private readonly out: StreamOutbound;

  constructor(
    private readonly call: ConsumeCall,
    private readonly context: ConsumeContext,
  ) {
    this.out = new StreamOutbound(call, context.outbound.budget, context.outbound.streamCapBytes, this);
    context.open.add(this);
  }

  // ---- ConsumerSink: the consumer's deliveries

  send(batch: Lease[]): boolean {
    if (this.finished) return true;
    const { registry, shared, maxFrameBytes, observer } = this.context;
    // The leases are taken already, so every frame is written; the return value only
    // stops the next pump until the stream is under its cap and the budget has room.
    // Bodies are worth sharing only when other subscriptions get the same messages.
    const consumer = this.consumer;
    const fanOut = consumer !== undefined && registry.topicSubscriptionCount(consumer.parent.name) > 1;
    if (batch.length > 0) observer.delivered(batch[0]!.message.publishTimeMs);
    for (const frame of encodeFrames(batch, maxFrameBytes, fanOut ? shared : undefined, true)) this.out.write(frame);
    if (this.out.writable) return true;
    this.out.waitWritable();
    this.watchStuck();
    return false;
  }

  room(): number {
    const room = this.out.roomBytes;
    if (room <= 0 && !this.finished) {
      this.out.waitWritable();
      if (this.out.pendingBytes > 0) this.watchStuck();
    }
    return room;
  }

  end(reason: ConsumerEndReason): void {
    if (this.finished) return;
    this.finished = true;
    this.context.open.delete(this);
    if (this.call.cancelled || this.call.writableEnded) return;
    this.call.endWithStatus(endStatus(reason, this.consumer?.parent.name ?? ""));
  }

  // ---- OutboundOwner

  onWritable(): void {
    this.clearStuck();
    this.consumer?.resume();
  }

  // ---- DirectCallListener: what the client sends

  message(frame: Buffer): void {
    if (this.finished) return;
    try {
      const request = decodeConsume(frame);
      const consumer = this.consumer;
      if (!consumer) {
        this.attach(request);
        return;
      }
      if (request.start) throw new InvalidArgumentError("start", "may only be sent in the first ConsumeRequest");
      consumer.handle(request.commands);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Half-close: the client will send no more acks; end cleanly and redeliver what it held. */
  halfClosed(): void {
    if (this.finished) return;
    this.finished = true;
    this.release();
    if (!this.call.cancelled && !this.call.writableEnded) this.call.end();
  }

  cancelled(): void {
    this.finished = true;
    this.release();
  }

  closed(): void {
    this.release();
  }

  /** Shutdown: the stream ends with UNAVAILABLE. */
  shutdown(): void {
    this.fail(statusError(status.UNAVAILABLE, "the broker is shutting down"));
  }

  private attach(request: DecodedConsume): void {
    const { registry, access, log } = this.context;
    const start = request.start;
    if (!start) throw new InvalidArgumentError("start", "the first ConsumeRequest must carry start (subscription and flow-control limits)");
    if (start.subscription === "") throw new InvalidArgumentError("start.subscription", "is empty");
    access.require(this.call.metadata, "consume", registry.get(start.subscription).topic);
    const limits = flowLimitsFromWire(start);
    const consumer = registry.attach(start.subscription, limits, this, start.consumerName);
    this.consumer = consumer;
    log.debug("v2 consumer attached", { subscription: start.subscription, consumer: start.consumerName, ...limits });
    if (request.acksOrNacks) consumer.handle(request.commands);
  }

  /**
   * Not writable while this stream's own bytes do not move: past the timeout the consumer is
   * cut off and its leases go back to the subscription. Waiting only on the shared budget
   * (nothing of its own pending) is not being stuck.
   */
  private watchStuck(): void {
    const timeoutMs = this.context.outbound.stuckTimeoutMs;
    if (this.stuckTimer || timeoutMs <= 0) return;
    this.stuckSeen = this.out.completed;
    this.stuckTimer = setTimeout(() => this.checkStuck(), timeoutMs);
    this.stuckTimer.unref();
  }

  private checkStuck(): void {
    this.stuckTimer = undefined;
    if (this.finished || this.out.writable) return;
    if (this.out.completed !== this.stuckSeen || this.out.pendingBytes === 0) return this.watchStuck();
    this.cutOff();
  }

  private clearStuck(): void {
    if (this.stuckTimer) clearTimeout(this.stuckTimer);
    this.stuckTimer = undefined;
  }

  private cutOff(): void {
    if (this.finished) return;
    this.finished = true;
    const { outbound, log } = this.context;
    const pending = this.out.pendingBytes;
    this.release();
    const details =
      `slow consumer: ${pending} bytes written to this Consume stream were not read for ${outbound.stuckTimeoutMs} ms ` +
      `(consumer-stuck-timeout-ms; stream-outbound-bytes ${outbound.streamCapBytes}, outbound-budget-bytes ${outbound.budget.budgetBytes}); ` +
      `the stream was ended and its unacked messages go to other consumers`;
    log.warn("v2 consumer cut off", { subscription: this.consumer?.parent.name, consumer: this.consumer?.name, pendingBytes: pending });
    if (!this.call.cancelled && !this.call.writableEnded) this.call.cutOff(statusError(status.RESOURCE_EXHAUSTED, details), outbound.resetGraceMs);
  }

  private release(): void {
    this.clearStuck();
    this.out.close();
    this.context.open.delete(this);
    const consumer = this.consumer;
    if (consumer && !consumer.isClosed) {
      this.context.log.debug("v2 consumer left", { subscription: consumer.parent.name, consumer: consumer.name, unacked: consumer.leases.size });
      consumer.close();
    }
  }

  private fail(err: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.release();
    if (!this.call.cancelled && !this.call.writableEnded) this.call.endWithStatus(toStatus(err, this.context.log));
  }
}

function decodeConsume(frame: Buffer): DecodedConsume {
  try {
    return decodeConsumeRequest(frame);
  } catch (err) {
    throw new InvalidArgumentError("ConsumeRequest", `malformed frame: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function endStatus(reason: ConsumerEndReason, subscription: string) {
  switch (reason) {
    case "shutdown":
      return statusError(status.UNAVAILABLE, "the broker is shutting down");
    case "subscription_deleted":
      return statusError(status.NOT_FOUND, `subscription ${JSON.stringify(subscription)} was deleted`);
    case "topic_deleted":
      return statusError(status.NOT_FOUND, `the topic of subscription ${JSON.stringify(subscription)} was deleted`);
  }
}
