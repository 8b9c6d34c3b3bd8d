import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

// broker/server/ under tsx, dist/broker/server/ compiled: package.json is three or four levels up.
const here = fileURLToPath(import.meta.url);

/** The ratatoskr package version (for ratatoskr_build_info), or "unknown". */
export function brokerVersion(): string {
  for (const up of [["..", "..", ".."], ["..", "..", "..", ".."]]) {
    try {
      const pkg = JSON.parse(readFileSync(join(here, ...up, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "ratatoskr" && pkg.version) return pkg.version;
    } catch {
      // try one level further up
    }
  }
  return "unknown";
}
