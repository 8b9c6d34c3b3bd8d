/**
 * The run's delivery sink: every frame a driver receives comes here. Each payload's header is
 * read through payload.ts (the one place that knows the layout), the delivery is accounted per
 * subscription and (producer, topic) stream, and first deliveries are timed: end to end from the
 * intended send time (corrected) and from the actual send time. It also keeps what the run
 * expects (published × subscriptions of the topic), so the drain phase knows when it is done.
 *
 * The hot path allocates nothing: headers are read byte by byte into one reused object,
 * accounting and histograms are dense slots and typed arrays, no closure or promise per
 * delivery. The clock is read once per synchronous burst of deliveries (everything one socket
 * read hands over: a NATS client calls back once per message of the chunk it parsed, a gRPC
 * stream once per frame), not once per message; see docs/loadgen.md, "Receive time".
 */
import type { Clock } from "../clock.js";
import { readsHandedOver, ReconnectGaveUpError, type DeliverySink } from "../drivers/index.js";
import type { Accounting } from "./accounting.js";
import { emptyHeader, readHeader } from "./payload.js";
import type { Plan } from "./plan.js";
import type { Recorder } from "./recorder.js";

export interface StreamErrorInfo {
  subscription: string;
  message: string;
}

/** Stream errors kept verbatim for the report (the count is exact, the samples are not). */
const STREAM_ERROR_SAMPLES = 10;

export class AccountingSink implements DeliverySink {
  /** Deliveries expected so far: accepted publishes × subscriptions of their topic. */
  expectedTotal = 0;
  /** Monotonic µs of the last first delivery of a measured (not warmup) message; 0 if none. */
  lastTimedDeliveryUs = 0;
  /** Monotonic µs of the first first delivery of a measured message; 0 if none. */
  firstTimedDeliveryUs = 0;
  /** First deliveries of warmup-flagged messages (a backlog run's build messages are flagged so). */
  untimedDelivered = 0;
  /** Monotonic µs of the last first delivery of a warmup-flagged message; 0 if none. */
  lastUntimedDeliveryUs = 0;
  /** When untimedDelivered reaches this, onUntimedTarget is called once (a backlog drained). */
  untimedTarget = Infinity;
  onUntimedTarget: (() => void) | undefined;
  streamErrors = 0;
  /** Consumer streams that broke and were re-opened by their driver (reconnect on). */
  streamBreaks = 0;
  readonly streamErrorSamples: StreamErrorInfo[] = [];
  /** Set when a driver gave up reconnecting: the run ends with this error. */
  gaveUp: ReconnectGaveUpError | undefined;
  /** Called once when a driver gives up (the runner ends the phase). */
  onGaveUp: ((err: ReconnectGaveUpError) => void) | undefined;

  /** Consumer streams of each subscription slot that ended with an error (a DeliverySink stream error is final). */
  private readonly endedConsumers: Int32Array;
  private endedTotal = 0;
  private readonly subTopic: Int32Array;
  private readonly subsOnTopic: Float64Array;
  private readonly header = emptyHeader();
  private drainWaiter: (() => void) | undefined;
  /** Receive time of the current synchronous burst; -1 until read, reset by a microtask. */
  private burstUs = -1;
  private burstRead = -1;
  private readonly endBurst = (): void => {
    this.burstUs = -1;
  };

  constructor(
    private readonly plan: Pick<Plan, "subscriptions" | "producerSlot">,
    topicCount: number,
    private readonly accounting: Pick<Accounting, "record" | "recordForeign" | "addPublished" | "deliveredExpectedCount" | "incompleteSubscriptions">,
    private readonly recorder: Pick<Recorder, "recordDelivery">,
    private readonly clock: Clock,
    /** Consumers opened per subscription: when that many of a slot's streams ended, nothing more can arrive on it. */
    private readonly consumersPerSubscription = 1,
  ) {
    this.endedConsumers = new Int32Array(plan.subscriptions.length);
    this.subTopic = Int32Array.from(plan.subscriptions.map((s) => s.topic));
    this.subsOnTopic = new Float64Array(topicCount);
    for (const s of plan.subscriptions) this.subsOnTopic[s.topic]! += 1;
  }

  /**
   * The receive time of deliveries handed over in this synchronous run: one clock read per
   * burst. A microtask runs only once the client has handed over everything it parsed from a
   * socket read, so the burst ends there, or where the generator's HTTP/2 client hands over its
   * next read (read-budget.ts gives several back in one turn).
   */
  private receiveUs(): number {
    if (this.burstUs < 0 || this.burstRead !== readsHandedOver.count) {
      if (this.burstUs < 0) queueMicrotask(this.endBurst);
      this.burstUs = this.clock.nowUs();
      this.burstRead = readsHandedOver.count;
    }
    return this.burstUs;
  }

  onDelivery(slot: number, buf: Uint8Array, start: number, end: number, attempt: number): void {
    const now = this.receiveUs();
    const topic = this.subTopic[slot]!;
    const h = this.header;
    // Not ours, or not for this subscription's topic: counted, never accounted as a delivery.
    if (!readHeader(buf, h, start, end) || h.topic !== topic) {
      this.accounting.recordForeign();
      return;
    }
    if (!this.accounting.record(slot, this.plan.producerSlot(h.producer, topic), h.seq, attempt)) return;
    if (!h.warmup) {
      if (this.firstTimedDeliveryUs === 0) this.firstTimedDeliveryUs = now;
      this.lastTimedDeliveryUs = now;
    } else {
      this.lastUntimedDeliveryUs = now;
      if (++this.untimedDelivered === this.untimedTarget) this.onUntimedTarget?.();
    }
    this.recorder.recordDelivery(now - h.intendedUs, now - h.sentUs, h.warmup, now);
    if (this.drainWaiter && this.accounting.deliveredExpectedCount >= this.expectedTotal) this.drainWaiter();
  }

  onStreamError(slot: number, err: Error): void {
    this.streamErrors++;
    if (slot >= 0 && slot < this.endedConsumers.length) {
      this.endedConsumers[slot]!++;
      this.endedTotal++;
    }
    this.sample(slot, err.message);
    if (err instanceof ReconnectGaveUpError && this.gaveUp === undefined) {
      this.gaveUp = err;
      this.onGaveUp?.(err);
    }
  }

  /** A stream broke and its driver is re-opening it: kept in the report's errors, not a stream error. */
  onReconnect(slot: number, cause: Error): void {
    this.streamBreaks++;
    this.sample(slot, `${cause.message} (reconnecting)`);
  }

  private sample(slot: number, message: string): void {
    if (this.streamErrorSamples.length < STREAM_ERROR_SAMPLES) {
      this.streamErrorSamples.push({ subscription: this.plan.subscriptions[slot]?.name ?? String(slot), message });
    }
  }

  /** The broker accepted `accepted` messages on `topic`: each subscription of it expects them. */
  onPublished(topic: number, accepted: number): void {
    this.accounting.addPublished(topic, accepted);
    this.expectedTotal += accepted * this.subsOnTopic[topic]!;
  }

  /**
   * The subscriptions that still owe deliveries and have no consumer left (every one of their
   * streams ended with an error): what they owe can no longer arrive, so waiting for it is
   * pointless. Empty while any missing delivery could still arrive, or when no stream ended.
   */
  stranded(): number[] {
    if (this.endedTotal === 0) return [];
    const incomplete = this.accounting.incompleteSubscriptions();
    if (incomplete.length === 0) return [];
    for (const slot of incomplete) if (this.endedConsumers[slot]! < this.consumersPerSubscription) return [];
    return incomplete;
  }

  /**
   * Resolves once every expected delivery arrived (false), or after `timeoutMs` with some still
   * missing (true: the drain timed out).
   */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.accounting.deliveredExpectedCount >= this.expectedTotal) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.drainWaiter = undefined;
        resolve(true);
      }, timeoutMs);
      this.drainWaiter = () => {
        clearTimeout(timer);
        this.drainWaiter = undefined;
        resolve(false);
      };
    });
  }
}
