/**
 * `ratatoskr bench-suite <set.yaml>`: run a set of scenarios × drivers, one `ratatoskr bench`
 * child process per run (each with its own embedded broker or nats-server, started and stopped
 * by PID), then write the side-by-side comparison. A set file:
 *
 *   name: published
 *   runs:
 *     - scenario: latency.yaml                 # relative to the set file
 *       drivers: [ratatoskr, ratatoskr-v1, nats, jetstream]
 *     - scenario: at-least-once.yaml
 *       drivers: [jetstream]
 *       label: jetstream-file                  # row name (one driver only)
 *       set: [broker.storage=durable]          # --set overrides for this entry
 *       note: JetStream file storage           # shown under the row
 *   targets: [...]                             # see suite-compare.ts
 *
 * Every entry is loaded and checked against its drivers' refusals before anything runs.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { cliEntry, nodeArgs } from "../cli-entry.js";
import { systemClock, type Clock } from "../clock.js";
import { DRIVER_NAMES, findDriver, type DriverName } from "../drivers/index.js";
import { ScenarioError, UsageError } from "../errors.js";
import { captureEnvironment } from "../report/index.js";
import { loadScenario, type Scenario } from "../run/index.js";
import { targetSchema } from "./compare.js";

const entrySchema = z
  .strictObject({
    scenario: z.string().min(1),
    drivers: z.array(z.enum(DRIVER_NAMES)).min(1),
    label: z.string().regex(/^[A-Za-z0-9_.-]+$/).optional(),
    set: z.array(z.string()).default([]),
    note: z.string().optional(),
  })
  .refine((e) => e.label === undefined || e.drivers.length === 1, { message: "label names one row: give exactly one driver with it" });

export const setSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]+$/),
  description: z.string().default(""),
  /** Disclosures printed at the top of the comparison. */
  notes: z.array(z.string()).default([]),
  runs: z.array(entrySchema).min(1),
  targets: z.array(targetSchema).default([]),
});

export type SuiteSet = z.output<typeof setSchema>;

/** One planned run: a scenario file with overrides, under one driver, named by its label. */
export interface SuiteRun {
  scenarioFile: string;
  scenario: Scenario;
  driver: DriverName;
  label: string;
  set: string[];
  note: string | undefined;
  /** Report directory relative to the suite's output directory. */
  dir: string;
}

export function loadSet(file: string): { set: SuiteSet; runs: SuiteRun[] } {
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ScenarioError(file, [{ path: "", expected: "a readable YAML set file", got: String(err) }], { cause: err });
  }
  const parsed = setSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ScenarioError(file, parsed.error.issues.map((i) => ({ path: i.path.join("."), expected: i.message, got: "see the set file" })));
  }
  const set = parsed.data;
  const runs: SuiteRun[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const entry of set.runs) {
    const scenarioFile = resolve(dirname(file), entry.scenario);
    const scenario = loadScenario(scenarioFile, entry.set);
    for (const driver of entry.drivers) {
      const label = entry.label ?? driver;
      const dir = join(scenario.name, label);
      if (seen.has(dir)) problems.push(`${entry.scenario}: two runs named ${dir}; give one a label`);
      seen.add(dir);
      for (const p of findDriver(driver).refusals(scenario)) problems.push(`${entry.scenario} × ${label}: ${p}`);
      runs.push({ scenarioFile, scenario, driver, label, set: entry.set, note: entry.note, dir });
    }
  }
  if (problems.length > 0) throw new UsageError(`set ${file} cannot run:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  return { set, runs };
}

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
