import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";

// STYLE.md "Doors" and "Folders show the flow": loadgen/ is grouped by what flows through it,
// each group entered through its index.ts, and the groups stack without cycles. That loadgen
// reaches the broker only through broker/index.ts is checked in test/boundaries.test.ts.
const loadgen = import.meta.dirname;
const root = join(loadgen, "..");

/** Groups from the bottom up: a group's sources may import only groups below it. */
const GROUPS = ["faults", "drivers", "run", "bare", "report", "suite"] as const;
/** Files at loadgen/'s top level that every group may use (they import no group). */
const BASE = ["clock.ts", "errors.ts", "cli-entry.ts"];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** Relative import specifiers of a file, resolved to repository paths (`loadgen/run/index.ts`). */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^"';]*?from\s+["']([^"']+)["']/g)]
    .map((m) => m[1]!)
    .filter((spec) => spec.startsWith("."))
    .map((spec) => relative(root, resolve(dirname(file), spec)).split(sep).join("/").replace(/\.js$/, ".ts"));
}

const rel = (f: string) => relative(root, f).split(sep).join("/");
const groupOf = (path: string): string | undefined => {
  const m = /^loadgen\/([^/]+)\//.exec(path);
  return m ? m[1] : undefined;
};
const isTest = (f: string) => f.endsWith(".test.ts");

describe("loadgen folders", () => {
  it("gives every group a door (index.ts)", () => {
    for (const g of GROUPS) expect(existsSync(join(loadgen, g, "index.ts")), `${g}/index.ts`).toBe(true);
    const folders = readdirSync(loadgen).filter((n) => statSync(join(loadgen, n)).isDirectory());
    expect(folders.sort()).toEqual([...GROUPS].sort());
  });

  it("enters another group only through its index.ts", () => {
    const offenders: string[] = [];
    for (const f of sources(loadgen)) {
      const own = groupOf(rel(f));
      for (const target of imports(f)) {
        const g = groupOf(target);
        if (g === undefined || g === own) continue;
        if (target !== `loadgen/${g}/index.ts`) offenders.push(`${rel(f)} imports ${target}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it("stacks the groups: faults, then drivers, then run, then bare, then report, then suite; the base imports no group", () => {
    const offenders: string[] = [];
    for (const f of sources(loadgen).filter((x) => !isTest(x))) {
      const path = rel(f);
      const own = groupOf(path);
      const level = own === undefined ? (BASE.includes(path.slice("loadgen/".length)) ? -1 : GROUPS.length) : GROUPS.indexOf(own as (typeof GROUPS)[number]);
      for (const target of imports(f)) {
        if (!target.startsWith("loadgen/")) continue;
        const g = groupOf(target);
        const targetLevel = g === undefined ? (BASE.includes(target.slice("loadgen/".length)) ? -1 : GROUPS.length) : GROUPS.indexOf(g as (typeof GROUPS)[number]);
        if (g !== own && targetLevel >= level) offenders.push(`${path} imports ${target}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it("lets cli/ and scripts/ into loadgen only through a door (the broker command: the exit codes alone)", () => {
    const doors = new Set(["loadgen/index.ts", ...GROUPS.map((g) => `loadgen/${g}/index.ts`)]);
    // A broker process loads no load generator (docs/design.md, "Layout and boundaries"; test/boundaries.test.ts).
    const brokerCommand = new Set(["cli/broker-command.ts", "cli/usage.ts"]);
    const offenders = [...sources(join(root, "cli")), ...sources(join(root, "scripts"))].flatMap((f) =>
      imports(f)
        .filter((t) => t.startsWith("loadgen/") && !doors.has(t) && !(brokerCommand.has(rel(f)) && t === "loadgen/errors.ts"))
        .map((t) => `${rel(f)} imports ${t}`),
    );
    expect(offenders).toEqual([]);
  });

  it("finds the imports it checks (the scan is not vacuous)", () => {
    const all = sources(loadgen).flatMap(imports);
    for (const g of GROUPS) expect(all).toContain(`loadgen/${g}/index.ts`);
    expect(sources(join(root, "cli")).flatMap(imports)).toContain("loadgen/index.ts");
  });
});

describe("one clock", () => {
  it("reads time only in clock.ts; everything else gets the injected Clock", () => {
    const reads = /Date\.now\(|performance\.now\(|process\.hrtime|new Date\(\)/;
    const offenders = sources(loadgen)
      .filter((f) => !isTest(f) && rel(f) !== "loadgen/clock.ts")
      .flatMap((f) =>
        readFileSync(f, "utf8")
          .split("\n")
          .map((line, i) => [line, i + 1] as const)
          .filter(([line]) => reads.test(line) && !/^\s*(\*|\/\/)/.test(line))
          .map(([line, n]) => `${rel(f)}:${n}: ${line.trim()}`),
      );
    expect(offenders).toEqual([]);
    expect(reads.test(readFileSync(join(loadgen, "clock.ts"), "utf8"))).toBe(true);
  });
});
