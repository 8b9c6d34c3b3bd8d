/**
 * Set files of `ratatoskr bench-suite`: scenarios × drivers, each entry loaded and checked
 * against its drivers' refusals before anything runs. A set file:
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
 *   targets: [...]                             # see compare.ts
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { DRIVER_NAMES, findDriver, type DriverName } from "../drivers/index.js";
import { ScenarioError, UsageError } from "../errors.js";
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
