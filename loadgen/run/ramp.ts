/**
 * The connect phase's ramp: consumer streams opened in chunks of rampPerSecond/10, one chunk due
 * every 100 ms, with at most RAMP_CHUNKS_IN_FLIGHT chunks being set up at once. Each consumer
 * opens as soon as its own subscription exists (the subscription holds messages from then on),
 * not when its whole chunk's are. A chunk that takes longer than 100 ms therefore overlaps the
 * next instead of holding it back; when setup is slower than the ramp for longer than that, the
 * ramp runs at the rate setup allows.
 */
import type { Clock } from "../clock.js";
import type { Consumer, DeliverySink, Driver, SubscriptionSpec } from "../drivers/index.js";
import { DriverError } from "../errors.js";
import type { Progress } from "./progress.js";

export interface RampOptions {
  consumersPerSubscription: number;
  rampPerSecond: number;
  clock: Clock;
  progress: Pick<Progress, "log">;
  /** Seconds since the start of the run (for progress lines once a second). */
  elapsedSec: () => number;
}

/** Chunks set up at once: a chunk's round trips overlap the next chunk's instead of pacing it. */
export const RAMP_CHUNKS_IN_FLIGHT = 2;
const CHUNK_MS = 100;

/**
 * Opens every consumer into `out`, in the order of `specs` (consumersPerSubscription for each
 * subscription in turn, which the slow-consumer fault relies on). On a failure the chunks
 * already started finish, `out` keeps the consumers that opened (so teardown closes them), and
 * the first error is thrown.
 */
export async function openConsumers(specs: readonly SubscriptionSpec[], driver: Driver, sink: DeliverySink, out: Consumer[], o: RampOptions): Promise<void> {
  const per = o.consumersPerSubscription;
  const total = specs.length * per;
  const chunk = Math.max(1, Math.ceil(o.rampPerSecond / 10));
  const opened = new Array<Consumer | undefined>(total);
  let openedCount = 0;
  let failure: Error | undefined;
  let lastLog = o.elapsedSec();
  const log = (): void => {
    if (o.elapsedSec() - lastLog >= 1 || openedCount === total) {
      lastLog = o.elapsedSec();
      o.progress.log(`connect: ${openedCount}/${total} consumer streams open`);
    }
  };
  /** The work items [from, to) of one chunk: item i is consumer i % per of subscription ⌊i / per⌋. */
  const runChunk = async (from: number, to: number): Promise<void> => {
    const bySubscription: Promise<void>[] = [];
    for (let sub = Math.floor(from / per); sub * per < to; sub++) {
      const first = Math.max(from, sub * per);
      const last = Math.min(to, (sub + 1) * per);
      const spec = specs[sub]!;
      bySubscription.push(
        (async () => {
          // The subscription is created with its first consumer; later consumers of it may fall in a later chunk.
          if (first === sub * per) await driver.createSubscription(spec);
          else await created.get(sub);
          if (failure !== undefined) return;
          const opening: Promise<void>[] = [];
          for (let i = first; i < last; i++) {
            opening.push(
              driver.openConsumer(spec, i - sub * per, sink).then((c) => {
                opened[i] = c;
                openedCount++;
              }),
            );
          }
          await Promise.all(opening);
          log();
        })(),
      );
      if (first === sub * per && last < (sub + 1) * per) created.set(sub, bySubscription[bySubscription.length - 1]!);
    }
    const results = await Promise.allSettled(bySubscription);
    for (const r of results) if (r.status === "rejected") failure ??= r.reason instanceof Error ? r.reason : new Error(String(r.reason));
  };
  // Subscriptions whose consumers span chunks: the later chunk waits for the creation.
  const created = new Map<number, Promise<void>>();
  const inFlight: Promise<void>[] = [];
  const startedUs = o.clock.nowUs();
  for (let from = 0, k = 0; from < total && failure === undefined; from += chunk, k++) {
    const waitMs = (startedUs + k * CHUNK_MS * 1000 - o.clock.nowUs()) / 1000;
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    if (inFlight.length >= RAMP_CHUNKS_IN_FLIGHT) await inFlight.shift();
    if (failure !== undefined) break;
    inFlight.push(runChunk(from, Math.min(total, from + chunk)));
  }
  await Promise.all(inFlight);
  for (const c of opened) if (c) out.push(c);
  if (failure !== undefined) throw failure;
  if (out.length !== total) throw new DriverError(driver.name, `opened ${out.length} of ${total} consumer streams`);
}
