import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status, type ServiceError } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger, startBroker, type RunningBroker } from "../../broker/index.js";
import { mountTmpfs, pollUntil, TestConsumer, uniqueName, v2Api, v2Client, type Tmpfs } from "../support/index.js";

// Disk full is a refusal, not a crash (issue 14): on a small tmpfs with no disk budget set,
// publishes are refused once the disk is full (RESOURCE_EXHAUSTED from the free-space reserve,
// UNAVAILABLE from a failed write), the broker keeps serving reads and acks, logs one line per
// episode, accepts publishes again once space returns, and after a restart holds every
// acknowledged message intact. Mounting the tmpfs needs root (docs/testing.md, "Disk-full tests").

const MiB = 1024 * 1024;
let fs: Tmpfs | undefined;
let broker: RunningBroker | undefined;
afterEach(async () => {
  await broker?.close();
  broker = undefined;
  fs?.remove();
  fs = undefined;
});

const cases = [
  { name: "the default free-space reserve", diskReserveBytes: undefined, codes: [status.RESOURCE_EXHAUSTED, status.UNAVAILABLE] },
  { name: "no reserve (the disk itself fails the writes)", diskReserveBytes: 0, codes: [status.UNAVAILABLE] },
];

describe.each(cases)("a full disk with $name", ({ diskReserveBytes, codes }) => {
  it("refuses publishes, keeps serving, resumes when space returns, and keeps every acknowledged message", { timeout: 60_000 }, async () => {
    fs = mountTmpfs(16 * MiB);
    const dataDir = join(fs.path, "data");
    const filler = join(fs.path, "filler");
    writeFileSync(filler, Buffer.alloc(9 * MiB, 1));
    const lines: string[] = [];
    const log = createLogger("warn", (line) => lines.push(line));
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      broker = await startBroker({ host: "127.0.0.1", port: 0, logLevel: "warn", dataDir, diskReserveBytes }, log);
      let client = v2Client(broker.address);
      let api = v2Api(client);
      const topic = uniqueName("full");
      const other = uniqueName("other");
      await api.createTopic({ name: topic, config: { retention: 2, maxMessages: 0n, maxBytes: 0n, maxAgeMs: 0n, dedupWindowMs: 0n } });
      await api.createTopic({ name: other });
      await api.createSubscription({ name: `${topic}-sub`, topic, config: { start: 2 } }); // EARLIEST

      const acked: number[] = [];
      const payloadOf = (seq: number): Buffer => Buffer.from(`${seq}:`.padEnd(4096, "x"));
      const publishNext = async (): Promise<ServiceError | undefined> => {
        const next = acked.length + 1;
        try {
          const r = await api.publish(topic, Array.from({ length: 8 }, (_, i) => ({ payload: payloadOf(next + i) })));
          for (const res of r.results) acked.push(Number(res.sequence));
          return undefined;
        } catch (err) {
          return err as ServiceError;
        }
      };
      let refusal: ServiceError | undefined;
      for (let i = 0; i < 2000 && !refusal; i++) refusal = await publishNext();
      expect(refusal, "the disk never filled").toBeDefined();
      expect(codes).toContain(refusal!.code);
      expect(acked.length).toBeGreaterThan(0);
      // More refusals while it is full: each one answered, one log line for the episode.
      for (let i = 0; i < 20; i++) expect(await publishNext()).toBeDefined();
      if (diskReserveBytes === 0) expect(lines.filter((l) => l.includes("disk writes are failing"))).toHaveLength(1);

      // Reads and acks go on: the subscription delivers what was acknowledged, acks are taken.
      const consumer = new TestConsumer(client, `${topic}-sub`, { autoAck: true, maxOutstandingMessages: 100 });
      await consumer.waitForDeliveries(acked.length);
      expect(consumer.ended).toBe(false);
      expect((await api.getTopic(topic)).stats?.lastSequence).toBe(BigInt(acked.length));
      consumer.finish();

      // Space returns: publishes are accepted again (after the store has cleaned up, within seconds).
      rmSync(filler);
      await pollUntil(async () => (await publishNext()) === undefined, "a publish accepted after space returned", 20_000, 100);
      expect((await api.publish(other, [{ payload: Buffer.from("fine") }])).results).toHaveLength(1);
      if (diskReserveBytes === 0) expect(lines.some((l) => l.includes("disk writes work again"))).toBe(true);
      expect(acked).toEqual(Array.from({ length: acked.length }, (_, i) => i + 1));

      // Restart on the same directory: every acknowledged message is there, byte for byte.
      client.close();
      await broker.close();
      broker = await startBroker({ host: "127.0.0.1", port: 0, logLevel: "warn", dataDir, diskReserveBytes }, log);
      client = v2Client(broker.address);
      api = v2Api(client);
      expect((await api.getTopic(topic)).stats?.lastSequence).toBe(BigInt(acked.length));
      await api.createSubscription({ name: `${topic}-check`, topic, config: { start: 2 } });
      const check = new TestConsumer(client, `${topic}-check`, { autoAck: true, maxOutstandingMessages: 100 });
      await check.waitForDeliveries(acked.length);
      const seen = check.deliveries.map((d) => [Number(d.message!.sequence), d.message!.payload.equals(payloadOf(Number(d.message!.sequence)))]);
      expect(seen).toEqual(acked.map((s) => [s, true]));
      check.finish();
      client.close();
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
