import { describe, expect, it } from "vitest";
import { BrokerConfigError } from "./config.js";
import { parseTokens } from "./token-file.js";

describe("token file", () => {
  it("reads the contract's example, with absent permissions as empty lists", () => {
    const grants = parseTokens(
      {
        tokens: [
          { name: "ops", token: "s3cret-ops", admin: [""], publish: [""], consume: [""] },
          { name: "orders-p", token: "s3cret-p", publish: ["orders-"] },
        ],
      },
      "t.json",
    );
    expect(grants).toEqual([
      { name: "ops", token: "s3cret-ops", admin: [""], publish: [""], consume: [""] },
      { name: "orders-p", token: "s3cret-p", admin: [], publish: ["orders-"], consume: [] },
    ]);
  });

  it("refuses a bad file with a message naming --token-file and the entry, never the secret", () => {
    const cases: Array<[unknown, RegExp]> = [
      [[], /must be an object \{"tokens": \[ \.\.\. \]\}/],
      [{ tokens: [], extra: 1 }, /unknown key "extra"/],
      [{ tokens: [7] }, /tokens\[0\] must be an object/],
      [{ tokens: [{ name: "a", token: "hidden-1", publsh: [""] }] }, /tokens\[0\] has unknown key "publsh"/],
      [{ tokens: [{ name: "", token: "hidden-1" }] }, /tokens\[0\]\.name must be a non-empty string/],
      [{ tokens: [{ name: "a", token: "" }] }, /tokens\[0\]\.token \("a"\) must be a non-empty string/],
      [{ tokens: [{ name: "a", token: "hidden 1" }] }, /must not contain whitespace/],
      [{ tokens: [{ name: "a", token: "hidden-1" }, { name: "a", token: "hidden-2" }] }, /tokens\[1\]\.name "a" is used twice/],
      [{ tokens: [{ name: "a", token: "hidden-1" }, { name: "b", token: "hidden-1" }] }, /tokens\[1\]\.token \("b"\) is the same as an earlier entry's/],
      [{ tokens: [{ name: "a", token: "hidden-1", consume: "orders-" }] }, /tokens\[0\]\.consume \("a"\) must be a list of topic-name prefixes/],
      [{ tokens: [{ name: "a", token: "hidden-1", admin: [1] }] }, /tokens\[0\]\.admin \("a"\) must be a list/],
    ];
    for (const [doc, message] of cases) {
      let err: unknown;
      try {
        parseTokens(doc, "t.json");
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(doc)).toBeInstanceOf(BrokerConfigError);
      expect((err as Error).message).toMatch(/^--token-file t\.json /);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toMatch(/hidden-/);
    }
  });
});
