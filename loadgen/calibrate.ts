/**
 * `ratatoskr calibrate`: how close the harness comes to a bare client (bare/) for one scenario
 * and driver on this machine. Against one server, it alternates a bare run and a normal
 * `ratatoskr bench` run (a child process, as a user runs it, with any extra bench arguments),
 * N passes, swapping which goes first each pass so drift between runs falls on both; it prints
 * each pass's bare rate, harness rate and their ratio, and the medians, and writes them as JSON.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runBareClient } from "./bare/index.js";
import { cliEntry, nodeArgs } from "./cli-entry.js";
import { assertDriverAccepts, findDriver, type EmbeddedBroker } from "./drivers/index.js";
import { UsageError } from "./errors.js";
import { readResult } from "./report/index.js";
import { loadScenario, scenarioForDriver } from "./run/index.js";

export interface CalibrateArgs {
  scenario: string;
  driver?: string | undefined;
  target?: string | undefined;
  set?: string[] | undefined;
  passes?: number | undefined;
  /** Extra arguments for each `ratatoskr bench` run (e.g. ["--workers", "2"]). */
  benchArgs?: string[] | undefined;
  /** Where the JSON goes (default: calibrate-<scenario>-<driver>.json in the current directory). */
  out?: string | undefined;
  connectTimeoutMs?: number | undefined;
}

export interface CalibrationPass {
  first: "bare" | "harness";
  bareDeliveriesPerSecond: number;
  harnessDeliveriesPerSecond: number;
  ratio: number;
}

export interface Calibration {
  kind: "ratatoskr-calibration";
  scenario: string;
  driver: string;
  target: string;
  embedded: boolean;
  benchArgs: string[];
  passes: CalibrationPass[];
  median: { bareDeliveriesPerSecond: number; harnessDeliveriesPerSecond: number; ratio: number };
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

const fmt = (n: number): string => (Number.isFinite(n) ? `${(n / 1000).toFixed(1)}K/s` : "n/a");

export async function runCalibration(args: CalibrateArgs, log: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<Calibration> {
  const passes = args.passes ?? 3;
  if (!Number.isInteger(passes) || passes < 1) throw new UsageError(`--passes expects a positive integer, got ${passes}`);
  const loaded = loadScenario(args.scenario, args.set ?? []);
  const driverModule = findDriver(args.driver ?? loaded.driver);
  const scenario = scenarioForDriver(loaded, driverModule);
  assertDriverAccepts(driverModule, scenario, args.scenario);
  if (scenario.messages === undefined) throw new UsageError(`scenario ${args.scenario}: calibration needs a message count (messages:), not durationSeconds`);
  let embedded: EmbeddedBroker | undefined;
  const scratch = mkdtempSync(join(tmpdir(), "ratatoskr-calibrate-"));
  try {
    let target = args.target;
    if (target === undefined) {
      const server = driverModule.embeddedServer;
      if (!server) throw new UsageError(`driver ${driverModule.name} has no server to start; pass --target`);
      embedded = await server.start(scenario);
      target = embedded.address;
      log(`started ${server.name} pid ${embedded.pid} at ${target}`);
    }
    const bare = async (): Promise<number> => {
      const r = await runBareClient({ scenario, driver: driverModule.name, target: target!, ...(args.connectTimeoutMs ? { connectTimeoutMs: args.connectTimeoutMs } : {}) });
      if (r.received < r.expected) throw new Error(`bare ${driverModule.name}: ${r.received} of ${r.expected} deliveries arrived`);
      return r.deliveriesPerSecond;
    };
    const harness = async (pass: number): Promise<number> => {
      const out = join(scratch, `harness-${pass}`);
      const benchArgs = ["bench", args.scenario, "--driver", driverModule.name, "--target", target!, "--out", out, "--quiet", ...(args.set ?? []).flatMap((s) => ["--set", s]), ...(args.benchArgs ?? [])];
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [...nodeArgs(), cliEntry(), ...benchArgs], { stdio: ["ignore", "ignore", "inherit"] });
        child.on("error", reject);
        child.on("exit", (c) => resolve(c ?? 1));
      });
      // Exit 1 is a failed gate: the run happened and its rate counts. 2 and up: it did not run.
      if (code > 1) throw new Error(`ratatoskr ${benchArgs.join(" ")} exited ${code}`);
      return readResult(out).throughput.deliveryRate;
    };
    const results: CalibrationPass[] = [];
    for (let i = 0; i < passes; i++) {
      const first = i % 2 === 0 ? "bare" : "harness";
      let b: number;
      let h: number;
      if (first === "bare") {
        b = await bare();
        h = await harness(i);
      } else {
        h = await harness(i);
        b = await bare();
      }
      const p: CalibrationPass = { first, bareDeliveriesPerSecond: Math.round(b), harnessDeliveriesPerSecond: Math.round(h), ratio: Math.round((h / b) * 1000) / 1000 };
      results.push(p);
      log(`pass ${i + 1}/${passes} (${first} first): bare ${fmt(b)}, harness ${fmt(h)}, ratio ${p.ratio.toFixed(2)}`);
    }
    const m = {
      bareDeliveriesPerSecond: Math.round(median(results.map((p) => p.bareDeliveriesPerSecond))),
      harnessDeliveriesPerSecond: Math.round(median(results.map((p) => p.harnessDeliveriesPerSecond))),
      ratio: Math.round(median(results.map((p) => p.ratio)) * 1000) / 1000,
    };
    log(`median of ${passes}: bare ${fmt(m.bareDeliveriesPerSecond)}, harness ${fmt(m.harnessDeliveriesPerSecond)}, ratio ${m.ratio.toFixed(2)} (${scenario.name}, driver ${driverModule.name})`);
    const calibration: Calibration = {
      kind: "ratatoskr-calibration",
      scenario: args.scenario,
      driver: driverModule.name,
      target,
      embedded: embedded !== undefined,
      benchArgs: args.benchArgs ?? [],
      passes: results,
      median: m,
    };
    const file = args.out ?? `calibrate-${scenario.name}-${driverModule.name}.json`;
    writeFileSync(file, `${JSON.stringify(calibration, null, 2)}\n`);
    log(`wrote ${file}`);
    return calibration;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await embedded?.stop();
  }
}
