/**
 * `ratatoskr bench-suite <set.yaml>`: run a set of scenarios × drivers (set.ts), one `ratatoskr
 * bench` child process per run (each with its own embedded broker or nats-server, started and
 * stopped by PID), recording each in suite.json; render.ts then writes the side-by-side
 * comparison.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { cliEntry, nodeArgs } from "../cli-entry.js";
import { systemClock, type Clock } from "../clock.js";
import { findDriver } from "../drivers/index.js";
import { EXIT_INTERRUPTED, UsageError } from "../errors.js";
import { captureEnvironment } from "../report/index.js";
import { loadSet, type SuiteRun } from "./set.js";

export interface SuiteArgs {
  set: string;
  out: string;
  /** Only these scenario names (default all). */
  only?: string[];
  /**
   * Passes over the set (default 1). Passes run one after another, each through every run, so
   * drift on a shared machine spreads over all drivers alike; the comparison shows each run's
   * median pass.
   */
  repeat?: number;
  keepHlog: boolean;
  quiet: boolean;
  /** Interrupt (Ctrl-C): no further run starts; the running child gets the terminal's signal itself. */
  signal?: AbortSignal;
}

export interface RunRecord {
  label: string;
  driver: string;
  scenario: string;
  scenarioFile: string;
  set: string[];
  dir: string;
  /** 1-based pass of a --repeat run. */
  pass: number;
  command: string;
  exitCode: number;
  seconds: number;
}

export interface SuiteManifest {
  kind: "ratatoskr-bench-suite";
  set: string;
  /** The set file, copied into the suite directory. */
  setFile: string;
  command: string;
  startedAt: string;
  finishedAt: string;
  versions: Record<string, string>;
  runs: RunRecord[];
}

export const MANIFEST_FILE = "suite.json";

/** Run the set; returns 0 when every run completed with its gates held, 1 if a gate failed, 2 if a run could not run. */
export async function runSuite(args: SuiteArgs, log: (s: string) => void, clock: Clock = systemClock): Promise<number> {
  const { set, runs } = loadSet(args.set);
  const selected = args.only?.length ? runs.filter((r) => args.only!.includes(r.scenario.name)) : runs;
  if (selected.length === 0) throw new UsageError(`--only ${args.only?.join(",")} matches no scenario of ${args.set}`);
  const passes = args.repeat ?? 1;
  if (!Number.isInteger(passes) || passes < 1) throw new UsageError(`--repeat must be a positive integer; got ${String(args.repeat)}`);
  const out = resolve(args.out);
  mkdirSync(join(out, "scenarios"), { recursive: true });
  copyFileSync(args.set, join(out, basename(args.set)));
  for (const f of new Set(selected.map((r) => r.scenarioFile))) copyFileSync(f, join(out, "scenarios", basename(f)));

  const manifest: SuiteManifest = {
    kind: "ratatoskr-bench-suite",
    set: set.name,
    setFile: basename(args.set),
    command: ["ratatoskr", ...process.argv.slice(2)].join(" "),
    startedAt: new Date(clock.wallMs()).toISOString(),
    finishedAt: "",
    versions: versions(selected),
    runs: [],
  };
  const total = selected.length * passes;
  log(`bench-suite ${set.name}: ${total} runs (${selected.length} × ${passes} pass${passes > 1 ? "es" : ""}) into ${out}`);
  let worst = 0;
  const schedule = Array.from({ length: passes }, (_, p) => selected.map((run) => ({ run, pass: p + 1 }))).flat();
  for (const [i, { run, pass }] of schedule.entries()) {
    if (args.signal?.aborted) {
      log(`interrupted: ${total - i} of ${total} runs not started`);
      worst = Math.max(worst, EXIT_INTERRUPTED);
      break;
    }
    const runDir = passes > 1 ? join(run.dir, `pass-${pass}`) : run.dir;
    const dir = join(out, runDir);
    rmSync(dir, { recursive: true, force: true });
    const benchArgs = ["bench", run.scenarioFile, "--driver", run.driver, "--out", dir, ...run.set.flatMap((s) => ["--set", s])];
    if (args.quiet) benchArgs.push("--quiet");
    log(`[${i + 1}/${total}] ${run.scenario.name} × ${run.label}${passes > 1 ? ` (pass ${pass})` : ""}`);
    const startedUs = clock.nowUs();
    const exitCode = await runChild(benchArgs);
    const seconds = Math.round((clock.nowUs() - startedUs) / 100_000) / 10;
    if (!args.keepHlog && existsSync(dir)) for (const f of readdirSync(dir)) if (f.endsWith(".hlog")) rmSync(join(dir, f));
    manifest.runs.push({
      label: run.label,
      driver: run.driver,
      scenario: run.scenario.name,
      scenarioFile: join("scenarios", basename(run.scenarioFile)),
      set: run.set,
      dir: runDir,
      pass,
      command: ["ratatoskr", "bench", join("scenarios", basename(run.scenarioFile)), "--driver", run.driver, ...run.set.flatMap((s) => ["--set", s])].join(" "),
      exitCode,
      seconds,
    });
    log(`  exit ${exitCode} after ${seconds} s`);
    worst = Math.max(worst, exitCode);
    writeFileSync(join(out, MANIFEST_FILE), `${JSON.stringify(manifest, null, 1)}\n`);
  }
  manifest.finishedAt = new Date(clock.wallMs()).toISOString();
  writeFileSync(join(out, MANIFEST_FILE), `${JSON.stringify(manifest, null, 1)}\n`);
  return worst;
}

function runChild(args: string[]): Promise<number> {
  return new Promise((resolveExit) => {
    const child = spawn(process.execPath, [...nodeArgs(), cliEntry(), ...args], { stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", () => resolveExit(2));
    child.on("exit", (code) => resolveExit(code ?? 2));
  });
}

function versions(runs: readonly SuiteRun[]): Record<string, string> {
  const env = captureEnvironment();
  const v: Record<string, string> = {
    node: env.node,
    ...Object.fromEntries(Object.entries(env.packages).map(([k, val]) => [k === "ratatoskr" ? "ratatoskr" : `npm:${k}`, val])),
    gitCommit: env.gitCommit + (env.gitDirty ? " (dirty)" : ""),
    machine: `${env.cpuModel}, ${env.cpuCores} cores, ${Math.round(env.memoryBytes / 2 ** 30)} GiB, ${env.os}, kernel ${env.kernel}`,
  };
  // Servers other than the reference broker (whose version is the package's): nats-server.
  for (const r of runs) {
    const server = findDriver(r.driver).embeddedServer;
    if (server?.version && v[server.name] === undefined) v[server.name] = server.version();
  }
  return v;
}
