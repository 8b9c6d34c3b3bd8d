// Unique names: topics and subscriptions are global to a broker, and a durable broker keeps
// them across runs, so every test names its own.
import { randomUUID } from "node:crypto";

/** Random per process: tells apart processes running at once and earlier runs on the same data. */
const RUN = randomUUID().slice(0, 8);
let counter = 0;

/**
 * A name no other test uses: `<prefix>-<n>-<run>`, where `n` counts up within the process (so two
 * calls never collide) and `run` is random per process. The fixed-length end keeps the names of
 * one prefix prefix-free: none starts with another (tests filter listings with startsWith). Only
 * [a-z0-9-] besides the prefix, so it is a valid v1 and v2 name whenever the prefix is.
 */
export function uniqueName(prefix = "t"): string {
  return `${prefix}-${++counter}-${RUN}`;
}
