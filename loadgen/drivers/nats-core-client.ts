/**
 * The generator's own NATS core client, used by the `nats` driver (docs/loadgen.md, "The NATS
 * core client"). nats.js spent about half of a consumer worker's time on a 1 → 10 fan-out
 * parsing each MSG and making views of it, and the producer's encoding each PUB line; this
 * client speaks only what the driver needs (CONNECT with a token, TLS, SUB, UNSUB, PUB, PING and
 * PONG), hands deliveries over as positions in the socket's chunk (nats-core-parser.ts) and
 * writes a batch of PUBs into one buffer with the subject's `PUB <subject> ` bytes made once.
 * Reads go through the thread's read budget (read-budget.ts), like the HTTP/2 connections.
 *
 * Reconnecting (a policy given, docs/faults.md, "Drivers under faults"): a connection that
 * breaks is opened again after the policy's backoff, its subscriptions are sent again with their
 * sids, and what was published meanwhile (up to RECONNECT_BUFFER_BYTES) is sent after them, as
 * nats.js does; what the broken socket had not delivered is lost (at-most-once). A flush waiting
 * for its PONG is sent again on the new connection. Past the give-up deadline the connection
 * closes with a ReconnectGaveUpError. Without a policy a break closes the connection.
 */
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { BrokerConnectError, BrokerUnreachableError } from "../errors.js";
import { NatsConnections } from "./nats-connections.js";
import { NatsParser } from "./nats-core-parser.js";
import { probeBroker, splitHostPort } from "./probe.js";
import { BudgetedReads } from "./read-budget.js";
import { Backoff, ReconnectGaveUpError, type ReconnectPolicy } from "./reconnect.js";
import { natsSecurity, type DriverSecurity } from "./security.js";

/** What the client writes into one buffer before handing it to the socket. */
const OUT_CHUNK = 64 * 1024;

/** Publishes held while a connection reconnects (nats.js's default reconnectBufSize); past it a publish throws. */
export const RECONNECT_BUFFER_BYTES = 8 * 1024 * 1024;

const PING = Buffer.from("PING\r\n");
const PONG = Buffer.from("PONG\r\n");

export type MessageHandler = (buf: Uint8Array, start: number, end: number) => void;

export interface NatsCoreOptions {
  /** host:port, for messages. */
  target: string;
  host: string;
  port: number;
  /** The connection's name in the server's monitoring (CONNECT `name`). */
  name: string;
  token?: string | undefined;
  /** TLS options for tls.connect (PEM contents); absent = plaintext. */
  tls?: ConnectionOptions | undefined;
  /** Bound of each connect and handshake. */
  timeoutMs: number;
  policy?: ReconnectPolicy | undefined;
  nowMs: () => number;
}

interface Sub {
  subject: string;
  handler: MessageHandler;
}

type State = "open" | "reconnecting" | "closed";

/** One NATS core connection. */
export class NatsCoreConnection {
  private socket: Socket;
  private state: State = "open";
  /** Subscriptions by sid (sids count from 1 and are never reused). */
  private readonly subs: (Sub | undefined)[] = [];
  private nextSid = 1;
  private out = Buffer.allocUnsafe(OUT_CHUNK);
  private outLen = 0;
  private writeQueued = false;
  /** Buffers written while reconnecting, sent after the subscriptions on the new connection. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Flushes whose PING went to the socket that broke. */
  private lostPings = 0;
  /** Flushes waiting for their PONG, oldest first. */
  private readonly pongs: { resolve: () => void; reject: (err: Error) => void }[] = [];
  /** `PUB <subject> ` per subject. */
  private readonly prefixes = new Map<string, Buffer>();
  private lenOf = -1;
  private lenBytes = Buffer.alloc(0);
  private lastServerError: string | undefined;
  private backoff: Backoff | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly closedListeners: ((err: Error | undefined) => void)[] = [];
  private readonly reconnectedListeners: (() => void)[] = [];
  private readonly disconnectedListeners: (() => void)[] = [];
  private readonly flushOut = (): void => {
    this.writeQueued = false;
    this.writeOut();
  };

  private constructor(
    private readonly o: NatsCoreOptions,
    opened: Opened,
  ) {
    this.socket = opened.socket;
    this.maxPayload = opened.maxPayload;
    this.attach(opened);
  }

  /** The server's max_payload (INFO). */
  maxPayload: number;

  /** Connect and handshake, bounded by `o.timeoutMs`; throws BrokerConnectError / BrokerUnreachableError naming the cause. */
  static async open(o: NatsCoreOptions): Promise<NatsCoreConnection> {
    return new NatsCoreConnection(o, await handshake(o));
  }

  /** Called once when the connection closes and will not reconnect (not after close()). */
  onClosed(listener: (err: Error | undefined) => void): void {
    this.closedListeners.push(listener);
  }

  /** Called when the connection broke and starts reconnecting (a policy given). */
  onDisconnected(listener: () => void): void {
    this.disconnectedListeners.push(listener);
  }

  /** Called after each reconnect: the subscriptions were sent again. */
  onReconnected(listener: () => void): void {
    this.reconnectedListeners.push(listener);
  }

  subscribe(subject: string, handler: MessageHandler): number {
    const sid = this.nextSid++;
    this.subs[sid] = { subject, handler };
    // While reconnecting, the new connection gets it with the others.
    if (this.state === "open") this.writeBytes(Buffer.from(`SUB ${subject} ${sid}\r\n`));
    return sid;
  }

  unsubscribe(sid: number): void {
    if (!this.subs[sid]) return;
    this.subs[sid] = undefined;
    if (this.state !== "closed") this.writeBytes(Buffer.from(`UNSUB ${sid}\r\n`));
  }

  /** PUB each payload to `subject`; the bytes are copied before this returns. */
  publish(subject: string, payloads: readonly Uint8Array[]): void {
    if (this.state === "closed") throw new Error(`NATS connection ${this.o.name} to ${this.o.target} is closed`);
    let prefix = this.prefixes.get(subject);
    if (!prefix) {
      prefix = Buffer.from(`PUB ${subject} `);
      this.prefixes.set(subject, prefix);
    }
    // Checked before anything of the batch is written: a refused batch sends none of its messages.
    let bytes = 0;
    for (const p of payloads) {
      if (p.length > this.maxPayload) throw new Error(`a ${p.length}-byte message exceeds the NATS server's max_payload (${this.maxPayload} bytes)`);
      bytes += prefix.length + p.length + 16;
    }
    if (this.state === "reconnecting" && this.heldBytes + this.outLen + bytes > RECONNECT_BUFFER_BYTES) {
      throw new Error(`NATS connection ${this.o.name} is reconnecting and holds ${RECONNECT_BUFFER_BYTES} bytes of publishes already: this batch is not sent`);
    }
    for (const p of payloads) {
      const size = p.length;
      if (size !== this.lenOf) {
        this.lenOf = size;
        this.lenBytes = Buffer.from(`${size}\r\n`);
      }
      const len = this.lenBytes;
      const need = prefix.length + len.length + size + 2;
      if (this.outLen + need > this.out.length) this.rollOut(need);
      const out = this.out;
      let at = this.outLen;
      out.set(prefix, at);
      at += prefix.length;
      out.set(len, at);
      at += len.length;
      out.set(p, at);
      at += size;
      out[at++] = 13;
      out[at++] = 10;
      this.outLen = at;
    }
    this.queueWrite();
  }

  /** Resolves when the server answered a PING sent after everything written so far. */
  flush(): Promise<void> {
    if (this.state === "closed") return Promise.reject(new Error(`NATS connection ${this.o.name} is closed`));
    return new Promise<void>((resolve, reject) => {
      this.pongs.push({ resolve, reject });
      this.writeBytes(PING);
    });
  }

  async close(): Promise<void> {
    if (this.state === "closed") return;
    const wasOpen = this.state === "open";
    this.state = "closed";
    clearTimeout(this.retryTimer);
    this.failPongs(new Error(`NATS connection ${this.o.name} closed`));
    if (!wasOpen) return;
    this.writeOut();
    const socket = this.socket;
    await new Promise<void>((resolve) => {
      if (socket.destroyed) return resolve();
      const timer = setTimeout(() => socket.destroy(), 2000);
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
  }

  private attach(opened: Opened): void {
    const socket = opened.socket;
    const parser = new NatsParser(
      (sid, buf, start, end) => this.subs[sid]?.handler(buf, start, end),
      (line) => this.onControl(line),
    );
    const consume = (chunk: Buffer): void => {
      try {
        parser.push(chunk);
      } catch (err) {
        socket.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    };
    new BudgetedReads(socket, consume);
    // The handshake paused it, so nothing it read since went unheard.
    socket.resume();
    let error: Error | undefined;
    socket.on("error", (err) => (error = err));
    socket.on("close", () => this.broke(socket, error));
    if (opened.rest.length > 0) consume(opened.rest);
  }

  private onControl(line: string): void {
    const op = line.slice(0, 4).toUpperCase();
    if (op === "PING") this.writeBytes(PONG);
    else if (op === "PONG") this.pongs.shift()?.resolve();
    else if (op === "-ERR") this.lastServerError = line.slice(4).trim();
    // +OK (verbose is off) and INFO updates need nothing.
  }

  /** The socket closed: closed for good, or reconnecting under the policy. */
  private broke(socket: Socket, error: Error | undefined): void {
    if (socket !== this.socket || this.state !== "open") return;
    const cause = this.lastServerError !== undefined ? new Error(`NATS server: -ERR ${this.lastServerError}`) : (error ?? new Error("connection closed by the server"));
    this.lastServerError = undefined;
    if (!this.o.policy) {
      this.end(cause);
      return;
    }
    this.state = "reconnecting";
    this.backoff ??= new Backoff(this.o.policy, this.o.nowMs);
    // What the broken socket had, and what was not yet handed to it, is lost (at-most-once); the
    // PINGs among it are sent again on the new connection, one per flush still waiting.
    this.outLen = 0;
    this.lostPings = this.pongs.length;
    this.held = [];
    this.heldBytes = 0;
    for (const l of this.disconnectedListeners) l();
    this.retry(cause);
  }

  private retry(cause: Error): void {
    const wait = this.backoff!.failed();
    if (wait === undefined) {
      this.end(new ReconnectGaveUpError(`NATS connection ${this.o.name} to ${this.o.target}`, this.backoff!.outageMs(), { cause }));
      return;
    }
    this.retryTimer = setTimeout(() => {
      handshake(this.o).then(
        (opened) => this.reopened(opened),
        (err: unknown) => {
          if (this.state === "reconnecting") this.retry(err instanceof Error ? err : new Error(String(err)));
        },
      );
    }, wait);
  }

  private reopened(opened: Opened): void {
    if (this.state !== "reconnecting") {
      opened.socket.destroy();
      return;
    }
    this.backoff!.succeeded();
    this.socket = opened.socket;
    this.maxPayload = opened.maxPayload;
    this.state = "open";
    const resend: Buffer[] = [];
    this.subs.forEach((s, sid) => {
      if (s) resend.push(Buffer.from(`SUB ${s.subject} ${sid}\r\n`));
    });
    for (let i = 0; i < this.lostPings; i++) resend.push(PING);
    this.lostPings = 0;
    this.socket.write(Buffer.concat([...resend, ...this.held]));
    this.held = [];
    this.heldBytes = 0;
    this.attach(opened);
    this.writeOut();
    for (const l of this.reconnectedListeners) l();
  }

  private end(err: Error): void {
    this.state = "closed";
    this.failPongs(err);
    for (const l of this.closedListeners) l(err);
  }

  private failPongs(err: Error): void {
    for (const p of this.pongs.splice(0)) p.reject(err);
  }

  private writeBytes(b: Buffer): void {
    if (this.outLen + b.length > this.out.length) this.rollOut(b.length);
    this.out.set(b, this.outLen);
    this.outLen += b.length;
    this.queueWrite();
  }

  /** What this synchronous run writes goes out in one socket write, after it. */
  private queueWrite(): void {
    if (this.writeQueued) return;
    this.writeQueued = true;
    queueMicrotask(this.flushOut);
  }

  /** Hand the buffer over and start a new one that fits `need`. */
  private rollOut(need: number): void {
    this.writeOut();
    if (this.out.length < need) this.out = Buffer.allocUnsafe(need);
  }

  private writeOut(): void {
    if (this.outLen === 0) return;
    const chunk = this.out.subarray(0, this.outLen);
    this.out = Buffer.allocUnsafe(Math.max(OUT_CHUNK, this.out.length));
    this.outLen = 0;
    if (this.state === "open") this.socket.write(chunk);
    else if (this.state === "reconnecting") {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
    }
  }
}

interface Opened {
  socket: Socket;
  maxPayload: number;
  /** Bytes the server sent after the handshake's PONG, in the same chunk. */
  rest: Buffer;
}

/**
 * TCP (then TLS if configured), INFO, CONNECT + PING, PONG. A server's -ERR (a wrong token:
 * 'Authorization Violation') rejects with its text; so does a close or the timeout.
 */
function handshake(o: NatsCoreOptions): Promise<Opened> {
  return new Promise<Opened>((resolve, reject) => {
    let socket: Socket = netConnect({ host: o.host, port: o.port });
    socket.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let stage: "info" | "pong" = "info";
    let maxPayload = 1024 * 1024;
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err instanceof BrokerUnreachableError ? err : new BrokerUnreachableError(o.target, err.message, { cause: err }));
    };
    const timer = setTimeout(() => fail(new BrokerConnectError(o.target, "timeout", `NATS handshake not done within ${o.timeoutMs} ms (--connect-timeout)`)), o.timeoutMs);
    const onError = (err: Error): void => fail(err);
    const onClose = (): void => fail(new Error(stage === "info" ? "the server closed the connection before its INFO" : "the server closed the connection after CONNECT"));
    const listen = (on: boolean): void => {
      const m = on ? "on" : "off";
      socket[m]("data", onData);
      socket[m]("error", onError);
      socket[m]("close", onClose);
    };
    /** The INFO line: CONNECT + PING, in TLS on the same TCP connection if configured. */
    const onInfo = (line: string): void => {
      let info: Record<string, unknown>;
      try {
        info = JSON.parse(line.slice(5)) as Record<string, unknown>;
      } catch {
        return fail(new BrokerConnectError(o.target, "not-nats", "the INFO line is not JSON: not a NATS server"));
      }
      if (typeof info.max_payload === "number") maxPayload = info.max_payload;
      stage = "pong";
      const connectLine = `CONNECT ${JSON.stringify({
        verbose: false,
        pedantic: false,
        tls_required: o.tls !== undefined,
        name: o.name,
        lang: "ratatoskr-loadgen",
        version: "1",
        protocol: 1,
        headers: false,
        no_responders: false,
        ...(o.token !== undefined ? { auth_token: o.token } : {}),
      })}\r\nPING\r\n`;
      if (o.tls === undefined) {
        if (info.tls_required === true) return fail(new BrokerConnectError(o.target, "tls", "the NATS server requires TLS; this client connects in plaintext"));
        socket.write(connectLine);
        return;
      }
      if (info.tls_required !== true && info.tls_available !== true) return fail(new BrokerConnectError(o.target, "tls", "the NATS server does not offer TLS; this client is configured for TLS (--tls-ca ...)"));
      listen(false);
      const plain = socket;
      const servername = typeof o.tls.servername === "string" ? o.tls.servername : isIP(o.host) ? undefined : o.host;
      socket = tlsConnect({ ...o.tls, socket: plain, ...(servername !== undefined ? { servername } : {}) }, () => socket.write(connectLine));
      plain.on("error", onError);
      listen(true);
    };
    function onData(chunk: Buffer): void {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (!settled) {
        const lf = buf.indexOf(10);
        if (lf < 0) {
          if (buf.length > 1 << 20) fail(new Error("the server sent a line longer than 1 MiB during the handshake"));
          return;
        }
        const line = buf.subarray(0, lf).toString("utf8").trim();
        buf = buf.subarray(lf + 1);
        if (stage === "info") {
          if (!line.startsWith("INFO ")) return fail(new BrokerConnectError(o.target, "not-nats", `not a NATS server: its first line is ${JSON.stringify(line.slice(0, 80))}`));
          onInfo(line);
          // After a TLS upgrade the rest of this chunk (nothing, the server waits for the client hello) is not ours.
          if (o.tls !== undefined) return;
          continue;
        }
        const op = line.slice(0, 4).toUpperCase();
        if (op === "-ERR") return fail(new Error(`the NATS server refused the connection: -ERR ${line.slice(4).trim()}`));
        if (op === "PING") socket.write(PONG);
        if (op !== "PONG") continue; // +OK, INFO updates: nothing to do during the handshake
        settled = true;
        clearTimeout(timer);
        // Paused before its listeners go: a TLS socket may emit more in this tick, which waits
        // in the stream for the connection's own reader (attach).
        socket.pause();
        listen(false);
        resolve({ socket, maxPayload, rest: Buffer.from(buf) });
      }
    }
    listen(true);
  });
}

/** The connections of a `nats` driver (nats-connections.ts). */
export class NatsCorePool extends NatsConnections<NatsCoreConnection> {
  private readonly security: ReturnType<typeof natsSecurity>;

  constructor(
    private readonly target: string,
    private readonly size: number,
    private readonly name: string,
    security: DriverSecurity | undefined,
    private readonly policy: ReconnectPolicy | undefined,
    private readonly nowMs: () => number,
  ) {
    super();
    this.security = natsSecurity(security);
  }

  /**
   * Probe the target (probe.ts: refused, not NATS, TLS, ... at once), then open the
   * connections, each bounded by `timeoutMs`; throws BrokerConnectError naming the cause.
   */
  async open(timeoutMs: number): Promise<void> {
    await probeBroker(this.target, "nats", timeoutMs, this.security.loaded);
    const options = {
      target: this.target,
      ...splitHostPort(this.target),
      token: this.security.token,
      tls: this.security.tls as ConnectionOptions | undefined,
      timeoutMs,
      policy: this.policy,
      nowMs: this.nowMs,
    };
    for (let k = 0; k < this.size; k++) {
      let nc: NatsCoreConnection;
      try {
        nc = await NatsCoreConnection.open({ ...options, name: `${this.name}-${k}` });
      } catch (err) {
        await this.close();
        throw err;
      }
      const index = k;
      nc.onClosed((err) => this.closed(index, err));
      nc.onReconnected(() => this.reconnected(index));
      this.conns.push(nc);
    }
  }
}
