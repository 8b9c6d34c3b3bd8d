import { describe, expect, it } from "vitest";
import type { StoredMessage } from "./records.js";
import { TailCache } from "./tail-cache.js";

const msg = (sequence: number): StoredMessage => ({ id: `m${sequence}`, topic: "t", sequence, payload: Buffer.alloc(10), attributes: {}, publishTimeMs: sequence, producerId: false });

describe("TailCache", () => {
  it("keeps the newest messages within its byte budget, evicting oldest first across topics", () => {
    const cache = new TailCache(50);
    for (let s = 1; s <= 3; s++) cache.add(1, msg(s), 10);
    for (let s = 1; s <= 3; s++) cache.add(2, msg(s), 10);
    expect(cache.sizeBytes).toBe(50);
    expect(cache.get(1, 1)).toBeUndefined(); // the oldest entry overall left
    expect(cache.lowest(1)).toBe(2);
    expect(cache.get(2, 3)?.id).toBe("m3");
    cache.add(2, msg(4), 30);
    expect(cache.lowest(1)).toBeUndefined(); // topic 1 evicted entirely
    expect([cache.lowest(2), cache.sizeBytes]).toEqual([2, 50]);
  });

  it("take removes an entry and its bytes; dropTopic removes a topic; a budget of 0 keeps nothing", () => {
    const cache = new TailCache(1000);
    for (let s = 1; s <= 4; s++) cache.add(7, msg(s), 10);
    expect(cache.take(7, 1)?.message.id).toBe("m1");
    expect(cache.take(7, 1)).toBeUndefined();
    expect([cache.lowest(7), cache.sizeBytes]).toEqual([2, 30]);
    cache.dropTopic(7);
    expect([cache.get(7, 3), cache.sizeBytes]).toEqual([undefined, 0]);
    const none = new TailCache(0);
    none.add(1, msg(1), 10);
    expect(none.get(1, 1)).toBeUndefined();
  });
});
