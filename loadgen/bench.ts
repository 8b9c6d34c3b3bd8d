/**
 * `ratatoskr bench`: load the scenario, reach (or start) the broker, run, write the report,
 * judge the gates. Returns the exit code: 0 pass, 1 a gate failed, 2 could not run, 130
 * interrupted (the report is still written, marked interrupted).
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { systemClock, type Clock } from "./clock.js";
import { assertDriverAccepts, checkMetricsUrl, DRIVERS, effectiveStorage, findDriver, procSample, scrapeBrokerMetrics, tlsLabel, type Driver, type DriverSecurity, type DriverTls, type EmbeddedBroker } from "./drivers/index.js";
import { EXIT_GATE_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_BAD_INPUT, exitCodeFor, InterruptedError, UsageError } from "./errors.js";
import { prepareBenchFaults, type BenchFaults } from "./fault-run.js";
import { prepareOutputDir, prepareOutputFile } from "./out-dir.js";
import { buildResult, captureEnvironment, faultCountsLine, judge, rateHeldLine, renderJUnit, renderSummaryMarkdown, SEED_HEADER, seedRow, writeReport, type ResultMeta, type RunResult } from "./report/index.js";
import { buildPlan, fmtUs, loadScenario, parseShard, Progress, reconnectPolicyOf, runRateSearch, runScenario, scenarioForDriver, splitPlan, type Plan, type Scenario } from "./run/index.js";
import { defaultWorkers, runWorkers } from "./workers.js";

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
  /** Generator workers (threads); overrides the scenario's `workers` (docs/loadgen.md, "Workers"). */
  workers?: number;
  /** How long to wait for the broker's channels at connect (default 10 s). */
  connectTimeoutMs?: number;
  /** Also write the gates as JUnit XML to this file. */
  junit?: string;
  /** Also write the headline and gates as Markdown (a CI step summary) to this file. */
  summaryMd?: string;
  /** Install the SIGINT/SIGTERM handlers (default true; false for in-process callers). */
  handleSignals?: boolean;
  /** --target: speak TLS with these files (`--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-server-name`). */
  tls?: DriverTls;
  /** --target: bearer token (`--token`, or read from `--token-file`). */
  token?: string;
  /** --target: the broker's Prometheus endpoint, read for its CPU and RSS (`--broker-metrics`). */
  brokerMetrics?: string;
}

/**
 * What the driver is given: an embedded server's own certificate and token; for --target, the
 * command line's files and token, TLS with the system's roots when the scenario says `tls: true`
 * and no CA is given.
 */
export function runSecurity(args: Pick<BenchArgs, "target" | "tls" | "token">, scenarioTls: boolean, embedded: EmbeddedBroker | undefined): DriverSecurity {
  if (args.target === undefined) {
    if (args.tls !== undefined || args.token !== undefined) throw new UsageError("--tls-* and --token are for a --target broker; an embedded one speaks TLS with a generated certificate when the scenario says tls: true");
    return { tls: embedded?.tls, token: embedded?.token };
  }
  return { tls: args.tls ?? (scenarioTls ? {} : undefined), token: args.token };
}

/** The special workload a scenario asks for (`rate: max`, `backlog:`, `only:`), named as in the scenario; undefined for a plain run. */
function workloadName(s: Scenario): string | undefined {
  if (s.rate === "max") return "rate: max";
  if (s.backlog !== undefined) return "backlog:";
  if (s.only !== undefined) return `only: ${s.only}`;
  return undefined;
}

/** `20250101T120000Z` for report directory names. */
export function timestamp(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

/** How far `--start-at` may lie from now: a little in the past (a late shard), at most a day ahead. */
export const START_AT_MAX_PAST_MS = 60 * 60 * 1000;
export const START_AT_MAX_FUTURE_MS = 24 * 60 * 60 * 1000;

/** Throws UsageError unless `startAt` is a finite epoch ms within the documented bounds of `nowMs`. */
export function checkStartAt(startAt: number, nowMs: number): void {
  if (!Number.isFinite(startAt) || !Number.isInteger(startAt)) throw new UsageError(`--start-at expects epoch milliseconds (an integer), got ${String(startAt)}`);
  if (startAt < nowMs - START_AT_MAX_PAST_MS || startAt > nowMs + START_AT_MAX_FUTURE_MS) {
    throw new UsageError(`--start-at ${startAt} (${new Date(startAt).toISOString()}) is more than 1 h in the past or 24 h in the future; now is ${nowMs}`);
  }
}

export async function runBench(args: BenchArgs, log: (s: string) => void = (s) => process.stdout.write(`${s}\n`), clock: Clock = systemClock): Promise<number> {
  let embedded: EmbeddedBroker | undefined;
  let faults: BenchFaults | undefined;
  // A run that did not pass keeps the embedded server's log (where it keeps one) in its report folder.
  let reportDir: string | undefined;
  let passed = false;
  const interrupt = new AbortController();
  // After a kill or restart fault the broker runs under a new PID: ask its control.
  const brokerPid = (): number | undefined => (embedded?.control ? embedded.control.pid() : embedded?.pid);
  const stopListening = args.handleSignals === false ? () => undefined : onInterrupt(interrupt, brokerPid);
  try {
    const loaded = loadScenario(args.scenario, args.set);
    const shard = parseShard(args.shard);
    const driverModule = findDriver(args.driver ?? loaded.driver);
    const scenario = scenarioForDriver(loaded, driverModule);
    assertDriverAccepts(driverModule, scenario, args.scenario);
    if (args.target !== undefined && !/^[^\s:]+:\d+$/.test(args.target)) throw new UsageError(`--target expects host:port, got "${args.target}"`);
    if (args.startAt !== undefined) checkStartAt(args.startAt, clock.wallMs());
    if (args.workers !== undefined && (!Number.isInteger(args.workers) || args.workers < 1)) throw new UsageError(`--workers expects a positive integer, got ${String(args.workers)}`);
    if (args.brokerMetrics !== undefined) {
      if (args.target === undefined) throw new UsageError("--broker-metrics is for a --target broker; an embedded one is sampled from /proc or GetBrokerStats");
      const problem = checkMetricsUrl(args.brokerMetrics);
      if (problem) throw new UsageError(problem);
    }
    if (args.target === undefined) runSecurity(args, scenario.tls, undefined); // refuses --tls-* without --target before anything starts
    const runId = args.runId ?? (shard.count > 1 ? "shared" : randomBytes(3).toString("hex"));
    const plan = buildPlan(scenario, runId, shard);
    // Every output is proven writable before a broker is started or a message sent.
    const dir = args.out ?? join("reports", `${scenario.name}-${timestamp(clock.wallMs())}${shard.count > 1 ? `-shard${shard.index}of${shard.count}` : ""}`);
    prepareOutputDir(dir);
    reportDir = dir;
    if (args.junit !== undefined) prepareOutputFile(args.junit);
    if (args.summaryMd !== undefined) prepareOutputFile(args.summaryMd);
    const progress = new Progress(process.stderr, args.quiet);

    let target = args.target ?? "in-process";
    const server = driverModule.embeddedServer;
    if (args.target === undefined && server !== undefined) {
      // The driver decides what to start: the reference broker, or nats-server for nats/jetstream.
      progress.log(`starting embedded ${server.name} (${scenario.broker.storage}${scenario.tls ? ", TLS" : ""})`);
      const started = await server.start(scenario);
      embedded = started;
      target = started.address;
      progress.log(`embedded ${server.name} pid ${started.pid} at ${target}`);
    }
    if (interrupt.signal.aborted) throw new InterruptedError(String(interrupt.signal.reason), "interrupted before the run started: nothing measured, no report written");
    const security = runSecurity(args, scenario.tls, embedded);
    const pid = embedded?.pid;
    const brokerInfo = {
      embedded: embedded !== undefined,
      target,
      args: embedded?.args ?? [],
    };
    const special = workloadName(scenario);
    if (special !== undefined && shard.count > 1 && scenario.rate === "max") throw new UsageError("rate: max searches one broker with the whole scenario; it cannot be sharded (--shard)");
    const requested = args.workers ?? scenario.workers;
    if (special !== undefined && requested !== undefined && requested > 1) {
      throw new UsageError(`${special} runs in one process (its per-interval backlog is known there only); drop --workers / workers: ${requested}`);
    }
    const workers = special !== undefined ? 1 : (requested ?? defaultWorkers(plan, driverModule.name, embedded !== undefined));
    // Faults: the drivers connect through the fault proxy (docs/faults.md).
    faults = await prepareBenchFaults({ scenario, target, embedded, workers, pausableConsumers: driverModule.pausableConsumers === true, driverName: driverModule.name, clock, progress });
    const connectTo = faults?.address ?? target;
    // Where the broker's CPU and RSS come from, in this order: its metrics endpoint when given,
    // the driver's statistics call (GetBrokerStats, one-process mode only), /proc of a broker we
    // started. The report names every source that gave a sample, in the order first used.
    const sources = new Set<string>();
    const used = (source: string): void => void sources.add(source);
    const brokerMetrics = args.brokerMetrics;
    const sampler = (driver: Driver | undefined) => async () => {
      const pid = brokerPid();
      if (brokerMetrics !== undefined) {
        const scraped = await scrapeBrokerMetrics(brokerMetrics).catch(() => undefined);
        if (scraped) {
          used(`metrics ${brokerMetrics}`);
          return scraped;
        }
      }
      const viaRpc = driver ? await driver.brokerStats().catch(() => undefined) : undefined;
      if (viaRpc) {
        used("GetBrokerStats");
        return viaRpc;
      }
      const proc = pid !== undefined ? procSample(pid) : undefined;
      if (proc) used(`/proc/${pid}`);
      return proc;
    };
    // At teardown, /proc of a broker we started: its CPU time and high-water RSS (VmHWM).
    const finalSampleBroker =
      pid !== undefined
        ? async () => {
            const pid = brokerPid() ?? -1;
            const proc = procSample(pid);
            if (proc) used(`/proc/${pid} (teardown)`);
            return proc;
          }
        : undefined;
    const securityLabels = () => ({ tls: tlsLabel(security), resourceSource: sources.size > 0 ? [...sources].join(", ") : "none" });
    // The durability disclosure: what the driver promises with the broker settings in effect.
    const durabilityOf = (storage: ReturnType<typeof effectiveStorage>) => driverModule.promises?.({ ...scenario.broker, ...storage }, scenario.driverOptions[driverModule.name] ?? {});
    let result: RunResult;
    if (scenario.rate === "max") {
      // One broker for the whole search: each step is a fixed-rate run on fresh topics, cleaned up after it.
      const search = await runRateSearch(scenario, async (stepScenario, index) => {
        progress.log(`rate search: step ${index + 1} at ${stepScenario.rate as number} msg/s`);
        const stepPlan = buildPlan(stepScenario, `${runId}-${index}`, shard);
        const { outcome } = await runOnce(stepScenario, stepPlan, true);
        // Each step says whether the generator was its limit: a failing step that was tells the broker's rate from the generator's.
        const generatorBound = resultOf(stepScenario, stepPlan, outcome).generatorBound?.reasons ?? [];
        return { outcome, scenario: stepScenario, plan: stepPlan, generatorBound };
      });
      const { outcome, plan: chosenPlan, scenario: chosenScenario } = search.chosen;
      const built = resultOf(chosenScenario, chosenPlan, outcome);
      outcome.recorder.destroy();
      result = judge({ ...built, scenario, rateSearch: search.report, run: { ...built.run, interrupted: outcome.interrupted || undefined, whole: { ...built.run.whole!, offeredRate: search.report.foundRate } } });
      if (result.run.interrupted === undefined) delete result.run.interrupted;
    } else if (splitPlan(plan, workers).length > 1) {
      // Worker threads: each opens its own connections; the parent samples the broker.
      const storage = effectiveStorage(scenario.broker, undefined);
      const meta: ResultMeta = { runId, driver: driverModule.name, environment: captureEnvironment(), broker: { ...brokerInfo, ...storage }, durability: durabilityOf(storage) };
      result = await runWorkers({
        scenario,
        plan,
        workers,
        runId,
        target: connectTo,
        security,
        connectTimeoutMs: args.connectTimeoutMs ?? 10_000,
        cleanup: args.target !== undefined,
        meta,
        clock,
        progress,
        signal: interrupt.signal,
        ...(pid !== undefined || brokerMetrics !== undefined ? { sampleBroker: sampler(undefined) } : {}),
        ...(finalSampleBroker ? { finalSampleBroker } : {}),
        ...(args.startAt !== undefined ? { startAtMs: args.startAt } : {}),
        ...(faults ? { faults: faults.run } : {}),
      });
      result = { ...result, broker: { ...result.broker, ...securityLabels() } };
      if (result.run.interrupted) result = judge(result);
    } else {
      result = await runOneProcess();
    }
    async function runOneProcess(): Promise<RunResult> {
      const { outcome } = await runOnce(scenario, plan, args.target !== undefined);
      const built = resultOf(scenario, plan, outcome);
      const result = outcome.interrupted ? judge({ ...built, run: { ...built.run, interrupted: true } }) : built;
      outcome.recorder.destroy();
      return result;
    }
    /** One run in this process with its own driver (the whole run, or one step of a rate search). */
    async function runOnce(scenario: Scenario, plan: Plan, cleanup: boolean) {
      const driver = driverModule.create(
        {
          target: connectTo,
          connections: scenario.connections,
          maxOutstandingMessages: scenario.maxOutstandingMessages,
          connectTimeoutMs: args.connectTimeoutMs ?? 10_000,
          broker: scenario.broker,
          clock,
          reconnect: reconnectPolicyOf(scenario),
          ...security,
        },
        scenario.driverOptions[driverModule.name],
      );
      const outcome = await runScenario(scenario, plan, driver, {
        clock,
        target,
        progress,
        sampleBroker: sampler(driver),
        ...(finalSampleBroker ? { finalSampleBroker } : {}),
        cleanup,
        signal: interrupt.signal,
        ...(args.startAt !== undefined ? { startAtMs: args.startAt } : {}),
        ...(faults ? { faults: faults.run } : {}),
      });
      return { outcome };
    }
    function resultOf(scenario: Scenario, plan: Plan, outcome: Awaited<ReturnType<typeof runOnce>>["outcome"]): RunResult {
      const storage = effectiveStorage(scenario.broker, outcome.brokerReport);
      return buildResult(scenario, plan, outcome, {
        runId,
        driver: driverModule.name,
        environment: captureEnvironment(),
        broker: {
          ...brokerInfo,
          // Labelled with what the broker reports about itself where it does (warnings say where it differs).
          ...storage,
          ...securityLabels(),
        },
        durability: durabilityOf(storage),
      });
    }

    writeReport(dir, result);
    if (args.junit !== undefined) writeFileSync(args.junit, renderJUnit([result]));
    if (args.summaryMd !== undefined) writeFileSync(args.summaryMd, renderSummaryMarkdown([result]));
    printSummary(result, dir, log);
    const kept = faults?.keepLogs(dir) ?? [];
    if (kept.length > 0) log(`logs of broker processes ended by faults: ${kept.map((f) => join(dir, f)).join(", ")}`);
    const faultFailure = faults?.failure();
    if (faultFailure !== undefined) {
      process.stderr.write(`ratatoskr bench: a fault could not be applied, so the run is not the one asked for: ${faultFailure}\n`);
      return EXIT_BAD_INPUT;
    }
    if (result.run.interrupted) return EXIT_INTERRUPTED;
    passed = result.passed;
    return result.passed ? EXIT_OK : EXIT_GATE_FAILED;
  } catch (err) {
    process.stderr.write(`ratatoskr bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return exitCodeFor(err);
  } finally {
    stopListening();
    await faults?.close();
    if (!passed && reportDir !== undefined && embedded?.keepLog) {
      try {
        const kept = embedded.keepLog(reportDir);
        if (kept) process.stderr.write(`ratatoskr bench: the embedded server's log is kept in ${kept}\n`);
      } catch (err) {
        process.stderr.write(`ratatoskr bench: could not keep the embedded server's log: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
    await embedded?.stop();
  }
}

/**
 * Ctrl-C (SIGINT) or a CI timeout's SIGTERM: the first aborts the run (producers stop, a short
 * drain, the report is written marked interrupted, exit 130); a second exits at once (130),
 * killing the embedded server first so none is left behind. Returns the unregister function.
 */
function onInterrupt(controller: AbortController, embeddedPid: () => number | undefined): () => void {
  const handler = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.stderr.write(`ratatoskr bench: ${signal} again: exiting now, no report\n`);
      const pid = embeddedPid();
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      process.exit(EXIT_INTERRUPTED);
    }
    process.stderr.write(`ratatoskr bench: ${signal}: stopping producers, draining for at most 2 s, then writing the report (${signal === "SIGINT" ? "Ctrl-C" : signal} again exits at once)\n`);
    controller.abort(signal);
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

/** `ratatoskr bench --list`: the scenarios shipped in scenarios/ and the registered drivers. */
export function listCatalog(scenarioDir: string = defaultScenarioDir()): string[] {
  const lines = [`scenarios (${scenarioDir}):`];
  const files = existsSync(scenarioDir) ? readdirSync(scenarioDir).filter((f) => f.endsWith(".yaml") || f.endsWith(".yml")).sort() : [];
  if (files.length === 0) lines.push("  (none)");
  const width = Math.max(0, ...files.map((f) => f.length));
  for (const f of files) {
    let about = "";
    try {
      const doc = parseYaml(readFileSync(join(scenarioDir, f), "utf8")) as { description?: unknown } | null;
      if (typeof doc?.description === "string") about = doc.description.replace(/\s+/g, " ").trim();
    } catch (err) {
      about = `(unreadable: ${err instanceof Error ? err.message.split("\n")[0] : String(err)})`;
    }
    lines.push(`  ${f.padEnd(width)}  ${about}`.trimEnd());
  }
  lines.push("drivers:");
  const dw = Math.max(...DRIVERS.map((d) => d.name.length));
  for (const d of DRIVERS) lines.push(`  ${d.name.padEnd(dw)}  ${d.summary}`);
  return lines;
}

/** scenarios/ of this package: beside loadgen/ (tsx) or beside dist/ (compiled). */
function defaultScenarioDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, "..", "scenarios"), join(here, "..", "..", "scenarios")];
  return candidates.find((c) => existsSync(c)) ?? candidates[0]!;
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
  const faultLine = faultCountsLine(c);
  if (faultLine) log(faultLine);
  for (const w of r.warnings ?? []) log(`warning: ${w}`);
  if (r.generator) log(`generator: ${r.generator.mode === "workers" ? `${r.generator.workers} workers` : "one process"}; ${r.generator.perWorker.map((w) => `${w.role} loop ${Math.round(w.loopUtilization * 100)}% cpu ${w.cpuShare.toFixed(2)}`).join(", ")}`);
  const held = rateHeldLine(r);
  if (held) log(`rate held: ${held.replace(/\*\*/g, "")}`);
  if (r.generatorBound?.bound) log(`warning: GENERATOR-BOUND: the figures may measure the load generator, not the broker: ${r.generatorBound.reasons.join("; ")}`);
  for (const g of r.gates) log(`gate ${g.passed ? "PASS" : "FAIL"}: ${g.detail}`);
  if (r.run.interrupted) log(`INTERRUPTED: partial report in ${dir}/ (report.md, report.html, result.json); its gates are not judged`);
  else log(`${r.passed ? "PASS" : "FAIL"}: report in ${dir}/ (report.md, report.html, result.json)`);
}
