/**
 * The multi-core generator (docs/loadgen.md, "Workers"): one run split over worker threads,
 * each with its own event loop and driver connections, coordinated from here. The parent holds
 * the phase machine's joins (one start once every worker is connected and subscribed, one end
 * of warmup and of measure with every worker's published counts), samples the broker once for
 * all, forwards progress, and combines the workers' results with the shard merge
 * (report/merge.ts, `combineResults`): counts add up, histograms merge losslessly.
 */
import { availableParallelism } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { Clock } from "./clock.js";
import type { BrokerStatsSample, DriverSecurity } from "./drivers/index.js";
import { InterruptedError, LoadgenError } from "./errors.js";
import { brokerCost, combineResults, judge, withVerdict, type ResultMeta, type RunResult } from "./report/index.js";
import type { FaultEvent } from "./faults/index.js";
import { generatorSettings, splitPlan, type Plan, type UnackedRange, type Progress, type ProgressState, type RunFaults, type Scenario, type WorkerPart } from "./run/index.js";
import type { ToParent, ToWorker, WorkerInit } from "./worker-main.js";

/**
 * The default worker count: one per core, less one core left to a broker the harness started
 * on this machine (it would otherwise compete with the generator for every core: on a 2-core
 * machine an embedded run stays in one process), at most what the plan can use (producers +
 * subscriptions: a worker without work is not started), and 1 for the in-process fake driver
 * (its broker shares the generator's process; `workers: N` still splits it, for tests).
 */
export function defaultWorkers(
  plan: Pick<Plan, "producers" | "subscriptions">,
  driver: string,
  embeddedBroker: boolean,
  cores: number = availableParallelism(),
): number {
  if (driver === "fake") return 1;
  const forGenerator = embeddedBroker ? cores - 1 : cores;
  return Math.max(1, Math.min(forGenerator, plan.producers.length + plan.subscriptions.length));
}

export interface WorkersRunOptions {
  scenario: Scenario;
  plan: Plan;
  workers: number;
  runId: string;
  target: string;
  /** TLS files and token for the workers' drivers (paths and strings: they cross to the threads as they are). */
  security?: DriverSecurity;
  connectTimeoutMs: number;
  cleanup: boolean;
  startAtMs?: number;
  intervalMs?: number;
  meta: ResultMeta;
  clock: Clock;
  progress: Progress;
  signal?: AbortSignal;
  sampleBroker?: () => Promise<BrokerStatsSample | undefined>;
  finalSampleBroker?: () => Promise<BrokerStatsSample | undefined>;
  /**
   * The scenario's faults, applied from here (the proxy and the broker's process are the
   * parent's): started when the parent releases the measure phase (after the start join, or the
   * warmup join), stopped once every worker is done.
   */
  faults?: RunFaults;
}

/** The longest gap between broker samples (as the one-process sampler). */
const BROKER_SAMPLE_MS = 250;

/**
 * How long a worker may take to exit after sending its result before the parent terminates it.
 * Its work is done then; a handle a client library still holds open (seen: the sockets of a
 * consumer worker with 100,000 streams, still open after the driver closed its connections)
 * must not hang the run.
 */
export const WORKER_EXIT_GRACE_MS = 2000;

/** Run the scenario over worker threads; the combined result, judged. */
export async function runWorkers(o: WorkersRunOptions): Promise<RunResult> {
  const parts = splitPlan(o.plan, o.workers);
  const parentStartUs = o.clock.nowUs();
  const parentStartWallMs = o.clock.wallMs();
  const startFaults = () => o.faults?.start(o.clock.nowUs(), parentStartUs);
  const samples: (BrokerStatsSample & { wallMs: number })[] = [];
  let sampling: Promise<void> | undefined;
  const sample = (fn = o.sampleBroker) => {
    if (!fn || sampling) return sampling;
    const wallMs = o.clock.wallMs();
    sampling = fn()
      .then((s) => void (s && samples.push({ ...s, wallMs })))
      .catch(() => undefined)
      .finally(() => (sampling = undefined));
    return sampling;
  };
  void sample();
  const ticker = o.sampleBroker ? setInterval(() => void sample(), BROKER_SAMPLE_MS) : undefined;

  const entry = workerEntry();
  const workerGroup = `${o.runId}-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const live = parts.map((part) => {
    const init: WorkerInit = {
      scenario: o.scenario,
      runId: o.runId,
      shard: o.plan.shard,
      part,
      target: o.target,
      security: o.security ?? {},
      connectTimeoutMs: o.connectTimeoutMs,
      cleanup: o.cleanup,
      meta: o.meta,
      workerGroup,
      ...(o.startAtMs !== undefined ? { startAtMs: o.startAtMs } : {}),
      ...(o.intervalMs !== undefined ? { intervalMs: o.intervalMs } : {}),
    };
    return { part, worker: new Worker(entry.entry, { workerData: init, eval: entry.eval }), done: false, progress: undefined as ProgressState | undefined };
  });
  o.progress.log(`generator: ${parts.length} workers (${parts.map((p) => `${p.role} ${p.producerIds.length}p/${p.subscriptionIds.length}s`).join(", ")})`);

  const post = (m: ToWorker) => {
    for (const w of live) if (!w.done) w.worker.postMessage(m);
  };
  let ready = 0;
  const joins = new Map<string, { count: number; totals: number[]; unacked: UnackedRange[] }>();
  const onAbort = () => post({ type: "abort", reason: String(o.signal?.reason ?? "interrupted") });
  o.signal?.addEventListener("abort", onAbort, { once: true });
  const logged = new Set<string>();

  const results: RunResult[] = new Array<RunResult>(parts.length);
  let faultEvents: FaultEvent[] | undefined;
  const errors: { index: number; name: string; message: string; signal?: string }[] = [];
  let interrupted = false;
  try {
    await Promise.all(
      live.map(
        (w, i) =>
          new Promise<void>((resolve) => {
            const finish = () => {
              if (w.done) return;
              w.done = true;
              // A worker gone early cannot join: the others stop rather than wait for it.
              if (errors.length) post({ type: "abort", reason: "another worker failed", release: true });
              resolve();
            };
            w.worker.on("message", (m: ToParent) => {
              switch (m.type) {
                case "ready":
                  if (++ready === live.length) {
                    post({ type: "go" });
                    if (o.scenario.warmupSeconds === 0) startFaults();
                  }
                  break;
                case "phaseDone": {
                  const j = joins.get(m.phase) ?? { count: 0, totals: new Array<number>(o.scenario.topics).fill(0), unacked: [] };
                  joins.set(m.phase, j);
                  j.count++;
                  m.published.forEach((n, t) => (j.totals[t]! += n));
                  j.unacked.push(...m.unacked);
                  if (j.count === live.length) {
                    post({ type: "totals", phase: m.phase, totals: j.totals, unacked: j.unacked });
                    if (m.phase === "warmup") startFaults();
                  }
                  break;
                }
                case "progress":
                  w.progress = m.state;
                  o.progress.update(sumProgress(live.map((x) => x.progress)));
                  break;
                case "log":
                  // Phase lines once (worker 0's), anything else once per text.
                  if (/^phase /.test(m.text) ? i === 0 : !logged.has(m.text)) o.progress.log(m.text);
                  logged.add(m.text);
                  break;
                case "result": {
                  results[i] = m.result;
                  interrupted ||= m.interrupted;
                  const grace = setTimeout(() => {
                    if (w.done) return;
                    o.progress.log(`warning: generator worker ${i} had not exited ${WORKER_EXIT_GRACE_MS} ms after sending its result (a handle left open); terminated`);
                    void w.worker.terminate();
                  }, WORKER_EXIT_GRACE_MS);
                  grace.unref();
                  w.worker.once("exit", () => clearTimeout(grace));
                  break;
                }
                case "error":
                  errors.push({ index: i, name: m.name, message: m.message, ...(m.signal !== undefined ? { signal: m.signal } : {}) });
                  finish();
                  break;
              }
            });
            w.worker.on("error", (err) => {
              errors.push({ index: i, name: err.name, message: err.message });
              finish();
            });
            w.worker.on("exit", (code) => {
              if (!results[i] && !errors.some((e) => e.index === i)) errors.push({ index: i, name: "Error", message: `exited with code ${code} before sending its result` });
              finish();
            });
          }),
      ),
    );
  } finally {
    faultEvents = await o.faults?.stop();
    o.signal?.removeEventListener("abort", onAbort);
    if (ticker) clearInterval(ticker);
    await sampling;
    await sample(o.finalSampleBroker ?? o.sampleBroker);
    o.progress.end();
  }
  if (errors.length) {
    const cut = errors.find((e) => e.name === "InterruptedError");
    if (cut && o.signal?.aborted) throw new InterruptedError(cut.signal ?? "interrupted", cut.message);
    // The worker that failed first, not those stopped because it did.
    const first = errors.find((e) => e.name !== "InterruptedError") ?? errors[0]!;
    throw new LoadgenError(`generator worker ${first.index} (${parts[first.index]!.role}): ${first.message}`);
  }
  const combined = combineWorkers(results, parts, o, samples, interrupted);
  if (faultEvents === undefined) return combined;
  // Event times from the parent's start to the combined run's (the earliest worker's) start.
  const shiftSec = (parentStartWallMs - Date.parse(combined.run.startedAt)) / 1000;
  const at = (sec: number) => Math.round((sec + shiftSec) * 1000) / 1000;
  return { ...combined, faults: faultEvents.map((e) => ({ ...e, startSec: at(e.startSec), endSec: e.endSec === null ? null : at(e.endSec) })) };
}

function combineWorkers(results: RunResult[], parts: WorkerPart[], o: WorkersRunOptions, samples: (BrokerStatsSample & { wallMs: number })[], interrupted: boolean): RunResult {
  const combined = combineResults(results, o.plan.shard.count);
  const startMs = Math.min(...results.map((r) => Date.parse(r.run.startedAt)));
  const brokerSamples = samples.map(({ wallMs, ...s }) => ({ ...s, t: Math.round(wallMs - startMs) / 1000 }));
  const first = brokerSamples[0];
  const last = brokerSamples[brokerSamples.length - 1];
  const warnings = [...new Set(results.flatMap((r) => r.warnings ?? []))];
  const result: RunResult = {
    ...combined,
    run: { ...combined.run, shard: o.plan.shard, shardsMerged: 1, ...(interrupted ? { interrupted: true } : {}) },
    counts: { ...combined.counts, producers: o.plan.producers.length },
    broker: {
      ...combined.broker,
      samples: brokerSamples,
      peakRssBytes: brokerSamples.length ? Math.max(...brokerSamples.map((s) => s.peakRssBytes ?? s.rssBytes)) : null,
      cpuSeconds: first && last && last !== first ? Math.round(Math.max(0, last.cpuUserSeconds + last.cpuSystemSeconds - first.cpuUserSeconds - first.cpuSystemSeconds) * 1000) / 1000 : null,
      // The parent's samples of the one broker, over the combined phases (the workers' joins align them).
      cost: brokerCost(brokerSamples, combined.run.phases, { deliveries: combined.latency.e2e.count, published: combined.counts.measuredPublished }),
    },
    generator: {
      mode: "workers",
      workers: parts.length,
      perWorker: results.map((r, i) => ({ ...r.generator!.perWorker[0]!, index: i, role: parts[i]!.role })),
      settings: generatorSettings(),
    },
    ...(warnings.length ? { warnings } : {}),
  };
  return judge(withVerdict(result));
}

/** The progress line over all workers: counts and rates add up. */
function sumProgress(states: (ProgressState | undefined)[]): ProgressState {
  const have = states.filter((s): s is ProgressState => s !== undefined);
  const sum = (k: "published" | "delivered" | "expected" | "publishRate" | "deliveryRate") => have.reduce((a, s) => a + s[k], 0);
  const delivered = sum("delivered");
  const producer = have.find((s) => s.percent !== undefined);
  return {
    phase: have[0]?.phase ?? "connect",
    elapsedSec: Math.max(0, ...have.map((s) => s.elapsedSec)),
    published: sum("published"),
    delivered,
    // Consumer workers learn what producer workers published at the phase joins only.
    expected: Math.max(sum("expected"), delivered),
    publishRate: sum("publishRate"),
    deliveryRate: sum("deliveryRate"),
    p99Us: Math.max(0, ...have.map((s) => s.p99Us)),
    ...(producer?.percent !== undefined ? { percent: producer.percent } : {}),
    ...(producer?.etaSec !== undefined ? { etaSec: producer.etaSec } : {}),
  };
}

/**
 * The worker's entry: worker-main.js beside this file (compiled), or worker-main.ts loaded
 * through tsx's tsImport (sources, as under `npx tsx` or vitest: Node 20 does not carry a
 * parent's module hooks into a worker thread).
 */
function workerEntry(): { entry: URL | string; eval: boolean } {
  const fromSource = fileURLToPath(import.meta.url).endsWith(".ts");
  if (!fromSource) return { entry: new URL("./worker-main.js", import.meta.url), eval: false };
  const api = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve("tsx/package.json")), "dist", "esm", "api", "index.mjs")).href;
  const main = new URL("./worker-main.ts", import.meta.url).href;
  const code = `import(${JSON.stringify(api)}).then((m) => m.tsImport(${JSON.stringify(main)}, ${JSON.stringify(main)})).catch((err) => { throw err; });`;
  return { entry: code, eval: true };
}
