import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PublishStreamRequest, type PublishMessage } from "../../proto/gen/ratatoskr/v2/broker.js";
import { expectStatus, startV2TestServer, TestConsumer, TestPublisher, topicWithSubscription, uniqueName, v1Api, v1Client, v1Subscribe, type V2TestServer } from "../support/index.js";

// Regression tests for one publish that the durable store used to take down (issue 14): an
// attribute key, a message id or an attribute count of 65,536 or more. The edge refuses each
// with INVALID_ARGUMENT naming the field and its limit, identically on both stores; the broker
// stays up, the topic keeps its sequence, a retry with the same id is stored (never answered
// "duplicate"), and other topics and clients go on. Over a real socket, v1 and v2.

const BIG = 65_536;
const bigKey = "k".repeat(BIG);
const manyAttributes = Object.fromEntries(Array.from({ length: BIG }, (_, i) => [`a${i}`, ""]));

describe.each(["memory", "durable"] as const)("one oversized field on the %s store", (kind) => {
  let server: V2TestServer;
  let dir: string | undefined;
  beforeAll(async () => {
    dir = kind === "durable" ? mkdtempSync(join(tmpdir(), "ratatoskr-limits-")) : undefined;
    server = await startV2TestServer({ dataDir: dir });
  });
  afterAll(async () => {
    await server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cases = [
    { what: "an attribute key of 65,536 bytes", message: { messageId: "order-1", attributes: { [bigKey]: "v" } }, detail: /messages\[0\]\.attributes: a key is 65536 bytes; the limit is 1024 \(--max-attribute-key-bytes\)/ },
    { what: "a message id of 65,536 bytes", message: { messageId: "i".repeat(BIG) }, detail: /messages\[0\]\.message_id: is 65536 bytes; the limit is 1024 \(--max-message-id-bytes\)/ },
    { what: "65,536 attributes", message: { messageId: "order-1", attributes: manyAttributes }, detail: /messages\[0\]\.attributes: has 65536 entries; the limit is 1024 \(--max-attributes\)/ },
  ];

  it.each(cases)("v2 Publish of $what is INVALID_ARGUMENT and leaves the topic as it was", async ({ message, detail }) => {
    const { topic, sub } = await topicWithSubscription(server.api);
    const other = uniqueName("other");
    await server.api.createTopic({ name: other });
    const consumer = new TestConsumer(server.client, sub, { autoAck: true });
    await server.api.publish(topic, [{ payload: Buffer.from("before") }]);
    await expectStatus(server.api.publish(topic, [{ payload: Buffer.from("bad"), ...message }]), status.INVALID_ARGUMENT, detail);
    // A retry of the same producer id, now within the limits, is stored: never "duplicate".
    const retry = await server.api.publish(topic, [{ payload: Buffer.from("retry"), messageId: "order-1" }]);
    expect(retry.results[0]).toMatchObject({ duplicate: false, sequence: 2n });
    expect((await server.api.publish(other, [{ payload: Buffer.from("x") }])).results[0]!.sequence).toBe(1n);
    await consumer.waitForDeliveries(2);
    expect(consumer.texts()).toEqual(["before", "retry"]);
    expect(consumer.ended).toBe(false);
    consumer.finish();
    expect((await server.api.getTopic(topic)).stats?.lastSequence).toBe(2n);
  });

  it.each(cases)("PublishStream of $what answers INVALID_ARGUMENT for that request and goes on", async ({ message }) => {
    const topic = uniqueName("ps");
    await server.api.createTopic({ name: topic });
    const publisher = new TestPublisher(server.client);
    const send = (requestId: bigint, messages: PublishMessage[]): void => publisher.sendRaw(Buffer.from(PublishStreamRequest.encode({ requestId, topic, messages }).finish()));
    send(1n, [{ payload: Buffer.from("bad"), attributes: {}, ...message }]);
    send(2n, [{ payload: Buffer.from("good"), attributes: {}, messageId: "order-1" }]);
    await publisher.waitFor(() => publisher.responses.length === 2, "two answers");
    expect(publisher.byId(1n).errorCode).toBe(status.INVALID_ARGUMENT);
    expect(publisher.byId(2n)).toMatchObject({ errorCode: 0, results: [{ sequence: 1n, duplicate: false }] });
    expect(publisher.ended).toBe(false);
    publisher.finish();
  });

  it("v1 Publish with a metadata key of 65,536 bytes is INVALID_ARGUMENT; a PublishBatch item is refused alone", async () => {
    const client = v1Client(server.running.address);
    const v1 = v1Api(client);
    const topic = uniqueName("v1");
    const subscription = await v1Subscribe(client, topic).catch(() => undefined); // the topic does not exist yet
    expect(subscription).toBeUndefined();
    await v1.createTopic({ name: topic });
    const live = await v1Subscribe(client, topic);
    await expectStatus(v1.publish({ topic, payload: Buffer.from("bad"), metadata: { [bigKey]: "v" } }), status.INVALID_ARGUMENT, /--max-attribute-key-bytes/);
    const batch = await v1.publishBatch({
      topic,
      messages: [
        { topic: "", payload: Buffer.from("one"), metadata: {} },
        { topic: "", payload: Buffer.from("bad"), metadata: manyAttributes },
        { topic: "", payload: Buffer.from("two"), metadata: {} },
      ],
    });
    expect(batch.results.map((r) => [r.success, r.error])).toEqual([
      [true, ""],
      [false, "invalid_argument"],
      [true, ""],
    ]);
    await live.received(2);
    expect(live.messages.map((m) => m.payload.toString())).toEqual(["one", "two"]);
    expect((await v1.getStats({ topic })).messageCount).toBe(2n);
    live.stream.cancel();
    client.close();
  });
});

describe("a durable broker after refused publishes", () => {
  it("restarts with the topic's sequences continuing, nothing refused stored", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ratatoskr-limits-restart-"));
    try {
      let server = await startV2TestServer({ dataDir: dir });
      const topic = uniqueName("r");
      await server.api.createTopic({ name: topic, config: { retention: 2, maxMessages: 0n, maxBytes: 0n, maxAgeMs: 0n, dedupWindowMs: 0n } });
      await server.api.publish(topic, [{ payload: Buffer.from("a") }]);
      await expectStatus(server.api.publish(topic, [{ payload: Buffer.from("x"), messageId: "m", attributes: { [bigKey]: "" } }]), status.INVALID_ARGUMENT);
      await server.api.publish(topic, [{ payload: Buffer.from("b"), messageId: "m" }]);
      await server.close();
      server = await startV2TestServer({ dataDir: dir });
      const again = await server.api.publish(topic, [{ payload: Buffer.from("b"), messageId: "m" }, { payload: Buffer.from("c") }]);
      expect(again.results.map((r) => [r.sequence, r.duplicate])).toEqual([
        [2n, true],
        [3n, false],
      ]);
      expect((await server.api.getTopic(topic)).stats).toMatchObject({ lastSequence: 3n, retainedMessages: 3n });
      await server.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
