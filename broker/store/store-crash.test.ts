import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LmdbStore } from "./store-lmdb.js";
import { payloadFor, spawnTs, type Child } from "../../test/support/index.js";

// The store alone under SIGKILL: a child appends (several batches in flight, ack state and
// retention writes interleaved) and is killed at a random point; every append it saw resolve
// must be there after reopening, in order and intact. Five kills per flush setting.

const KILLS = 5;
let dir: string | undefined;
let child: Child | undefined;
afterEach(async () => {
  child?.kill("SIGKILL");
  await child?.exited;
  child = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("LmdbStore under SIGKILL", () => {
  it.each(["off", "on"])("keeps every acknowledged append across %s-fsync crashes", { timeout: 120_000 }, async (fsync) => {
    dir = mkdtempSync(join(tmpdir(), "ratatoskr-store-crash-"));
    let acknowledged = 0;
    let lastFloor = 0;
    for (let k = 0; k < KILLS; k++) {
      child = spawnTs("test/support/store-append-child.ts", [dir, fsync]);
      const ready = await child.waitForLine((l) => l.startsWith("ready "), "the child to open the store");
      expect(Number(ready.split(" ")[1])).toBeGreaterThanOrEqual(acknowledged);
      const seen = child.stdout.length;
      const target = 20 + Math.floor(Math.random() * 300);
      await child.waitForLine(() => child!.stdout.length - seen >= target, `${target} acknowledged appends`);
      child.kill("SIGKILL");
      expect(await child.exited).toBe("SIGKILL");
      for (const line of child.stdout) if (line.startsWith("acked ")) acknowledged = Math.max(acknowledged, Number(line.slice(6)));

      const store = await LmdbStore.open({ dataDir: dir, fsync: fsync === "on" });
      try {
        const { first, last } = store.bounds("t");
        expect(last).toBeGreaterThanOrEqual(acknowledged);
        // Retention only ever cut at (an acknowledged sequence - 2000); it never took more.
        expect(first).toBeLessThanOrEqual(Math.max(1, acknowledged - 2_000));
        for (let seq = first; seq <= last; seq++) {
          const m = store.get("t", seq);
          expect(m?.payload.equals(payloadFor(seq)), `message ${seq} of ${first}..${last}`).toBe(true);
          expect(m?.attributes).toEqual({ seq: String(seq) });
        }
        const acks = store.recover().subscriptions.find((s) => s.record.name === "s")!.acks;
        expect(acks.floor).toBeLessThanOrEqual(last);
        expect(acks.floor).toBeGreaterThanOrEqual(lastFloor); // ack state never goes back
        lastFloor = acks.floor;
      } finally {
        await store.close();
      }
    }
    expect(acknowledged).toBeGreaterThan(KILLS * 20);
  });
});
