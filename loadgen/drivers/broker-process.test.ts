import { afterEach, describe, expect, it, vi } from "vitest";
import { embeddedBrokerEnv, startEmbeddedBroker } from "./broker-process.js";
import type { EmbeddedBroker } from "./driver.js";

describe("the embedded broker's environment", () => {
  let broker: EmbeddedBroker | undefined;
  afterEach(async () => {
    vi.unstubAllEnvs();
    await broker?.stop();
    broker = undefined;
  });

  it("drops every RATATOSKR_* variable and keeps the rest", () => {
    const { env, ignored } = embeddedBrokerEnv({ PATH: "/bin", RATATOSKR_HEAP_GROWTH_PERCENT: "50", RATATOSKR_RUN_ID: "r1", NODE_OPTIONS: "--x" });
    expect(ignored).toEqual(["RATATOSKR_HEAP_GROWTH_PERCENT", "RATATOSKR_RUN_ID"]);
    expect(env).toEqual({ PATH: "/bin", NODE_OPTIONS: "--x" });
  });

  it("starts with the scenario's settings when the generator's environment holds a broker setting it would refuse", async () => {
    // Passed on, this value makes `ratatoskr broker` exit with "invalid configuration".
    vi.stubEnv("RATATOSKR_MAX_MESSAGE_BYTES", "seventy");
    broker = await startEmbeddedBroker({ storage: "memory", fsync: false, args: [] });
    expect(broker.address).toMatch(/^127\.0\.0\.1:\d+$/);
  });
});
