import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^"';]*?from\s+["']([^"']+)["']/g)].map((m) => m[1]!);
}

// STYLE.md: the broker core never imports gRPC or generated code; stores never import the server.
describe("module boundaries", () => {
  it("keeps gRPC and generated code out of broker/core", () => {
    const offenders = sources(join(root, "broker/core")).flatMap((f) =>
      imports(f)
        .filter((spec) => spec.startsWith("@grpc/") || spec.includes("proto/gen") || spec.includes("/server/"))
        .map((spec) => `${relative(root, f)} imports ${spec}`),
    );
    expect(offenders).toEqual([]);
  });

  it("keeps gRPC and the server layer out of broker/store", () => {
    const offenders = sources(join(root, "broker/store")).flatMap((f) =>
      imports(f)
        .filter((spec) => spec.startsWith("@grpc/") || spec.includes("proto/gen"))
        .map((spec) => `${relative(root, f)} imports ${spec}`),
    );
    expect(offenders).toEqual([]);
  });

  it("finds the imports it checks (the scan is not vacuous)", () => {
    const all = sources(join(root, "broker/core")).flatMap(imports);
    expect(all).toContain("./errors.js");
  });
});
