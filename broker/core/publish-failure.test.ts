import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FailingStore, InjectedAppendError } from "../../test/support/index.js";
import { LmdbStore, MemoryStore, type Store } from "../store/index.js";
import { createBrokerCore, type BrokerCore } from "./broker-core.js";
import { ManualTimers } from "./clock.js";
import { defaultTopicConfig, type PublishInput } from "./types.js";

// A store append that fails leaves nothing of that publish visible (docs/design.md, "Publish
// path"): no sequence consumed, no de-duplication entry, the topic keeps accepting, and after a
// restart no sequence is reused. On the memory store and on real LMDB.

const dirs: string[] = [];
let core: BrokerCore | undefined;
afterEach(async () => {
  await core?.close();
  core = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Kind {
  name: string;
  open(dir: string): Promise<Store>;
}
const kinds: Kind[] = [
  { name: "memory", open: async () => new MemoryStore() },
  { name: "LMDB", open: (dir) => LmdbStore.open({ dataDir: dir, fsync: false }) },
];

const msg = (text: string, messageId?: string): PublishInput => ({ payload: Buffer.from(text), ...(messageId !== undefined ? { messageId } : {}) });

describe.each(kinds)("a failed append on the $name store", (kind) => {
  async function start(dir: string, inner?: Store): Promise<{ core: BrokerCore; failing: FailingStore }> {
    await core?.close();
    const failing = new FailingStore(inner ?? (await kind.open(dir)));
    core = createBrokerCore({ store: failing.asStore(), timers: new ManualTimers() });
    return { core, failing };
  }
  function newDir(): string {
    const d = mkdtempSync(join(tmpdir(), "ratatoskr-publish-failure-"));
    dirs.push(d);
    return d;
  }

  it("consumes no sequence and leaves no de-duplication entry, so a retry is stored", async () => {
    const { core: c, failing } = await start(newDir());
    await c.topics.createTopic("t", { ...defaultTopicConfig(), retention: "limits" });
    await c.topics.publish("t", [msg("a")]);
    failing.failNextAppends();
    await expect(c.topics.publish("t", [msg("b", "order-1"), msg("c")])).rejects.toBeInstanceOf(InjectedAppendError);
    expect(c.topics.topicInfo("t").stats.lastSequence).toBe(1);
    const [retry] = await c.topics.publish("t", [msg("b", "order-1")]);
    expect(retry).toMatchObject({ duplicate: false, sequence: 2 });
    const [next] = await c.topics.publish("t", [msg("d")]);
    expect(next!.sequence).toBe(3);
    expect(c.topics.store.get("t", 2)?.payload.toString()).toBe("b");
    expect(c.topics.topicInfo("t").stats.published).toBe(3);
  });

  it("realigns with the store when later batches were assigned before the failure was known", async () => {
    const { core: c, failing } = await start(newDir());
    await c.topics.createTopic("t", { ...defaultTopicConfig(), retention: "limits" });
    failing.failNextCommits();
    // Both batches are assigned before either commit settles; the first is written, then reported failed.
    const first = c.topics.publish("t", [msg("a", "id-a")]);
    const second = c.topics.publish("t", [msg("b", "id-b")]);
    await expect(first).rejects.toBeInstanceOf(InjectedAppendError);
    await second;
    const [again] = await c.topics.publish("t", [msg("a", "id-a")]);
    // The store holds 1 and 2 (the first batch was written after all): the retry is a new message after them.
    expect(again).toMatchObject({ duplicate: false, sequence: 3 });
    expect(c.topics.topicInfo("t").stats.lastSequence).toBe(3);
  });

  it("reuses no sequence after a restart", async () => {
    const dir = newDir();
    const store = await kind.open(dir);
    const { core: first, failing } = await start(dir, store);
    let c = first;
    await c.topics.createTopic("t", { ...defaultTopicConfig(), retention: "limits" });
    await c.topics.publish("t", [msg("a"), msg("b")]);
    failing.failNextAppends();
    await expect(c.topics.publish("t", [msg("x", "x-1")])).rejects.toBeInstanceOf(InjectedAppendError);
    await c.topics.publish("t", [msg("c")]);
    if (kind.name === "memory") {
      // The memory store keeps nothing across a close; a fresh core on the same instance stands in for a restart.
      ({ core: c } = await start(dir, store));
    } else {
      ({ core: c } = await start(dir));
    }
    const [after] = await c.topics.publish("t", [msg("d"), msg("x", "x-1")]);
    expect(after!.sequence).toBe(4);
    expect([1, 2, 3, 4, 5].map((s) => c.topics.store.get("t", s)?.payload.toString())).toEqual(["a", "b", "c", "d", "x"]);
  });
});
