/**
 * The generator's NATS core client against a real nats-server (loopback), through the fault
 * proxy where a connection must break: publishes reach a subscriber with their bytes; a payload
 * above the server's max_payload is refused by the client, naming the limit; after a cut the
 * client reconnects, sends its subscription again, and what was published while it was away
 * arrives, and a flush waiting at the cut resolves; a connection that cannot come back gives up
 * with ReconnectGaveUpError; without a policy a cut closes the connection and fails the flush.
 * Needs `nats-server` on PATH (`npm test` installs it as root).
 */
import { once } from "node:events";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultProxy, type FaultProxy } from "../faults/index.js";
import { NatsCoreConnection, type NatsCoreOptions } from "./nats-core-client.js";
import { startNatsServer, type EmbeddedNatsServer } from "./nats-server.js";
import { splitHostPort } from "./probe.js";
import { ReconnectGaveUpError } from "./reconnect.js";

let server: EmbeddedNatsServer;
const conns: NatsCoreConnection[] = [];
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  server = await startNatsServer();
}, 60_000);

afterAll(async () => {
  await Promise.all(conns.map((c) => c.close()));
  await Promise.all(proxies.map((p) => p.close()));
  await server?.stop();
});

async function open(address: string, extra: Partial<NatsCoreOptions> = {}): Promise<NatsCoreConnection> {
  const c = await NatsCoreConnection.open({ target: address, ...splitHostPort(address), name: "test", timeoutMs: 5000, nowMs: () => Date.now(), ...extra });
  conns.push(c);
  return c;
}

/** Resolves when `n` messages arrived; the payloads as text. */
function receiver(n: number): { got: string[]; done: Promise<void>; handler: (buf: Uint8Array, s: number, e: number) => void } {
  const got: string[] = [];
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return {
    got,
    done,
    handler: (buf, s, e) => {
      got.push(Buffer.from(buf.subarray(s, e)).toString());
      if (got.length === n) resolve();
    },
  };
}

const texts = (tag: string, n: number): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.from(`${tag}-${i}`));
const subject = (): string => `t.${Math.random().toString(36).slice(2, 8)}`;

describe("NatsCoreConnection", () => {
  it("delivers what is published, in order, with its bytes", async () => {
    const sub = await open(server.address);
    const pub = await open(server.address);
    const s = subject();
    const r = receiver(2500);
    sub.subscribe(s, r.handler);
    await sub.flush();
    for (let b = 0; b < 25; b++) pub.publish(s, texts(`b${b}`, 100));
    await pub.flush();
    await r.done;
    expect(r.got).toEqual(Array.from({ length: 25 }, (_, b) => texts(`b${b}`, 100).map(String)).flat());
  });

  it("refuses a payload above the server's max_payload, naming the limit", async () => {
    const pub = await open(server.address);
    expect(pub.maxPayload).toBeGreaterThan(0);
    expect(() => pub.publish(subject(), [Buffer.alloc(pub.maxPayload + 1)])).toThrow(/exceeds the NATS server's max_payload/);
    await pub.flush(); // the connection is still usable
  });

  it("after a cut reconnects, sends its subscription again and delivers what was published meanwhile", async () => {
    const proxy = await startFaultProxy({ target: splitHostPort(server.address) });
    proxies.push(proxy);
    const via = `${proxy.host}:${proxy.port}`;
    const policy = { initialDelayMs: 50, maxDelayMs: 200, giveUpMs: 10_000 };
    const sub = await open(via, { policy });
    const pub = await open(server.address);
    const s = subject();
    const r = receiver(20);
    sub.subscribe(s, r.handler);
    await sub.flush();
    const reconnected = new Promise<void>((resolve) => sub.onReconnected(resolve));
    proxy.cut();
    // A flush asked for while the connection is down resolves once it is back.
    const flushed = sub.flush();
    await reconnected;
    await flushed;
    pub.publish(s, texts("after", 20));
    await pub.flush();
    await r.done;
    expect(r.got).toEqual(texts("after", 20).map(String));
  });

  it("publishes held while reconnecting are sent once the connection is back", async () => {
    const proxy = await startFaultProxy({ target: splitHostPort(server.address) });
    proxies.push(proxy);
    const pub = await open(`${proxy.host}:${proxy.port}`, { policy: { initialDelayMs: 100, maxDelayMs: 200, giveUpMs: 10_000 } });
    const sub = await open(server.address);
    const s = subject();
    const r = receiver(10);
    sub.subscribe(s, r.handler);
    await sub.flush();
    const disconnected = new Promise<void>((resolve) => pub.onDisconnected(resolve));
    const reconnected = new Promise<void>((resolve) => pub.onReconnected(resolve));
    proxy.cut();
    await disconnected;
    pub.publish(s, texts("held", 10));
    await reconnected;
    await pub.flush();
    await r.done;
    expect(r.got).toEqual(texts("held", 10).map(String));
  });

  it("gives up with ReconnectGaveUpError when the server does not come back", async () => {
    const proxy = await startFaultProxy({ target: splitHostPort(server.address) });
    proxies.push(proxy);
    const c = await open(`${proxy.host}:${proxy.port}`, { policy: { initialDelayMs: 20, maxDelayMs: 50, giveUpMs: 500 } });
    // A port nothing listens on: every reconnect attempt is refused.
    const closedPort = createServer();
    closedPort.listen(0, "127.0.0.1");
    await once(closedPort, "listening");
    const port = (closedPort.address() as { port: number }).port;
    await new Promise<void>((resolve) => closedPort.close(() => resolve()));
    proxy.retarget({ host: "127.0.0.1", port });
    const closed = new Promise<Error | undefined>((resolve) => c.onClosed(resolve));
    proxy.cut();
    const err = await closed;
    expect(err).toBeInstanceOf(ReconnectGaveUpError);
    await expect(c.flush()).rejects.toThrow(/closed/);
  });

  it("without a policy a cut closes the connection and fails the flush waiting for its PONG", async () => {
    const proxy = await startFaultProxy({ target: splitHostPort(server.address) });
    proxies.push(proxy);
    const c = await open(`${proxy.host}:${proxy.port}`);
    proxy.stall(true);
    const flushed = c.flush();
    const closed = new Promise<Error | undefined>((resolve) => c.onClosed(resolve));
    proxy.cut();
    expect(await closed).toBeInstanceOf(Error);
    await expect(flushed).rejects.toThrow();
  });
});
