import type { ClientHttp2Session } from "node:http2";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { PublishBatchRequest, PublishBatchResponse, PublishRequest, PublishResponse } from "../../proto/gen/ratatoskr.js";
import { CreateSubscriptionRequest, Subscription } from "../../proto/gen/ratatoskr/v2/broker.js";
import { frame, RawSessions, rawCall, startV1TestServer, startV2TestServer, uniqueName, type V1TestServer, type V2TestServer } from "../../test/support/index.js";

// v1 Publish and PublishBatch served on HTTP/2 directly (direct-unary.ts), from outside: a raw
// node:http2 client sends what grpc-js clients send and what they never would. What the methods
// answer (error strings, batches, budgets, tokens) is in v1/v1-service.test.ts, v1-limits.test.ts
// and access.test.ts, through grpc-js clients against the same direct path.

const PUBLISH = "/ratatoskr.MessageBroker/Publish";
const PUBLISH_BATCH = "/ratatoskr.MessageBroker/PublishBatch";

let s: V1TestServer | undefined;
let v2: V2TestServer | undefined;
const sessions = new RawSessions();
afterEach(async () => {
  sessions.destroyAll();
  await s?.close();
  await v2?.close();
  s = undefined;
  v2 = undefined;
});

const session = (): Promise<ClientHttp2Session> => sessions.connect(s?.address ?? v2!.running.address);

/** The one gRPC message of a unary answer (its 5-byte prefix checked and removed). */
function onlyMessage(body: Buffer): Buffer {
  expect(body.length).toBeGreaterThanOrEqual(5);
  expect(body[0]).toBe(0);
  expect(body.readUInt32BE(1)).toBe(body.length - 5);
  return body.subarray(5);
}

const publishRequest = (topic: string, text: string): Buffer => Buffer.from(PublishRequest.encode({ topic, payload: Buffer.from(text), metadata: {} }).finish());
const published = (topic: string): number => (s!.broker.hasTopic(topic) ? s!.broker.topicInfo(topic).stats.published : 0);

describe("v1 Publish and PublishBatch served on HTTP/2 directly", () => {
  it("answers a Publish with gRPC headers, one PublishResponse and status OK, after storing the message", async () => {
    s = await startV1TestServer();
    const topic = uniqueName("direct");
    const out = await rawCall(await session(), PUBLISH, frame(publishRequest(topic, "one")));
    expect(out).toMatchObject({ httpStatus: 200, grpcStatus: status.OK, end: "closed" });
    const answer = PublishResponse.decode(onlyMessage(out.body));
    expect(answer).toMatchObject({ success: true, error: "" });
    expect(answer.messageId).not.toBe("");
    expect(published(topic)).toBe(1);
  });

  it("answers a PublishBatch with one result per message, in order", async () => {
    s = await startV1TestServer();
    const topic = uniqueName("direct-batch");
    const request = PublishBatchRequest.encode({
      topic,
      messages: [
        { topic: "", payload: Buffer.from("a"), metadata: {} },
        { topic: "bad topic!", payload: Buffer.from("b"), metadata: {} },
        { topic: "", payload: Buffer.from("c"), metadata: {} },
      ],
    }).finish();
    const out = await rawCall(await session(), PUBLISH_BATCH, frame(Buffer.from(request)));
    expect(out.grpcStatus).toBe(status.OK);
    const answer = PublishBatchResponse.decode(onlyMessage(out.body));
    expect(answer.results.map((r) => [r.success, r.error])).toEqual([
      [true, ""],
      [false, "invalid_topic_format"],
      [true, ""],
    ]);
    expect([answer.successCount, answer.errorCount]).toEqual([2, 1]);
    expect(published(topic)).toBe(2);
  });

  it("refuses a second request message with UNIMPLEMENTED, as grpc-js does, and publishes nothing", async () => {
    s = await startV1TestServer();
    const topic = uniqueName("direct-two");
    const out = await rawCall(await session(), PUBLISH, Buffer.concat([frame(publishRequest(topic, "one")), frame(publishRequest(topic, "two"))]));
    expect(out.grpcStatus).toBe(status.UNIMPLEMENTED);
    expect(out.grpcMessage).toBe(`Received a second request message for server streaming method ${PUBLISH}`);
    expect(published(topic)).toBe(0);
  });

  it("refuses a half-close without a request message with UNIMPLEMENTED", async () => {
    s = await startV1TestServer();
    const out = await rawCall(await session(), PUBLISH, Buffer.alloc(0));
    expect(out.grpcStatus).toBe(status.UNIMPLEMENTED);
    expect(out.grpcMessage).toBe(`Received no request message for server streaming method ${PUBLISH}`);
  });

  it("refuses a message that is not a PublishRequest with INTERNAL, and the next call on the connection succeeds", async () => {
    s = await startV1TestServer();
    const h = await session();
    // Field 1 (topic), length-delimited, declares 16 bytes and carries none.
    const out = await rawCall(h, PUBLISH, frame(Buffer.from([0x0a, 0x10])));
    expect(out.grpcStatus).toBe(status.INTERNAL);
    expect(out.grpcMessage).toBe("Error deserializing request");
    const topic = uniqueName("direct-after");
    expect((await rawCall(h, PUBLISH, frame(publishRequest(topic, "ok")))).grpcStatus).toBe(status.OK);
    expect(published(topic)).toBe(1);
  });

  it("answers a request over the receive limit with RESOURCE_EXHAUSTED before reading it", async () => {
    s = await startV1TestServer({ config: { maxMessageBytes: 8192 } });
    const topic = uniqueName("direct-big");
    const out = await rawCall(await session(), PUBLISH, frame(publishRequest(topic, "x".repeat(16_384))));
    expect(out.grpcStatus).toBe(status.RESOURCE_EXHAUSTED);
    expect(out.grpcMessage).toMatch(/^Received message larger than max \(\d+ vs\. 8192\)$/);
    expect(published(topic)).toBe(0);
  });
});

// v2 CreateSubscription goes the same way (a run opening 100,000 consumers makes as many calls).
const CREATE_SUBSCRIPTION = "/ratatoskr.v2.Broker/CreateSubscription";
const createSubscriptionRequest = (name: string, topic: string): Buffer =>
  Buffer.from(CreateSubscriptionRequest.encode(CreateSubscriptionRequest.fromPartial({ name, topic, config: { ackDeadlineMs: 5000 } })).finish());

describe("v2 CreateSubscription served on HTTP/2 directly", () => {
  it("creates the subscription and answers with it and status OK; a second time ALREADY_EXISTS", async () => {
    v2 = await startV2TestServer();
    const topic = uniqueName("direct-v2");
    await v2.api.createTopic({ name: topic });
    const h = await session();
    const out = await rawCall(h, CREATE_SUBSCRIPTION, frame(createSubscriptionRequest(`${topic}-sub`, topic)));
    expect(out).toMatchObject({ httpStatus: 200, grpcStatus: status.OK, end: "closed" });
    const answer = Subscription.decode(onlyMessage(out.body));
    expect(answer).toMatchObject({ name: `${topic}-sub`, topic });
    expect(answer.config?.ackDeadlineMs).toBe(5000);
    expect((await v2.api.getSubscription(`${topic}-sub`)).topic).toBe(topic);
    const again = await rawCall(h, CREATE_SUBSCRIPTION, frame(createSubscriptionRequest(`${topic}-sub`, topic)));
    expect(again.grpcStatus).toBe(status.ALREADY_EXISTS);
    expect(again.grpcMessage).toBe(`subscription "${topic}-sub" already exists`);
  });

  it("answers NOT_FOUND naming a missing topic, INTERNAL for bytes that are not a request, and the connection stays usable", async () => {
    v2 = await startV2TestServer();
    const h = await session();
    const missing = await rawCall(h, CREATE_SUBSCRIPTION, frame(createSubscriptionRequest("s", "no-such-topic")));
    expect(missing.grpcStatus).toBe(status.NOT_FOUND);
    expect(missing.grpcMessage).toBe('topic "no-such-topic" does not exist');
    const garbled = await rawCall(h, CREATE_SUBSCRIPTION, frame(Buffer.from([0x0a, 0x10])));
    expect(garbled.grpcStatus).toBe(status.INTERNAL);
    expect(garbled.grpcMessage).toBe("Error deserializing request");
    const topic = uniqueName("direct-v2-after");
    await v2.api.createTopic({ name: topic });
    expect((await rawCall(h, CREATE_SUBSCRIPTION, frame(createSubscriptionRequest(`${topic}-sub`, topic)))).grpcStatus).toBe(status.OK);
  });
});
