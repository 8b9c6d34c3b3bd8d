import { constants, type ServerHttp2Stream } from "node:http2";
import { createServer, type AddressInfo, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { grpcFramed as framed, startH2Server, type H2TestServer, type ServedStream } from "../../test/support/index.js";
import { GrpcStatusError } from "./h2-grpc.js";
import { H2UnaryClient } from "./h2-unary.js";

let server: H2TestServer | undefined;
let raw: Server | undefined;
let client: H2UnaryClient | undefined;

afterEach(async () => {
  client?.close();
  client = undefined;
  await server?.close();
  server = undefined;
  await new Promise<void>((resolve) => (raw ? raw.close(() => resolve()) : resolve()));
  raw = undefined;
});

const PATH = "/ratatoskr.MessageBroker/PublishBatch";
const grpcHeaders = { [constants.HTTP2_HEADER_STATUS]: 200, "content-type": "application/grpc" };

/** Answers with `body` and the trailers, once the whole request is in. */
function answer(served: ServedStream, body: Buffer | undefined, trailers: Record<string, string> = { "grpc-status": "0" }): void {
  const go = () => {
    served.stream.respond(grpcHeaders, { waitForTrailers: true });
    served.stream.once("wantTrailers", () => served.stream.sendTrailers(trailers));
    served.stream.end(body);
  };
  if (served.stream.readableEnded) go();
  else served.stream.once("end", go);
}

function errorOf(p: Promise<unknown>): Promise<GrpcStatusError> {
  return p.then(
    () => {
      throw new Error("the call succeeded");
    },
    (e: unknown) => e as GrpcStatusError,
  );
}

describe("h2-unary: unary calls on the generator's own HTTP/2 client", () => {
  it("sends the gRPC request headers, the token and the framed request, half-closed; resolves with the answer", async () => {
    server = await startH2Server();
    client = new H2UnaryClient({ target: server.target, token: "sesame", maxMessageBytes: 1 << 20 }, 1);
    const call = client.unary(0, PATH, Buffer.from("req"));
    const served = await server.next();
    expect(served.headers[":method"]).toBe("POST");
    expect(served.headers[":scheme"]).toBe("http");
    expect(served.headers[":path"]).toBe(PATH);
    expect(served.headers[":authority"]).toBe(server.target);
    expect(served.headers["content-type"]).toBe("application/grpc");
    expect(served.headers.te).toBe("trailers");
    expect(served.headers.authorization).toBe("Bearer sesame");
    answer(served, framed(Buffer.from("ok")));
    expect((await call).toString()).toBe("ok");
    expect(Buffer.concat(served.received)).toEqual(framed(Buffer.from("req")));
  });

  it("reads nghttp2's header blocks through its dynamic table: 400 calls with varied trailers on one connection", async () => {
    server = await startH2Server();
    client = new H2UnaryClient({ target: server.target, maxMessageBytes: 1 << 20 }, 1);
    const s = server;
    s.server.removeAllListeners("stream");
    let n = 0;
    // Each answer's status and message follow from its request, so the client can check them.
    s.server.on("stream", (stream: ServerHttp2Stream) => {
      stream.on("error", () => {});
      const parts: Buffer[] = [];
      stream.on("data", (d: Buffer) => parts.push(d));
      stream.once("end", () => {
        const i = Number(Buffer.concat(parts).subarray(5).toString());
        stream.respond({ ...grpcHeaders, [`x-extra-${i % 5}`]: "v".repeat(i % 300) }, { waitForTrailers: true });
        stream.once("wantTrailers", () => stream.sendTrailers(i % 3 === 0 ? { "grpc-status": "9", "grpc-message": encodeURIComponent(`call ${i}: ${"é ".repeat(i % 50)}`) } : { "grpc-status": "0" }));
        stream.end(i % 3 === 0 ? undefined : framed(Buffer.from(`answer ${i}`)));
        n++;
      });
    });
    const calls = Array.from({ length: 400 }, (_, i) => client!.unary(0, PATH, Buffer.from(String(i))).then((a) => a.toString(), (e: GrpcStatusError) => `${e.code} ${e.details}`));
    const got = await Promise.all(calls);
    expect(n).toBe(400);
    got.forEach((g, i) => expect(g).toBe(i % 3 === 0 ? `9 call ${i}: ${"é ".repeat(i % 50)}` : `answer ${i}`));
    expect(s.connections()).toBe(1);
  });

  it("sends a request and takes an answer larger than every window (flow control both ways)", async () => {
    server = await startH2Server();
    client = new H2UnaryClient({ target: server.target, maxMessageBytes: 8 << 20 }, 1);
    const request = Buffer.alloc(3 << 20);
    for (let i = 0; i < request.length; i++) request[i] = i % 251;
    const response = Buffer.alloc(5 << 20, 7);
    const call = client.unary(0, PATH, request);
    const served = await server.next();
    answer(served, framed(response));
    expect((await call).equals(response)).toBe(true);
    expect(Buffer.concat(served.received).equals(framed(request))).toBe(true);
  });

  it("sends no RST_STREAM after an answered call: 1,500 calls on one connection pass nghttp2's reset rate limit", async () => {
    // Node's HTTP/2 server (nghttp2) ends a connection with INTERNAL_ERROR once a client has
    // reset more than a burst of 1,000 streams (then 33 a second): a client that reset every
    // answered unary call failed every call from about the 1,150th on.
    server = await startH2Server();
    const s = server;
    s.server.removeAllListeners("stream");
    s.server.on("stream", (stream: ServerHttp2Stream) => {
      stream.on("error", () => {});
      stream.resume();
      stream.once("end", () => {
        stream.respond(grpcHeaders, { waitForTrailers: true });
        stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(framed(Buffer.from("ok")));
      });
    });
    client = new H2UnaryClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    let answered = 0;
    for (let round = 0; round < 30; round++) {
      const calls = Array.from({ length: 50 }, () => client!.unary(0, PATH, Buffer.from("m")));
      for (const call of await Promise.allSettled(calls)) if (call.status === "fulfilled" && call.value.toString() === "ok") answered++;
    }
    expect(answered).toBe(1_500);
    expect(s.connections()).toBe(1);
  });

  it("ends with the trailers' status, percent-decoded; reads a trailers-only answer; OK without an answer is UNIMPLEMENTED", async () => {
    server = await startH2Server();
    client = new H2UnaryClient({ target: server.target, maxMessageBytes: 1 << 20 }, 1);
    const a = errorOf(client.unary(0, PATH, Buffer.from("x")));
    answer(await server.next(), undefined, { "grpc-status": "5", "grpc-message": encodeURIComponent('topic "t" not found') });
    const e1 = await a;
    expect(e1).toBeInstanceOf(GrpcStatusError);
    expect(e1.message).toBe('5 NOT_FOUND: topic "t" not found');
    const b = errorOf(client.unary(0, PATH, Buffer.from("x")));
    (await server.next()).stream.respond({ ...grpcHeaders, "grpc-status": "16", "grpc-message": "no token" }, { endStream: true });
    expect((await b).code).toBe(16);
    const c = errorOf(client.unary(0, PATH, Buffer.from("x")));
    answer(await server.next(), undefined);
    expect((await c).code).toBe(12);
  });

  it("an answer without a status is UNKNOWN; a cut answer is INTERNAL; over the limit RESOURCE_EXHAUSTED; compressed INTERNAL", async () => {
    server = await startH2Server();
    client = new H2UnaryClient({ target: server.target, maxMessageBytes: 100 }, 1);
    const a = errorOf(client.unary(0, PATH, Buffer.from("x")));
    const sa = await server.next();
    sa.stream.respond(grpcHeaders);
    sa.stream.end(framed(Buffer.from("ok")));
    expect((await a).details).toBe("the broker ended the stream without a status");
    const b = errorOf(client.unary(0, PATH, Buffer.from("x")));
    answer(await server.next(), framed(Buffer.from("whole")).subarray(0, 7));
    expect((await b).code).toBe(13);
    const c = errorOf(client.unary(0, PATH, Buffer.from("x")));
    answer(await server.next(), framed(Buffer.alloc(101)));
    const ec = await c;
    expect(ec.code).toBe(8);
    expect(ec.details).toContain("larger than max (101 vs. 100)");
    const d = errorOf(client.unary(0, PATH, Buffer.from("x")));
    answer(await server.next(), framed(Buffer.from("zz"), true));
    expect((await d).details).toContain("compressed");
    const e = errorOf(client.unary(0, PATH, Buffer.from("x")));
    answer(await server.next(), Buffer.concat([framed(Buffer.from("one")), framed(Buffer.from("two"))]));
    expect((await e).details).toContain("more than one response message");
    // The connection is still good.
    const f = client.unary(0, PATH, Buffer.from("x"));
    answer(await server.next(), framed(Buffer.from("fine")));
    expect((await f).toString()).toBe("fine");
    expect(server.connections()).toBe(1);
  });

  it("maps a reset stream as grpc-js does", async () => {
    server = await startH2Server();
    client = new H2UnaryClient({ target: server.target, maxMessageBytes: 1 << 20 }, 1);
    for (const [rst, code] of [
      [constants.NGHTTP2_REFUSED_STREAM, 14],
      [constants.NGHTTP2_CANCEL, 1],
      [constants.NGHTTP2_ENHANCE_YOUR_CALM, 8],
      [constants.NGHTTP2_INTERNAL_ERROR, 13],
    ] as const) {
      const call = errorOf(client.unary(0, PATH, Buffer.from("x")));
      (await server.next()).stream.close(rst);
      const e = await call;
      expect(e.code, `RST_STREAM ${rst}`).toBe(code);
      expect(e.details).toContain(`RST_STREAM code ${rst}`);
    }
  });

  it("fails open calls with UNAVAILABLE when the connection breaks, and the next call opens a new one", async () => {
    server = await startH2Server();
    client = new H2UnaryClient({ target: server.target, maxMessageBytes: 1 << 20 }, 1);
    const a = errorOf(client.unary(0, PATH, Buffer.from("x")));
    (await server.next()).stream.session!.destroy();
    const e = await a;
    expect(e.code).toBe(14);
    expect(e.message).toContain("the connection to the broker closed");
    const b = client.unary(0, PATH, Buffer.from("y"));
    answer(await server.next(), framed(Buffer.from("again")));
    expect((await b).toString()).toBe("again");
    expect(server.connections()).toBe(2);
  });

  it("keeps to the broker's concurrent-stream limit, queueing the rest", async () => {
    server = await startH2Server({ maxConcurrentStreams: 2 });
    client = new H2UnaryClient({ target: server.target, maxMessageBytes: 1 << 20 }, 1);
    // The client learns the limit from the server's SETTINGS: one call first.
    const first = client.unary(0, PATH, Buffer.from("0"));
    answer(await server.next(), framed(Buffer.from("0")));
    await first;
    let open = 0;
    let most = 0;
    const s = server;
    s.server.removeAllListeners("stream");
    s.server.on("stream", (stream: ServerHttp2Stream) => {
      stream.on("error", () => {});
      most = Math.max(most, ++open);
      stream.resume();
      // Each answer waits a turn, so the other calls pile up behind the limit.
      stream.once("end", () =>
        setImmediate(() => {
          open--;
          stream.respond({ ...grpcHeaders, "grpc-status": "0" }, { endStream: false });
          stream.end(framed(Buffer.from("ok")));
        }),
      );
    });
    const calls = Array.from({ length: 10 }, () => client!.unary(0, PATH, Buffer.from("x")).then(String));
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 10 }, () => "ok"));
    expect(most).toBe(2);
  });

  it("after GOAWAY, lets the open call finish and sends the next on a new connection", async () => {
    server = await startH2Server();
    client = new H2UnaryClient({ target: server.target, maxMessageBytes: 1 << 20 }, 1);
    const a = client.unary(0, PATH, Buffer.from("x"));
    const sa = await server.next();
    const session = sa.stream.session!;
    // A graceful close, as grpc-js's tryShutdown: GOAWAY, then the open stream is still served.
    session.close();
    answer(sa, framed(Buffer.from("first")));
    // The GOAWAY came before that answer (frames arrive in order).
    expect((await a).toString()).toBe("first");
    const b = client.unary(0, PATH, Buffer.from("y"));
    const sb = await server.next();
    expect(sb.stream.session).not.toBe(session);
    answer(sb, framed(Buffer.from("second")));
    expect((await b).toString()).toBe("second");
    expect(server.connections()).toBe(2);
  });

  it("drops a connection whose keepalive ping is not answered", async () => {
    // A server that reads and never speaks.
    raw = createServer((socket) => socket.on("error", () => {}).resume());
    await new Promise<void>((resolve) => raw!.listen(0, "127.0.0.1", resolve));
    const { port } = raw.address() as AddressInfo;
    client = new H2UnaryClient({ target: `127.0.0.1:${port}`, keepaliveMs: 50, maxMessageBytes: 1 << 20 }, 1);
    const e = await errorOf(client.unary(0, PATH, Buffer.from("x")));
    expect(e.code).toBe(14);
    expect(e.details).toContain("keepalive ping not answered");
  });

  it("fails calls with a readable status after close()", async () => {
    server = await startH2Server();
    client = new H2UnaryClient({ target: server.target, maxMessageBytes: 1 << 20 }, 1);
    const open = errorOf(client.unary(0, PATH, Buffer.from("x")));
    await server.next();
    client.close();
    expect((await open).code).toBe(14);
    expect((await errorOf(client.unary(0, PATH, Buffer.from("x")))).code).toBe(1);
  });
});
