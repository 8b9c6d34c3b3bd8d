/**
 * The nats.js connections of the `jetstream` driver (nats-connections.ts: publishers pick one by
 * their channel hint, consumers by slot). Without a reconnect policy reconnect is off: a
 * connection the server drops (slow consumer, shutdown) ends its subscriptions with an error the
 * run reports. With one (faults), nats.js reconnects, waiting
 * the policy's backoff before each attempt (reconnect.ts), and re-sends its subscriptions; what
 * the server published while a subscriber was away is lost to it, and the accounting says so.
 * A connection that stays down past the give-up deadline is closed, which ends its
 * subscriptions with a ReconnectGaveUpError.
 */
import { connect, Events, type NatsConnection } from "nats";
import { systemClock } from "../clock.js";
import { BrokerConnectError, BrokerUnreachableError } from "../errors.js";
import { probeBroker } from "./probe.js";
import { NatsConnections } from "./nats-connections.js";
import { Backoff, ReconnectGaveUpError, type ReconnectPolicy } from "./reconnect.js";
import { natsSecurity, type DriverSecurity } from "./security.js";

export class NatsPool extends NatsConnections<NatsConnection> {
  private readonly security: ReturnType<typeof natsSecurity>;

  constructor(
    private readonly target: string,
    private readonly size: number,
    private readonly name: string,
    security?: DriverSecurity,
    private readonly policy?: ReconnectPolicy,
    private readonly nowMs: () => number = () => systemClock.wallMs(),
  ) {
    super();
    this.security = natsSecurity(security);
  }

  /** The server's INFO, as the probe read it at open(). */
  serverInfo: Record<string, unknown> | undefined;

  /**
   * Probe the target (probe.ts: refused, not NATS, TLS, ... at once), then open the
   * connections, each bounded by `timeoutMs`; throws BrokerConnectError naming the cause.
   */
  async open(timeoutMs: number): Promise<void> {
    const [host, port] = splitTarget(this.target);
    this.serverInfo = await probeBroker(this.target, "nats", timeoutMs, this.security.loaded);
    for (let i = 0; i < this.size; i++) {
      let nc: NatsConnection;
      const policy = this.policy;
      const backoff = policy ? new Backoff(policy, this.nowMs) : undefined;
      let gaveUp: ReconnectGaveUpError | undefined;
      const ref: { nc?: NatsConnection } = {};
      const reconnecting = backoff
        ? {
            reconnect: true,
            maxReconnectAttempts: -1,
            reconnectDelayHandler: () => {
              const wait = backoff.failed();
              if (wait !== undefined) return wait;
              gaveUp ??= new ReconnectGaveUpError(`NATS connection ${i} to ${this.target}`, backoff.outageMs());
              void ref.nc?.close();
              return 60_000;
            },
          }
        : { reconnect: false };
      try {
        nc = await withTimeout(this.target, timeoutMs, connect({
          servers: `${host}:${port}`,
          name: `${this.name}-${i}`,
          timeout: timeoutMs,
          ...reconnecting,
          // nats.js builds an Error per request for async stack traces unless told not to.
          noAsyncTraces: true,
          ignoreClusterUpdates: true,
          pingInterval: 60_000,
          // TLS and token: the only security options, so a nats.js migration carries them as they are.
          ...(this.security.tls ? { tls: this.security.tls } : {}),
          ...(this.security.token !== undefined ? { token: this.security.token } : {}),
        }));
      } catch (err) {
        if (err instanceof BrokerConnectError) throw err;
        throw new BrokerUnreachableError(this.target, err instanceof Error ? err.message : String(err), { cause: err });
      }
      const index = i;
      ref.nc = nc;
      this.conns.push(nc);
      void nc.closed().then((err) => this.closed(index, gaveUp ?? err ?? new Error("connection closed by the server")));
      if (backoff) {
        void (async () => {
          for await (const st of nc.status()) {
            if (st.type !== Events.Reconnect) continue;
            backoff.succeeded();
            this.reconnected(index);
          }
        })().catch(() => undefined);
      }
    }
  }
}

export function splitTarget(target: string): [string, number] {
  const i = target.lastIndexOf(":");
  return [target.slice(0, i), Number(target.slice(i + 1))];
}

/** nats.js's own `timeout` bounds the TCP connect, not the handshake: bound the whole of it. */
function withTimeout(target: string, timeoutMs: number, p: Promise<NatsConnection>): Promise<NatsConnection> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(new BrokerConnectError(target, "timeout", `NATS handshake not done within ${timeoutMs} ms (--connect-timeout)`));
    }, timeoutMs);
  });
  // A connection that completes after the bound is closed, not leaked.
  void p.then((nc) => (late ? nc.close() : undefined)).catch(() => undefined);
  return Promise.race([p, bound]).finally(() => clearTimeout(timer));
}
