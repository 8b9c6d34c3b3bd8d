import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BrokerClient, ConsumeResponse } from "../../proto/gen/ratatoskr/v2/broker.js";
import { MessageBrokerClient } from "../../proto/gen/ratatoskr.js";
import { expectStatus, startV2TestServer, TestConsumer, uniqueName, v1Subscribe, type V2TestServer } from "../support/index.js";

// Accept only what can be delivered (issue 14): the largest publishable message leaves room for
// the delivery envelope and for its dead-letter copy, so every delivery fits the broker's
// --max-message-bytes, and a client whose receive limit is that size (gRPC's default is 4 MiB)
// gets it over v2 Consume and v1 Subscribe. One byte more is refused, naming the limit.

const MAX = 64 * 1024;
const WIDEST = 2 ** 53 - 1;

/** A v2 ConsumeResponse frame carrying one message with the broker's fields at their widest, by the generated encoder. */
function worstCaseFrame(topic: string, id: string, payloadBytes: number): number {
  return ConsumeResponse.encode({
    deliveries: [
      {
        ackId: BigInt(WIDEST),
        attempt: 0x7fff_ffff,
        message: { id, topic, sequence: BigInt(WIDEST), payload: Buffer.alloc(payloadBytes), attributes: {}, publishTimeMs: BigInt(WIDEST) },
      },
    ],
  }).finish().length;
}

/** Clients that accept nothing larger than the broker's own limit. */
const limited = { "grpc.max_receive_message_length": MAX, "grpc.use_local_subchannel_pool": 1 };

describe.each(["memory", "durable"] as const)("a message at the exact size limit on the %s store", (kind) => {
  let server: V2TestServer;
  let dir: string | undefined;
  let v2: BrokerClient;
  let v1: MessageBrokerClient;
  beforeAll(async () => {
    dir = kind === "durable" ? mkdtempSync(join(tmpdir(), "ratatoskr-deliverable-")) : undefined;
    server = await startV2TestServer({ dataDir: dir, maxMessageBytes: MAX });
    v2 = new BrokerClient(server.running.address, credentials.createInsecure(), limited);
    v1 = new MessageBrokerClient(server.running.address, credentials.createInsecure(), limited);
  });
  afterAll(async () => {
    v2.close();
    v1.close();
    await server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("is delivered over v2 Consume and v1 Subscribe, and to its dead-letter topic; one byte more is refused", async () => {
    const limit = server.running.settings.maxPublishDeliveryBytes;
    // The reserve for envelope and dead-letter copy is a few KiB, not a large share of the limit.
    expect(limit).toBeLessThan(MAX);
    expect(limit).toBeGreaterThan(MAX - 4096);
    const topic = uniqueName("exact");
    // The widest dead-letter copy: names of 255 characters and an id at its limit.
    const dlq = `dlq-${topic}`.padEnd(255, "d");
    const sub = `sub-${topic}`.padEnd(255, "s");
    const id = "i".repeat(server.running.settings.maxMessageIdBytes);
    await server.api.createTopic({ name: topic });
    await server.api.createTopic({ name: dlq });
    await server.api.createSubscription({ name: sub, topic, config: { maxDeliveries: 1, deadLetterTopic: dlq } });
    await server.api.createSubscription({ name: `${dlq.slice(0, 250)}-sub`, topic: dlq });
    let payload = limit - worstCaseFrame(topic, id, 0);
    while (worstCaseFrame(topic, id, payload) > limit) payload--;
    while (worstCaseFrame(topic, id, payload + 1) <= limit) payload++;
    expect(worstCaseFrame(topic, id, payload)).toBe(limit);

    const live = await v1Subscribe(v1, topic);
    const stored = await server.api.publish(topic, [{ payload: Buffer.alloc(payload, 0x61), messageId: id }]);
    expect(stored.results[0]).toMatchObject({ sequence: 1n, duplicate: false });
    await expectStatus(
      server.api.publish(topic, [{ payload: Buffer.alloc(payload + 1, 0x61), messageId: `${id.slice(1)}x` }]),
      status.RESOURCE_EXHAUSTED,
      new RegExp(`messages\\[0\\]: is ${limit + 1} bytes as delivered; the limit is ${limit} \\(--max-message-bytes ${MAX} `),
    );

    await live.received(1);
    expect(live.messages[0]!.payload.length).toBe(payload);

    // v2: deliver, nack (max_deliveries 1): the copy goes to the dead-letter topic, with its origin attributes.
    const consumer = new TestConsumer(v2, sub);
    await consumer.waitForDeliveries(1);
    expect(consumer.deliveries[0]!.message!.payload.length).toBe(payload);
    consumer.nack([consumer.deliveries[0]!.ackId]);
    const dead = new TestConsumer(v2, `${dlq.slice(0, 250)}-sub`, { autoAck: true });
    await dead.waitForDeliveries(1);
    const copy = dead.deliveries[0]!.message!;
    expect(copy.payload.length).toBe(payload);
    expect(copy.attributes["ratatoskr-origin-message-id"]).toBe(id);
    expect(consumer.ended).toBe(false);
    expect(dead.ended).toBe(false);
    expect(live.messages).toHaveLength(1);
    consumer.finish();
    dead.finish();
    live.stream.cancel();
  });
});
