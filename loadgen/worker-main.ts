/**
 * One generator worker (a worker thread started by loadgen/workers.ts): its own event loop,
 * its own driver and connections, its share of the plan (worker-split.ts). It runs the same
 * runner as the one-process mode with a PhaseCoordinator that waits on the parent's joins,
 * and sends back its result (counts, encoded histograms, series), which the parent combines
 * with the shard merge. Progress and log lines go to the parent, which prints them.
 */
import { parentPort, workerData } from "node:worker_threads";
import { systemClock } from "./clock.js";
import { findDriver, type DriverSecurity } from "./drivers/index.js";
import { InterruptedError } from "./errors.js";
import { buildResult, type ResultMeta, type RunResult } from "./report/index.js";
import { buildPlan, partPlan, reconnectPolicyOf, Progress, runScenario, type PhaseCoordinator, type PhaseTotals, type ProgressState, type UnackedRange, type Scenario, type Shard, type WorkerPart } from "./run/index.js";

/** What the parent hands a worker (structured-clone data only). */
export interface WorkerInit {
  scenario: Scenario;
  runId: string;
  shard: Shard;
  part: WorkerPart;
  target: string;
  security: DriverSecurity;
  connectTimeoutMs: number;
  cleanup: boolean;
  startAtMs?: number;
  intervalMs?: number;
  meta: ResultMeta;
  /** Shared by the workers of one run (the fake driver's channel). */
  workerGroup: string;
}

export type ToParent =
  | { type: "ready" }
  | { type: "phaseDone"; phase: "warmup" | "measure" | "drain"; published: number[]; unacked: UnackedRange[] }
  | { type: "progress"; state: ProgressState }
  | { type: "log"; text: string }
  | { type: "result"; result: RunResult; interrupted: boolean }
  | { type: "error"; name: string; message: string; signal?: string };

/**
 * `abort`: an interrupt (the run stops as in one process: producers stop, joins still complete
 * with every worker's totals). With `release`, another worker failed: joins complete at once with
 * this worker's own counts, since the failed one will never join.
 */
export type ToWorker = { type: "go" } | { type: "totals"; phase: "warmup" | "measure" | "drain"; totals: number[]; unacked: UnackedRange[] } | { type: "abort"; reason: string; release?: boolean };

class ForwardingProgress extends Progress {
  constructor(private readonly send: (m: ToParent) => void) {
    super({ write: () => true }, true);
  }
  override update(state: ProgressState): void {
    this.send({ type: "progress", state });
  }
  override log(text: string): void {
    this.send({ type: "log", text });
  }
  override end(): void {}
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error("worker-main.ts runs as a worker thread of loadgen/workers.ts");
  const init = workerData as WorkerInit;
  const send = (m: ToParent) => port.postMessage(m);
  const abort = new AbortController();
  let go: (() => void) | undefined;
  const started = new Promise<void>((resolve) => (go = resolve));
  const waiting = new Map<string, (totals: PhaseTotals) => void>();
  const released = new AbortController();
  port.on("message", (m: ToWorker) => {
    if (m.type === "go") go?.();
    else if (m.type === "totals") waiting.get(m.phase)?.({ published: m.totals, unacked: m.unacked });
    else if (m.type === "abort") {
      abort.abort(m.reason);
      if (m.release) released.abort(m.reason);
      go?.();
    }
  });
  const coordinator: PhaseCoordinator = {
    ready() {
      send({ type: "ready" });
      return started;
    },
    phaseDone(phase, published, unacked) {
      send({ type: "phaseDone", phase, published: [...published], unacked: [...unacked] });
      if (released.signal.aborted) return Promise.resolve({ published: [...published], unacked: [...unacked] });
      return new Promise((resolve) => {
        const own = { published: [...published], unacked: [...unacked] };
        const onRelease = () => resolve(own);
        released.signal.addEventListener("abort", onRelease, { once: true });
        waiting.set(phase, (totals) => {
          released.signal.removeEventListener("abort", onRelease);
          resolve(totals);
        });
      });
    },
  };

  const { scenario } = init;
  const plan = partPlan(buildPlan(scenario, init.runId, init.shard), init.part);
  const module = findDriver(scenario.driver);
  const driver = module.create(
    {
      target: init.target,
      connections: scenario.connections,
      maxOutstandingMessages: scenario.maxOutstandingMessages,
      connectTimeoutMs: init.connectTimeoutMs,
      broker: scenario.broker,
      clock: systemClock,
      workerGroup: init.workerGroup,
      reconnect: reconnectPolicyOf(scenario),
      ...init.security,
    },
    scenario.driverOptions[module.name],
  );
  try {
    const outcome = await runScenario(scenario, plan, driver, {
      clock: systemClock,
      target: init.target,
      progress: new ForwardingProgress(send),
      cleanup: init.cleanup,
      signal: abort.signal,
      coordinator,
      ...(init.startAtMs !== undefined ? { startAtMs: init.startAtMs } : {}),
      ...(init.intervalMs !== undefined ? { intervalMs: init.intervalMs } : {}),
    });
    const result = buildResult(scenario, plan, outcome, init.meta);
    outcome.recorder.destroy();
    send({ type: "result", result, interrupted: outcome.interrupted });
  } catch (err) {
    send({
      type: "error",
      name: err instanceof Error ? err.name : "Error",
      message: err instanceof Error ? err.message : String(err),
      ...(err instanceof InterruptedError ? { signal: err.signal } : {}),
    });
  } finally {
    port.close();
  }
}

void main();
