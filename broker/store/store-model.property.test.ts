import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type StoredMessage } from "./records.js";
import { plainTopicConfig } from "../../test/support/index.js";
import { LmdbStore } from "./store-lmdb.js";
import { MemoryStore } from "./store-memory.js";

// Random schedules of appends, retention, topic deletion and restarts: the LMDB store must
// always agree with the memory store (the model) on topics, bounds, bytes and every message.

const TOPICS = ["a", "b"] as const;
type Op =
  | { kind: "append"; topic: (typeof TOPICS)[number]; count: number; producerId: boolean }
  | { kind: "truncate"; topic: (typeof TOPICS)[number]; keep: number }
  | { kind: "delete"; topic: (typeof TOPICS)[number] }
  | { kind: "reopen" };

const topicArb = fc.constantFrom(...TOPICS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("append" as const), topic: topicArb, count: fc.integer({ min: 1, max: 40 }), producerId: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("truncate" as const), topic: topicArb, keep: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 30 })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("delete" as const), topic: topicArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("reopen" as const) }) },
);

describe("LmdbStore against the memory store", () => {
  it("agrees on every topic, bound and message over random schedules with restarts", { timeout: 120_000 }, async () => {
    await fc.assert(
      // Tail cache sizes: none, a few messages (hits and misses mixed), everything.
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), fc.constantFrom(0, 200, 2_000, 64 << 20), async (ops, tailCacheBytes) => {
        const dir = mkdtempSync(join(tmpdir(), "ratatoskr-model-"));
        const model = new MemoryStore();
        let lmdb = await LmdbStore.open({ dataDir: dir, fsync: false, tailCacheBytes });
        let clock = 1_000;
        try {
          for (const op of ops) {
            if (op.kind === "reopen") {
              await lmdb.close();
              lmdb = await LmdbStore.open({ dataDir: dir, fsync: false, tailCacheBytes });
            } else if (op.kind === "delete") {
              await model.deleteTopic(op.topic);
              await lmdb.deleteTopic(op.topic);
            } else {
              if (!model.recover().topics.some((t) => t.name === op.topic)) {
                const record = { name: op.topic, config: plainTopicConfig(), createdAtMs: clock };
                await model.putTopic(record);
                await lmdb.putTopic(record);
              }
              const { first, last } = model.bounds(op.topic);
              if (op.kind === "append") {
                const batch: StoredMessage[] = Array.from({ length: op.count }, (_, i) => ({
                  id: `${op.topic}-${last + 1 + i}`,
                  topic: op.topic,
                  sequence: last + 1 + i,
                  payload: Buffer.alloc((last + i) % 50, 0x41 + i),
                  attributes: i % 3 === 0 ? ({} as Record<string, string>) : { k: `v${i}` },
                  publishTimeMs: clock++,
                  producerId: op.producerId,
                }));
                await model.append(op.topic, batch);
                await lmdb.append(op.topic, batch);
              } else {
                const cut = Math.max(first, last + 1 - op.keep);
                model.truncateBefore(op.topic, cut);
                lmdb.truncateBefore(op.topic, cut);
              }
            }
            const names = (s: { recover(): { topics: Array<{ name: string }> } }): string[] => s.recover().topics.map((t) => t.name).sort();
            expect(names(lmdb)).toEqual(names(model));
            for (const name of names(model)) {
              const bounds = model.bounds(name);
              expect(lmdb.bounds(name)).toEqual(bounds);
              for (let seq = bounds.first - 1; seq <= bounds.last + 1; seq++) expect(lmdb.get(name, seq)).toEqual(model.get(name, seq));
            }
          }
        } finally {
          await lmdb.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 40 },
    );
  });
});
