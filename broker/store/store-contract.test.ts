import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { messageBytes, type StoredMessage, type SubscriptionRecord, type TopicRecord } from "./records.js";
import { plainTopicConfig } from "../../test/support/index.js";
import { LmdbStore } from "./store-lmdb.js";
import { MemoryStore } from "./store-memory.js";
import type { Store } from "./store.js";

// One contract, every store. `reopen` is a restart: the memory store keeps its instance
// (recover() reports what it holds), the LMDB store is closed and opened on the same directory.

interface Harness {
  open(): Promise<Store>;
  reopen(store: Store): Promise<Store>;
  cleanup(): Promise<void>;
}

const harnesses: Record<string, () => Harness> = {
  memory: () => ({
    open: async () => new MemoryStore(),
    reopen: async (store) => store,
    cleanup: async () => {},
  }),
  "lmdb (fsync off)": () => lmdbHarness(false),
  "lmdb (fsync on)": () => lmdbHarness(true),
  // Every read goes to LMDB, or only some do: the tail cache must never change an answer.
  "lmdb (no tail cache)": () => lmdbHarness(false, 0),
  "lmdb (tail cache of 300 bytes)": () => lmdbHarness(false, 300),
};

function lmdbHarness(fsync: boolean, tailCacheBytes?: number): Harness {
  const dir = mkdtempSync(join(tmpdir(), "ratatoskr-contract-"));
  let current: Store | undefined;
  return {
    open: async () => (current = await LmdbStore.open({ dataDir: dir, fsync, tailCacheBytes })),
    reopen: async (store) => {
      await store.close();
      return (current = await LmdbStore.open({ dataDir: dir, fsync, tailCacheBytes }));
    },
    cleanup: async () => {
      await current?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function topicRecord(name: string, overrides: Partial<TopicRecord["config"]> = {}): TopicRecord {
  return { name, config: { ...plainTopicConfig(), ...overrides }, createdAtMs: 1_700_000_000_000 };
}

function msg(topic: string, sequence: number, extra: Partial<StoredMessage> = {}): StoredMessage {
  return {
    id: `id-${topic}-${sequence}`,
    topic,
    sequence,
    payload: Buffer.from(`payload ${sequence}`),
    attributes: { n: String(sequence) },
    publishTimeMs: 1_000 + sequence,
    producerId: false,
    ...extra,
  };
}

function range(topic: string, from: number, to: number, extra: (seq: number) => Partial<StoredMessage> = () => ({})): StoredMessage[] {
  const out: StoredMessage[] = [];
  for (let s = from; s <= to; s++) out.push(msg(topic, s, extra(s)));
  return out;
}

function subscription(name: string, topic: string, startSequence = 1, deadLetterTopic = ""): SubscriptionRecord {
  return {
    name,
    topic,
    createdAtMs: 1_700_000_000_500,
    startSequence,
    config: { ackDeadlineMs: 10_000, maxDeliveries: 5, deadLetterTopic, retryBackoffMinMs: 100, retryBackoffMaxMs: 60_000 },
  };
}

for (const [name, make] of Object.entries(harnesses)) {
  describe(`Store contract: ${name}`, () => {
    let h: Harness;
    let store: Store;
    const setup = async (): Promise<Store> => {
      h = make();
      return (store = await h.open());
    };
    afterEach(async () => h.cleanup());

    it("appends and reads back messages with their bounds and byte count", async () => {
      await setup();
      await store.putTopic(topicRecord("t"));
      expect(store.bounds("t")).toEqual({ first: 1, last: 0, bytes: 0 });
      const batch = [
        msg("t", 1, { payload: Buffer.alloc(0), attributes: {} }),
        msg("t", 2, { id: "producer-2", producerId: true, attributes: { "ключ": "значение ✓", empty: "" } }),
        msg("t", 3, { payload: Buffer.from([0, 255, 1, 254]) }),
      ];
      await store.append("t", batch);
      for (const m of batch) expect(store.get("t", m.sequence)).toEqual(m);
      expect(store.get("t", 0)).toBeUndefined();
      expect(store.get("t", 4)).toBeUndefined();
      expect(store.get("other", 1)).toBeUndefined();
      const bytes = batch.reduce((n, m) => n + messageBytes(m), 0);
      expect(store.bounds("t")).toEqual({ first: 1, last: 3, bytes });
    });

    it("keeps messages read earlier intact after later reads", async () => {
      await setup();
      await store.putTopic(topicRecord("t"));
      await store.append("t", range("t", 1, 50));
      const held = [1, 2, 3].map((s) => store.get("t", s)!);
      for (let s = 4; s <= 50; s++) store.get("t", s);
      expect(held.map((m) => m.payload.toString())).toEqual(["payload 1", "payload 2", "payload 3"]);
    });

    it("refuses an append that does not continue the log", async () => {
      await setup();
      await store.putTopic(topicRecord("t"));
      await store.append("t", range("t", 1, 2));
      await expect(store.append("t", [msg("t", 4)])).rejects.toThrow(/out of order/);
      await expect(store.append("t", [msg("t", 3), msg("t", 5)])).rejects.toThrow(/out of order/);
      expect(store.bounds("t").last).toBe(2);
      await store.append("t", [msg("t", 3)]);
      expect(store.get("t", 3)?.sequence).toBe(3);
    });

    it("commits concurrent batches in order", async () => {
      await setup();
      await store.putTopic(topicRecord("t"));
      await Promise.all([store.append("t", range("t", 1, 10)), store.append("t", range("t", 11, 20)), store.append("t", range("t", 21, 21))]);
      expect(store.bounds("t")).toMatchObject({ first: 1, last: 21 });
      for (let s = 1; s <= 21; s++) expect(store.get("t", s)?.id).toBe(`id-t-${s}`);
    });

    it("keeps topics apart", async () => {
      await setup();
      await store.putTopic(topicRecord("a"));
      await store.putTopic(topicRecord("b"));
      await store.append("a", range("a", 1, 3));
      await store.append("b", range("b", 1, 1));
      expect(store.get("b", 2)).toBeUndefined();
      expect(store.get("a", 2)?.topic).toBe("a");
      expect(store.bounds("b").last).toBe(1);
    });

    it("drops messages below the cut on truncateBefore, on restart too", async () => {
      await setup();
      await store.putTopic(topicRecord("t"));
      await store.append("t", range("t", 1, 10));
      store.truncateBefore("t", 4);
      expect(store.get("t", 3)).toBeUndefined();
      expect(store.get("t", 4)?.sequence).toBe(4);
      const bytes = range("t", 4, 10).reduce((n, m) => n + messageBytes(m), 0);
      expect(store.bounds("t")).toEqual({ first: 4, last: 10, bytes });
      store.truncateBefore("t", 2); // behind the first: nothing changes
      expect(store.bounds("t").first).toBe(4);
      store = await h.reopen(store);
      expect(store.bounds("t")).toEqual({ first: 4, last: 10, bytes });
      expect(store.get("t", 3)).toBeUndefined();
      expect(store.get("t", 10)?.payload.toString()).toBe("payload 10");
    });

    it("remembers the last sequence when retention empties the log", async () => {
      await setup();
      await store.putTopic(topicRecord("t"));
      await store.append("t", range("t", 1, 5));
      store.truncateBefore("t", 100); // clamps to last + 1
      expect(store.bounds("t")).toEqual({ first: 6, last: 5, bytes: 0 });
      store = await h.reopen(store);
      expect(store.bounds("t")).toEqual({ first: 6, last: 5, bytes: 0 });
      await store.append("t", range("t", 6, 7));
      expect(store.bounds("t")).toMatchObject({ first: 6, last: 7 });
    });

    it("finds the first sequence at or after a time", async () => {
      await setup();
      await store.putTopic(topicRecord("t"));
      const times = [100, 100, 200, 300, 300, 400];
      await store.append("t", range("t", 1, 6, (s) => ({ publishTimeMs: times[s - 1]! })));
      expect(store.sequenceAtTime("t", 0)).toBe(1);
      expect(store.sequenceAtTime("t", 100)).toBe(1);
      expect(store.sequenceAtTime("t", 150)).toBe(3);
      expect(store.sequenceAtTime("t", 300)).toBe(4);
      expect(store.sequenceAtTime("t", 401)).toBe(7);
      store.truncateBefore("t", 3);
      expect(store.sequenceAtTime("t", 0)).toBe(3);
    });

    it("brings topics and their configuration back through recover()", async () => {
      await setup();
      const a = topicRecord("a", { retention: "limits", maxMessages: 10, maxBytes: 1_000, maxAgeMs: 60_000, dedupWindowMs: 5_000 });
      await store.putTopic(a);
      await store.putTopic(topicRecord("b"));
      const updated = { ...a, config: { ...a.config, maxMessages: 20 } };
      await store.putTopic(updated);
      store = await h.reopen(store);
      const topics = store.recover().topics.sort((x, y) => x.name.localeCompare(y.name));
      expect(topics).toEqual([updated, topicRecord("b")]);
    });

    it("brings subscriptions, dead-letter routing and ack state back through recover()", async () => {
      await setup();
      await store.putTopic(topicRecord("t"));
      await store.putTopic(topicRecord("dlq"));
      await store.putSubscription(subscription("s1", "t", 1, "dlq"));
      await store.putSubscription(subscription("s2", "t", 7));
      store.putAckState("s1", { floor: 4, above: [6, 9] });
      store.putAckState("s1", { floor: 5, above: [6, 9, 12] }); // the latest state wins
      store.putAckState("nobody", { floor: 3, above: [] }); // unknown subscription: ignored
      store = await h.reopen(store);
      const subs = store.recover().subscriptions.sort((x, y) => x.record.name.localeCompare(y.record.name));
      expect(subs).toEqual([
        { record: subscription("s1", "t", 1, "dlq"), acks: { floor: 5, above: [6, 9, 12] } },
        { record: subscription("s2", "t", 7), acks: { floor: 6, above: [] } },
      ]);
    });

    it("keeps a subscription's ack state when its record is written again, and forgets it on delete", async () => {
      await setup();
      await store.putTopic(topicRecord("t"));
      await store.putSubscription(subscription("s", "t"));
      store.putAckState("s", { floor: 8, above: [10] });
      const changed = { ...subscription("s", "t"), config: { ...subscription("s", "t").config, maxDeliveries: 9 } };
      await store.putSubscription(changed);
      store = await h.reopen(store);
      expect(store.recover().subscriptions).toEqual([{ record: changed, acks: { floor: 8, above: [10] } }]);
      await store.deleteSubscription("s");
      store = await h.reopen(store);
      expect(store.recover().subscriptions).toEqual([]);
    });

    it("removes a deleted topic's messages, and a re-created topic starts empty", async () => {
      await setup();
      await store.putTopic(topicRecord("t"));
      await store.putTopic(topicRecord("keep"));
      await store.append("t", range("t", 1, 2000));
      await store.append("keep", range("keep", 1, 2));
      const usageWith = store.usageBytes();
      await store.deleteTopic("t");
      expect(store.get("t", 1)).toBeUndefined();
      expect(store.recover().topics.map((t) => t.name)).toEqual(["keep"]);
      expect(store.usageBytes()).toBeLessThan(usageWith);
      store = await h.reopen(store);
      expect(store.recover().topics.map((t) => t.name)).toEqual(["keep"]);
      await store.putTopic(topicRecord("t"));
      expect(store.bounds("t")).toEqual({ first: 1, last: 0, bytes: 0 });
      expect(store.get("t", 1)).toBeUndefined();
      store = await h.reopen(store);
      expect(store.bounds("t")).toEqual({ first: 1, last: 0, bytes: 0 });
      expect(store.bounds("keep").last).toBe(2);
    });

    it("reports usage that grows with appends and falls after retention", async () => {
      await setup();
      await store.putTopic(topicRecord("t"));
      const empty = store.usageBytes();
      await store.append("t", range("t", 1, 3000, () => ({ payload: Buffer.alloc(128, 7) })));
      const full = store.usageBytes();
      expect(full).toBeGreaterThan(empty + 3000 * 128);
      store.truncateBefore("t", 2900);
      await store.append("t", [msg("t", 3001)]); // the truncation has committed by the time this has
      expect(store.usageBytes()).toBeLessThan(full / 2);
    });

    it("returns retained producer ids within the de-duplication window", async () => {
      await setup();
      await store.putTopic(topicRecord("t", { dedupWindowMs: 1_000 }));
      await store.append("t", [
        msg("t", 1, { id: "old", producerId: true, publishTimeMs: 10_000 }),
        msg("t", 2, { id: "broker-made", producerId: false, publishTimeMs: 10_500 }),
        msg("t", 3, { id: "recent", producerId: true, publishTimeMs: 10_900 }),
        msg("t", 4, { id: "newest", producerId: true, publishTimeMs: 11_500 }),
      ]);
      store = await h.reopen(store);
      expect(store.recover().dedup).toEqual([
        { topic: "t", id: "recent", sequence: 3, publishTimeMs: 10_900 },
        { topic: "t", id: "newest", sequence: 4, publishTimeMs: 11_500 },
      ]);
    });
  });
}
