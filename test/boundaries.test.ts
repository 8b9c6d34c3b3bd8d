// Module boundaries (docs/design.md, "Layout and boundaries"): which folder may import which,
// and that a package is entered only through its door (its index.ts). Read from the sources as
// text, so it needs no build; `npm run lint` checks the same rules while editing.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== "node_modules" && name !== "gen") out.push(...sources(path));
    } else if (name.endsWith(".ts") || name.endsWith(".mjs")) out.push(path);
  }
  return out;
}

/** Import and re-export specifiers of a file (static, side-effect and dynamic imports). */
export function importsOf(text: string): string[] {
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^"';]*?from\s+["']([^"']+)["']/g),
    ...text.matchAll(/(?:^|\n)\s*import\s+["']([^"']+)["']/g),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
  ];
  return specs.map((m) => m[1]!);
}

const isTest = (file: string) => file.endsWith(".test.ts");
const rel = (file: string) => relative(root, file).split(sep).join("/");

/** The repository file a relative specifier points at (".js" in specifiers names the ".ts" source). */
function target(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const path = resolve(dirname(from), spec);
  return path.endsWith(".js") && existsSync(path.slice(0, -3) + ".ts") ? path.slice(0, -3) + ".ts" : path;
}

/** Folders with a door (an index.ts) under the given roots: the packages. */
function packages(...dirs: string[]): string[] {
  return dirs.flatMap((d) => sources(join(root, d))).filter((f) => f.endsWith(`${sep}index.ts`)).map((f) => dirname(f));
}

const inside = (file: string, dir: string) => file.startsWith(dir + sep);

/**
 * A file outside a package that imports something inside it must import a door: the index.ts
 * of a package that holds the target and not the importer (cli/ may import broker/index.ts or
 * broker/server/index.ts, never broker/server/server.ts).
 */
export function doorViolation(from: string, to: string, pkgs: readonly string[]): string | undefined {
  const crossed = pkgs.filter((p) => inside(to, p) && !inside(from, p)).sort((a, b) => b.length - a.length);
  if (crossed.length === 0 || crossed.some((p) => to === join(p, "index.ts"))) return undefined;
  return `${rel(from)} imports ${rel(to)}: enter ${rel(crossed[0]!)}/ through its index.ts`;
}

interface Edge {
  from: string;
  spec: string;
  to: string | undefined;
}

function edges(...dirs: string[]): Edge[] {
  return dirs.flatMap((d) =>
    sources(join(root, d)).flatMap((from) => importsOf(readFileSync(from, "utf8")).map((spec) => ({ from, spec, to: target(from, spec) }))),
  );
}

const show = (e: Edge) => `${rel(e.from)} imports ${e.spec}`;

// Production code: the broker, the load generator, the CLI, and the measurement scripts.
const PRODUCTION = ["broker", "loadgen", "cli", "scripts"];
/** Scripts that measure an internal part on its own, with the reason. */
const MEASURES_INTERNALS: Record<string, string> = {
  "scripts/v2-fanout-cpu.ts": "times the Consume frame encoder (broker/server/consume-codec.ts) without gRPC",
  "scripts/v2-codec-cost.ts": "times the hand request decoders and answer encoder (broker/server/v2/) against the generated code, without gRPC",
};

/**
 * Files that import loadgen/errors.ts (the exit codes) instead of the load generator's door: the
 * broker command, so that a broker process does not load the load generator (docs/design.md,
 * "Layout and boundaries").
 */
const BROKER_PROCESS_FILES = ["cli/broker-command.ts", "cli/usage.ts"];
const EXIT_CODES = "loadgen/errors.ts";

/** Every repository file reached from `file` by static imports (dynamic `import()` not followed). */
function staticClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file) || !existsSync(file)) return seen;
  seen.add(file);
  const text = readFileSync(file, "utf8");
  const specs = importsOf(text.replace(/\bimport\(\s*["'][^"']+["']\s*\)/g, ""));
  for (const spec of specs) {
    const to = target(file, spec);
    if (to !== undefined) staticClosure(to, seen);
  }
  return seen;
}

describe("module boundaries", () => {
  it("keeps gRPC, generated code and the server out of broker/core", () => {
    const offenders = edges("broker/core")
      .filter((e) => e.spec.startsWith("@grpc/") || e.spec.includes("proto/gen") || (e.to !== undefined && inside(e.to, join(root, "broker/server"))))
      .map(show);
    expect(offenders).toEqual([]);
  });

  it("keeps broker/store free of the core, the server, gRPC and generated code", () => {
    const store = join(root, "broker/store");
    const offenders = edges("broker/store")
      .filter((e) => e.spec.startsWith("@grpc/") || e.spec.includes("proto/gen") || (e.to !== undefined && inside(e.to, join(root, "broker")) && !inside(e.to, store)))
      .map(show);
    expect(offenders).toEqual([]);
  });

  it("lets loadgen/ reach the broker only through broker/index.ts", () => {
    const broker = join(root, "broker");
    const offenders = edges("loadgen")
      .filter((e) => e.to !== undefined && inside(e.to, broker) && e.to !== join(broker, "index.ts"))
      .map(show);
    expect(offenders).toEqual([]);
  });

  it("enters every package through its index.ts", () => {
    const pkgs = packages("broker", "loadgen");
    const offenders = edges(...PRODUCTION)
      .filter((e) => !isTest(e.from) && e.to !== undefined && !(rel(e.from) in MEASURES_INTERNALS && inside(e.to, join(root, "broker/server"))))
      .filter((e) => !(BROKER_PROCESS_FILES.includes(rel(e.from)) && rel(e.to!) === EXIT_CODES))
      .map((e) => doorViolation(e.from, e.to!, pkgs))
      .filter((v) => v !== undefined);
    expect(offenders).toEqual([]);
  });

  it("keeps the test kit out of production code (test/support is not built into dist/ or the image)", () => {
    const support = join(root, "test", "support");
    const offenders = edges("broker", "loadgen", "cli")
      .filter((e) => !isTest(e.from) && e.to !== undefined && inside(e.to, support))
      .map(show);
    expect(offenders).toEqual([]);
    const build = JSON.parse(readFileSync(join(root, "tsconfig.build.json"), "utf8")) as { include: string[] };
    expect(build.include.filter((dir) => dir === "test" || dir.startsWith("test/"))).toEqual([]);
  });

  it("enters the test kit through test/support/index.ts", () => {
    const support = join(root, "test", "support");
    const door = join(support, "index.ts");
    const uses = edges("broker", "loadgen", "cli", "scripts", "e2e", "test").filter((e) => !inside(e.from, support) && e.to !== undefined && inside(e.to, support));
    expect(uses.length, "the scan found no import of the kit").toBeGreaterThan(0);
    expect(uses.filter((e) => e.to !== door).map(show)).toEqual([]);
  });

  it("keeps the kit's clients and e2e/ off the broker's source: they reach a broker over the wire only", () => {
    // The kit files that build brokers and stores from the source; the rest (clients, waits,
    // names, status, raw gRPC) serve e2e tests against the image as well.
    const builders = ["test-servers.ts", "engine-harness.ts", "store-records.ts", "store-append-child.ts", "failing-store.ts"].map((f) => join(root, "test", "support", f));
    const broker = join(root, "broker");
    const scanned = edges("test/support", "e2e").filter((e) => !builders.includes(e.from));
    expect(scanned.length, "the scan found no imports").toBeGreaterThan(0);
    expect(scanned.filter((e) => e.to !== undefined && inside(e.to, broker)).map(show)).toEqual([]);
  });

  it("loads no load generator in `ratatoskr broker`: cli/main.ts reaches loadgen/ only for the exit codes, the other commands by import()", () => {
    const reached = [...staticClosure(join(root, "cli/main.ts"))].map(rel);
    expect(reached, "the scan did not follow the broker command").toEqual(expect.arrayContaining(["cli/broker-command.ts", "broker/index.ts", "broker/server/server.ts"]));
    expect(reached.filter((f) => f.startsWith("loadgen/"))).toEqual([EXIT_CODES]);
    // The closure follows static imports only: the bench command, which does load it, is reached by import().
    expect([...staticClosure(join(root, "cli/bench-command.ts"))].map(rel)).toContain("loadgen/index.ts");
  });

  it("runs no periodic timers in broker/server: the core owns them", () => {
    const offenders = sources(join(root, "broker/server"))
      .filter((f) => !isTest(f) && /\bsetInterval\s*\(/.test(readFileSync(f, "utf8")))
      .map(rel);
    expect(offenders).toEqual([]);
  });

  it("catches what it checks (the rules are not vacuous)", () => {
    const pkgs = packages("broker", "loadgen");
    expect(pkgs.map(rel)).toEqual(expect.arrayContaining(["broker", "broker/core", "broker/store", "broker/server"]));
    const at = (p: string) => join(root, p);
    expect(doorViolation(at("cli/main.ts"), at("broker/core/topic-registry.ts"), pkgs)).toContain("enter broker/core/ through its index.ts");
    expect(doorViolation(at("cli/main.ts"), at("broker/index.ts"), pkgs)).toBeUndefined();
    expect(doorViolation(at("cli/main.ts"), at("broker/server/index.ts"), pkgs)).toBeUndefined();
    expect(doorViolation(at("broker/server/server.ts"), at("broker/core/topic-registry.ts"), pkgs)).toContain("enter broker/core/ through its index.ts");
    expect(doorViolation(at("broker/server/server.ts"), at("broker/core/index.ts"), pkgs)).toBeUndefined();
    expect(doorViolation(at("broker/core/topic.ts"), at("broker/core/topic-registry.ts"), pkgs)).toBeUndefined();
    expect(importsOf(`import { a } from "./a.js";\nexport type { B } from "../b.js";\nimport "./side.js";\nawait import("./lazy.js");`)).toEqual([
      "./a.js",
      "../b.js",
      "./side.js",
      "./lazy.js",
    ]);
    expect(edges("broker/core").map((e) => e.spec)).toContain("./errors.js");
  });
});

describe("package.json exports", () => {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { exports: Record<string, { types: string; default: string }> };

  it("names the public doors, each built from a source that exists", () => {
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining(["./broker", "./loadgen"]));
    for (const [key, entry] of Object.entries(pkg.exports)) {
      if (key === "./package.json") continue;
      const source = entry.default.replace(/^\.\/dist\//, "").replace(/\.js$/, ".ts");
      expect(existsSync(join(root, source)), `${key} -> ${entry.default}: no ${source}`).toBe(true);
      expect(source.endsWith("index.ts"), `${key} must point at a door`).toBe(true);
      expect(entry.types).toBe(entry.default.replace(/\.js$/, ".d.ts"));
    }
  });
});
