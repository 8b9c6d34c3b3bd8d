/**
 * One consumer of the ratatoskr driver (ratatoskr-v2.ts): its Consume stream, the acks it owes
 * the broker, and (reconnect on) opening the stream again after a break. One object per
 * consumer, with no closure of its own: at 100,000 consumers what each one holds is the
 * generator's heap, and the deliveries are read straight out of the frame into the sink and
 * the ack buffer, with no object made per delivery (docs/loadgen.md, "The Consume client").
 */
import * as grpc from "@grpc/grpc-js";
import { ConsumeRequest } from "../../proto/gen/ratatoskr/v2/broker.js";
import type { Consumer, DeliverySink, DriverOptions, SubscriptionSpec } from "./driver.js";
import { isStatus } from "./grpc-pool.js";
import type { ConsumeCall, ConsumeHandlers, H2ConsumeClient } from "./h2-consume.js";
import { Backoff, ReconnectGaveUpError, type ReconnectPolicy, type RetryCounts, type RetryTimers } from "./reconnect.js";
import { AckRequestBuilder, readConsumeResponse, type DeliveryVisitor } from "./wire.js";

/**
 * Acks of a consumer are sent together: at once when they reach half its flow-control window
 * (so the broker never waits on them), otherwise within ACK_LINGER_MS. At low rates every
 * delivery frame carries one message; an ack frame per delivery cost both processes more CPU
 * than the deliveries themselves.
 */
export const ACK_LINGER_MS = 2;
/** With reconnect on: a re-opened Consume stream that stayed up this long (or delivered) counts as reconnected. */
export const STREAM_STABLE_MS = 1000;
/** Statuses after which a publish or a Consume stream is tried again (reconnect on); others are final. */
const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.CANCELLED, grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.ABORTED, grpc.status.NOT_FOUND]);
export const retryable = (err: unknown): boolean => !(typeof err === "object" && err !== null && "code" in err) || RETRYABLE.has((err as grpc.ServiceError).code);

/** What every consumer of one driver shares. */
export interface ConsumerContext {
  readonly sessions: H2ConsumeClient;
  readonly options: Pick<DriverOptions, "maxOutstandingMessages" | "clock">;
  readonly reconnect: ReconnectPolicy | undefined;
  readonly timers: RetryTimers;
  readonly counts: RetryCounts;
  /** Acks owed that are sent at once: half the flow-control window (at least 1). */
  readonly ackFlushAt: number;
  /** The consumers not yet closed: the driver's close cancels their streams. */
  readonly open: Set<V2Consumer>;
  /** Create a topic and subscription again after a broker restart lost them. */
  recreate(spec: SubscriptionSpec): Promise<void>;
}

export class V2Consumer implements Consumer, ConsumeHandlers, DeliveryVisitor {
  private call: ConsumeCall | undefined;
  private closing = false;
  private reading = true;
  /** Acks owed on the current stream; a stream that ends takes its leases with it. */
  private readonly acks = new AckRequestBuilder();
  private ackTimer: NodeJS.Timeout | undefined;
  /** No delivery yet on the current stream. */
  private first = true;
  /** Reconnect on: the backoff across breaks, and whether the current stream is a re-open not yet confirmed. */
  private readonly backoff: Backoff | undefined;
  private reopened = false;
  private stableTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: ConsumerContext,
    private readonly spec: SubscriptionSpec,
    private readonly consumerIndex: number,
    private readonly sink: DeliverySink,
  ) {
    const policy = ctx.reconnect;
    if (policy) this.backoff = new Backoff(policy, () => ctx.options.clock.wallMs());
    ctx.open.add(this);
    this.openStream(false);
  }

  close(): void {
    this.closing = true;
    this.ctx.open.delete(this);
    this.clearStable();
    this.clearAcks();
    this.call?.cancel();
    this.call = undefined;
  }

  // A paused stream reads nothing: its HTTP/2 window fills, and the broker's outbound budget
  // then holds its deliveries.
  setReading(on: boolean): void {
    this.reading = on;
    if (on) this.call?.resume();
    else this.call?.pause();
  }

  /** ConsumeHandlers: one ConsumeResponse of the current stream. */
  onMessage(buf: Buffer, start: number, end: number): void {
    const n = readConsumeResponse(buf, start, end, this);
    if (n === 0 || this.call === undefined) return;
    if (this.first) {
      this.first = false;
      this.confirm();
    }
    if (this.acks.count >= this.ctx.ackFlushAt) this.flushAcks();
    else if (this.acks.count > 0) this.ackTimer ??= setTimeout(lingerElapsed, ACK_LINGER_MS, this);
  }

  /** DeliveryVisitor: one delivery of the message being read. */
  delivery(buf: Buffer, ackStart: number, ackEnd: number, attempt: number, payloadStart: number, payloadEnd: number): void {
    this.sink.onDelivery(this.spec.slot, buf, payloadStart, payloadEnd, attempt);
    // The sink may have closed this consumer (the run ended): nothing more is acked then.
    if (this.call !== undefined) this.acks.add(buf, ackStart, ackEnd);
  }

  /** ConsumeHandlers: the current stream ended other than by close (undefined: with OK). */
  onEnd(err: Error | undefined): void {
    this.call = undefined;
    this.clearAcks();
    if (this.closing) return;
    if (err === undefined) {
      // Without reconnect a clean end is what it always was (the run sees no more deliveries).
      if (this.ctx.reconnect) this.broke(Object.assign(new Error("Consume stream ended by the broker"), { code: grpc.status.UNAVAILABLE }));
      return;
    }
    if (!this.ctx.reconnect && (err as grpc.ServiceError).code === grpc.status.CANCELLED) return;
    this.broke(err);
  }

  flushAcks(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const framed = this.acks.take();
    if (framed && this.call && !this.closing) this.call.writeFramed(framed);
  }

  private openStream(isRetry: boolean): void {
    if (this.closing) return;
    this.reopened = isRetry;
    this.first = true;
    const start = Buffer.from(
      ConsumeRequest.encode({
        start: {
          subscription: this.spec.name,
          maxOutstandingMessages: this.ctx.options.maxOutstandingMessages,
          maxOutstandingBytes: 0n,
          consumerName: `bench-${this.consumerIndex}`,
        },
        ackIds: [],
        nackIds: [],
        extend: undefined,
      }).finish(),
    );
    this.call = this.ctx.sessions.consume(this.spec.slot + this.consumerIndex, start, this);
    if (!this.reading) this.call.pause();
    if (isRetry) this.stableTimer = setTimeout(stableElapsed, STREAM_STABLE_MS, this);
  }

  /** The current stream delivered, or stayed up STREAM_STABLE_MS: a re-open counts as reconnected. */
  confirm(): void {
    this.clearStable();
    if (!this.reopened) return;
    this.reopened = false;
    this.backoff?.succeeded();
    this.ctx.counts.reconnects++;
  }

  /** The stream broke: open it again after the backoff (reconnect on and retryable), else the sink hears of it. */
  private broke(err: Error): void {
    this.clearStable();
    const backoff = this.backoff;
    if (this.ctx.timers.isClosed) return;
    if (!backoff || !retryable(err)) {
      this.sink.onStreamError(this.spec.slot, err);
      return;
    }
    const wait = backoff.failed();
    if (wait === undefined) {
      this.sink.onStreamError(this.spec.slot, new ReconnectGaveUpError(`Consume ${this.spec.name}`, backoff.outageMs(), { cause: err }));
      return;
    }
    if (backoff.failures === 1) this.sink.onReconnect?.(this.spec.slot, err);
    this.ctx.timers.after(wait, () => {
      if (this.closing) return;
      // A restarted memory-store broker forgot the subscription (and its topic): create them again.
      const again = isStatus(err, grpc.status.NOT_FOUND) ? this.ctx.recreate(this.spec) : Promise.resolve();
      void again.then(
        () => this.openStream(true),
        (e: unknown) => this.broke(e instanceof Error ? e : new Error(String(e))),
      );
    });
  }

  private clearAcks(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.acks.clear();
  }

  private clearStable(): void {
    if (this.stableTimer) clearTimeout(this.stableTimer);
    this.stableTimer = undefined;
  }
}

// Timer callbacks shared by every consumer (the consumer is the timer's argument), so none holds a closure.
function lingerElapsed(c: V2Consumer): void {
  c.flushAcks();
}
function stableElapsed(c: V2Consumer): void {
  c.confirm();
}
