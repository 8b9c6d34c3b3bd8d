/**
 * Publishers: all producers of this process are driven by one scheduler loop (no timer per
 * producer or message). Each producer has a RateLimiter giving intended send times, a window
 * of at most `maxInFlightBatches` outstanding publish calls, and one reusable PayloadBatch per
 * window slot. A producer serves its topics round-robin, one topic per batch; in count mode
 * each topic has a fixed quota so that every shard derives the same expectations.
 */
import type { Clock } from "../clock.js";
import type { Driver } from "../drivers/index.js";
import { FLAG_WARMUP, PayloadBatch } from "./payload.js";
import type { ProducerPlan } from "./plan.js";
import { RateLimiter } from "./rate-limiter.js";
import type { Recorder } from "./recorder.js";

export interface PublishListener {
  /** `accepted` messages of a batch on `topic` were acknowledged by the broker. */
  onPublished(topic: number, accepted: number): void;
  onPublishError(topic: number, count: number, err: unknown): void;
  /**
   * Messages `firstSeq .. firstSeq+count-1` of producer `producer`'s stream on `topic` were sent
   * but never acknowledged (the batch failed, or the broker accepted only its first part).
   */
  onUnacked?(topic: number, producer: number, firstSeq: number, count: number): void;
}

interface ProducerState {
  plan: ProducerPlan;
  limiter: RateLimiter;
  cursor: number;
  /** Remaining messages per topic in count mode (index = position in plan.topics). */
  quota: number[] | undefined;
  /** Next sequence per topic (continues from warmup into measure). */
  seq: number[];
  inFlight: number;
  free: PayloadBatch[];
}

export interface PhaseSpec {
  warmup: boolean;
  /** Messages per second for the whole scenario (all producers, all shards), or Infinity. */
  totalRate: number;
  totalProducers: number;
  /** Stop issuing at this monotonic time (duration-based phases). */
  endUs: number;
  /** Use the plan's per-topic quotas (count mode, measure phase). */
  useQuotas: boolean;
  /** Per-topic quotas by producer id for this phase instead of the plan's (a backlog's build). */
  quotas?: ReadonlyMap<number, readonly number[]>;
}

export class PublisherGroup {
  private readonly states: ProducerState[];
  private spec: PhaseSpec | undefined;
  private scheduled: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private scheduledIsTimer = false;
  private scheduledAtUs = 0;
  private phaseDone: (() => void) | undefined;
  private stopped = false;
  private readonly lingerUs: number;
  private readonly spinBelowUs: number;

  constructor(
    producers: readonly ProducerPlan[],
    private readonly driver: Driver,
    private readonly topicNames: readonly string[],
    private readonly clock: Clock,
    private readonly recorder: Recorder,
    private readonly listener: PublishListener,
    private readonly opts: {
      batchSize: number;
      lingerMs: number;
      maxInFlightBatches: number;
      messageSizeBytes: number;
      payload: "random" | "zeros";
      pacing: "timer" | "spin";
    },
  ) {
    this.lingerUs = opts.lingerMs * 1000;
    this.spinBelowUs = opts.pacing === "spin" ? 1000 : 100;
    this.states = producers.map((plan) => ({
      plan,
      limiter: new RateLimiter(clock, Infinity, 0, 0),
      cursor: 0,
      quota: undefined,
      seq: plan.topics.map(() => 0),
      inFlight: 0,
      free: Array.from({ length: opts.maxInFlightBatches }, () => new PayloadBatch(opts.messageSizeBytes, opts.batchSize, opts.payload)),
    }));
  }

  /** Run one phase; resolves when every producer has issued its messages and all acks are in. */
  runPhase(spec: PhaseSpec): Promise<void> {
    const now = this.clock.nowUs();
    const perProducerRate = spec.totalRate / spec.totalProducers;
    for (const s of this.states) {
      const quota = spec.quotas ? (spec.quotas.get(s.plan.id)?.slice() ?? s.plan.topics.map(() => 0)) : spec.useQuotas ? s.plan.messagesPerTopic?.slice() : undefined;
      const limit = quota ? quota.reduce((a, b) => a + b, 0) : Infinity;
      s.quota = quota;
      s.limiter = new RateLimiter(this.clock, perProducerRate * s.plan.rateShare, now, limit);
      s.cursor = 0;
    }
    this.spec = spec;
    return new Promise((resolve) => {
      this.phaseDone = resolve;
      this.tick();
    });
  }

  /**
   * End the running phase now (an interrupt): no new batches are sent, and runPhase resolves
   * once the acknowledgements of those in flight are in, so that accounting sees them.
   */
  endPhase(): void {
    if (this.spec === undefined) return;
    this.spec = { ...this.spec, endUs: this.clock.nowUs() };
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.cancelSchedule();
    this.phaseDone?.();
  }

  get inFlight(): number {
    let n = 0;
    for (const s of this.states) n += s.inFlight;
    return n;
  }

  private cancelSchedule(): void {
    if (this.scheduled === undefined) return;
    if (this.scheduledIsTimer) clearTimeout(this.scheduled as NodeJS.Timeout);
    else clearImmediate(this.scheduled as NodeJS.Immediate);
    this.scheduled = undefined;
  }

  private schedule(waitUs: number): void {
    if (this.stopped) return;
    const deadline = this.clock.nowUs() + waitUs;
    if (this.scheduled !== undefined) {
      // An immediate runs first anyway; a timer is replaced only by an earlier deadline.
      if (!this.scheduledIsTimer || deadline >= this.scheduledAtUs) return;
      this.cancelSchedule();
    }
    // `spin` pacing polls on setImmediate for sub-millisecond waits (on time, but burns a core
    // the broker may need); `timer` pacing sleeps on a timer for anything over 100 µs (about
    // 1 ms late, which shows in lateness and in corrected latency).
    if (waitUs < this.spinBelowUs) {
      this.scheduledIsTimer = false;
      this.scheduled = setImmediate(() => {
        this.scheduled = undefined;
        this.tick();
      });
    } else {
      this.scheduledIsTimer = true;
      this.scheduledAtUs = deadline;
      this.scheduled = setTimeout(() => {
        this.scheduled = undefined;
        this.tick();
      }, Math.floor(waitUs / 1000));
    }
  }

  private tick(): void {
    const spec = this.spec;
    if (!spec || this.stopped) return;
    let now = this.clock.nowUs();
    let minWait = Infinity;
    let active = 0;
    for (const s of this.states) {
      const ended = s.limiter.exhausted || now >= spec.endUs;
      if (ended) {
        if (s.inFlight > 0) active++;
        continue;
      }
      active++;
      while (s.inFlight < this.opts.maxInFlightBatches) {
        const due = s.limiter.due(now);
        if (due <= 0) {
          minWait = Math.min(minWait, s.limiter.waitUs(now));
          break;
        }
        // Linger: hold a partial batch until it fills or its oldest message waited lingerMs.
        if (due < this.opts.batchSize && !s.limiter.unthrottled && !s.limiter.finalDue(due)) {
          const oldest = s.limiter.nextIntendedUs(now);
          const lingerLeft = oldest + this.lingerUs - now;
          const untilEnd = spec.endUs - now;
          if (lingerLeft > 0 && untilEnd > 0) {
            const untilFull = s.limiter.waitUs(now) + ((this.opts.batchSize - due - 1) * 1e6) / s.limiter.ratePerSecond;
            minWait = Math.min(minWait, lingerLeft, Math.max(0, untilFull), untilEnd);
            break;
          }
        }
        this.sendBatch(s, Math.min(due, this.opts.batchSize), now, spec);
        now = this.clock.nowUs();
        if (s.limiter.exhausted || now >= spec.endUs) break;
      }
    }
    if (active === 0) {
      this.spec = undefined;
      const done = this.phaseDone;
      this.phaseDone = undefined;
      done?.();
      return;
    }
    if (Number.isFinite(minWait)) this.schedule(minWait);
  }

  private sendBatch(s: ProducerState, want: number, now: number, spec: PhaseSpec): void {
    // Pick the next topic with quota left (round-robin).
    const topics = s.plan.topics;
    let pos = s.cursor % topics.length;
    if (s.quota) {
      let tries = 0;
      while (s.quota[pos]! <= 0 && tries++ < topics.length) pos = (pos + 1) % topics.length;
      want = Math.min(want, s.quota[pos]!);
      s.quota[pos]! -= want;
    }
    s.cursor = pos + 1;
    const topic = topics[pos]!;
    const batch = s.free.pop()!;
    batch.reset();
    const flags = spec.warmup ? FLAG_WARMUP : 0;
    const firstSeq = s.seq[pos]!;
    for (let i = 0; i < want; i++) {
      const intended = s.limiter.take(now);
      batch.push(s.plan.id, topic, s.seq[pos]!++, intended, flags);
      // Unthrottled messages have no schedule to be late for: their lateness histogram stays empty.
      if (!spec.warmup && !s.limiter.unthrottled) this.recorder.recordLateness(now - intended);
    }
    batch.stampSent(now);
    s.inFlight++;
    const sentUs = now;
    const release = () => {
      s.inFlight--;
      s.free.push(batch);
      this.schedule(0);
    };
    this.driver.publish(this.topicNames[topic]!, batch.messages(), s.plan.id).then(
      (accepted) => {
        const ackUs = this.clock.nowUs();
        this.recorder.recordPublish(accepted, ackUs - sentUs, ackUs);
        if (accepted < want) {
          this.recorder.recordPublishError(want - accepted);
          this.listener.onUnacked?.(topic, s.plan.id, firstSeq + accepted, want - accepted);
        }
        this.listener.onPublished(topic, accepted);
        release();
      },
      (err: unknown) => {
        this.recorder.recordPublishError(want);
        this.listener.onUnacked?.(topic, s.plan.id, firstSeq, want);
        this.listener.onPublishError(topic, want, err);
        release();
      },
    );
  }
}
