import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LmdbStore } from "../store/index.js";
import { createBrokerCore, type BrokerCore } from "./broker-core.js";
import { ManualTimers } from "./clock.js";
import { ResourceExhaustedError } from "./errors.js";
import type { TopicRegistry } from "./topic-registry.js";
import { defaultTopicConfig, type PublishInput } from "./types.js";

// The broker core on the LMDB store: what a restart must keep (sequences, de-duplication),
// retention on disk, and the disk budget.

let dir: string;
let core: BrokerCore | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ratatoskr-durable-broker-"));
});
afterEach(async () => {
  await core?.close();
  core = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** (Re)starts the core on the data directory; returns its topics. */
async function start(diskBudgetBytes = 0): Promise<TopicRegistry> {
  await core?.close();
  core = createBrokerCore({ store: await LmdbStore.open({ dataDir: dir, fsync: false }), config: { diskBudgetBytes }, timers: new ManualTimers() });
  return core.topics;
}

function batch(n: number, size = 128, id?: (i: number) => string): PublishInput[] {
  return Array.from({ length: n }, (_, i) => ({ payload: Buffer.alloc(size, 0x62), ...(id ? { messageId: id(i) } : {}) }));
}

describe("the broker core on the durable store", () => {
  it("continues sequences after a restart, even when retention emptied the log", async () => {
    let b = await start();
    await b.createTopic("seq"); // interest retention, no subscriptions: nothing is kept
    await b.publish("seq", batch(10));
    expect(b.topicInfo("seq").stats.retainedMessages).toBe(0);
    b = await start();
    const [first] = await b.publish("seq", batch(1));
    expect(first!.sequence).toBe(11);
  });

  it("recognises a producer's message id again after a restart", async () => {
    let b = await start();
    await b.createTopic("dedup", { ...defaultTopicConfig(), retention: "limits" });
    const [original] = await b.publish("dedup", batch(1, 16, () => "order-42"));
    b = await start();
    const [retry] = await b.publish("dedup", batch(1, 16, () => "order-42"));
    expect(retry).toMatchObject({ duplicate: true, sequence: original!.sequence });
    expect(b.topicInfo("dedup").stats.lastSequence).toBe(original!.sequence);
  });

  it("deletes what retention drops from the disk, not only from memory", async () => {
    let b = await start();
    await b.createTopic("limited", { ...defaultTopicConfig(), retention: "limits", maxMessages: 100 });
    for (let i = 0; i < 50; i++) await b.publish("limited", batch(100));
    const usage = b.store.usageBytes();
    expect(usage).toBeLessThan(1_000 * 128); // 5,000 published, 100 retained
    b = await start();
    expect(b.store.bounds("limited")).toMatchObject({ first: 4_901, last: 5_000 });
    expect(b.store.get("limited", 4_900)).toBeUndefined();
    expect(b.store.get("limited", 4_901)?.payload.length).toBe(128);
  });

  it("refuses publishes with RESOURCE_EXHAUSTED when the disk budget is full, and accepts them once space is freed", async () => {
    const budget = 512 * 1024;
    const b = await start(budget);
    await b.createTopic("fill", { ...defaultTopicConfig(), retention: "limits" }); // keeps everything
    await b.createTopic("other", { ...defaultTopicConfig(), retention: "limits" });
    let accepted = 0;
    let refused: unknown;
    while (!refused && accepted < 100_000) {
      try {
        await b.publish("fill", batch(100));
        accepted += 100;
      } catch (err) {
        refused = err;
      }
    }
    expect(refused).toBeInstanceOf(ResourceExhaustedError);
    expect((refused as ResourceExhaustedError).resource).toBe("disk");
    expect(accepted).toBeGreaterThan(1_000);
    expect(b.store.bounds("fill").last).toBe(accepted); // the refused batch stored nothing
    await expect(b.publish("other", batch(100))).rejects.toBeInstanceOf(ResourceExhaustedError);
    await b.deleteTopic("fill");
    await b.publish("other", batch(100));
    expect(b.store.bounds("other").last).toBe(100);
  });
});
