import { connect, constants, createServer, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { ConsumeRequest, ConsumeResponse } from "../../proto/gen/ratatoskr/v2/broker.js";
import { dropSentHeaders } from "./h2-call.js";
import { consumersAttached, frame, RawSessions, pollUntil, startV2TestServer, TestConsumer, topicWithSubscription, type V2TestServer } from "../../test/support/index.js";

// The Consume stream served on HTTP/2 directly (h2-call.ts), from outside: a raw node:http2
// client sends what grpc-js clients send and what they never would, and reads the frames and
// statuses back. The ordinary Consume behaviour (leases, acks, flow control, cut-offs) is in
// v2/v2-consume.test.ts and outbound-memory.test.ts through grpc-js clients.

const CONSUME = "/ratatoskr.v2.Broker/Consume";

let s: V2TestServer | undefined;
const sessions = new RawSessions();
afterEach(async () => {
  sessions.destroyAll();
  await s?.close();
  s = undefined;
});

const session = (): Promise<ClientHttp2Session> => sessions.connect(s!.running.address);

interface RawConsume {
  stream: ClientHttp2Stream;
  /** ConsumeResponse messages received so far. */
  responses: ConsumeResponse[];
  headers: IncomingHttpHeaders | undefined;
  /** Resolves once the stream closed, with the status from headers or trailers. */
  ended: Promise<{ httpStatus: number; grpcStatus: number | undefined; grpcMessage: string; rstCode: number }>;
}

function rawConsume(h: ClientHttp2Session, headers: Record<string, string> = {}): RawConsume {
  const stream = h.request({ ":method": "POST", ":path": CONSUME, "content-type": "application/grpc", te: "trailers", ...headers });
  const out: RawConsume = { stream, responses: [], headers: undefined, ended: undefined as never };
  let httpStatus = 0;
  let grpcStatus: number | undefined;
  let grpcMessage = "";
  const take = (hs: IncomingHttpHeaders): void => {
    if (hs[":status"] !== undefined) httpStatus = Number(hs[":status"]);
    if (typeof hs["grpc-status"] === "string") grpcStatus = Number(hs["grpc-status"]);
    if (typeof hs["grpc-message"] === "string") grpcMessage = decodeURIComponent(hs["grpc-message"]);
  };
  stream.on("response", (hs) => {
    out.headers = hs;
    take(hs);
  });
  stream.on("trailers", take);
  let pending = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const n = pending.readUInt32BE(1);
      out.responses.push(ConsumeResponse.decode(pending.subarray(5, 5 + n)));
      pending = pending.subarray(5 + n);
    }
  });
  stream.on("error", () => undefined);
  out.ended = new Promise((resolve) => stream.on("close", () => resolve({ httpStatus, grpcStatus, grpcMessage, rstCode: stream.rstCode ?? 0 })));
  return out;
}

const startFrame = (subscription: string): Buffer =>
  Buffer.from(ConsumeRequest.encode(ConsumeRequest.fromPartial({ start: { subscription, maxOutstandingMessages: 100, maxOutstandingBytes: 0n, consumerName: "raw" } })).finish());
const ackFrame = (ackIds: bigint[]): Buffer => Buffer.from(ConsumeRequest.encode(ConsumeRequest.fromPartial({ ackIds })).finish());

describe("Consume served on HTTP/2 directly", () => {
  it("reads a request split at every byte, answers with gRPC headers and frames, and ends with OK on half-close", async () => {
    s = await startV2TestServer();
    const { topic, sub } = await topicWithSubscription(s.api);
    const c = rawConsume(await session());
    for (const byte of frame(startFrame(sub))) c.stream.write(Buffer.from([byte]));
    await consumersAttached(s.api, sub, 1);
    await s.api.publish(topic, [{ payload: Buffer.from("one") }, { payload: Buffer.from("two") }]);
    await pollUntil(() => c.responses.flatMap((r) => r.deliveries).length === 2, "two deliveries");
    expect(c.headers?.["content-type"]).toBe("application/grpc+proto");
    const deliveries = c.responses.flatMap((r) => r.deliveries);
    expect(deliveries.map((d) => Buffer.from(d.message!.payload).toString())).toEqual(["one", "two"]);
    c.stream.end(frame(ackFrame(deliveries.map((d) => d.ackId))));
    const end = await c.ended;
    expect(end.grpcStatus).toBe(status.OK);
    await pollUntil(async () => Number((await s!.api.getSubscription(sub)).stats?.acked) === 2, "both acked");
    expect((await s.api.getSubscription(sub)).stats?.consumerCount).toBe(0);
  });

  it("reads gzip-compressed messages of a call with grpc-encoding gzip", async () => {
    s = await startV2TestServer();
    const { topic, sub } = await topicWithSubscription(s.api);
    const c = rawConsume(await session(), { "grpc-encoding": "gzip" });
    c.stream.write(frame(gzipSync(startFrame(sub)), { compressed: true }));
    await consumersAttached(s.api, sub, 1);
    await s.api.publish(topic, [{ payload: Buffer.from("z") }]);
    await pollUntil(() => c.responses.length === 1, "a delivery");
    c.stream.write(frame(gzipSync(ackFrame([c.responses[0]!.deliveries[0]!.ackId])), { compressed: true }));
    await pollUntil(async () => Number((await s!.api.getSubscription(sub)).stats?.acked) === 1, "the compressed ack applied");
    c.stream.close(constants.NGHTTP2_CANCEL);
    await pollUntil(async () => (await s!.api.getSubscription(sub)).stats?.consumerCount === 0, "the cancelled consumer gone");
  });

  it("refuses a compressed message without grpc-encoding (INTERNAL) and one in an encoding it does not read (UNIMPLEMENTED)", async () => {
    s = await startV2TestServer();
    const { sub } = await topicWithSubscription(s.api);
    const h = await session();
    const bare = rawConsume(h);
    bare.stream.write(frame(gzipSync(startFrame(sub)), { compressed: true }));
    const bareEnd = await bare.ended;
    expect(bareEnd.grpcStatus, JSON.stringify(bareEnd)).toBe(status.INTERNAL);
    expect(bareEnd.grpcMessage).toMatch(/compressed flag/);
    expect(s.running.resources.connections.compressedWithoutEncoding).toBe(1);
    const snappy = rawConsume(h, { "grpc-encoding": "snappy" });
    snappy.stream.write(frame(startFrame(sub), { compressed: true }));
    const snappyEnd = await snappy.ended;
    expect(snappyEnd.grpcStatus, JSON.stringify(snappyEnd)).toBe(status.UNIMPLEMENTED);
    expect(snappyEnd.grpcMessage).toMatch(/snappy/);
    expect((await s.api.getSubscription(sub)).stats?.consumerCount).toBe(0);
  });

  it("refuses a message over the receive limit with RESOURCE_EXHAUSTED naming both sizes", async () => {
    s = await startV2TestServer({ maxMessageBytes: 64 * 1024 });
    const c = rawConsume(await session());
    c.stream.write(frame(Buffer.alloc(10), { declaredLength: 64 * 1024 + 1 }));
    const end = await c.ended;
    expect(end.grpcStatus, JSON.stringify(end)).toBe(status.RESOURCE_EXHAUSTED);
    expect(end.grpcMessage).toMatch(/65537 vs\. 65536/);
  });

  it("ends a call whose message does not arrive whole within message-receive-timeout-ms, and counts it", async () => {
    s = await startV2TestServer({ messageReceiveTimeoutMs: 300 });
    const c = rawConsume(await session());
    c.stream.write(frame(Buffer.alloc(10), { declaredLength: 1000 }));
    const end = await c.ended;
    expect(end.grpcStatus, JSON.stringify(end)).toBe(status.RESOURCE_EXHAUSTED);
    expect(end.grpcMessage).toMatch(/message-receive-timeout-ms/);
    expect(s.running.resources.connections.messageTimeouts).toBe(1);
  });

  it("ends a call at its grpc-timeout with DEADLINE_EXCEEDED and lets its consumer go", async () => {
    s = await startV2TestServer();
    const { sub } = await topicWithSubscription(s.api);
    const c = rawConsume(await session(), { "grpc-timeout": "400m" });
    c.stream.write(frame(startFrame(sub)));
    await consumersAttached(s.api, sub, 1);
    const end = await c.ended;
    expect(end.grpcStatus, JSON.stringify(end)).toBe(status.DEADLINE_EXCEEDED);
    await pollUntil(async () => (await s!.api.getSubscription(sub)).stats?.consumerCount === 0, "the consumer gone");
  });

  it("answers a content type other than gRPC with HTTP 415", async () => {
    s = await startV2TestServer();
    const c = rawConsume(await session(), { "content-type": "text/plain" });
    c.stream.end();
    expect((await c.ended).httpStatus).toBe(415);
  });

  it("keeps a connection whose only stream is a Consume stream past idle-connection-timeout-ms", async () => {
    s = await startV2TestServer({ idleConnectionTimeoutMs: 300 });
    const { sub } = await topicWithSubscription(s.api);
    const busy = await session();
    let busyGoaway = false;
    busy.on("goaway", () => (busyGoaway = true));
    const c = rawConsume(busy);
    c.stream.write(frame(startFrame(sub)));
    await consumersAttached(s.api, sub, 1);
    // A connection with no stream opened after the Consume one: its GOAWAY says the timeout passed.
    const idle = await session();
    await new Promise<void>((resolve) => idle.once("goaway", () => resolve()));
    expect(busyGoaway).toBe(false);
    expect((await s.api.getSubscription(sub)).stats?.consumerCount).toBe(1);
  });

  it("ends a busy Consume stream at shutdown with a status a grpc-js client reads (UNAVAILABLE), not a reset", async () => {
    // A grpc-js client still reading deliveries and sending acks when the status comes: a reset
    // right behind the trailers reached it first (INTERNAL, "Received RST_STREAM with code 0").
    s = await startV2TestServer({ shutdownGraceMs: 3000 });
    const { topic, sub } = await topicWithSubscription(s.api);
    const consumer = new TestConsumer(s.client, sub, { autoAck: true });
    await consumersAttached(s.api, sub, 1);
    let stop = false;
    const producer = (async () => {
      for (let b = 0; !stop; b++) {
        try {
          await s!.api.publish(topic, Array.from({ length: 20 }, (_, k) => ({ payload: Buffer.from(`b${b}-${k}`) })));
        } catch {
          return;
        }
      }
    })();
    await consumer.waitForDeliveries(200);
    const running = s;
    s = undefined;
    await running.close();
    stop = true;
    await producer;
    await consumer.waitForEnd();
    expect(consumer.error?.code, consumer.error?.details).toBe(status.UNAVAILABLE);
    expect(consumer.error?.details).toMatch(/shutting down/);
  });

  it("lets go of the response headers node:http2 keeps per stream (node still has the key), and the trailers still go out", async () => {
    const server = createServer();
    const seen: { before?: unknown; after?: unknown } = {};
    server.on("stream", (stream: ServerHttp2Stream) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      seen.before = stream.sentHeaders;
      dropSentHeaders(stream);
      seen.after = stream.sentHeaders;
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(frame(Buffer.from("x")));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const client = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const req = client.request({ ":method": "POST", ":path": "/t", "content-type": "application/grpc" });
      const trailers = new Promise<IncomingHttpHeaders>((resolve) => req.on("trailers", resolve));
      req.resume();
      req.end();
      expect((await trailers)["grpc-status"]).toBe("0");
      expect(seen.before).toMatchObject({ "content-type": "application/grpc" });
      expect(seen.after).toBeUndefined();
    } finally {
      client.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
