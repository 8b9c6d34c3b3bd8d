/**
 * How this program starts itself as a child process: the embedded reference broker
 * (`ratatoskr broker`) and each run of a bench suite (`ratatoskr bench`) are children running
 * the same CLI with the same Node runtime and loader flags, under tsx and compiled alike.
 */
import { extname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** cli/main.ts beside loadgen/ (tsx) or dist/cli/main.js beside dist/loadgen/ (compiled). */
export function cliEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return join(here, "..", "..", "cli", `main${extname(here)}`);
}

/**
 * Node flags for the child: ours, plus the tsx loader when running from TypeScript sources
 * without it in execArgv (e.g. under vitest, which transforms in-process).
 */
export function nodeArgs(): string[] {
  const args = [...process.execArgv];
  const fromSource = cliEntry().endsWith(".ts");
  if (fromSource && !args.some((a) => a.includes("tsx"))) {
    const loader = join(fileURLToPath(import.meta.url), "..", "..", "node_modules", "tsx", "dist", "loader.mjs");
    args.push("--import", pathToFileURL(loader).href);
  }
  return args;
}
