import { describe, expect, it } from "vitest";
import type { PublishOutcome } from "../../core/index.js";
import { PublishResponse, PublishStreamResponse } from "../../../proto/gen/ratatoskr/v2/broker.js";
import { encodePublishAnswer } from "./publish-response-codec.js";
import { publishResponseToWire } from "./v2-wire.js";

// The hand encoder of Publish and PublishStream answers against the generated encoder: the same
// bytes for random outcomes, request ids over the full uint64 range and error answers.

function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n) };
}

const U64_EDGES = [0n, 1n, 127n, 128n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 35n - 1n, 2n ** 35n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];
const SAFE_EDGES = [0, 1, 127, 128, 2 ** 28 - 1, 2 ** 28, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 35, Number.MAX_SAFE_INTEGER];
const IDS = ["", "a", "0b6e9f1c-4a43-4e0b-9d5e-3f0f0b7c2a11", "é日本\u{1F600}", "x".repeat(200)];

describe("hand encoder of Publish and PublishStream answers", () => {
  it("writes the generated encoder's bytes for random outcomes and request ids", () => {
    const seed = 0x5eed0010;
    const r = rng(seed);
    const safe = () => (r.next() < 0.3 ? SAFE_EDGES[r.int(SAFE_EDGES.length)]! : Math.floor(r.next() * 2 ** (1 + r.int(53))));
    for (let i = 0; i < 2000; i++) {
      const outcomes: PublishOutcome[] = Array.from({ length: r.int(6) }, () => ({ id: IDS[r.int(IDS.length)]!, sequence: safe(), publishTimeMs: safe(), duplicate: r.next() < 0.3 }));
      let requestId = U64_EDGES[r.int(U64_EDGES.length)]!;
      if (r.next() < 0.5) requestId = BigInt.asUintN(64, (BigInt(r.int(2 ** 32)) << 32n) | BigInt(r.int(2 ** 32))) >> BigInt(r.int(64));
      const nowMs = safe();
      const expected = PublishStreamResponse.encode({ requestId, ...publishResponseToWire(outcomes, nowMs), errorCode: 0, errorMessage: "" }).finish();
      expect(Buffer.from(encodePublishAnswer(requestId, outcomes, nowMs)).equals(Buffer.from(expected)), `seed ${seed} case ${i}`).toBe(true);
      const unary = PublishResponse.encode(publishResponseToWire(outcomes, nowMs)).finish();
      expect(Buffer.from(encodePublishAnswer(0n, outcomes, nowMs)).equals(Buffer.from(unary)), `seed ${seed} case ${i} (unary)`).toBe(true);
    }
  });

  it("writes error answers as the generated encoder does, negative codes too", () => {
    for (const requestId of U64_EDGES) {
      for (const [code, message] of [[3, "messages[0].payload: too large"], [14, ""], [-1, "é"], [-2147483648, "x"], [2147483647, ""]] as const) {
        const expected = PublishStreamResponse.encode({ requestId, results: [], publishTimeMs: 0n, errorCode: code, errorMessage: message }).finish();
        const got = encodePublishAnswer(requestId, [], 123, code, message);
        expect(Buffer.from(got).equals(Buffer.from(expected)), `request ${requestId} code ${code}`).toBe(true);
        expect(PublishStreamResponse.decode(got)).toEqual({ requestId, results: [], publishTimeMs: 0n, errorCode: code, errorMessage: message });
      }
    }
  });
});
