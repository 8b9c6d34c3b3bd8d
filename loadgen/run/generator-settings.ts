/**
 * Settings of the generator's own process that shape what it measures, recorded in result.json
 * as `generator.settings` (docs/loadgen.md, "Garbage collection in the generator" and "Reads per
 * loop turn"). An embedded broker is a process of its own, with its own settings.
 */
import { setFlagsFromString } from "node:v8";
import { turnReads } from "../drivers/index.js";

/**
 * The generator's heap may grow to twice what is live between full collections. With V8's own
 * factor (about 1.3 here) the generator at ultimate ran a full collection every 2 to 3 s: docs/loadgen.md, "Garbage collection in the generator".
 */
export const GENERATOR_HEAP_GROWTH_PERCENT = 100;

export interface GeneratorSettings {
  /** V8's `--heap-growing-percent` as this process set it; null: V8's own factor. */
  heapGrowingPercent: number | null;
  /** Bytes of socket reads a loop turn of the generator's HTTP/2 connections handles. */
  turnReadBytes: number;
}

let heapGrowingPercent: number | null = null;

/** Sets this process's heap growth (the bench command does, before anything runs) and records it. */
export function setGeneratorHeapGrowth(percent = GENERATOR_HEAP_GROWTH_PERCENT): void {
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  heapGrowingPercent = percent;
}

/** What this process runs with; worker threads share its V8 flags and read with the same budget. */
export function generatorSettings(): GeneratorSettings {
  return { heapGrowingPercent, turnReadBytes: turnReads.bytesPerTurn };
}
