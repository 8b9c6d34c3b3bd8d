// Bad input: random bytes and truncated or lying gRPC frames sent to every RPC path over raw
// HTTP/2, garbage on the TCP port, oversized messages and invalid names. Each gets an answer
// (a status, a reset or a closed connection, never a hang), and afterwards the container is
// healthy, never restarted, and the data stored before is intact.
import { status } from "@grpc/grpc-js";
import type { ClientHttp2Session } from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MessageBrokerService } from "../proto/gen/ratatoskr.js";
import { BrokerService, RetentionPolicy, StartPosition } from "../proto/gen/ratatoskr/v2/broker.js";
import {
  codeOf,
  frame,
  healthCheck,
  http2Session,
  pollUntil,
  prng,
  rawCall,
  rawTcp,
  TestConsumer,
  uniqueName,
  v1Api,
  v1Client,
  v1Subscribe,
  v2Api,
  v2Client,
  type RawOutcome,
  type V1Api,
  type V2Api,
} from "../test/support/index.js";
import { brokerLogLines, containerState, startBrokerContainer, type BrokerContainer } from "./support/broker-container.js";
import { requireDockerAndImage } from "./support/docker-engine.js";

await requireDockerAndImage();

const MAX_MESSAGE_BYTES = 1024 * 1024;
const SEED = Number(process.env["RATATOSKR_E2E_SEED"] ?? 20261127);
const RPC_PATHS = [...Object.values(MessageBrokerService), ...Object.values(BrokerService)].map((m) => m.path as string);
// Client-streaming paths (Consume): grpc-js drops an incomplete trailing frame when the client
// ends its stream, so the server just sees a stream that ended; the call may end OK.
const CLIENT_STREAM_PATHS = new Set([...Object.values(MessageBrokerService), ...Object.values(BrokerService)].filter((m) => m.requestStream).map((m) => m.path as string));
const ALL_PATHS = [...RPC_PATHS, "/grpc.health.v1.Health/Check", "/ratatoskr.v2.Broker/NoSuchMethod", "/no.such.Service/Call"];

let broker: BrokerContainer;
let v1: V1Api;
let v2: V2Api;
const precious = { v2Topic: uniqueName("precious"), v1Topic: uniqueName("precious-v1"), payloads: [] as Buffer[] };

beforeAll(async () => {
  broker = await startBrokerContainer({ env: { RATATOSKR_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) }, healthIntervalMs: 500 });
  v1 = v1Api(v1Client(broker.address));
  v2 = v2Api(v2Client(broker.address));
  // Data stored before the abuse, checked at the end.
  const rnd = prng(SEED);
  precious.payloads = Array.from({ length: 100 }, (_, i) => rnd.bytes(i * 10));
  await v2.createTopic({ name: precious.v2Topic, config: { retention: RetentionPolicy.RETENTION_POLICY_LIMITS, maxMessages: 0n, maxBytes: 0n, maxAgeMs: 0n, dedupWindowMs: 0n } });
  await v2.publish(precious.v2Topic, precious.payloads.map((payload, i) => ({ payload, attributes: { i: String(i) } })));
  for (let i = 0; i < 10; i++) await v1.publish({ topic: precious.v1Topic, payload: Buffer.from(`v1-${i}`), metadata: {} });
});

afterAll(async () => {
  await broker?.container.stop();
});

function describeOutcome(path: string, kind: string, o: RawOutcome): string {
  return `${kind} -> ${path}: http ${o.httpStatus}, grpc-status ${o.grpcStatus ?? "none"} (${o.grpcMessage}), ${o.end}`;
}

describe("bad input over raw HTTP/2 to every RPC path", () => {
  let session: ClientHttp2Session;
  beforeAll(async () => {
    session = await http2Session(broker.address);
  });
  afterAll(() => {
    session?.destroy();
  });

  it("answers random, truncated and lying frames on every path with an error status, never a hang", async () => {
    const rnd = prng(SEED + 1);
    const report: string[] = [];
    const problems: string[] = [];
    for (const path of ALL_PATHS) {
      const cases: Array<[string, Buffer, "error" | "any"]> = [
        // Unframed random bytes: the first byte is a flag, the next four a length; claim more than is sent.
        ["unframed random bytes", Buffer.concat([Buffer.from([0, 0x10, 0, 0, 0]), rnd.bytes(1 + rnd.int(64))]), "error"],
        // A well-framed random body: may even decode (unknown fields are legal protobuf), so any status.
        ["framed random message", frame(rnd.bytes(1 + rnd.int(200))), "any"],
        ["truncated frame", frame(rnd.bytes(10), { declaredLength: 100 }), CLIENT_STREAM_PATHS.has(path) ? "any" : "error"],
        ["truncated header", Buffer.from([0, 0, 0]), CLIENT_STREAM_PATHS.has(path) ? "any" : "error"],
        ["length prefix of 2 GiB", frame(rnd.bytes(16), { declaredLength: 0x7fffffff }), "error"],
        // The compressed flag needs grpc-encoding (PROTOCOL-HTTP2.md): refused with INTERNAL.
        ["compressed flag without grpc-encoding", frame(rnd.bytes(8), { compressed: true }), "error"],
      ];
      for (const [kind, bytes, expectation] of cases) {
        const o = await rawCall(session, path, bytes);
        const line = describeOutcome(path, kind, o);
        report.push(line);
        if (o.end === "timeout") problems.push(`no answer: ${line}`);
        else if (o.grpcStatus === undefined && o.end !== "reset") problems.push(`no status: ${line}`);
        else if (expectation === "error" && o.grpcStatus === status.OK) problems.push(`accepted: ${line}`);
      }
    }
    if (process.env["RATATOSKR_E2E_VERBOSE"]) console.log(report.join("\n"));
    expect(problems).toEqual([]);
  });

  it("answers a non-gRPC content type and an empty request on every path", async () => {
    for (const path of RPC_PATHS) {
      const wrongType = await rawCall(session, path, frame(Buffer.alloc(0)), { headers: { "content-type": "text/plain" } });
      expect(wrongType.end, describeOutcome(path, "text/plain", wrongType)).not.toBe("timeout");
      expect(wrongType.httpStatus === 415 || (wrongType.grpcStatus ?? 0) !== 0 || wrongType.end === "reset", describeOutcome(path, "text/plain", wrongType)).toBe(true);
      const empty = await rawCall(session, path, Buffer.alloc(0));
      expect(empty.end, describeOutcome(path, "empty", empty)).not.toBe("timeout");
      expect(empty.grpcStatus !== undefined || empty.end === "reset", describeOutcome(path, "empty", empty)).toBe(true);
    }
  });

  it("stays responsive while 200 requests hang half-sent, and forgets them when the connection goes", async () => {
    const hanging = await http2Session(broker.address);
    const pending: Array<Promise<RawOutcome>> = [];
    for (let i = 0; i < 200; i++) {
      const path = RPC_PATHS[i % RPC_PATHS.length]!;
      pending.push(rawCall(hanging, path, frame(Buffer.alloc(50, 1), { declaredLength: 1_000 }), { endStream: false, timeoutMs: 60_000 }));
    }
    expect(await healthCheck(broker.address)).toBe("SERVING");
    const meanwhile = uniqueName("meanwhile");
    await v2.createTopic({ name: meanwhile });
    expect(await v2.publishText(meanwhile, ["served"])).toEqual([1n]);
    hanging.destroy();
    await Promise.all(pending);
    expect(await healthCheck(broker.address)).toBe("SERVING");
  });

  it("closes or refuses (GOAWAY) connections that send garbage instead of HTTP/2", async () => {
    const rnd = prng(SEED + 2);
    expect(["closed", "goaway"]).toContain(await rawTcp(broker.port, rnd.bytes(4096)));
    expect(["closed", "goaway"]).toContain(await rawTcp(broker.port, Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    // The preface, then a SETTINGS frame header claiming 16 MiB: FRAME_SIZE_ERROR. (The server
    // sends GOAWAY and leaves closing to the client; either answer is a refusal.)
    expect(["closed", "goaway"]).toContain(await rawTcp(broker.port, Buffer.concat([preface, Buffer.from([0xff, 0xff, 0xff, 0x04, 0, 0, 0, 0, 0]), rnd.bytes(64)])));
    // The preface, then random frames.
    expect(["closed", "goaway"]).toContain(await rawTcp(broker.port, Buffer.concat([preface, rnd.bytes(512)])));
  });
});

describe("oversized messages", () => {
  it("refuses requests over the message size limit with RESOURCE_EXHAUSTED and accepts one just under it", async () => {
    const topic = uniqueName("big");
    const over = Buffer.alloc(MAX_MESSAGE_BYTES + 1024, 1);
    expect(await codeOf(v1.publish({ topic, payload: over, metadata: {} }))).toBe(status.RESOURCE_EXHAUSTED);
    await v2.createTopic({ name: topic });
    const half = Buffer.alloc(MAX_MESSAGE_BYTES / 2 + 1024, 2);
    expect(await codeOf(v2.publish(topic, [{ payload: half }, { payload: half }]))).toBe(status.RESOURCE_EXHAUSTED);
    expect(await codeOf(v1.publish({ topic, payload: Buffer.alloc(16), metadata: { big: "m".repeat(MAX_MESSAGE_BYTES) } }))).toBe(status.RESOURCE_EXHAUSTED);
    const under = Buffer.alloc(MAX_MESSAGE_BYTES - 4096, 3);
    expect(await v2.publish(topic, [{ payload: under }])).toMatchObject({ results: [{ sequence: 1n }] });
    expect((await v2.getTopic(topic)).stats!.published).toBe(1n);
  });

  it("refuses a raw frame that declares more than the limit", async () => {
    const session = await http2Session(broker.address);
    try {
      const body = Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0);
      const o = await rawCall(session, MessageBrokerService.publish.path, frame(body));
      expect(o.grpcStatus, describeOutcome(MessageBrokerService.publish.path, "oversized frame", o)).toBe(status.RESOURCE_EXHAUSTED);
    } finally {
      session.destroy();
    }
  });
});

describe("invalid names", () => {
  const BAD = ["", "a".repeat(256), "a".repeat(10_000), "white space", "../etc/passwd", "nul\u0000byte", "new\nline", "ünïcödé", "emoji-🐿", "dot.ted", "slash/ed"];

  it("v1 answers every invalid topic name with the original error strings", async () => {
    for (const name of BAD) {
      expect((await v1.createTopic({ name })).created, JSON.stringify(name)).toBe(false);
      expect((await v1.publish({ topic: name, payload: Buffer.from("x"), metadata: {} })).success, JSON.stringify(name)).toBe(false);
      expect(await v1.topicExists({ name })).toEqual({ exists: false });
      expect((await v1.getStats({ topic: name })).error, JSON.stringify(name)).not.toBe("");
      expect((await v1.deleteTopic({ name })).success).toBe(false);
      expect((await v1.unsubscribe({ topic: name, subscriptionRef: name })).success).toBe(false);
      await expect(v1Subscribe(v1Client(broker.address), name)).rejects.toMatchObject({ code: expect.any(Number) });
    }
    expect((await v1.listTopics({})).topics.filter((t) => BAD.includes(t))).toEqual([]);
  });

  it("v2 refuses every invalid topic and subscription name with INVALID_ARGUMENT or NOT_FOUND", async () => {
    const topic = uniqueName("names");
    await v2.createTopic({ name: topic });
    const refused = [status.INVALID_ARGUMENT, status.NOT_FOUND];
    for (const name of BAD) {
      expect(await codeOf(v2.createTopic({ name })), JSON.stringify(name)).toBe(status.INVALID_ARGUMENT);
      expect(await codeOf(v2.createSubscription({ name, topic })), JSON.stringify(name)).toBe(status.INVALID_ARGUMENT);
      expect(refused, JSON.stringify(name)).toContain(await codeOf(v2.createSubscription({ name: uniqueName("s"), topic: name })));
      expect(refused, JSON.stringify(name)).toContain(await codeOf(v2.publishText(name, ["x"])));
      expect(refused, JSON.stringify(name)).toContain(await codeOf(v2.getTopic(name)));
      const c = new TestConsumer(v2Client(broker.address), name);
      await c.waitForEnd();
      expect(refused, JSON.stringify(name)).toContain(c.error?.code);
    }
    expect((await v2.listTopics()).topics.map((t) => t.name).filter((n) => BAD.includes(n))).toEqual([]);
  });

  it("treats invalid UTF-8 in a name as an invalid name, not a crash", async () => {
    const session = await http2Session(broker.address);
    try {
      const name = Buffer.from([0xff, 0xfe, 0x41, 0xc3]); // not UTF-8
      const body = Buffer.concat([Buffer.from([0x0a, name.length]), name]); // field 1 (name), length-delimited
      const v2o = await rawCall(session, BrokerService.createTopic.path, frame(body));
      expect(v2o.grpcStatus, describeOutcome(BrokerService.createTopic.path, "invalid UTF-8", v2o)).not.toBe(status.OK);
      const v1o = await rawCall(session, MessageBrokerService.createTopic.path, frame(body));
      expect(v1o.grpcStatus, describeOutcome(MessageBrokerService.createTopic.path, "invalid UTF-8", v1o)).not.toBe(undefined);
    } finally {
      session.destroy();
    }
  });
});

describe("after the abuse", () => {
  it("is healthy, was never restarted, and still has the data stored before", async () => {
    expect(await healthCheck(broker.address)).toBe("SERVING");
    await pollUntil(async () => (await containerState(broker.id)).Health?.Status === "healthy", "Docker to report the container healthy", 15_000, 100);
    expect(await containerState(broker.id)).toMatchObject({ Running: true, RestartCount: 0, OOMKilled: false });
    expect((await brokerLogLines(broker.id)).filter((l) => l["msg"] === "listening")).toHaveLength(1);

    expect((await v1.getStats({ topic: precious.v1Topic })).messageCount).toBe(10n);
    const topic = await v2.getTopic(precious.v2Topic);
    expect(topic.stats).toMatchObject({ published: 100n, retainedMessages: 100n });
    const sub = `${precious.v2Topic}-check`;
    await v2.createSubscription({ name: sub, topic: precious.v2Topic, config: { start: StartPosition.START_POSITION_EARLIEST } });
    const c = new TestConsumer(v2Client(broker.address), sub, { autoAck: true });
    await c.waitForDeliveries(100);
    c.deliveries.forEach((d, i) => {
      expect(d.message!.sequence).toBe(BigInt(i + 1));
      expect(Buffer.compare(Buffer.from(d.message!.payload), precious.payloads[i]!), `payload ${i}`).toBe(0);
      expect(d.message!.attributes).toEqual({ i: String(i) });
    });
    c.cut();
  });
});
