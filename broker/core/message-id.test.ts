import { describe, expect, it } from "vitest";
import { newMessageId } from "./message-id.js";

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("newMessageId", () => {
  it("makes distinct v4 UUIDs across several refills of its random pool", () => {
    const seen = new Set<string>();
    // 16 KiB pool, 16 bytes an id: 5,000 ids cross the refill four times.
    for (let i = 0; i < 5_000; i++) {
      const id = newMessageId();
      expect(id).toMatch(V4);
      seen.add(id);
    }
    expect(seen.size).toBe(5_000);
  });

  it("uses every hex digit in every random position (the digits are not stuck)", () => {
    const digits = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 2_000; i++) [...newMessageId()].forEach((c, j) => digits[j]!.add(c));
    digits.forEach((set, j) => {
      if ([8, 13, 18, 23].includes(j)) expect(set, `position ${j}`).toEqual(new Set(["-"]));
      else if (j === 14) expect(set).toEqual(new Set(["4"]));
      else if (j === 19) expect(set).toEqual(new Set(["8", "9", "a", "b"]));
      else expect(set.size, `position ${j}`).toBe(16);
    });
  });
});
