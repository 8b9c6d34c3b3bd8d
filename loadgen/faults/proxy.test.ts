import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Waiters } from "../../test/support/index.js";
import { systemClock } from "../clock.js";
import { startFaultProxy, type FaultProxy } from "./proxy.js";

/** A loopback upstream that records what each accepted connection received, and when. */
interface Upstream {
  port: number;
  conns: Array<{ socket: net.Socket; received: string; arrivals: Array<{ atUs: number; text: string }>; error?: string; closed: boolean }>;
  waiters: Waiters;
  close(): Promise<void>;
}

async function startUpstream(opts: { echo?: boolean } = {}): Promise<Upstream> {
  const waiters = new Waiters();
  const conns: Upstream["conns"] = [];
  const server = net.createServer((socket) => {
    const c: Upstream["conns"][number] = { socket, received: "", arrivals: [], closed: false };
    conns.push(c);
    socket.on("data", (d: Buffer) => {
      c.received += d.toString();
      c.arrivals.push({ atUs: systemClock.nowUs(), text: d.toString() });
      if (opts.echo) socket.write(d);
      waiters.notify();
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      c.error = e.code ?? e.message;
      waiters.notify();
    });
    socket.on("close", () => {
      c.closed = true;
      waiters.notify();
    });
    waiters.notify();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    waiters,
    close: async () => {
      for (const c of conns) c.socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A client through the proxy that records what it received and how it ended. */
function connectClient(proxy: FaultProxy, waiters: Waiters) {
  const socket = net.connect(proxy.port, proxy.host);
  const state = { socket, received: "", arrivals: [] as Array<{ atUs: number; text: string }>, error: undefined as string | undefined, ended: false, closed: false };
  socket.on("data", (d: Buffer) => {
    state.received += d.toString();
    state.arrivals.push({ atUs: systemClock.nowUs(), text: d.toString() });
    waiters.notify();
  });
  socket.on("error", (e: NodeJS.ErrnoException) => {
    state.error = e.code ?? e.message;
    waiters.notify();
  });
  socket.on("end", () => {
    state.ended = true;
    socket.end();
    waiters.notify();
  });
  socket.on("close", () => {
    state.closed = true;
    waiters.notify();
  });
  socket.on("connect", () => waiters.notify());
  return state;
}

describe("fault proxy", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(opts: { echo?: boolean } = {}) {
    const upstream = await startUpstream(opts);
    const waiters = upstream.waiters;
    const chunks: Array<{ direction: string; bytes: number; fate: string }> = [];
    const proxy = await startFaultProxy({
      target: { host: "127.0.0.1", port: upstream.port },
      onChunk: (c) => {
        chunks.push(c);
        waiters.notify();
      },
    });
    cleanups.push(() => upstream.close(), () => proxy.close());
    return { upstream, proxy, waiters, chunks };
  }

  it("forwards bytes both ways and counts open connections", async () => {
    const { upstream, proxy, waiters } = await setup({ echo: true });
    const client = connectClient(proxy, waiters);
    client.socket.write("hello");
    await waiters.until(() => client.received === "hello", () => `echo, got "${client.received}"`);
    expect(upstream.conns[0]?.received).toBe("hello");
    expect(proxy.openConnections()).toBe(1);
    client.socket.end();
    await waiters.until(() => client.closed && proxy.openConnections() === 0, () => `close, open ${proxy.openConnections()}`);
  });

  it("stall holds bytes in both directions and releases them in order", async () => {
    const { upstream, proxy, waiters, chunks } = await setup({ echo: true });
    const client = connectClient(proxy, waiters);
    client.socket.write("a");
    await waiters.until(() => client.received === "a", "the first echo");
    proxy.stall(true);
    for (const part of ["b", "c", "d"]) client.socket.write(part);
    await waiters.until(() => chunks.filter((c) => c.direction === "up").reduce((n, c) => n + c.bytes, 0) >= 4, "all 3 held bytes read by the proxy");
    // The stall's duration is what is under test (not a synchronisation): 150 ms in which the
    // held bytes, already read by the proxy, must not reach the upstream.
    await new Promise<void>((r) => setTimeout(r, 150));
    const releasedAtUs = systemClock.nowUs();
    expect(upstream.conns[0]?.received).toBe("a");
    proxy.stall(false);
    await waiters.until(() => client.received === "abcd", () => `released echo, got "${client.received}"`);
    expect(upstream.conns[0]?.received).toBe("abcd");
    const late = upstream.conns[0]!.arrivals.filter((a) => a.text !== "a");
    expect(late.length).toBeGreaterThan(0);
    for (const a of late) expect(a.atUs).toBeGreaterThanOrEqual(releasedAtUs);
    expect(client.error).toBeUndefined();
  });

  it("stall holds the broker's replies too", async () => {
    const { upstream, proxy, waiters, chunks } = await setup();
    const client = connectClient(proxy, waiters);
    client.socket.write("x");
    await waiters.until(() => upstream.conns[0]?.received === "x", "upstream to get x");
    proxy.stall(true);
    upstream.conns[0]!.socket.write("reply");
    await waiters.until(() => chunks.some((c) => c.direction === "down" && c.fate === "queued"), "the proxy to read the reply");
    await new Promise<void>((r) => setTimeout(r, 100));
    expect(client.received).toBe("");
    const releasedAtUs = systemClock.nowUs();
    proxy.stall(false);
    await waiters.until(() => client.received === "reply", "the held reply");
    expect(client.arrivals[0]!.atUs).toBeGreaterThanOrEqual(releasedAtUs);
  });

  it("cut resets every open connection on both sides and accepts new ones", async () => {
    const { upstream, proxy, waiters } = await setup({ echo: true });
    const a = connectClient(proxy, waiters);
    const b = connectClient(proxy, waiters);
    a.socket.write("1");
    b.socket.write("2");
    await waiters.until(() => a.received === "1" && b.received === "2", "both echoes");
    proxy.cut();
    await waiters.until(() => a.closed && b.closed && upstream.conns.every((c) => c.closed), "every side to close");
    expect(a.error).toBe("ECONNRESET");
    expect(b.error).toBe("ECONNRESET");
    expect(upstream.conns.map((c) => c.error)).toEqual(["ECONNRESET", "ECONNRESET"]);
    expect(proxy.openConnections()).toBe(0);
    const c = connectClient(proxy, waiters);
    c.socket.write("3");
    await waiters.until(() => c.received === "3", "an echo on a new connection");
  });

  it("partition drops bytes without resetting, leaves new connections silent, and closes lossy connections at heal", async () => {
    const { upstream, proxy, waiters, chunks } = await setup({ echo: true });
    const lossy = connectClient(proxy, waiters);
    const idle = connectClient(proxy, waiters);
    lossy.socket.write("before");
    idle.socket.write("i");
    await waiters.until(() => lossy.received === "before" && idle.received === "i", "echoes before the partition");
    proxy.partition(true);
    lossy.socket.write("lost");
    const late = connectClient(proxy, waiters);
    await waiters.until(() => chunks.some((c) => c.fate === "dropped" && c.bytes === 4), "the proxy to drop the bytes");
    await waiters.until(() => proxy.openConnections() === 3, "the connection made during the partition to be accepted");
    // During the partition: nothing forwarded, nobody reset, the late connection has no upstream.
    expect(upstream.conns.length).toBe(2);
    expect(upstream.conns[0]!.received).toBe("before");
    expect(lossy.closed || idle.closed || late.closed).toBe(false);
    expect(lossy.error ?? idle.error ?? late.error).toBeUndefined();
    proxy.partition(false);
    await waiters.until(() => lossy.closed && upstream.conns[0]!.closed, "the lossy connection to close at heal");
    expect(lossy.error).toBeUndefined(); // a close (FIN), not a reset
    expect(lossy.ended).toBe(true);
    expect(upstream.conns[0]!.received).toBe("before");
    // The idle connection lost nothing and carries on; the late one is dialled at heal.
    idle.socket.write("j");
    late.socket.write("k");
    await waiters.until(() => idle.received === "ij" && late.received === "k", () => `after heal: idle "${idle.received}", late "${late.received}"`);
    expect(upstream.conns.length).toBe(3);
  });

  it("latency delays each direction by at least the delay and keeps order", async () => {
    const { upstream, proxy, waiters } = await setup({ echo: true });
    const client = connectClient(proxy, waiters);
    client.socket.write("warm");
    await waiters.until(() => client.received === "warm", "the first echo");
    const delayMs = 80;
    proxy.setLatencyMs(delayMs);
    const sentAtUs = systemClock.nowUs();
    for (let i = 0; i < 10; i++) client.socket.write(String(i));
    await waiters.until(() => client.received === "warm0123456789", () => `delayed echoes, got "${client.received}"`);
    const up = upstream.conns[0]!.arrivals.filter((a) => a.text !== "warm");
    const firstUpUs = up[0]!.atUs;
    expect(firstUpUs - sentAtUs).toBeGreaterThanOrEqual(delayMs * 1000);
    const down = client.arrivals.filter((a) => a.text !== "warm");
    // The upstream echoed at once on arrival; the echo is delayed again on the way back.
    expect(down[0]!.atUs - firstUpUs).toBeGreaterThanOrEqual(delayMs * 1000);
    expect(down[0]!.atUs - sentAtUs).toBeGreaterThanOrEqual(2 * delayMs * 1000);
    proxy.setLatencyMs(0);
    expect(() => proxy.setLatencyMs(-1)).toThrow(/latency/);
  });

  it("retarget sends later connections to the new upstream and leaves open ones", async () => {
    const { upstream, proxy, waiters } = await setup({ echo: true });
    const second = await startUpstream({ echo: true });
    cleanups.push(() => second.close());
    const old = connectClient(proxy, waiters);
    old.socket.write("o");
    await waiters.until(() => old.received === "o", "echo from the first upstream");
    proxy.retarget({ host: "127.0.0.1", port: second.port });
    const fresh = connectClient(proxy, new Waiters());
    const w2 = second.waiters;
    fresh.socket.on("data", () => w2.notify());
    fresh.socket.write("n");
    await w2.until(() => fresh.received === "n", "echo from the second upstream");
    old.socket.write("p");
    await waiters.until(() => old.received === "op", "the old connection still on the first upstream");
    expect(upstream.conns.map((c) => c.received)).toEqual(["op"]);
    expect(second.conns.map((c) => c.received)).toEqual(["n"]);
  });

  it("resets the client when the upstream refuses the connection", async () => {
    const { upstream, proxy, waiters } = await setup();
    await upstream.close();
    const client = connectClient(proxy, waiters);
    client.socket.write("x");
    await waiters.until(() => client.closed, "the client to be closed");
    expect(client.error).toBe("ECONNRESET");
  });

  it("refuses a non-loopback address", async () => {
    await expect(startFaultProxy({ target: { host: "10.0.0.1", port: 1 } })).rejects.toThrow(/loopback/);
  });
});
