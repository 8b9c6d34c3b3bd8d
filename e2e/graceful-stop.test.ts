// Graceful stop: `docker stop` (SIGTERM) while producers publish and consumers read. The
// broker ends open streams with UNAVAILABLE ("shutting down"), exits 0 well inside the grace
// period, and a new container on the same volume has every acknowledged message and the
// recorded ack state.
import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consumersAttached, pollUntil, TestConsumer, uniqueName, v1Api, v1Client, v1Subscribe, v2Api, v2Client } from "../test/support/index.js";
import {
  type BrokerContainer,
  brokerLogLines,
  cleanUp,
  containerState,
  freePort,
  removeContainer,
  startBrokerContainer,
} from "./support/broker-container.js";
import { requireDockerAndImage } from "./support/docker-engine.js";

await requireDockerAndImage();

const volume = uniqueName("ratatoskr-e2e-stop");
const DURABLE_ENV = { RATATOSKR_DATA_DIR: "/data", RATATOSKR_SHUTDOWN_GRACE_MS: "3000" };
const started: BrokerContainer[] = [];
let port: number;

beforeAll(async () => {
  port = await freePort();
});

afterAll(async () => {
  await cleanUp(started, volume);
});

describe("graceful stop (docker stop)", () => {
  it("ends streams with UNAVAILABLE, exits 0 inside the grace period and loses nothing acknowledged", async () => {
    const first = await startBrokerContainer({ port, env: DURABLE_ENV, volume });
    started.push(first);
    const api = v2Api(v2Client(first.address));
    const v1 = v1Api(v1Client(first.address));

    const topic = uniqueName("stop");
    const sub = `${topic}-sub`;
    const audit = `${topic}-audit`; // never consumed before the stop: holds every message
    await api.createTopic({ name: topic });
    await api.createSubscription({ name: sub, topic });
    await api.createSubscription({ name: audit, topic });
    const v1Topic = uniqueName("stop-v1");
    await v1.createTopic({ name: v1Topic });
    const v1Stream = await v1Subscribe(v1Client(first.address), v1Topic);
    const consumer = new TestConsumer(v2Client(first.address), sub, { autoAck: true });
    await consumersAttached(api, sub, 1);

    const acked = new Map<bigint, string>();
    let producerError: ServiceError | undefined;
    let v1Acked = 0;
    const producer = (async () => {
      for (let batch = 0; ; batch++) {
        const payloads = Array.from({ length: 20 }, (_, k) => `b${batch}-${k}`);
        try {
          const res = await api.publish(topic, payloads.map((p) => ({ payload: Buffer.from(p) })));
          res.results.forEach((r, k) => acked.set(r.sequence, payloads[k]!));
          const v1res = await v1.publish({ topic: v1Topic, payload: Buffer.from(`v1-${batch}`), metadata: {} });
          if (v1res.success) v1Acked++;
        } catch (err) {
          producerError = err as ServiceError;
          return;
        }
      }
    })();
    await pollUntil(() => acked.size >= 1_000 || producerError !== undefined, "1,000 acknowledged publishes", 60_000);
    await consumer.waitForDeliveries(200);
    await v1Stream.received(10);
    const floorBeforeStop = (await api.getSubscription(sub)).stats!.ackFloor;

    const t0 = performance.now();
    await first.container.stop({ timeout: 20_000, remove: false }); // SIGTERM, SIGKILL only after 20 s
    const stopMs = performance.now() - t0;
    await producer;

    const state = await containerState(first.id);
    expect(state).toMatchObject({ Running: false, ExitCode: 0, OOMKilled: false });
    expect(stopMs).toBeLessThan(10_000); // well inside docker's 20 s, so no SIGKILL was needed
    const v1End = await v1Stream.ended;
    expect(v1End.code).toBe(status.UNAVAILABLE);
    expect(v1End.details).toMatch(/shutting down/);
    await consumer.waitForEnd();
    expect(consumer.error?.code).toBe(status.UNAVAILABLE);
    expect(consumer.error?.details).toMatch(/shutting down/);
    expect(producerError?.code).toBe(status.UNAVAILABLE);
    const msgs = (await brokerLogLines(first.id)).map((l) => l["msg"]);
    expect(msgs).toEqual(expect.arrayContaining(["listening", "shutting down", "stopped"]));
    expect(msgs.indexOf("stopped")).toBeGreaterThan(msgs.indexOf("shutting down"));
    await removeContainer(first.id); // the volume stays

    const second = await startBrokerContainer({ port, env: DURABLE_ENV, volume });
    started.push(second);
    const api2 = v2Api(v2Client(second.address));
    // Ack state recorded before the stop survived it.
    expect((await api2.getSubscription(sub)).stats!.ackFloor).toBeGreaterThanOrEqual(floorBeforeStop);
    expect((await v1Api(v1Client(second.address)).getStats({ topic: v1Topic })).messageCount).toBeGreaterThanOrEqual(BigInt(v1Acked));
    // Every acknowledged publish is still there, payload intact.
    const reader = new TestConsumer(v2Client(second.address), audit, { autoAck: true, maxOutstandingMessages: 500 });
    const seen = new Map<bigint, string>();
    await reader.waitFor(
      () => {
        for (let i = seen.size; i < reader.deliveries.length; i++) {
          const m = reader.deliveries[i]!.message!;
          seen.set(m.sequence, Buffer.from(m.payload).toString());
        }
        return [...acked.keys()].every((s) => seen.has(s));
      },
      `all ${acked.size} acknowledged messages`,
      60_000,
    );
    for (const [s, payload] of acked) expect(seen.get(s), `sequence ${s}`).toBe(payload);
    reader.cut();
  });
});
