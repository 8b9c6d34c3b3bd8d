import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startV2TestServer, TestConsumer, uniqueName, type V2TestServer } from "../../../test/support/index.js";

describe("v2 publish → subscribe → consume → ack", () => {
  let srv: V2TestServer;
  beforeAll(async () => {
    srv = await startV2TestServer();
  });
  afterAll(async () => {
    await srv.close();
  });

  it("delivers published messages in order and stops redelivering once acked", async () => {
    const topic = uniqueName("smoke");
    await srv.api.createTopic({ name: topic });
    await srv.api.createSubscription({ name: `${topic}-sub`, topic });
    const c = new TestConsumer(srv.client, `${topic}-sub`, { autoAck: true });
    const seqs = await srv.api.publishText(topic, ["a", "b", "c"]);
    expect(seqs).toEqual([1n, 2n, 3n]);
    await c.waitForDeliveries(3);
    expect(c.texts()).toEqual(["a", "b", "c"]);
    expect(c.deliveries.map((d) => d.attempt)).toEqual([1, 1, 1]);
    const sub = await srv.api.getSubscription(`${topic}-sub`);
    await c.waitFor(() => c.outstanding.size === 0, "every delivery acked");
    c.cut();
    expect(sub.stats?.delivered).toBe(3n);
  });
});
