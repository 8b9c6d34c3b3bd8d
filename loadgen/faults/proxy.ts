/**
 * The harness's TCP fault proxy: a user-space relay on loopback between the generator and the
 * broker, which makes the network faults of docs/faults.md (there is no netem on this machine).
 * Every client connection gets its own upstream connection; bytes flow through one ordered queue
 * per direction, so a stall, a latency step and a release never reorder bytes.
 *
 * What a user-space proxy cannot do: it terminates TCP on both sides, so it cannot hold bytes in
 * flight the way a lossy link does (the kernel acknowledged them already), cannot make SYNs go
 * unanswered (the listening socket accepts), and cannot drop single packets of a stream without
 * breaking the framing above it. docs/faults.md, "What the proxy can and cannot simulate".
 */
import net from "node:net";
import { systemClock, type Clock } from "../clock.js";

export interface FaultProxy {
  /** The address clients connect to (127.0.0.1 unless `listenHost` said otherwise). */
  readonly host: string;
  readonly port: number;
  /** Resets (TCP RST) every open connection, both sides, once; new connections are accepted. */
  cut(): void;
  /** Holds all bytes in both directions; on release they are forwarded in order. */
  stall(on: boolean): void;
  /**
   * A black hole: nothing is forwarded, nothing is reset, new connections are accepted and get
   * no upstream. Bytes sent meanwhile are dropped. At heal, every connection that lost a byte is
   * closed on both sides (its stream is corrupt), as a real partition ends for a connection when
   * its keepalive gives up; connections that lost nothing carry on.
   */
  partition(on: boolean): void;
  /** A fixed delay added to each direction for bytes arriving from now on (0 = off); order kept. */
  setLatencyMs(ms: number): void;
  /** Later connections go to this upstream (a broker restarted on another port); open ones stay. */
  retarget(target: { host: string; port: number }): void;
  openConnections(): number;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  target: { host: string; port: number };
  /** Loopback only: 127.0.0.1 (default) or ::1 or another 127/8 address. */
  listenHost?: string;
  /** The run clock, for latency due times (loadgen/clock.ts); the system clock by default. */
  clock?: Clock;
  /** Told of every chunk the proxy reads: queued for forwarding (possibly held) or dropped. */
  onChunk?: (chunk: { direction: "up" | "down"; bytes: number; fate: "queued" | "dropped" }) => void;
}

/** Above this many queued bytes in one direction the source socket is paused (back-pressure). */
const QUEUE_HIGH_WATER_BYTES = 4 * 1024 * 1024;

interface Chunk {
  data: Buffer | null; // null: the source ended (half-close), forward the FIN in order
  dueUs: number;
}

/** One direction of one connection: source → queue → destination. */
class Lane {
  readonly queue: Chunk[] = [];
  queuedBytes = 0;
  lastDueUs = 0;
  timer: NodeJS.Timeout | null = null;
  constructor(
    readonly src: net.Socket,
    readonly dst: net.Socket,
  ) {}
}

class Relay {
  readonly up: Lane; // client → broker
  readonly down: Lane; // broker → client
  lostBytes = false;
  /** Accepted during a partition: the upstream is not dialled until heal. */
  pendingDial: boolean;
  closed = false;
  constructor(
    readonly client: net.Socket,
    readonly upstream: net.Socket,
    pendingDial: boolean,
  ) {
    this.up = new Lane(client, upstream);
    this.down = new Lane(upstream, client);
    this.pendingDial = pendingDial;
  }
}

function isLoopback(host: string): boolean {
  return host === "::1" || host === "localhost" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const listenHost = opts.listenHost ?? "127.0.0.1";
  if (!isLoopback(listenHost)) throw new Error(`fault proxy: listenHost ${listenHost} is not a loopback address`);
  if (!isLoopback(opts.target.host)) throw new Error(`fault proxy: target host ${opts.target.host} is not a loopback address`);
  const clock = opts.clock ?? systemClock;
  let target = { ...opts.target };
  let stalled = false;
  let partitioned = false;
  let latencyUs = 0;
  let closing = false;
  const relays = new Set<Relay>();

  const pump = (relay: Relay, lane: Lane): void => {
    if (lane.timer) {
      clearTimeout(lane.timer);
      lane.timer = null;
    }
    if (relay.closed || stalled || relay.pendingDial) return;
    const now = clock.nowUs();
    while (lane.queue.length > 0) {
      const head = lane.queue[0]!;
      if (head.dueUs > now) {
        lane.timer = setTimeout(() => pump(relay, lane), Math.max(1, Math.ceil((head.dueUs - now) / 1000)));
        return;
      }
      lane.queue.shift();
      if (head.data === null) {
        lane.dst.end();
        continue;
      }
      lane.queuedBytes -= head.data.length;
      lane.dst.write(head.data);
    }
    if (lane.queuedBytes < QUEUE_HIGH_WATER_BYTES && lane.src.isPaused()) lane.src.resume();
  };

  const enqueue = (relay: Relay, lane: Lane, data: Buffer | null): void => {
    if (relay.closed) return;
    const direction = lane === relay.up ? "up" : "down";
    if (partitioned) {
      if (data !== null && data.length > 0) {
        relay.lostBytes = true;
        opts.onChunk?.({ direction, bytes: data.length, fate: "dropped" });
      }
      return;
    }
    if (data !== null) opts.onChunk?.({ direction, bytes: data.length, fate: "queued" });
    const dueUs = Math.max(clock.nowUs() + latencyUs, lane.lastDueUs);
    lane.lastDueUs = dueUs;
    lane.queue.push({ data, dueUs });
    if (data) lane.queuedBytes += data.length;
    if (lane.queuedBytes >= QUEUE_HIGH_WATER_BYTES) lane.src.pause();
    pump(relay, lane);
  };

  const finish = (relay: Relay, how: "reset" | "close"): void => {
    if (relay.closed) return;
    relay.closed = true;
    for (const lane of [relay.up, relay.down]) if (lane.timer) clearTimeout(lane.timer);
    relays.delete(relay);
    for (const s of [relay.client, relay.upstream]) {
      if (s.destroyed) continue;
      const neverDialled = s === relay.upstream && relay.pendingDial;
      if (how === "reset" && !s.connecting && !neverDialled) s.resetAndDestroy();
      else s.destroy();
    }
  };

  const wire = (relay: Relay): void => {
    const { client, upstream } = relay;
    client.on("data", (d: Buffer) => enqueue(relay, relay.up, d));
    upstream.on("data", (d: Buffer) => enqueue(relay, relay.down, d));
    client.on("end", () => enqueue(relay, relay.up, null));
    upstream.on("end", () => enqueue(relay, relay.down, null));
    upstream.on("connect", () => pump(relay, relay.up));
    // An error on one side (the broker died: ECONNRESET, or refused the dial) resets the other,
    // as a direct connection would have seen it.
    client.on("error", () => finish(relay, "reset"));
    upstream.on("error", () => finish(relay, "reset"));
    const onClose = (): void => {
      // Both sides closed (each FIN went through its lane in order): the relay is done.
      if (relay.closed) return;
      if (client.destroyed && (upstream.destroyed || relay.pendingDial)) finish(relay, "close");
      else if (client.destroyed) upstream.destroy();
    };
    client.on("close", onClose);
    upstream.on("close", onClose);
  };

  const dial = (): net.Socket => {
    const s = new net.Socket({ allowHalfOpen: true });
    s.setNoDelay(true);
    s.connect(target.port, target.host);
    return s;
  };

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    if (closing) {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    const pendingDial = partitioned;
    const upstream = pendingDial ? new net.Socket({ allowHalfOpen: true }) : dial();
    const relay = new Relay(client, upstream, pendingDial);
    relays.add(relay);
    wire(relay);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, listenHost, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;

  const heal = (): void => {
    for (const relay of [...relays]) {
      if (relay.lostBytes) {
        finish(relay, "close");
        continue;
      }
      if (relay.pendingDial) {
        relay.pendingDial = false;
        relay.upstream.setNoDelay(true);
        relay.upstream.connect(target.port, target.host);
      }
    }
  };

  return {
    host: listenHost,
    port: address.port,
    cut(): void {
      for (const relay of [...relays]) finish(relay, "reset");
    },
    stall(on: boolean): void {
      stalled = on;
      if (on) return;
      for (const relay of [...relays]) {
        pump(relay, relay.up);
        pump(relay, relay.down);
      }
    },
    partition(on: boolean): void {
      if (on === partitioned) return;
      partitioned = on;
      if (on) {
        // Bytes queued but not yet forwarded are lost too.
        for (const relay of relays) {
          for (const lane of [relay.up, relay.down]) {
            if (lane.queue.some((c) => c.data !== null && c.data.length > 0)) relay.lostBytes = true;
            lane.queue.length = 0;
            lane.queuedBytes = 0;
            if (lane.timer) clearTimeout(lane.timer);
            lane.timer = null;
            if (lane.src.isPaused()) lane.src.resume();
          }
        }
      } else heal();
    },
    setLatencyMs(ms: number): void {
      if (!Number.isFinite(ms) || ms < 0) throw new Error(`fault proxy: latency ${ms} ms must be a number ≥ 0`);
      latencyUs = ms * 1000;
    },
    retarget(next: { host: string; port: number }): void {
      if (!isLoopback(next.host)) throw new Error(`fault proxy: target host ${next.host} is not a loopback address`);
      target = { ...next };
    },
    openConnections(): number {
      return relays.size;
    },
    async close(): Promise<void> {
      closing = true;
      for (const relay of [...relays]) finish(relay, "close");
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
