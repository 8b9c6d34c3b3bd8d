import { constants } from "node:http2";
import { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { grpcFramed, startH2Server, type H2TestServer } from "../../test/support/index.js";
import { H2ConsumeClient, type ConsumeHandlers } from "./h2-consume.js";
import { CONNECTION_WINDOW_BYTES, GrpcStatusError, STREAM_WINDOW_BYTES } from "./h2-grpc.js";
import { encodeHeaderBlock } from "./hpack.js";
import { readsHandedOver } from "./read-budget.js";

const framed = grpcFramed;

let server: H2TestServer | undefined;
let sessions: H2ConsumeClient | undefined;

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
  return { messages, ended, onMessage: (b, start, end) => messages.push(Buffer.from(b.subarray(start, end))), onEnd: (e) => end(e) };
}

/** Buffers compared with equals(): vitest's deep equality walks a Buffer byte by byte, seconds for megabytes. */
function expectSame(actual: Buffer[], expected: Buffer[]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((b, i) => expect(b.equals(expected[i]!), `message ${i}`).toBe(true));
}

const grpcHeaders = { [constants.HTTP2_HEADER_STATUS]: 200, "content-type": "application/grpc" };

describe("h2-consume: Consume streams on the generator's own HTTP/2 client", () => {
  it("sends the gRPC request headers, the token and the first message framed", async () => {
    const s = await start();
    sessions = new H2ConsumeClient({ target: s.target, token: "sesame", maxMessageBytes: 1 << 20 }, 2);
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
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
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

  it("reads its socket through the loop turn's budget (read-budget.ts)", async () => {
    const s = await start();
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const h = collect();
    const before = readsHandedOver.count;
    sessions.consume(0, Buffer.from("x"), h);
    const served = await s.next();
    served.stream.respond(grpcHeaders, { waitForTrailers: true });
    served.stream.on("wantTrailers", () => served.stream.sendTrailers({ "grpc-status": "0" }));
    served.stream.end(framed(Buffer.from("one")));
    expect(await h.ended).toBeUndefined();
    expect(h.messages).toEqual([Buffer.from("one")]);
    expect(readsHandedOver.count, "the connection's reads were handed over by BudgetedReads").toBeGreaterThan(before);
  });

  it("ends with the trailers' status and its percent-decoded message", async () => {
    const s = await start();
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
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
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const h = collect();
    sessions.consume(0, Buffer.from("x"), h);
    const served = await s.next();
    served.stream.respond({ ...grpcHeaders, "grpc-status": "16", "grpc-message": "no token" }, { endStream: true });
    expect(((await h.ended) as GrpcStatusError).code).toBe(16);
  });

  it("fails a stream whose connection broke with UNAVAILABLE, and opens a new connection for the next stream", async () => {
    const s = await start();
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
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
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 100 }, 1);
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
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
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
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const first = collect();
    sessions.consume(0, Buffer.from("x"), first);
    const a = await s.next();
    const connection = a.stream.session!;
    // The client's SETTINGS come with its preface, before any stream.
    expect(connection.remoteSettings.initialWindowSize).toBe(STREAM_WINDOW_BYTES);
    a.stream.respond({ ...grpcHeaders, "grpc-status": "0" }, { endStream: true });
    expect(await first.ended).toBeUndefined();
    // The client widens the connection's window right after its preface, before any stream.
    sessions.consume(0, Buffer.from("y"), collect());
    const b = await s.next();
    expect(b.stream.session).toBe(connection);
    expect(connection.state.remoteWindowSize).toBe(CONNECTION_WINDOW_BYTES);
  });
  it("a paused stream reads nothing; on resume it reads what was held, in order, and opens its window again", async () => {
    const s = await start();
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const h = collect();
    const call = sessions.consume(0, Buffer.from("x"), h);
    call.pause();
    const served = await s.next();
    served.stream.respond(grpcHeaders, { waitForTrailers: true });
    // 30 x 10 KiB: more than the stream's window, so the last ones go only once the window opens.
    const bodies = Array.from({ length: 30 }, (_, i) => Buffer.alloc(10 * 1024, i));
    expect(bodies.length * 10 * 1024).toBeGreaterThan(STREAM_WINDOW_BYTES);
    for (const b of bodies) served.stream.write(framed(b));
    served.stream.on("wantTrailers", () => served.stream.sendTrailers({ "grpc-status": "0" }));
    served.stream.end();
    // A second stream on the same connection is answered while the first is paused.
    const other = collect();
    sessions.consume(0, Buffer.from("y"), other);
    const second = await s.next();
    expect(second.stream.session).toBe(served.stream.session);
    second.stream.respond(grpcHeaders, { waitForTrailers: true });
    second.stream.on("wantTrailers", () => second.stream.sendTrailers({ "grpc-status": "0" }));
    second.stream.end(framed(Buffer.from("other")));
    expect(await other.ended).toBeUndefined();
    expect(other.messages).toEqual([Buffer.from("other")]);
    expect(h.messages).toEqual([]);
    call.resume();
    expect(await h.ended).toBeUndefined();
    expectSame(h.messages, bodies);
  });

  it("carries 300 streams on one connection, each with its own messages, requests and status", async () => {
    const s = await start();
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const n = 300;
    const handlers = Array.from({ length: n }, () => collect());
    const calls = handlers.map((h, i) => sessions!.consume(0, Buffer.from(`start ${i}`), h));
    const served = await Promise.all(handlers.map(() => s.next()));
    expect(s.connections()).toBe(1);
    for (const st of served) {
      // Each stream echoes its requests back as messages, then ends with a status from its first request.
      st.stream.respond(grpcHeaders, { waitForTrailers: true });
      let i = -1;
      let seen = 0;
      let carried = Buffer.alloc(0);
      const take = (d: Buffer): void => {
        carried = Buffer.concat([carried, d]);
        while (carried.length >= 5 && carried.length >= 5 + carried.readUInt32BE(1)) {
          const body = carried.subarray(5, 5 + carried.readUInt32BE(1));
          carried = carried.subarray(5 + body.length);
          if (i < 0) i = Number(body.toString().split(" ")[1]);
          st.stream.write(framed(Buffer.concat([body, Buffer.alloc(i * 50, i % 256)])));
          if (++seen === 3) st.stream.end();
        }
      };
      // What arrived before this listener (the test server collects it) comes first.
      for (const d of st.received) take(d);
      st.stream.on("data", take);
      st.stream.on("wantTrailers", () => st.stream.sendTrailers({ "grpc-status": String(i % 2 === 0 ? 0 : 9) }));
    }
    calls.forEach((c, i) => {
      c.write(Buffer.from(`ack ${i}`));
      c.write(Buffer.from(`ack2 ${i}`));
    });
    const ends = await Promise.all(handlers.map((h) => h.ended));
    ends.forEach((e, i) => {
      if (i % 2 === 0) expect(e).toBeUndefined();
      else expect((e as GrpcStatusError).code).toBe(9);
      const pad = Buffer.alloc(i * 50, i % 256);
      expectSame(handlers[i]!.messages, [`start ${i}`, `ack ${i}`, `ack2 ${i}`].map((t) => Buffer.concat([Buffer.from(t), pad])));
    });
  });

  it("maps the broker's RST_STREAM codes as grpc-js does", async () => {
    const s = await start();
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const cases = [
      [constants.NGHTTP2_REFUSED_STREAM, 14],
      [constants.NGHTTP2_CANCEL, 1],
      [constants.NGHTTP2_ENHANCE_YOUR_CALM, 8],
      [constants.NGHTTP2_INTERNAL_ERROR, 13],
    ] as const;
    for (const [rst, code] of cases) {
      const h = collect();
      sessions.consume(0, Buffer.from("x"), h);
      const served = await s.next();
      served.stream.close(rst);
      const err = (await h.ended) as GrpcStatusError;
      expect(err.code).toBe(code);
      expect(err.details).toContain(`RST_STREAM code ${rst}`);
    }
    expect(s.connections()).toBe(1);
  });

  it("ends its side with END_STREAM, not a reset, when the broker ends a stream this side still had open", async () => {
    const s = await start();
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const h = collect();
    sessions.consume(0, Buffer.from("x"), h);
    const served = await s.next();
    const closed = new Promise<{ rst: number; ended: boolean }>((resolve) => served.stream.on("close", () => resolve({ rst: served.stream.rstCode, ended: served.stream.readableEnded })));
    served.stream.resume();
    served.stream.respond({ ...grpcHeaders, "grpc-status": "0" }, { endStream: true });
    expect(await h.ended).toBeUndefined();
    expect(await closed).toEqual({ rst: constants.NGHTTP2_NO_ERROR, ended: true });
  });
  it("sends past the broker's windows: what waits for a WINDOW_UPDATE goes out later, in order, on every stream", async () => {
    // 16 KiB per stream (node:http2's connection window stays 64 KiB): 100 streams x 3 KiB
    // exceed the connection's window, one stream of 200 KiB its own while the connection's is open.
    server = await startH2Server({ initialWindowSize: 16 * 1024 });
    const s = server;
    sessions = new H2ConsumeClient({ target: s.target, maxMessageBytes: 1 << 20 }, 1);
    const small = Array.from({ length: 100 }, (_, i) => [Buffer.alloc(1024, i), Buffer.alloc(1024, i + 1), Buffer.alloc(1024, i + 2)]);
    const big = Array.from({ length: 50 }, (_, i) => Buffer.alloc(4096, i));
    const plans = [...small, big];
    const calls = plans.map((_, i) => sessions!.consume(0, Buffer.from(`start ${i}`), collect()));
    const served = await Promise.all(plans.map(() => s.next()));
    plans.forEach((plan, i) => {
      for (const m of plan) calls[i]!.write(m);
      calls[i]!.end();
    });
    const received = await Promise.all(served.map((st) => (st.stream.readableEnded ? Promise.resolve() : new Promise((resolve) => st.stream.once("end", resolve))).then(() => Buffer.concat(st.received))));
    received.forEach((r, i) => expect(r.equals(Buffer.concat([framed(Buffer.from(`start ${i}`)), ...plans[i]!.map((m) => framed(m))])), `stream ${i}`).toBe(true));
  });
  it("reads the broker's bytes cut anywhere: frame headers, DATA payloads, gRPC prefixes and padded frames", async () => {
    /** An HTTP/2 frame as the broker would send it. */
    const frame = (type: number, flags: number, id: number, payload: Buffer): Buffer => {
      const head = Buffer.alloc(9);
      head.writeUIntBE(payload.length, 0, 3);
      head[3] = type;
      head[4] = flags;
      head.writeUInt32BE(id, 5);
      return Buffer.concat([head, payload]);
    };
    const bodies = Array.from({ length: 24 }, (_, i) => Buffer.alloc((i * 397) % 3001, i + 1));
    const grpc = Buffer.concat(bodies.map((b) => framed(b)));
    // DATA frames cut across messages every 1,000 bytes; the third one padded (8 bytes).
    const data: Buffer[] = [];
    for (let at = 0, n = 0; at < grpc.length; at += 1000, n++) {
      const part = grpc.subarray(at, at + 1000);
      data.push(n === 2 ? frame(0, 0x8, 1, Buffer.concat([Buffer.from([8]), part, Buffer.alloc(8)])) : frame(0, 0, 1, part));
    }
    const wire = Buffer.concat([
      frame(4, 0, 0, Buffer.alloc(0)), // SETTINGS
      frame(1, 0x4, 1, encodeHeaderBlock([[":status", "200"], ["content-type", "application/grpc"]])),
      ...data,
      frame(1, 0x5, 1, encodeHeaderBlock([["grpc-status", "0"]])),
    ]);
    for (const piece of [1, 2, 3, 5, 8, 9, 10, 17, 100, 999, 1001, 4096, wire.length]) {
      // The client's socket is a Duplex fed here: each push is one read, so the cuts are exact.
      const socket = new Duplex({ read() {}, write: (_c, _e, done) => done() });
      const client = new H2ConsumeClient({ target: "127.0.0.1:1", maxMessageBytes: 1 << 20, socket: () => socket }, 1);
      const h = collect();
      client.consume(0, Buffer.from("x"), h);
      for (let at = 0; at < wire.length; at += piece) socket.push(wire.subarray(at, at + piece));
      const err = await h.ended;
      client.close();
      expect(err, `pieces of ${piece}`).toBeUndefined();
      expectSame(h.messages, bodies);
    }
  });
});
