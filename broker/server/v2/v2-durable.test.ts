import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { consumersAttached, pollUntil, startV2TestServer, TestConsumer, type V2TestServer } from "../../../test/support/index.js";

describe("v2 on the durable store", () => {
  const dirs: string[] = [];
  const servers: V2TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close().catch(() => undefined);
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("keeps subscriptions and ack state across a restart and redelivers only what was not acked", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "ratatoskr-v2-"));
    dirs.push(dataDir);
    const first = await startV2TestServer({ dataDir });
    servers.push(first);
    await first.api.createTopic({ name: "orders" });
    await first.api.createSubscription({ name: "billing", topic: "orders", config: { ackDeadlineMs: 60_000 } });
    const c = new TestConsumer(first.client, "billing");
    await consumersAttached(first.api, "billing", 1);
    await first.api.publishText("orders", ["o1", "o2", "o3", "o4", "o5"]);
    await c.waitForDeliveries(5);
    const ids = c.deliveries.map((d) => d.ackId);
    c.ack([ids[0]!, ids[1]!, ids[3]!]);
    await pollUntil(async () => (await first.api.getSubscription("billing")).stats?.ackFloor === 2n, "acks applied");
    await first.close();
    servers.pop();

    const second = await startV2TestServer({ dataDir });
    servers.push(second);
    const sub = await second.api.getSubscription("billing");
    expect(sub.config?.ackDeadlineMs).toBe(60_000);
    expect(sub.stats?.ackFloor).toBe(2n);
    const again = new TestConsumer(second.client, "billing", { autoAck: true });
    await again.waitForDeliveries(2);
    expect(again.texts()).toEqual(["o3", "o5"]);
    expect(again.deliveries.map((d) => d.message!.sequence)).toEqual([3n, 5n]);
    const seqs = await second.api.publishText("orders", ["o6"]);
    expect(seqs).toEqual([6n]);
    await again.waitForDeliveries(3);
    again.cut();
  });
});
