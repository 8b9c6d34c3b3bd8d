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
 */
import { createInbox, type Msg, type NatsConnection, type Subscription } from "nats";
import type { Clock } from "../clock.js";

export const PUB_ACK_TIMEOUT_MS = 30_000;

interface PendingBatch {
  total: number;
  ok: number;
  failed: number;
  firstError: string | undefined;
  sentAtUs: number;
  resolve: (accepted: number) => void;
  reject: (err: Error) => void;
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
  ) {
    this.prefix = createInbox();
    this.sub = nc.subscribe(`${this.prefix}.*`, { callback: (err, msg) => (err ? this.failAll(err) : this.onReply(msg)) });
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
  }

  /** Publish `payloads` to `subject`; resolves with how many the stream stored. */
  publish(subject: string, payloads: readonly Buffer[]): Promise<number> {
    const id = this.nextId++;
    const reply = `${this.prefix}.${id}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { total: payloads.length, ok: 0, failed: 0, firstError: undefined, sentAtUs: this.clock.nowUs(), resolve, reject });
      // nats.js copies payloads into its outbound buffer before any reply can arrive.
      for (let i = 0; i < payloads.length; i++) this.nc.publish(subject, payloads[i]!, { reply });
    });
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
