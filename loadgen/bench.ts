/**
 * `ratatoskr bench`: load the scenario, reach (or start) the broker, run, write the report,
 * judge the gates. Returns the exit code: 0 pass, 1 a gate failed, 2 could not run.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { systemClock, type Clock } from "./clock.js";
import { assertDriverAccepts, effectiveStorage, findDriver, procSample, type EmbeddedBroker } from "./drivers/index.js";
import { EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_OK, exitCodeFor, UsageError } from "./errors.js";
import { buildResult, captureEnvironment, SEED_HEADER, seedRow, writeReport, type RunResult } from "./report/index.js";
import { buildPlan, fmtUs, loadScenario, parseShard, Progress, runScenario, scenarioForDriver } from "./run/index.js";

export interface BenchArgs {
  scenario: string;
  target?: string;
  /** A registered driver name; overrides the scenario's `driver`. */
  driver?: string;
  out?: string;
  set: string[];
  shard?: string;
  runId?: string;
  startAt?: number;
  quiet: boolean;
  /** How long to wait for the broker's channels at connect (default 10 s). */
  connectTimeoutMs?: number;
}

/** `20250101T120000Z` for report directory names. */
export function timestamp(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

export async function runBench(args: BenchArgs, log: (s: string) => void = (s) => process.stdout.write(`${s}\n`), clock: Clock = systemClock): Promise<number> {
  let embedded: EmbeddedBroker | undefined;
  let stopOnSignal: (() => void) | undefined;
  try {
    const loaded = loadScenario(args.scenario, args.set);
    const shard = parseShard(args.shard);
    const driverModule = findDriver(args.driver ?? loaded.driver);
    const scenario = scenarioForDriver(loaded, driverModule);
    assertDriverAccepts(driverModule, scenario, args.scenario);
    if (args.target !== undefined && !/^[^\s:]+:\d+$/.test(args.target)) throw new UsageError(`--target expects host:port, got "${args.target}"`);
    const runId = args.runId ?? (shard.count > 1 ? "shared" : randomBytes(3).toString("hex"));
    const plan = buildPlan(scenario, runId, shard);
    const progress = new Progress(process.stderr, args.quiet);

    let target = args.target ?? "in-process";
    const server = driverModule.embeddedServer;
    if (args.target === undefined && server !== undefined) {
      // The driver decides what to start: the reference broker, or nats-server for nats/jetstream.
      progress.log(`starting embedded ${server.name} (${scenario.broker.storage})`);
      const started = await server.start(scenario);
      embedded = started;
      stopOnSignal = onSignalStop(started);
      target = started.address;
      progress.log(`embedded ${server.name} pid ${started.pid} at ${target}`);
    }
    const driver = driverModule.create(
      {
        target,
        connections: scenario.connections,
        maxOutstandingMessages: scenario.maxOutstandingMessages,
        connectTimeoutMs: args.connectTimeoutMs ?? 10_000,
        broker: scenario.broker,
        clock,
      },
      scenario.driverOptions[driverModule.name],
    );
    const pid = embedded?.pid;
    const sampleBroker = async () => {
      const viaRpc = await driver.brokerStats().catch(() => undefined);
      return viaRpc ?? (pid !== undefined ? procSample(pid) : undefined);
    };
    const outcome = await runScenario(scenario, plan, driver, {
      clock,
      target,
      progress,
      sampleBroker,
      // At teardown, /proc of a broker we started: its CPU time and high-water RSS (VmHWM).
      ...(pid !== undefined ? { finalSampleBroker: async () => procSample(pid) } : {}),
      cleanup: args.target !== undefined,
      ...(args.startAt !== undefined ? { startAtMs: args.startAt } : {}),
    });
    const result = buildResult(scenario, plan, outcome, {
      runId,
      driver: driverModule.name,
      environment: captureEnvironment(),
      broker: {
        embedded: embedded !== undefined,
        target,
        args: embedded?.args ?? [],
        // Labelled with what the broker reports about itself where it does (warnings say where it differs).
        ...effectiveStorage(scenario.broker, outcome.brokerReport),
      },
    });
    outcome.recorder.destroy();
    const dir = args.out ?? join("reports", `${scenario.name}-${timestamp(clock.wallMs())}${shard.count > 1 ? `-shard${shard.index}of${shard.count}` : ""}`);
    writeReport(dir, result);
    printSummary(result, dir, log);
    return result.passed ? EXIT_OK : EXIT_GATE_FAILED;
  } catch (err) {
    process.stderr.write(`ratatoskr bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return exitCodeFor(err);
  } finally {
    stopOnSignal?.();
    await embedded?.stop();
  }
}

/**
 * If the generator is interrupted (Ctrl-C, a CI timeout's SIGTERM), stop the embedded server
 * it started before exiting, so no broker is left behind. Returns the unregister function.
 */
function onSignalStop(embedded: EmbeddedBroker): () => void {
  const handler = (signal: NodeJS.Signals) => {
    process.stderr.write(`ratatoskr bench: ${signal}: stopping the embedded server (pid ${embedded.pid})\n`);
    void embedded.stop().finally(() => process.exit(EXIT_BAD_INPUT));
  };
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

export function printSummary(r: RunResult, dir: string, log: (s: string) => void): void {
  const l = r.latency;
  log(SEED_HEADER);
  log(seedRow(r));
  log(
    `e2e (corrected) p50 ${fmtUs(l.e2e.p50Us)} p99 ${fmtUs(l.e2e.p99Us)} p99.9 ${fmtUs(l.e2e.p999Us)} max ${fmtUs(l.e2e.maxUs)}; ` +
      `uncorrected p99 ${fmtUs(l.e2eUncorrected.p99Us)}; publish p99 ${fmtUs(l.publish.p99Us)}`,
  );
  const c = r.counts;
  log(`delivered ${c.delivered}/${c.expected}, lost ${c.lost}, duplicates ${c.duplicates}, out of order ${c.outOfOrder}, publish errors ${c.publishErrors}, stream errors ${c.streamErrors}`);
  for (const w of r.warnings ?? []) log(`warning: ${w}`);
  for (const g of r.gates) log(`gate ${g.passed ? "PASS" : "FAIL"}: ${g.detail}`);
  log(`${r.passed ? "PASS" : "FAIL"}: report in ${dir}/ (report.md, report.html, result.json)`);
}
