/**
 * A pool of gRPC clients, each on its own HTTP/2 connection (`grpc.use_local_subchannel_pool`:
 * grpc-js otherwise shares one connection per target). Streams and publishers are spread over
 * the pool by index.
 */
import * as grpc from "@grpc/grpc-js";
import type { Clock } from "../clock.js";
import { BrokerConnectError } from "../errors.js";
import { probeBroker } from "./probe.js";
import type { ReconnectPolicy } from "./reconnect.js";
import { grpcSecurity, type DriverSecurity, type LoadedTls } from "./security.js";

/** The largest message a client takes (grpc-js channels and the Consume client alike). */
export const MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024 * 1024;
/** With reconnect on: a connection is pinged this often and dropped when a ping goes unanswered as long. */
export const KEEPALIVE_MS = 2000;

export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.use_local_subchannel_pool": 1,
  "grpc.max_receive_message_length": MAX_RECEIVE_MESSAGE_BYTES,
  "grpc.max_send_message_length": 64 * 1024 * 1024,
  "grpc.keepalive_permit_without_calls": 0,
};

/**
 * Channel options when the driver rides through faults: grpc-js's own reconnect backoff follows
 * the policy (its default starts at 1 s and grows to 120 s), and keepalive pings find a
 * connection that went silent (a partition) within a few seconds, failing its calls with
 * UNAVAILABLE so the driver retries them. Nothing changes without a policy.
 */
export function reconnectChannelOptions(policy: ReconnectPolicy | undefined): grpc.ChannelOptions {
  if (!policy) return {};
  return {
    "grpc.initial_reconnect_backoff_ms": policy.initialDelayMs,
    "grpc.max_reconnect_backoff_ms": policy.maxDelayMs,
    "grpc.keepalive_time_ms": KEEPALIVE_MS,
    "grpc.keepalive_timeout_ms": KEEPALIVE_MS,
  };
}

export class ClientPool<C extends grpc.Client> {
  readonly clients: C[];
  /** The TLS files the channels were built with (read once), for other connections to the same broker. */
  readonly tls: LoadedTls | undefined;
  /** `security`: TLS files and token (security.ts); read here, once. */
  constructor(make: (credentials: grpc.ChannelCredentials, options: grpc.ClientOptions) => C, size: number, security?: DriverSecurity) {
    const { credentials, options, tls } = grpcSecurity(security);
    this.tls = tls;
    this.clients = Array.from({ length: Math.max(1, size) }, () => make(credentials, { ...CHANNEL_OPTIONS, ...options }));
  }

  at(i: number): C {
    return this.clients[i % this.clients.length]!;
  }

  /**
   * Probe the target (probe.ts: refused, not gRPC, TLS, ... at once), then wait until every
   * channel is connected; throws BrokerConnectError naming the cause.
   */
  async ready(target: string, timeoutMs: number, clock: Clock): Promise<void> {
    const deadline = clock.wallMs() + timeoutMs;
    await probeBroker(target, "grpc", timeoutMs, this.tls);
    await Promise.all(
      this.clients.map(
        (c) =>
          new Promise<void>((resolve, reject) =>
            c.waitForReady(deadline, (err) => (err ? reject(new BrokerConnectError(target, "timeout", `channels not ready within ${timeoutMs} ms: ${err.message}`, { cause: err })) : resolve())),
          ),
      ),
    );
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}

/** Promise wrapper for a callback-style unary call. */
export function unary<Res>(fn: (cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn((err, res) => (err ? reject(err) : resolve(res)));
  });
}

export function isStatus(err: unknown, code: grpc.status): boolean {
  return typeof err === "object" && err !== null && "code" in err && (err as grpc.ServiceError).code === code;
}
