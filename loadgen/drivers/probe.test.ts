import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { selfSignedCertificate } from "../../test/support/index.js";
import { systemClock } from "../clock.js";
import { BrokerConnectError, exitCodeFor, EXIT_BAD_INPUT } from "../errors.js";
import type { DriverContext } from "./driver.js";
import { classifyAnswer, probeBroker } from "./probe.js";
import { natsDriver } from "./nats.js";
import { ratatoskrDriver } from "./ratatoskr-v2.js";

const TIMEOUT_MS = 500;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<string> {
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  closers.push(
    () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

/** A port that was just free: listened on, then closed. */
async function closedPort(): Promise<string> {
  const s = createServer();
  const target = await new Promise<string>((r) => s.listen(0, "127.0.0.1", () => r(`127.0.0.1:${(s.address() as AddressInfo).port}`)));
  await new Promise<void>((r) => s.close(() => r()));
  return target;
}

const garbageServer = () => listen(createServer((s) => s.end(Buffer.from("\x01\x02garbage that is no protocol\n", "latin1"))));
const silentServer = () => listen(createServer(() => undefined));
const http1Server = () => listen(createHttpServer((_req, res) => res.end("hello")));
const natsLikeServer = (info: object) => listen(createServer((s) => s.write(`INFO ${JSON.stringify(info)}\r\n`)));

async function grpcServer(): Promise<string> {
  const server = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  closers.push(() => new Promise((r) => server.tryShutdown(() => r())));
  return `127.0.0.1:${port}`;
}

async function kindOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    expect(err).toBeInstanceOf(BrokerConnectError);
    expect(exitCodeFor(err)).toBe(EXIT_BAD_INPUT);
    return (err as BrokerConnectError).kind;
  }
}

function context(target: string): DriverContext {
  return { target, connections: 1, maxOutstandingMessages: 10, connectTimeoutMs: TIMEOUT_MS, broker: { storage: "memory", fsync: false, args: [] }, clock: systemClock };
}

describe("connect probe", () => {
  it("says refused for a closed port, for both protocols", async () => {
    const target = await closedPort();
    expect(await kindOf(probeBroker(target, "grpc", TIMEOUT_MS))).toBe("refused");
    expect(await kindOf(probeBroker(target, "nats", TIMEOUT_MS))).toBe("refused");
  });

  it("says not gRPC / not NATS for a TCP server that writes garbage", async () => {
    const target = await garbageServer();
    expect(await kindOf(probeBroker(target, "grpc", TIMEOUT_MS))).toBe("not-grpc");
    expect(await kindOf(probeBroker(target, "nats", TIMEOUT_MS))).toBe("not-nats");
  });

  it("says not gRPC for an HTTP/1 server, and names it", async () => {
    const target = await http1Server();
    const err = await probeBroker(target, "grpc", TIMEOUT_MS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerConnectError);
    expect((err as BrokerConnectError).kind).toBe("not-grpc");
    expect((err as Error).message).toContain("HTTP/1");
    expect((err as Error).message).toContain(target);
  });

  it("says not NATS for a server that accepts and stays silent, within the bound", async () => {
    expect(await kindOf(probeBroker(await silentServer(), "nats", TIMEOUT_MS))).toBe("not-nats");
  });

  it("accepts a gRPC server for grpc and refuses it for nats", async () => {
    const target = await grpcServer();
    expect(await kindOf(probeBroker(target, "grpc", TIMEOUT_MS))).toBe("ok");
    expect(await kindOf(probeBroker(target, "nats", TIMEOUT_MS))).toBe("not-nats");
  });

  it("accepts a NATS INFO line and returns it; says tls when the server requires TLS", async () => {
    const target = await natsLikeServer({ server_id: "x", jetstream: true });
    expect(await probeBroker(target, "nats", TIMEOUT_MS)).toMatchObject({ jetstream: true });
    expect(await kindOf(probeBroker(await natsLikeServer({ tls_required: true }), "nats", TIMEOUT_MS))).toBe("tls");
    expect(await kindOf(probeBroker(target, "grpc", TIMEOUT_MS))).toBe("not-grpc");
  });

  it("says tls for a real TLS server answering a plaintext gRPC client, within its bound", async () => {
    // A throwaway self-signed certificate from the test kit (openssl, provided by scripts/test-deps.sh).
    const dir = mkdtempSync(join(tmpdir(), "probe-tls-"));
    try {
      const { key, cert } = selfSignedCertificate(dir);
      const server = createTlsServer({ key, cert }, (socket) => socket.end());
      server.on("tlsClientError", () => undefined); // the plaintext client's bytes are not a handshake
      const target = await listen(server as unknown as Server);
      expect(await kindOf(probeBroker(target, "grpc", TIMEOUT_MS))).toBe("tls");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads a TLS alert or handshake record as a TLS server", () => {
    expect(classifyAnswer("grpc", Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]))).toMatchObject({ ok: false, kind: "tls" });
    expect(classifyAnswer("nats", Buffer.from([0x16, 0x03, 0x03, 0x00, 0x30]))).toMatchObject({ ok: false, kind: "tls" });
  });
});

describe("drivers classify a wrong target at connect", () => {
  it("nats driver against a gRPC server: not NATS, no hang", async () => {
    const driver = natsDriver.create(context(await grpcServer()), {});
    const err = await driver.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerConnectError);
    expect((err as BrokerConnectError).kind).toBe("not-nats");
    expect((err as Error).message).toContain("HTTP/2");
    await driver.close();
  });

  it("ratatoskr driver against a closed port: refused; against an HTTP/1 server: not gRPC", async () => {
    const refused = ratatoskrDriver.create(context(await closedPort()), {});
    expect(await kindOf(refused.connect())).toBe("refused");
    await refused.close();
    const http = ratatoskrDriver.create(context(await http1Server()), {});
    expect(await kindOf(http.connect())).toBe("not-grpc");
    await http.close();
  });
});

describe("the probe of a client configured for TLS", () => {
  const info = (fields: Record<string, unknown>) => Buffer.from(`INFO ${JSON.stringify({ server_id: "x", ...fields })}\r\n`);

  it("accepts a NATS server that requires or offers TLS, and names one that offers none", () => {
    expect(classifyAnswer("nats", info({ tls_required: true }), true)).toMatchObject({ ok: true });
    expect(classifyAnswer("nats", info({ tls_available: true }), true)).toMatchObject({ ok: true });
    expect(classifyAnswer("nats", info({}), true)).toMatchObject({ ok: false, kind: "tls", why: expect.stringMatching(/does not offer TLS/) });
  });

  it("still refuses a plaintext client at a NATS server that requires TLS", () => {
    expect(classifyAnswer("nats", info({ tls_required: true }), false)).toMatchObject({ ok: false, kind: "tls", why: expect.stringMatching(/requires TLS/) });
  });
});
