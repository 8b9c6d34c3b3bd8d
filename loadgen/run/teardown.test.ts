import { describe, expect, it } from "vitest";
import { teardown, type TeardownParts } from "./teardown.js";

function parts(failCleanup = false, cleanup = true): { parts: TeardownParts; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    parts: {
      publishers: { stop: () => void calls.push("publishers.stop") },
      consumers: [{ close: () => void calls.push("consumer 0 close") }, { close: () => void calls.push("consumer 1 close") }],
      sampler: { stop: () => void calls.push("sampler.stop"), final: async () => void calls.push("sampler.final") },
      driver: {
        cleanup: async (topics, subscriptions) => {
          calls.push(`cleanup ${topics.join(",")} ${subscriptions.join(",")}`);
          if (failCleanup) throw new Error("broker gone");
        },
        close: async () => void calls.push("driver.close"),
      },
      cleanup: cleanup ? { topics: ["t0"], subscriptions: ["t0-s0"] } : undefined,
    },
  };
}

describe("teardown", () => {
  it("stops publishing, closes streams, closes the last interval, takes the final broker sample, cleans up, then closes the driver", async () => {
    const { parts: p, calls } = parts();
    await teardown(p);
    expect(calls).toEqual(["publishers.stop", "consumer 0 close", "consumer 1 close", "sampler.stop", "sampler.final", "cleanup t0 t0-s0", "driver.close"]);
  });

  it("leaves an embedded broker's topics alone (it is stopped with them)", async () => {
    const { parts: p, calls } = parts(false, false);
    await teardown(p);
    expect(calls.some((c) => c.startsWith("cleanup"))).toBe(false);
    expect(calls.at(-1)).toBe("driver.close");
  });

  it("closes the driver even when the cleanup fails", async () => {
    const { parts: p, calls } = parts(true);
    await teardown(p);
    expect(calls.slice(-2)).toEqual(["cleanup t0 t0-s0", "driver.close"]);
  });
});
