import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkName, MAX_NAME_LENGTH } from "./names.js";

const ALLOWED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const allowedChar = fc.constantFrom(...ALLOWED.split(""));

describe("topic name validation", () => {
  it("accepts every name of 1–255 allowed characters", () => {
    fc.assert(
      fc.property(fc.array(allowedChar, { minLength: 1, maxLength: MAX_NAME_LENGTH }), (chars) => {
        expect(checkName(chars.join(""))).toBeUndefined();
      }),
    );
  });

  it("reports an empty name as empty", () => {
    expect(checkName("")).toBe("empty");
  });

  it("reports anything over 255 characters as too_long, whatever the characters", () => {
    fc.assert(
      fc.property(fc.string({ minLength: MAX_NAME_LENGTH + 1, maxLength: 600 }), (name) => {
        expect(checkName(name)).toBe("too_long");
      }),
    );
    expect(checkName("a".repeat(255))).toBeUndefined();
    expect(checkName("a".repeat(256))).toBe("too_long");
  });

  it("reports a name with any character outside [A-Za-z0-9_-] as invalid_format", () => {
    const outside = fc.string({ minLength: 1, maxLength: 1, unit: "binary" }).filter((c) => !ALLOWED.includes(c));
    fc.assert(
      fc.property(fc.string({ unit: allowedChar, maxLength: 100 }), outside, fc.string({ unit: allowedChar, maxLength: 100 }), (a, bad, b) => {
        expect(checkName(a + bad + b)).toBe("invalid_format");
      }),
    );
    for (const name of ["a b", "a.b", "a/b", "ä", "a\n", "tab\t", "emoji🙂"]) expect(checkName(name)).toBe("invalid_format");
  });
});
