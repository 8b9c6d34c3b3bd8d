// Restart durability: a durable broker on a named volume is SIGKILLed while a producer is
// publishing; a new container on the same volume delivers every acknowledged message again
// (acks lost in the crash may cause redelivery, never loss; docs/design.md, "Storage and durability").
import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StartPosition } from "../proto/gen/ratatoskr/v2/broker.js";
import { consumersAttached, pollUntil, TestConsumer, uniqueName, v1Api, v1Client, v2Api, v2Client } from "../test/support/index.js";
import {
  type BrokerContainer,
  brokerLogLines,
  cleanUp,
  containerState,
  freePort,
  killContainer,
  startBrokerContainer,
} from "./support/broker-container.js";
import { requireDockerAndImage } from "./support/docker-engine.js";

await requireDockerAndImage();

const volume = uniqueName("ratatoskr-e2e-durable");
const DURABLE_ENV = { RATATOSKR_DATA_DIR: "/data", RATATOSKR_FSYNC: "false" };
const started: BrokerContainer[] = [];
let port: number;

async function startDurable(): Promise<BrokerContainer> {
  const b = await startBrokerContainer({ port, env: DURABLE_ENV, volume });
  started.push(b);
  return b;
}

beforeAll(async () => {
  port = await freePort();
});

afterAll(async () => {
  await cleanUp(started, volume);
});

describe("restart durability (SIGKILL on a volume)", () => {
  it("delivers every acknowledged message after the broker is killed mid-publish and restarted on the same volume", async () => {
    const first = await startDurable();
    const client = v2Client(first.address);
    const api = v2Api(client);
    expect((await api.brokerStats()).storage).toBe("durable");

    const topic = uniqueName("durable");
    const sub = `${topic}-sub`;
    const replay = `${topic}-replay`;
    await api.createTopic({ name: topic });
    await api.createSubscription({ name: sub, topic });
    // v1 state lives in the same store: a v1 topic with a known message count.
    const v1Topic = uniqueName("durable-v1");
    const v1 = v1Api(v1Client(first.address));
    for (let i = 0; i < 5; i++) await v1.publish({ topic: v1Topic, payload: Buffer.from(`v1-${i}`), metadata: {} });

    // Consume and ack the first part, so the restart has ack state to recover too.
    await api.publish(topic, Array.from({ length: 300 }, (_, i) => ({ payload: Buffer.from(`pre-${i}`) })));
    const early = new TestConsumer(v2Client(first.address), sub, { autoAck: true });
    await early.waitForDeliveries(300);
    await pollUntil(async () => (await api.getSubscription(sub)).stats?.ackFloor === 300n, "the broker to record 300 acks");
    early.cut();
    await consumersAttached(api, sub, 0);

    // A producer publishing batches as fast as the broker acknowledges them; SIGKILL lands mid-stream.
    const acked = new Map<bigint, string>(); // sequence -> payload, for every acknowledged publish
    for (let i = 0; i < 300; i++) acked.set(BigInt(i + 1), `pre-${i}`);
    let producerError: ServiceError | undefined;
    let batch = 0;
    const producer = (async () => {
      for (;;) {
        const payloads = Array.from({ length: 20 }, (_, k) => `b${batch}-${k}`);
        batch++;
        try {
          const res = await api.publish(topic, payloads.map((p) => ({ payload: Buffer.from(p) })));
          res.results.forEach((r, k) => acked.set(r.sequence, payloads[k]!));
        } catch (err) {
          producerError = err as ServiceError;
          return;
        }
      }
    })();
    await pollUntil(() => acked.size >= 2_300 || producerError !== undefined, "2,000 more acknowledged publishes", 60_000);
    await killContainer(first.id);
    await producer;
    client.close();

    expect(producerError?.code).toBe(status.UNAVAILABLE);
    const dead = await containerState(first.id);
    expect(dead).toMatchObject({ Running: false, ExitCode: 137, OOMKilled: false });
    await first.container.stop(); // removes the container; the named volume stays

    const second = await startDurable();
    const api2 = v2Api(v2Client(second.address));
    expect((await api2.brokerStats()).storage).toBe("durable");
    // The recovered topic continues its sequence after the last acknowledged one.
    const lastAcked = [...acked.keys()].reduce((a, b) => (b > a ? b : a));
    const topicAfter = await api2.getTopic(topic);
    expect(topicAfter.stats!.lastSequence).toBeGreaterThanOrEqual(lastAcked);
    expect((await v1Api(v1Client(second.address)).getStats({ topic: v1Topic })).messageCount).toBe(5n);

    await api2.createSubscription({ name: replay, topic, config: { start: StartPosition.START_POSITION_SEQUENCE, startSequence: 301n } });

    // Every acknowledged message not acked by a consumer comes again, payload intact.
    const consumer = new TestConsumer(v2Client(second.address), sub, { autoAck: true, maxOutstandingMessages: 500 });
    const want = [...acked.keys()].filter((s) => s > 300n);
    const seen = new Map<bigint, string>();
    await consumer.waitFor(
      () => {
        for (let i = seen.size; i < consumer.deliveries.length; i++) {
          const m = consumer.deliveries[i]!.message!;
          seen.set(m.sequence, Buffer.from(m.payload).toString());
        }
        return want.every((s) => seen.has(s));
      },
      `redelivery of ${want.length} acknowledged messages`,
      60_000,
    );
    for (const s of want) expect(seen.get(s), `sequence ${s}`).toBe(acked.get(s));
    // Nothing was invented: every delivery is a sequence the topic assigned.
    for (const s of seen.keys()) expect(s).toBeLessThanOrEqual(topicAfter.stats!.lastSequence);
    consumer.cut();

    // A second subscription, created before anything is acked again (interest retention keeps the
    // messages for it), replays the recovered history from sequence 301 in order.
    const replayer = new TestConsumer(v2Client(second.address), replay, { autoAck: true, maxOutstandingMessages: 500 });
    await replayer.waitFor(() => replayer.deliveries.length >= want.length, `${want.length} replayed messages`, 60_000);
    const replayed = replayer.deliveries.map((d) => d.message!.sequence);
    const byValue = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
    expect(replayed).toEqual([...replayed].sort(byValue));
    expect(replayed.slice(0, want.length)).toEqual(want.sort(byValue));
    replayer.cut();

    // The new container started once, from the recovered store.
    expect((await brokerLogLines(second.id)).filter((l) => l["msg"] === "listening")).toHaveLength(1);
  });
});
