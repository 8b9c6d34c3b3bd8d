import { describe, expect, it } from "vitest";
import { TURN_READ_BYTES } from "../drivers/index.js";
import { GENERATOR_HEAP_GROWTH_PERCENT, generatorSettings, setGeneratorHeapGrowth } from "./generator-settings.js";

describe("generator settings", () => {
  it("records the heap growth once the bench command set it, beside the read budget", () => {
    expect(generatorSettings().turnReadBytes).toBe(TURN_READ_BYTES);
    expect(generatorSettings().heapGrowingPercent, "V8's own factor until the bench command sets one").toBeNull();
    setGeneratorHeapGrowth();
    expect(generatorSettings()).toEqual({ heapGrowingPercent: GENERATOR_HEAP_GROWTH_PERCENT, turnReadBytes: TURN_READ_BYTES });
  });
});
