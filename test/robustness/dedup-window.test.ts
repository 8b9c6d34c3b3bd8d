import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, startV2TestServer, uniqueName, type V2TestServer } from "../support/index.js";

// The de-duplication window is bounded (issue 14: 1 MiB message ids with a 24 h window grew RSS
// to 3 GB against a 64 MiB memory budget). Ids are capped in length, their entries in number,
// and their memory counts against --memory-budget-bytes; past a bound, a publish carrying new
// ids is refused with RESOURCE_EXHAUSTED and nothing of it is stored. On both stores.

const DAY_MS = 24n * 3600n * 1000n;
const BUDGET = 1024 * 1024;

describe.each(["memory", "durable"] as const)("the de-duplication window on the %s store", (kind) => {
  let server: V2TestServer;
  let dir: string | undefined;
  beforeAll(async () => {
    dir = kind === "durable" ? mkdtempSync(join(tmpdir(), "ratatoskr-dedup-")) : undefined;
    server = await startV2TestServer({ dataDir: dir, memoryBudgetBytes: BUDGET, maxDedupEntries: 5_000 });
  });
  afterAll(async () => {
    await server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const topicConfig = { retention: 2, maxMessages: 1n, maxBytes: 0n, maxAgeMs: 0n, dedupWindowMs: DAY_MS };

  it("refuses 1 MiB ids outright, naming the id limit", async () => {
    const topic = uniqueName("huge");
    await server.api.createTopic({ name: topic, config: topicConfig });
    await expectStatus(server.api.publish(topic, [{ payload: Buffer.from("x"), messageId: "i".repeat(1024 * 1024) }]), status.INVALID_ARGUMENT, /--max-message-id-bytes/);
    expect((await server.api.getTopic(topic)).stats!.lastSequence).toBe(0n);
  });

  it("keeps the ids of a 24 h window within the memory budget, then refuses new ids and stores nothing of them", async () => {
    const topic = uniqueName("ids");
    await server.api.createTopic({ name: topic, config: topicConfig });
    const id = (n: number): string => `${n}-`.padEnd(1024, "i"); // ids at their limit
    let stored = 0;
    let refusal: { code: number; details: string } | undefined;
    const batchOf = (from: number) => Array.from({ length: 20 }, (_, i) => ({ payload: Buffer.from("x"), messageId: id(from + i) }));
    for (let batch = 0; batch < 100 && !refusal; batch++) {
      try {
        await server.api.publish(topic, batchOf(stored));
        stored += 20;
      } catch (err) {
        refusal = err as { code: number; details: string };
      }
    }
    expect(refusal, "the window never filled").toBeDefined();
    expect(refusal!.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refusal!.details).toMatch(/de-duplication|memory budget full/);
    // What the ids take, as counted, stays within the budget (1,120 bytes per id at most).
    expect(stored * 1120).toBeLessThanOrEqual(BUDGET);
    expect(stored).toBeGreaterThan(500);
    const before = (await server.api.getTopic(topic)).stats!.lastSequence;
    expect(before).toBe(BigInt(stored));
    // Retries of stored ids are still recognised; a refused id was not stored.
    const retry = await server.api.publish(topic, [{ payload: Buffer.from("x"), messageId: id(0) }]);
    expect(retry.results[0]).toMatchObject({ duplicate: true, sequence: 1n });
    await expectStatus(server.api.publish(topic, batchOf(stored)), status.RESOURCE_EXHAUSTED);
    expect((await server.api.getTopic(topic)).stats!.lastSequence).toBe(before);
    // Deleting the topic lets go of its ids: new ids are accepted again.
    await server.api.deleteTopic(topic);
    const fresh = uniqueName("fresh");
    await server.api.createTopic({ name: fresh, config: topicConfig });
    expect((await server.api.publish(fresh, [{ payload: Buffer.from("x"), messageId: id(1) }])).results[0]!.duplicate).toBe(false);
  });

  it("caps the number of ids over all topics (--max-dedup-entries)", async () => {
    const topics = [uniqueName("cap"), uniqueName("cap")];
    for (const t of topics) await server.api.createTopic({ name: t, config: topicConfig });
    let accepted = 0;
    let refusal: { code: number; details: string } | undefined;
    for (let batch = 0; batch < 100 && !refusal; batch++) {
      try {
        await server.api.publish(topics[batch % 2]!, Array.from({ length: 100 }, (_, i) => ({ payload: Buffer.from("x"), messageId: `c${batch}-${i}` })));
        accepted += 100;
      } catch (err) {
        refusal = err as { code: number; details: string };
      }
    }
    expect(refusal?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refusal?.details).toMatch(/the limit is 5000 \(--max-dedup-entries\)/);
    expect(accepted).toBeLessThanOrEqual(5_000);
    // Messages without a producer id are not held back by the window.
    expect((await server.api.publish(topics[0]!, [{ payload: Buffer.from("no id") }])).results).toHaveLength(1);
    for (const t of topics) await server.api.deleteTopic(t);
  });
});
