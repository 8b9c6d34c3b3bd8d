/**
 * One AMQP connection of the rabbitmq driver that comes back: after the connection drops (reset,
 * broker restart) it reconnects with exponential backoff and jitter (RECONNECT_MIN_MS doubling
 * to RECONNECT_MAX_MS), then runs the driver's `onUp` (re-declare the topology, re-open the
 * consumers that lived on it) and re-sends every publish that had no confirm yet.
 *
 * Publishing: one confirm channel per link. A batch is `publish()`ed message by message with a
 * confirm callback each; it resolves once every message is confirmed (basic.ack). A message
 * whose confirm fails (basic.nack, or the channel closed before its confirm) is sent again, with
 * the same `messageId`, on the current channel or the next one; after PUBLISH_ATTEMPTS sends
 * the batch rejects. RabbitMQ does not de-duplicate: a message that was stored but whose
 * confirm was lost in the cut is stored twice, and the run counts the duplicate.
 */
import { connect, type ChannelModel, type ConfirmChannel } from "amqplib";
import { BrokerUnreachableError, DriverError } from "../errors.js";
import { message } from "./util.js";

export const RECONNECT_MIN_MS = 100;
export const RECONNECT_MAX_MS = 5_000;
/** Sends of one message before its batch fails (the first and up to 9 retries). */
export const PUBLISH_ATTEMPTS = 10;

export interface OutgoingBatch {
  exchange: string;
  payloads: readonly Buffer[];
  /** messageId of payloads[i] is `${idPrefix}${i}`. */
  idPrefix: string;
  persistent: boolean;
  left: number;
  attempts: Uint8Array;
  resolve: (n: number) => void;
  reject: (err: Error) => void;
}

export class AmqpLink {
  private conn: ChannelModel | undefined;
  private pubChannel: ConfirmChannel | undefined;
  private closing = false;
  private up: Promise<void> | undefined;
  /** Messages waiting for a channel: [batch, index]. */
  private waiting: [OutgoingBatch, number][] = [];
  /** Connections made after the first (a count the report can show). */
  reconnects = 0;
  /** Messages sent again after a failed confirm. */
  republished = 0;
  private readonly downListeners = new Set<() => void>();

  constructor(
    readonly index: number,
    private readonly url: string,
    private readonly target: string,
    private readonly connectTimeoutMs: number,
    /** Runs on every (re)connection before publishes resume: declarations, consumers. */
    private readonly onUp: (link: AmqpLink, first: boolean) => Promise<void>,
  ) {}

  get connection(): ChannelModel {
    if (!this.conn) throw new DriverError("rabbitmq", `connection ${this.index} is down`);
    return this.conn;
  }

  /** First connection: fails at once (BrokerUnreachableError) rather than retrying. */
  async open(): Promise<void> {
    await this.connectOnce(true);
  }

  /** Called when the connection goes down (the driver pauses that link's consumers). */
  onDown(listener: () => void): void {
    this.downListeners.add(listener);
  }

  /** Resolves when the link is up (now, or after the reconnect in progress). */
  ready(): Promise<void> {
    return this.up ?? Promise.resolve();
  }

  private async connectOnce(first: boolean): Promise<void> {
    let conn: ChannelModel;
    try {
      // TCP_NODELAY: amqplib leaves Nagle on, and a small publish then waits for the ACK of the one
      // before it (40 ms delayed ACK): publisher confirms took 44 ms at 5,000 msg/s unbatched.
      conn = await connect(this.url, { timeout: this.connectTimeoutMs, noDelay: true });
    } catch (err) {
      throw new BrokerUnreachableError(this.target, `AMQP connect: ${message(err)}`, { cause: err });
    }
    if (this.closing) {
      await conn.close().catch(() => undefined);
      return;
    }
    conn.on("error", () => undefined); // a 'close' follows; handled there
    conn.on("close", () => this.lost(conn));
    this.conn = conn;
    await this.onUp(this, first);
    // Publishes resume only now, after the topology is declared again (else they could be unroutable).
    await this.openPublishChannel(conn);
  }

  private async openPublishChannel(conn: ChannelModel): Promise<void> {
    const ch = await conn.createConfirmChannel();
    ch.on("error", () => undefined);
    ch.on("close", () => {
      if (this.pubChannel !== ch) return;
      this.pubChannel = undefined;
      // The channel closed but the connection lives (a channel error): open another one.
      if (this.conn === conn && !this.closing) void this.openPublishChannel(conn).catch(() => undefined);
    });
    this.pubChannel = ch;
    this.flushWaiting();
  }

  private lost(conn: ChannelModel): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.pubChannel = undefined;
    if (this.closing) return;
    for (const l of this.downListeners) l();
    this.up = this.reconnect().finally(() => (this.up = undefined));
  }

  private async reconnect(): Promise<void> {
    let delay = RECONNECT_MIN_MS;
    while (!this.closing) {
      // Backoff with ±20% jitter, so the links of many generators do not come back in step.
      await new Promise((r) => setTimeout(r, delay * (0.8 + 0.4 * Math.random())));
      if (this.closing) return;
      try {
        await this.connectOnce(false);
        this.reconnects++;
        return;
      } catch {
        if (this.conn) {
          // Connected but the set-up failed (e.g. a queue declare during the broker's boot): drop it and retry.
          const c = this.conn;
          this.conn = undefined;
          await c.close().catch(() => undefined);
        }
        delay = Math.min(RECONNECT_MAX_MS, delay * 2);
      }
    }
  }

  publish(batch: OutgoingBatch): void {
    for (let i = 0; i < batch.payloads.length; i++) this.send(batch, i);
  }

  private send(batch: OutgoingBatch, i: number): void {
    const ch = this.pubChannel;
    if (this.closing) return batch.reject(new DriverError("rabbitmq", "driver closed with publishes unconfirmed"));
    if (!ch) {
      this.waiting.push([batch, i]);
      return;
    }
    if (batch.attempts[i]! >= PUBLISH_ATTEMPTS) {
      batch.reject(new DriverError("rabbitmq", `message ${batch.idPrefix}${i} not confirmed after ${PUBLISH_ATTEMPTS} sends`));
      return;
    }
    if (batch.attempts[i]! > 0) this.republished++;
    batch.attempts[i]!++;
    try {
      ch.publish(batch.exchange, "", batch.payloads[i]!, { persistent: batch.persistent, messageId: `${batch.idPrefix}${i}` }, (err) => {
        if (err) {
          // basic.nack (the broker refused responsibility) or the channel closed first: send again.
          this.send(batch, i);
          return;
        }
        if (--batch.left === 0) batch.resolve(batch.payloads.length);
      });
    } catch {
      // The channel closed under us (amqplib throws "Channel closed"): wait for the next one.
      this.waiting.push([batch, i]);
    }
  }

  private flushWaiting(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const [batch, i] of w) this.send(batch, i);
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const [batch] of this.waiting.splice(0)) batch.reject(new DriverError("rabbitmq", "driver closed with publishes unconfirmed"));
    const c = this.conn;
    this.conn = undefined;
    this.pubChannel = undefined;
    if (c) await closeWithin(c, CLOSE_TIMEOUT_MS);
  }
}

/** Bound on a clean connection.close handshake; after it the socket is destroyed. */
export const CLOSE_TIMEOUT_MS = 2_000;

async function closeWithin(c: ChannelModel, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), ms)));
  const outcome = await Promise.race([c.close().then(() => "closed" as const, () => "closed" as const), late]);
  clearTimeout(timer);
  // A peer that never answers close-ok (a dead relay, a paused broker): drop the socket.
  if (outcome === "late") (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}
