/**
 * A bench run's faults (docs/faults.md): when the scenario has a `faults:` block, the TCP fault
 * proxy goes in front of the broker (embedded or --target) and the drivers connect to it; the
 * scheduler gets the proxy, the embedded broker's process control and the run clock. Checked
 * before anything is sent: a fault that cannot apply is a usage error naming it and the reason.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Clock } from "./clock.js";
import type { Consumer, EmbeddedBroker } from "./drivers/index.js";
import { UsageError } from "./errors.js";
import { faultApplicabilityError, FaultScheduler, hostPort, plannedMeasureSeconds, startFaultProxy, type FaultEvent, type FaultProxy } from "./faults/index.js";
import type { Progress, RunFaults, Scenario } from "./run/index.js";

export interface BenchFaults {
  /** Where the drivers connect: the proxy. */
  address: string;
  /** For runScenario's `faults` option. */
  run: RunFaults;
  /** The first fault that could not be applied during the run, if any. */
  failure(): string | undefined;
  /** Writes the logs of broker processes a fault ended into `dir` (broker-<pid>.log); returns the file names. */
  keepLogs(dir: string): string[];
  /** Stops the proxy. */
  close(): Promise<void>;
}

export interface BenchFaultsOptions {
  scenario: Scenario;
  /** host:port of the broker (embedded or --target). */
  target: string;
  embedded: EmbeddedBroker | undefined;
  /** Generator workers: slow-consumer needs the consumers in this process. */
  workers: number;
  /** The driver's consumers can stop reading (DriverModule.pausableConsumers): slow-consumer applies. */
  pausableConsumers: boolean;
  driverName: string;
  clock: Clock;
  progress: Progress;
}

/** Undefined when the scenario has no faults; throws UsageError when one cannot apply. */
export async function prepareBenchFaults(o: BenchFaultsOptions): Promise<BenchFaults | undefined> {
  const specs = o.scenario.faults;
  if (specs.length === 0) return undefined;
  const problem = faultApplicabilityError(specs, {
    proxy: true,
    process: o.embedded?.control !== undefined,
    processWhy: o.embedded === undefined ? "the broker is a --target: the harness did not start it, so it cannot signal it or restart it" : "this embedded server has no process control",
    slowConsumer: o.pausableConsumers && o.workers <= 1,
    slowConsumerWhy: !o.pausableConsumers
      ? `the ${o.driverName} driver's consumers cannot stop reading on their own (docs/faults.md, "slow-consumer")`
      : `the consumers run in ${o.workers} worker threads; run it with workers: 1 (docs/faults.md, "slow-consumer")`,
  });
  // The runner hands over its consumers once they exist (RunFaults.attachConsumers).
  let consumersOf: ((subscription: number) => readonly Consumer[]) | undefined;
  const slowConsumer = (subscription: number, reading: boolean): void => {
    const consumers = consumersOf?.(subscription) ?? [];
    if (consumers.length === 0) throw new Error(`subscription ${subscription} has no open consumer`);
    for (const c of consumers) {
      if (!c.setReading) throw new Error(`the ${o.driverName} driver's consumers cannot stop reading`);
      c.setReading(reading);
    }
  };
  if (problem) throw new UsageError(problem);
  const measureSeconds = plannedMeasureSeconds(o.scenario);
  if (typeof measureSeconds === "string") throw new UsageError(measureSeconds);
  let proxy: FaultProxy;
  try {
    proxy = await startFaultProxy({ target: hostPort(o.target), clock: o.clock });
  } catch (err) {
    throw new UsageError(`faults: ${err instanceof Error ? err.message : String(err)} (the fault proxy is loopback only)`, { cause: err });
  }
  o.progress.log(`fault proxy 127.0.0.1:${proxy.port} in front of ${o.target}`);
  const scheduler = new FaultScheduler({
    specs,
    clock: o.clock,
    measureSeconds,
    proxy,
    ...(o.embedded?.control ? { process: o.embedded.control } : {}),
    slowConsumer,
    onEvent: (e: FaultEvent) => o.progress.log(`fault ${e.kind}#${e.occurrence} ${e.error ? `FAILED: ${e.error}` : e.endSec === null ? `at ${e.startSec.toFixed(1)}s: ${e.detail}` : `ended at ${e.endSec.toFixed(1)}s: ${e.detail}`}`),
  });
  return {
    address: `${proxy.host}:${proxy.port}`,
    run: {
      attachConsumers: (lookup) => (consumersOf = lookup),
      start: (measureStartUs, runStartUs) => scheduler.start(measureStartUs, runStartUs),
      settle: () => scheduler.settle(),
      stop: () => scheduler.stop(),
    },
    failure: () => scheduler.failure(),
    keepLogs: (dir) =>
      (o.embedded?.endedProcesses?.() ?? []).map((p) => {
        const name = `broker-${p.pid}.log`;
        writeFileSync(join(dir, name), p.log);
        return name;
      }),
    close: () => proxy.close(),
  };
}
