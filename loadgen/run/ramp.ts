/**
 * The connect phase's ramp: consumer streams opened in chunks of rampPerSecond/10 every 100 ms,
 * each chunk's subscriptions created first (they hold messages from then on) and each chunk
 * ready before the next.
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

/** Opens every consumer into `out` (so teardown closes those opened before a failure). */
export async function openConsumers(specs: readonly SubscriptionSpec[], driver: Driver, sink: DeliverySink, out: Consumer[], o: RampOptions): Promise<void> {
  const work: [SubscriptionSpec, number][] = [];
  for (const s of specs) for (let c = 0; c < o.consumersPerSubscription; c++) work.push([s, c]);
  const chunk = Math.max(1, Math.ceil(o.rampPerSecond / 10));
  let created = 0;
  let lastLog = o.elapsedSec();
  for (let i = 0; i < work.length; i += chunk) {
    const startedUs = o.clock.nowUs();
    const slice = work.slice(i, i + chunk);
    await Promise.all(slice.filter(([, c]) => c === 0).map(([s]) => driver.createSubscription(s)));
    const opened = await Promise.all(slice.map(([s, c]) => driver.openConsumer(s, c, sink)));
    out.push(...opened);
    created += slice.length;
    if (o.elapsedSec() - lastLog >= 1 || created === work.length) {
      lastLog = o.elapsedSec();
      o.progress.log(`connect: ${created}/${work.length} consumer streams open`);
    }
    const waitMs = 100 - (o.clock.nowUs() - startedUs) / 1000;
    if (i + chunk < work.length && waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
  }
  if (out.length !== work.length) throw new DriverError(driver.name, `opened ${out.length} of ${work.length} consumer streams`);
}
