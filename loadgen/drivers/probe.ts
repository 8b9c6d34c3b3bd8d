/**
 * The connect probe: before a driver opens its pool, one raw TCP connection to the target says
 * what is there, within a bound, so that a wrong `--target` fails at once with its cause
 * instead of hanging or waiting out a retry loop:
 *
 *   refused    nothing listens (ECONNREFUSED, immediate)
 *   timeout    no TCP connection within the bound
 *   not-grpc   the port answers, but not with an HTTP/2 SETTINGS frame to the HTTP/2 preface
 *   not-nats   the port answers, but its first line is not `INFO {...}`
 *   tls        a TLS server answered the plaintext client (or NATS INFO says tls_required)
 *   closed     the server closed the connection without answering
 *
 * With TLS settings (security.ts) the gRPC probe does the TLS handshake with the same files the
 * driver uses (a certificate the CA does not vouch for fails here, kind `tls`, with the reason)
 * and sends the preface inside it; the NATS probe reads the plaintext INFO and checks the
 * server offers TLS.
 *
 * Every outcome is a BrokerConnectError (exit 2) naming the target and the cause.
 */
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { BrokerConnectError, type ConnectFailureKind } from "../errors.js";
import type { LoadedTls } from "./security.js";

export type ProbeProtocol = "grpc" | "nats";

/** The client connection preface of HTTP/2 (RFC 9113 §3.4) followed by an empty SETTINGS frame. */
const H2_PREFACE = Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);
const H2_FRAME_SETTINGS = 0x04;
const TLS_RECORD_HANDSHAKE = 0x16;
const TLS_RECORD_ALERT = 0x15;

type Verdict = { ok: true; info?: Record<string, unknown> } | { ok: false; kind: ConnectFailureKind; why: string };

export function splitHostPort(target: string): { host: string; port: number } {
  const i = target.lastIndexOf(":");
  return { host: target.slice(0, i), port: Number(target.slice(i + 1)) };
}

/**
 * Check that a `protocol` server answers at `target` within `timeoutMs`; throws
 * BrokerConnectError otherwise. For NATS, resolves with the server's INFO object.
 */
export async function probeBroker(target: string, protocol: ProbeProtocol, timeoutMs: number, tls?: LoadedTls): Promise<Record<string, unknown> | undefined> {
  let verdict = await rawProbe(target, protocol, timeoutMs, tls);
  if (!verdict.ok && verdict.kind === "closed" && protocol === "grpc" && !tls && (await speaksTls(target, timeoutMs))) {
    verdict = { ok: false, kind: "tls", why: "the server speaks TLS; this client connects in plaintext" };
  }
  if (!verdict.ok) throw new BrokerConnectError(target, verdict.kind, verdict.why);
  return verdict.info;
}

/** What a server's first bytes say about it, for the protocol we expected. */
export function classifyAnswer(protocol: ProbeProtocol, data: Buffer, clientTls = false): Verdict | undefined {
  if (data.length >= 2 && (data[0] === TLS_RECORD_HANDSHAKE || data[0] === TLS_RECORD_ALERT) && data[1] === 0x03) {
    return { ok: false, kind: "tls", why: "a TLS server answered; this client connects in plaintext" };
  }
  const text = data.subarray(0, 16).toString("latin1");
  if (protocol === "nats") {
    const nl = data.indexOf(0x0a);
    if (nl < 0 && data.length < 4096 && "INFO {".startsWith(text.slice(0, 6))) return undefined; // wait for the line
    const line = data.subarray(0, nl < 0 ? data.length : nl).toString("utf8").trim();
    if (line.startsWith("INFO {")) {
      const info = parseInfo(line.slice(5));
      if (!info) return { ok: false, kind: "not-nats", why: "the INFO line is not JSON: not a NATS server" };
      const offersTls = info.tls_required === true || info.tls_available === true;
      if (clientTls && !offersTls) return { ok: false, kind: "tls", why: "the NATS server does not offer TLS; this client is configured for TLS (--tls-ca ...)" };
      if (!clientTls && info.tls_required === true) return { ok: false, kind: "tls", why: "the NATS server requires TLS; this client connects in plaintext" };
      return { ok: true, info };
    }
    if (data.length >= 9 && data[3] === H2_FRAME_SETTINGS) return { ok: false, kind: "not-nats", why: "not a NATS server: an HTTP/2 server (gRPC?) answered; use --driver ratatoskr" };
    return { ok: false, kind: "not-nats", why: `not a NATS server: its first line is ${describeBytes(data)}, not INFO {...}` };
  }
  if (text.startsWith("HTTP/")) return { ok: false, kind: "not-grpc", why: `not a gRPC server: an HTTP/1 server answered (${JSON.stringify(firstLine(data))})` };
  if (text.startsWith("INFO ")) return { ok: false, kind: "not-grpc", why: "not a gRPC server: a NATS server answered (use --driver nats or jetstream)" };
  if (data.length < 9) return undefined; // a frame header is 9 bytes
  if (data[3] === H2_FRAME_SETTINGS && data.readUInt32BE(5) === 0) return { ok: true };
  return { ok: false, kind: "not-grpc", why: `not a gRPC server: it answered the HTTP/2 preface with ${describeBytes(data)}` };
}

function rawProbe(target: string, protocol: ProbeProtocol, timeoutMs: number, tls: LoadedTls | undefined): Promise<Verdict> {
  const { host, port } = splitHostPort(target);
  const clientTls = tls !== undefined;
  return new Promise((resolve) => {
    let connected = false;
    let received = Buffer.alloc(0);
    const onConnect = (): void => {
      connected = true;
      if (protocol === "grpc") socket.write(H2_PREFACE);
    };
    // gRPC over TLS: the handshake first, verified as the driver's channel will verify it.
    const socket: Socket =
      tls && protocol === "grpc"
        ? tlsConnect({ host, port, ALPNProtocols: ["h2"], ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}), ...(tls.serverName !== undefined ? { servername: tls.serverName } : isIp(host) ? {} : { servername: host }) }, onConnect)
        : tcpConnect({ host, port }, onConnect);
    const done = (v: Verdict): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => {
      if (!connected) done({ ok: false, kind: "timeout", why: `no TCP connection within ${timeoutMs} ms (--connect-timeout)` });
      else if (received.length === 0) {
        done({ ok: false, kind: protocol === "grpc" ? "not-grpc" : "not-nats", why: `accepted the connection but sent nothing within ${timeoutMs} ms: not a ${protocol === "grpc" ? "gRPC" : "NATS"} server` });
      } else done(classifyAnswer(protocol, received, clientTls) ?? { ok: false, kind: protocol === "grpc" ? "not-grpc" : "not-nats", why: `incomplete answer ${describeBytes(received)} within ${timeoutMs} ms` });
    }, timeoutMs);
    socket.on("data", (d: Buffer) => {
      received = Buffer.concat([received, d]);
      const v = classifyAnswer(protocol, received, clientTls);
      if (v) done(v);
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNREFUSED") done({ ok: false, kind: "refused", why: "connection refused (nothing listens on that port)" });
      else if (clientTls && protocol === "grpc" && !connected) done({ ok: false, kind: "tls", why: `TLS handshake failed: ${err.message}${err.code ? ` (${err.code})` : ""}` });
      else if (!connected) done({ ok: false, kind: "other", why: `cannot connect: ${err.message}` });
      else done(classifyAnswer(protocol, received, clientTls) ?? { ok: false, kind: "closed", why: `the connection failed before an answer: ${err.message}` });
    });
    socket.on("close", () => {
      done(classifyAnswer(protocol, received, clientTls) ?? { ok: false, kind: "closed", why: `the server closed the connection without a ${protocol === "grpc" ? "gRPC (HTTP/2)" : "NATS INFO"} answer` });
    });
  });
}

/** Whether a TLS handshake succeeds at the target (certificate not checked: only "is it TLS"). */
function speaksTls(target: string, timeoutMs: number): Promise<boolean> {
  const { host, port } = splitHostPort(target);
  return new Promise((resolve) => {
    const s = tlsConnect({ host, port, rejectUnauthorized: false, ALPNProtocols: ["h2"] }, () => finish(true));
    const timer = setTimeout(() => finish(false), timeoutMs);
    function finish(yes: boolean): void {
      clearTimeout(timer);
      s.destroy();
      resolve(yes);
    }
    s.on("error", () => finish(false));
  });
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}

function parseInfo(json: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function firstLine(data: Buffer): string {
  const nl = data.indexOf(0x0a);
  return data.subarray(0, nl < 0 ? Math.min(80, data.length) : Math.min(nl, 80)).toString("latin1").trim();
}

function describeBytes(data: Buffer): string {
  const head = data.subarray(0, 16);
  const printable = head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f));
  return printable ? JSON.stringify(firstLine(data)) : `bytes ${head.toString("hex").replace(/(..)/g, "$1 ").trim()}`;
}
