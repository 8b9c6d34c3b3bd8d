import { status, type ServerDuplexStream } from "@grpc/grpc-js";
import { type Consumer, type ConsumerEndReason, type ConsumerSink, InvalidArgumentError, type Lease, type SubscriptionRegistry } from "../../core/index.js";
import { encodeFrames, type EncodedMessages } from "./consume-codec.js";
import { OPEN_ACCESS, type Access } from "../access.js";
import { bidiStream } from "../handlers.js";
import type { Logger } from "../logger.js";
import { NO_METRICS, type BrokerObserver } from "../metrics.js";
import { statusError, toStatus } from "../status.js";
import { type OutboundBudget, StreamOutbound } from "../outbound.js";
import { cutOffStream } from "../stream-cutoff.js";
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

/** The Consume stream as the handler sees it: ConsumeRequest bytes in (decoded here), pre-encoded ConsumeResponse frames out. */
export type ConsumeCall = ServerDuplexStream<Buffer, Buffer>;

/**
 * Consume: the first frame must carry `start` (else INVALID_ARGUMENT); the stream then
 * becomes one consumer of the subscription. Later frames carry acks, nacks and extensions.
 * A frame that is not a ConsumeRequest ends the stream with INVALID_ARGUMENT.
 * When the client goes away (cancel, half-close, error) its leases are redelivered.
 * `open` tracks live streams so shutdown can end even those that never sent `start`.
 */
export function consumeHandler(
  registry: SubscriptionRegistry,
  log: Logger,
  open: Set<() => void>,
  maxFrameBytes: number,
  shared: EncodedMessages,
  outbound: ConsumeOutboundOptions,
  access: Access = OPEN_ACCESS,
  observer: BrokerObserver = NO_METRICS,
) {
  return bidiStream<Buffer, Buffer>(log, (call: ConsumeCall) => {
    let consumer: Consumer | undefined;
    let finished = false;
    let stuckTimer: NodeJS.Timeout | undefined;
    const out = new StreamOutbound(call, outbound.budget, outbound.streamCapBytes, () => {
      if (stuckTimer) clearTimeout(stuckTimer);
      stuckTimer = undefined;
      consumer?.resume();
    });

    // Not writable while this stream's own bytes do not move: past the timeout the consumer
    // is cut off and its leases go back to the subscription. Waiting only on the shared
    // budget (nothing of its own pending) is not being stuck.
    const watchStuck = (): void => {
      if (stuckTimer || outbound.stuckTimeoutMs <= 0) return;
      const seen = out.completed;
      stuckTimer = setTimeout(() => {
        stuckTimer = undefined;
        if (finished || out.writable) return;
        if (out.completed !== seen || out.pendingBytes === 0) return watchStuck();
        cutOff();
      }, outbound.stuckTimeoutMs);
      stuckTimer.unref();
    };
    const cutOff = (): void => {
      if (finished) return;
      finished = true;
      const pending = out.pendingBytes;
      release();
      const details =
        `slow consumer: ${pending} bytes written to this Consume stream were not read for ${outbound.stuckTimeoutMs} ms ` +
        `(consumer-stuck-timeout-ms; stream-outbound-bytes ${outbound.streamCapBytes}, outbound-budget-bytes ${outbound.budget.budgetBytes}); ` +
        `the stream was ended and its unacked messages go to other consumers`;
      log.warn("v2 consumer cut off", { subscription: consumer?.parent.name, consumer: consumer?.name, pendingBytes: pending });
      if (!call.cancelled && !call.writableEnded) cutOffStream(call, details, outbound.resetGraceMs);
    };

    const release = (): void => {
      if (stuckTimer) clearTimeout(stuckTimer);
      stuckTimer = undefined;
      out.close();
      open.delete(shutdown);
      if (consumer && !consumer.isClosed) {
        log.debug("v2 consumer left", { subscription: consumer.parent.name, consumer: consumer.name, unacked: consumer.leases.size });
        consumer.close();
      }
    };
    const fail = (err: unknown): void => {
      if (finished) return;
      finished = true;
      release();
      if (!call.cancelled && !call.writableEnded) call.emit("error", toStatus(err, log));
    };
    function shutdown(): void {
      fail(statusError(status.UNAVAILABLE, "the broker is shutting down"));
    }
    open.add(shutdown);

    const sink: ConsumerSink = {
      send(batch: Lease[]): boolean {
        if (finished) return true;
        // The leases are taken already, so every frame is written; the return value only
        // stops the next pump until the stream is under its cap and the budget has room.
        // Bodies are worth sharing only when other subscriptions get the same messages.
        const fanOut = consumer !== undefined && registry.topicSubscriptionCount(consumer.parent.name) > 1;
        if (batch.length > 0) observer.delivered(batch[0]!.message.publishTimeMs);
        for (const frame of encodeFrames(batch, maxFrameBytes, fanOut ? shared : undefined)) out.write(frame);
        if (out.writable) return true;
        out.waitWritable();
        watchStuck();
        return false;
      },
      room(): number {
        const room = out.roomBytes;
        if (room <= 0 && !finished) {
          out.waitWritable();
          if (out.pendingBytes > 0) watchStuck();
        }
        return room;
      },
      end(reason: ConsumerEndReason): void {
        if (finished) return;
        finished = true;
        open.delete(shutdown);
        if (call.cancelled || call.writableEnded) return;
        call.emit("error", endStatus(reason, consumer?.parent.name ?? ""));
      },
    };

    call.on("data", (frame: Buffer) => {
      if (finished) return;
      try {
        const request = decodeConsume(frame);
        if (!consumer) {
          const start = request.start;
          if (!start) throw new InvalidArgumentError("start", "the first ConsumeRequest must carry start (subscription and flow-control limits)");
          if (start.subscription === "") throw new InvalidArgumentError("start.subscription", "is empty");
          access.require(call.metadata, "consume", registry.get(start.subscription).topic);
          const limits = flowLimitsFromWire(start);
          consumer = registry.attach(start.subscription, limits, sink, start.consumerName);
          log.debug("v2 consumer attached", { subscription: start.subscription, consumer: start.consumerName, ...limits });
          if (request.acksOrNacks) consumer.handle(request.commands);
          return;
        }
        if (request.start) throw new InvalidArgumentError("start", "may only be sent in the first ConsumeRequest");
        consumer.handle(request.commands);
      } catch (err) {
        fail(err);
      }
    });
    // Half-close: the client will send no more acks; end cleanly and redeliver what it held.
    call.on("end", () => {
      if (finished) return;
      finished = true;
      release();
      if (!call.cancelled && !call.writableEnded) call.end();
    });
    call.on("cancelled", () => {
      finished = true;
      release();
    });
    call.on("error", () => {
      finished = true;
      release();
    });
    call.on("close", release);
  });
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
