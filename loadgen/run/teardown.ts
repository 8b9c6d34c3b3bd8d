/**
 * Teardown, in this order: stop publishing, close the consumer streams, close the last
 * per-second interval, take the final broker sample (while the broker still runs), remove what the run created (only on an external broker: an embedded
 * one is stopped with everything in it), close the driver. Runs whether the phases before it
 * finished or threw; a failing cleanup never keeps the driver open.
 */
import type { Consumer, Driver } from "../drivers/index.js";

export interface TeardownParts {
  publishers: { stop(): void };
  consumers: readonly Consumer[];
  sampler: { stop(): void; final(): Promise<void> };
  driver: Pick<Driver, "cleanup" | "close">;
  /** What to delete on the broker, or undefined to leave it (embedded broker). */
  cleanup: { topics: readonly string[]; subscriptions: readonly string[] } | undefined;
}

export async function teardown(parts: TeardownParts): Promise<void> {
  parts.publishers.stop();
  for (const c of parts.consumers) c.close();
  parts.sampler.stop();
  await parts.sampler.final();
  if (parts.cleanup) await parts.driver.cleanup(parts.cleanup.topics, parts.cleanup.subscriptions).catch(() => undefined);
  await parts.driver.close();
}
