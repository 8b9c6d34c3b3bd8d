import { constants } from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import { grpcFramed, startH2Server, type H2TestServer } from "../../test/support/index.js";
import { CONNECTION_WINDOW_BYTES, GrpcStatusError, H2Sessions, STREAM_WINDOW_BYTES, type ConsumeHandlers } from "./h2-consume.js";

const framed = grpcFramed;

let server: H2TestServer | undefined;
let sessions: H2Sessions | undefined;

afterEach(async () => {
  sessions?.close();
  sessions = undefined;
  await server?.close();
  server = undefined;
});

async function start(): Promise<H2TestServer> {
  server = await startH2Server();
  return server;
}

/** Handlers that collect messages (copied: they are valid only during the call) and the end. */
function collect(): ConsumeHandlers & { messages: Buffer[]; ended: Promise<Error | undefined> } {
  let end!: (e: Error | undefined) => void;
  const ended = new Promise<Error | undefined>((resolve) => (end = resolve));
  const messages: Buffer[] = [];
  return { messages, ended, onMessage: (m) => messages.push(Buffer.from(m)), onEnd: (e) => end(e) };
}

const grpcHeaders = { [constants.HTTP2_HEADER_STATUS]: 200, "content-type": "application/grpc" };

describe("h2-consume: the Consume client over node:http2", () => {
  it("sends the gRPC request headers, the token and the first message framed", async () => {
    const s = await start();
    sessions = new H2Sessions({ target: s.target, token: "sesame", maxMessageBytes: 1 << 20 }, 2);
    const h = collect();
    sessions.consume(0, Buffer.from("start"), h);
    const served = await s.next();
    expect(served.headers[":path"]).toBe("/ratatoskr.v2.Broker/Consume");
    expect(served.headers[":method"]).toBe("POST");
    expect(served.headers["content-type"]).toBe("application/grpc");
    expect(served.headers.te).toBe("trailers");
    expect(served.headers.authorization).toBe("Bearer sesame");
    await new Promise<void>((resolve) => (served.received.length ? resolve() : served.stream.once("data", () => resolve())));
    expect(Buffer.concat(served.received)).toEqual(framed(Buffer.from("start")));
  });

  it("hands over each whole message, whether a chunk holds several or a message spans chunks", async () => {
    const s = await start();
    sessions = new H2Sessions({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const h = collect();
    sessions.consume(0, Buffer.from("x"), h);
    const served = await s.next();
    served.stream.respond(grpcHeaders, { waitForTrailers: true });
    const bodies = [Buffer.from("a"), Buffer.alloc(0), Buffer.alloc(70_000, 7), Buffer.from("last")];
    const wire = Buffer.concat(bodies.map((b) => framed(b)));
    // Odd cuts: inside a length prefix, inside a body, several messages in one write.
    for (const [from, to] of [[0, 3], [3, 9], [9, 40_000], [40_000, wire.length]] as const) served.stream.write(wire.subarray(from, to));
    served.stream.on("wantTrailers", () => served.stream.sendTrailers({ "grpc-status": "0" }));
    served.stream.end();
    expect(await h.ended).toBeUndefined();
    expect(h.messages).toEqual(bodies);
  });

  it("ends with the trailers' status and its percent-decoded message", async () => {
    const s = await start();
    sessions = new H2Sessions({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const h = collect();
    sessions.consume(0, Buffer.from("x"), h);
    const served = await s.next();
    served.stream.respond(grpcHeaders, { waitForTrailers: true });
    served.stream.on("wantTrailers", () => served.stream.sendTrailers({ "grpc-status": "5", "grpc-message": encodeURIComponent('subscription "s" not found') }));
    served.stream.end();
    const err = await h.ended;
    expect(err).toBeInstanceOf(GrpcStatusError);
    expect((err as GrpcStatusError).code).toBe(5);
    expect((err as GrpcStatusError).details).toBe('subscription "s" not found');
    expect(err!.message).toBe('5 NOT_FOUND: subscription "s" not found');
  });

  it("reads a trailers-only response (the status in the headers)", async () => {
    const s = await start();
    sessions = new H2Sessions({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const h = collect();
    sessions.consume(0, Buffer.from("x"), h);
    const served = await s.next();
    served.stream.respond({ ...grpcHeaders, "grpc-status": "16", "grpc-message": "no token" }, { endStream: true });
    expect(((await h.ended) as GrpcStatusError).code).toBe(16);
  });

  it("fails a stream whose connection broke with UNAVAILABLE, and opens a new connection for the next stream", async () => {
    const s = await start();
    sessions = new H2Sessions({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const h = collect();
    sessions.consume(0, Buffer.from("x"), h);
    const served = await s.next();
    served.stream.session!.destroy();
    const err = (await h.ended) as GrpcStatusError;
    expect(err.code).toBe(14);
    expect(err.message).toContain("the connection to the broker closed");
    const again = collect();
    sessions.consume(0, Buffer.from("y"), again);
    const second = await s.next();
    expect(s.connections()).toBe(2);
    second.stream.respond(grpcHeaders);
    second.stream.end(framed(Buffer.from("ok")));
    // Ended without trailers: no status, so not OK.
    const noStatus = (await again.ended) as GrpcStatusError;
    expect(noStatus.code).toBe(2);
    expect(noStatus.details).toBe("the broker ended the stream without a status");
    expect(again.messages).toEqual([Buffer.from("ok")]);
  });

  it("refuses a message over the limit and a compressed one, naming each", async () => {
    const s = await start();
    sessions = new H2Sessions({ target: s.target, maxMessageBytes: 100 }, 1);
    const big = collect();
    sessions.consume(0, Buffer.from("x"), big);
    const a = await s.next();
    a.stream.respond(grpcHeaders);
    a.stream.write(framed(Buffer.alloc(101)));
    const e1 = (await big.ended) as GrpcStatusError;
    expect(e1.code).toBe(8);
    expect(e1.details).toContain("larger than max (101 vs. 100)");
    const zipped = collect();
    sessions.consume(0, Buffer.from("x"), zipped);
    const b = await s.next();
    b.stream.respond(grpcHeaders);
    b.stream.write(framed(Buffer.from("zz"), true));
    const e2 = (await zipped.ended) as GrpcStatusError;
    expect(e2.code).toBe(13);
    expect(e2.details).toContain("compressed");
    expect(big.messages).toEqual([]);
    expect(zipped.messages).toEqual([]);
  });

  it("cancel() resets the stream with CANCEL and reports no end", async () => {
    const s = await start();
    sessions = new H2Sessions({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    let ends = 0;
    const call = sessions.consume(0, Buffer.from("x"), { onMessage: () => {}, onEnd: () => ends++ });
    const served = await s.next();
    const closed = new Promise<number>((resolve) => served.stream.on("close", () => resolve(served.stream.rstCode)));
    call.cancel();
    expect(await closed).toBe(constants.NGHTTP2_CANCEL);
    // A second stream on the same connection still works after the cancel, and its end arrives:
    // the first one's onEnd would have come before it.
    const h = collect();
    sessions.consume(0, Buffer.from("y"), h);
    const next = await s.next();
    next.stream.respond({ ...grpcHeaders, "grpc-status": "0" }, { endStream: true });
    expect(await h.ended).toBeUndefined();
    expect(ends).toBe(0);
  });

  it("offers the broker its receive windows: STREAM_WINDOW_BYTES per stream, CONNECTION_WINDOW_BYTES per connection", async () => {
    const s = await start();
    sessions = new H2Sessions({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const first = collect();
    sessions.consume(0, Buffer.from("x"), first);
    const a = await s.next();
    const connection = a.stream.session!;
    // The client's SETTINGS come with its preface, before any stream.
    expect(connection.remoteSettings.initialWindowSize).toBe(STREAM_WINDOW_BYTES);
    a.stream.respond({ ...grpcHeaders, "grpc-status": "0" }, { endStream: true });
    expect(await first.ended).toBeUndefined();
    // The client widens the connection's window once it has the server's SETTINGS, which come
    // before that response; so the next stream's HEADERS follow the WINDOW_UPDATE.
    sessions.consume(0, Buffer.from("y"), collect());
    const b = await s.next();
    expect(b.stream.session).toBe(connection);
    expect(connection.state.remoteWindowSize).toBe(CONNECTION_WINDOW_BYTES);
  });
});
