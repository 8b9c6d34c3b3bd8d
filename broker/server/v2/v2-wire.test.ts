import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../core/errors.js";
import { consumeCommandsFromWire, int64FromWire, publishRequestFromWire } from "./v2-wire.js";

describe("v2 wire → core mapping", () => {
  it("takes an empty message_id as no producer id and keeps a set one", () => {
    const payload = Buffer.from("p");
    const mapped = publishRequestFromWire({
      topic: "orders",
      messages: [
        { payload, attributes: { k: "v" }, messageId: "" },
        { payload, attributes: {}, messageId: "order-1" },
      ],
    });
    expect(mapped).toEqual({ topic: "orders", messages: [{ payload, attributes: { k: "v" } }, { payload, attributes: {}, messageId: "order-1" }] });
    expect("messageId" in mapped.messages[0]!).toBe(false);
  });

  it("converts 64-bit fields up to Number.MAX_SAFE_INTEGER exactly and refuses the rest, naming the field", () => {
    expect(int64FromWire("config.max_bytes", 0n)).toBe(0);
    expect(int64FromWire("config.max_bytes", BigInt(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    for (const [value, why] of [
      [BigInt(Number.MAX_SAFE_INTEGER) + 1n, `must be at most ${Number.MAX_SAFE_INTEGER}, got 9007199254740992`],
      [2n ** 63n - 1n, `must be at most ${Number.MAX_SAFE_INTEGER}, got 9223372036854775807`],
      [-1n, "must be >= 0, got -1"],
    ] as const) {
      const err = (() => {
        try {
          int64FromWire("config.max_bytes", value);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe("config.max_bytes");
      expect((err as InvalidArgumentError).message).toBe(`config.max_bytes: ${why}`);
    }
  });

  it("drops ack, nack and extension ids no lease can have and keeps the rest exactly", () => {
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    const commands = consumeCommandsFromWire({
      start: undefined,
      ackIds: [1n, max, max + 1n, 2n ** 63n - 1n, -1n],
      nackIds: [2n ** 53n + 1n, 7n],
      extend: { ackIds: [-(2n ** 63n), 9n], extendMs: 500 },
    });
    expect(commands).toEqual({ ackIds: [1, Number.MAX_SAFE_INTEGER, -1], nackIds: [7], extend: { ackIds: [9], extendMs: 500 } });
    expect(consumeCommandsFromWire({ start: undefined, ackIds: [], nackIds: [], extend: undefined })).toEqual({});
  });
});
