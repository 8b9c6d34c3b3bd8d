import { describe, expect, it } from "vitest";
import { Message } from "../../../proto/gen/ratatoskr.js";
import type { StoredMessage } from "../../core/types.js";
import { encodeV1Message, isWellFormedRef, V1_SERVICE_DEFINITION } from "./v1-wire.js";

const stored = (id: string): StoredMessage => ({
  id,
  topic: "orders",
  sequence: 7,
  payload: Buffer.from([0, 1, 254, 255]),
  attributes: { k: "v", empty: "" },
  publishTimeMs: 1_750_000_000_123,
  producerId: false,
});

describe("v1 wire helpers", () => {
  it("encodes a stored message as a v1 Message once and hands out the same bytes afterwards", () => {
    const m = stored("6f1c2a52-0d7e-4f6b-9a55-2b9a1c1d3e4f");
    const first = encodeV1Message(m);
    expect(encodeV1Message(m)).toBe(first); // same Buffer object: not re-encoded
    expect(Message.decode(first)).toEqual({ id: m.id, topic: "orders", payload: m.payload, metadata: { k: "v", empty: "" }, timestamp: 1_750_000_000_123n });
    // A different message object gets its own encoding.
    expect(encodeV1Message(stored("other"))).not.toBe(first);
  });

  it("carries the timestamp as int64 over the core's whole range", () => {
    const m = { ...stored("late"), publishTimeMs: Number.MAX_SAFE_INTEGER };
    expect(Message.decode(encodeV1Message(m)).timestamp).toBe(BigInt(Number.MAX_SAFE_INTEGER));
  });

  it("serves Subscribe with a pass-through serializer and keeps the generated codecs elsewhere", () => {
    const bytes = Buffer.from([1, 2, 3]);
    expect(V1_SERVICE_DEFINITION.subscribe.responseSerialize(bytes)).toBe(bytes);
    expect(V1_SERVICE_DEFINITION.subscribe.path).toBe("/ratatoskr.MessageBroker/Subscribe");
    expect(V1_SERVICE_DEFINITION.publish.responseSerialize({ messageId: "x", timestamp: 1n, success: true, error: "" }).length).toBeGreaterThan(0);
  });

  it.each([
    ["ref-6f1c2a52-0d7e-4f6b-9a55-2b9a1c1d3e4f", true],
    ["worker-7", true],
    ["with space and ünicode", true],
    ["r".repeat(255), true],
    ["", false],
    ["r".repeat(256), false],
    ["line\nbreak", false],
    ["nul\u0000", false],
    ["del\u007f", false],
  ])("judges the reference %j well-formed: %s", (ref, ok) => {
    expect(isWellFormedRef(ref)).toBe(ok);
  });
});
