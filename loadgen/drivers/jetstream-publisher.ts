/**
 * JetStream publish with acks, without nats.js's per-request machinery. A JetStream publish is a
 * core PUB to a stream subject with a reply subject; the server answers each message with a
 * PubAck (`{"stream":…,"seq":…}`) or an error (`{"error":{…}}`), or a 503 status when no stream
 * listens. `js.publish()` does exactly that, but builds two Error objects and a timer per
 * message (24.5K msg/s, 46K with noAsyncTraces, 181K like this on a 2-vCPU machine; docs/performance.md, "Peer driver notes"), which would measure
 * the client instead of the server.
 *
 * One wildcard inbox subscription per connection; every message of a batch carries the batch's
 * reply subject `<inbox>.<batch id>`; the batch settles when every message has its answer.
 * Outstanding batches older than the ack timeout are rejected by a once-a-second sweep.
 *
 * With a retry policy (faults; docs/faults.md, "Drivers under faults") every message carries a
 * `Nats-Msg-Id` header (run nonce + producer, topic, sequence) and a reply subject of its own
 * (`<inbox>.<batch id>.<index>`), so the mux knows which messages were answered. Messages
 * unanswered after RETRY_ACK_TIMEOUT_MS, or answered 503 (no stream listens yet: a restarting
 * server), are published again with the same id after the policy's backoff; the stream's
 * duplicate window (2 minutes by default) stores each once. The batch resolves when every
 * message has its PubAck and rejects when one is refused for good or the outage passes the
 * give-up deadline (then the batch's stored messages count as unacknowledged, never as acked).
 */
import { createInbox, headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "nats";
import type { Clock } from "../clock.js";
import { Backoff, ReconnectGaveUpError, type ReconnectPolicy, type RetryCounts } from "./reconnect.js";
import { messageIdOf } from "./util.js";

export const PUB_ACK_TIMEOUT_MS = 30_000;
/** With a retry policy: a message unanswered this long is published again. */
export const RETRY_ACK_TIMEOUT_MS = 3000;

/** How a mux retries (faults): the policy, the run nonce for message ids, the counts it adds to. */
export interface PubAckRetry {
  policy: ReconnectPolicy;
  nonce: string;
  counts: RetryCounts;
}

interface RetryState {
  subject: string;
  payloads: readonly Buffer[];
  hdrs: MsgHdrs[];
  /** Per message: 0 unanswered, 1 stored, 2 refused for good. */
  state: Uint8Array;
  backoff: Backoff;
  /** Monotonic µs at which unanswered messages are sent again; undefined: none scheduled. */
  retryAtUs: number | undefined;
}

interface PendingBatch {
  total: number;
  ok: number;
  failed: number;
  firstError: string | undefined;
  sentAtUs: number;
  resolve: (accepted: number) => void;
  reject: (err: Error) => void;
  retry?: RetryState;
}

export class JetStreamPublishError extends Error {}

const CHAR_S = 0x73; // `{"stream"…`: byte 2 of a PubAck

export class PubAckMux {
  private readonly prefix: string;
  private readonly sub: Subscription;
  private readonly pending = new Map<number, PendingBatch>();
  private nextId = 1;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly clock: Clock,
    private readonly timeoutMs = PUB_ACK_TIMEOUT_MS,
    private readonly retry?: PubAckRetry,
  ) {
    this.prefix = createInbox();
    const onMsg = (err: Error | null, msg: Msg): void => (err ? this.failAll(err) : retry ? this.onRetryReply(msg) : this.onReply(msg));
    this.sub = nc.subscribe(retry ? `${this.prefix}.>` : `${this.prefix}.*`, { callback: onMsg });
    this.sweeper = setInterval(() => (retry ? this.sweepRetry() : this.sweep()), retry ? 100 : 1000);
    this.sweeper.unref();
  }

  /** Publish `payloads` to `subject`; resolves with how many the stream stored. */
  publish(subject: string, payloads: readonly Buffer[]): Promise<number> {
    if (this.retry) return this.publishRetrying(subject, payloads, this.retry);
    const id = this.nextId++;
    const reply = `${this.prefix}.${id}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { total: payloads.length, ok: 0, failed: 0, firstError: undefined, sentAtUs: this.clock.nowUs(), resolve, reject });
      // nats.js copies payloads into its outbound buffer before any reply can arrive.
      for (let i = 0; i < payloads.length; i++) this.nc.publish(subject, payloads[i]!, { reply });
    });
  }

  private publishRetrying(subject: string, payloads: readonly Buffer[], retry: PubAckRetry): Promise<number> {
    const id = this.nextId++;
    const hdrs = payloads.map((p) => {
      const h = headers();
      h.set("Nats-Msg-Id", messageIdOf(retry.nonce, p));
      return h;
    });
    const state: RetryState = { subject, payloads, hdrs, state: new Uint8Array(payloads.length), backoff: new Backoff(retry.policy, () => this.clock.wallMs()), retryAtUs: undefined };
    return new Promise((resolve, reject) => {
      const b: PendingBatch = { total: payloads.length, ok: 0, failed: 0, firstError: undefined, sentAtUs: this.clock.nowUs(), resolve, reject, retry: state };
      this.pending.set(id, b);
      this.send(id, b, state);
    });
  }

  /** Publish every unanswered message of a batch (all of them the first time). */
  private send(id: number, b: PendingBatch, r: RetryState): void {
    b.sentAtUs = this.clock.nowUs();
    r.retryAtUs = undefined;
    try {
      for (let i = 0; i < r.payloads.length; i++) {
        if (r.state[i] === 0) this.nc.publish(r.subject, r.payloads[i]!, { reply: `${this.prefix}.${id}.${i}`, headers: r.hdrs[i]! });
      }
    } catch (err) {
      // The connection is closed (gave up reconnecting): try again until the deadline says stop.
      this.scheduleRetry(id, b, r, err instanceof Error ? err.message : String(err));
    }
  }

  private onRetryReply(msg: Msg): void {
    const parts = msg.subject.slice(this.prefix.length + 1).split(".");
    const id = Number(parts[0]);
    const index = Number(parts[1]);
    const b = this.pending.get(id);
    const r = b?.retry;
    if (!b || !r || r.state[index] !== 0) return; // settled already, or a second answer
    const data = msg.data;
    if (data.length > 2 && data[2] === CHAR_S) {
      r.state[index] = 1;
      b.ok++;
      r.backoff.succeeded();
    } else if (msg.headers?.code === 503) {
      // No stream listens yet (the server is restarting): this message is sent again.
      this.scheduleRetry(id, b, r, describeFailure(msg));
      return;
    } else {
      r.state[index] = 2;
      b.failed++;
      b.firstError ??= describeFailure(msg);
    }
    this.settleIfDone(id, b);
  }

  private scheduleRetry(id: number, b: PendingBatch, r: RetryState, why: string): void {
    if (r.retryAtUs !== undefined) return;
    const wait = r.backoff.failed();
    if (wait === undefined) {
      this.pending.delete(id);
      b.reject(new ReconnectGaveUpError(`JetStream publish to ${r.subject}`, r.backoff.outageMs(), { cause: new Error(why) }));
      return;
    }
    r.retryAtUs = this.clock.nowUs() + wait * 1000;
  }

  private settleIfDone(id: number, b: PendingBatch): void {
    if (b.ok + b.failed < b.total) return;
    this.pending.delete(id);
    if (b.failed === 0) b.resolve(b.ok);
    else b.reject(new JetStreamPublishError(`${b.failed} of ${b.total} refused: ${b.firstError ?? "publish failed"}`));
  }

  private sweepRetry(): void {
    const now = this.clock.nowUs();
    for (const [id, b] of this.pending) {
      const r = b.retry;
      if (!r) continue;
      if (r.retryAtUs !== undefined) {
        if (now < r.retryAtUs) continue;
        this.retry!.counts.publishRetries++;
        this.send(id, b, r);
      } else if (now - b.sentAtUs >= RETRY_ACK_TIMEOUT_MS * 1000) {
        this.scheduleRetry(id, b, r, `no PubAck within ${RETRY_ACK_TIMEOUT_MS} ms`);
      }
    }
  }

  get outstanding(): number {
    return this.pending.size;
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sub.unsubscribe();
    this.failAll(new Error("publisher closed"));
  }

  private onReply(msg: Msg): void {
    const subject = msg.subject;
    const id = Number(subject.slice(subject.lastIndexOf(".") + 1));
    const b = this.pending.get(id);
    if (!b) return; // timed out already
    const data = msg.data;
    if (data.length > 2 && data[2] === CHAR_S) b.ok++;
    else {
      b.failed++;
      b.firstError ??= describeFailure(msg);
    }
    if (b.ok + b.failed < b.total) return;
    this.pending.delete(id);
    if (b.ok === 0) b.reject(new JetStreamPublishError(b.firstError ?? "publish failed"));
    else b.resolve(b.ok);
  }

  private sweep(): void {
    const cutoffUs = this.clock.nowUs() - this.timeoutMs * 1000;
    for (const [id, b] of this.pending) {
      if (b.sentAtUs > cutoffUs) continue;
      this.pending.delete(id);
      if (b.ok > 0) b.resolve(b.ok);
      else b.reject(new JetStreamPublishError(`no PubAck within ${this.timeoutMs} ms (${b.total - b.ok - b.failed} of ${b.total} unanswered)`));
    }
  }

  private failAll(err: Error): void {
    for (const b of this.pending.values()) b.reject(err);
    this.pending.clear();
  }
}

function describeFailure(msg: Msg): string {
  const status = msg.headers?.code;
  if (status === 503) return "no responders: no stream listens on this subject (503)";
  try {
    const parsed = JSON.parse(new TextDecoder().decode(msg.data)) as { error?: { code?: number; description?: string } };
    if (parsed.error) return `JetStream error ${parsed.error.code ?? "?"}: ${parsed.error.description ?? "unknown"}`;
  } catch {
    // not JSON
  }
  return status ? `status ${status} ${msg.headers?.description ?? ""}`.trim() : "unexpected PubAck reply";
}
