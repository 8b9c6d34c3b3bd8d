import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import yargs, { type Argv } from "yargs";
import { DRIVER_NAMES } from "../loadgen/index.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { benchCommand, securityFlags } from "./bench-command.js";

/** Parse a `bench` command line; the handler only records what it was given. */
async function parse(args: string[]): Promise<{ driver?: string; failure?: string }> {
  const seen: { driver?: string; failure?: string } = {};
  try {
    await yargs()
      .command({ ...benchCommand, handler: (argv) => void (seen.driver = String(argv.driver)) })
      .strict()
      .exitProcess(false)
      // As the real CLI does (it exits), a failure must stop the parse: throw.
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync(["bench", "s.yaml", ...args]);
  } catch (err) {
    seen.failure = (err as Error).message;
  }
  return seen;
}

describe("ratatoskr bench --driver", () => {
  it("offers exactly the registry's drivers", () => {
    // yargs keeps the declared choices in getOptions(), which its type declarations leave out.
    const y = (benchCommand.builder as (y: Argv) => Argv)(yargs()) as unknown as { getOptions(): { choices: Record<string, unknown[]> } };
    const choices = y.getOptions().choices;
    expect(choices["driver"]).toEqual([...DRIVER_NAMES]);
  });

  it("takes every registered driver", async () => {
    for (const name of DRIVER_NAMES) expect(await parse(["--driver", name])).toEqual({ driver: name });
  });

  it("refuses an unknown driver before running anything, listing the known ones", async () => {
    const seen = await parse(["--driver", "bogus"]);
    expect(seen.driver).toBeUndefined();
    expect(seen.failure).toMatch(/Argument: driver, Given: "bogus", Choices: /);
    expect(seen.failure).toContain(DRIVER_NAMES.map((n) => JSON.stringify(n)).join(", "));
  });
});

describe("ratatoskr bench (CLI process)", () => {
  it("exits 2 for --driver bogus and lists the known drivers on stderr", async () => {
    const repo = join(import.meta.dirname, "..");
    const proc = spawn(process.execPath, ["--import", "tsx", "cli/main.ts", "bench", "scenarios/ci-smoke.yaml", "--driver", "bogus", "--out", join(tmpdir(), "rt-bogus-driver")], {
      cwd: repo,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => proc.on("exit", (c) => resolve(c)));
    expect(code).toBe(2);
    expect(stderr).toContain(`Argument: driver, Given: "bogus", Choices: ${DRIVER_NAMES.map((n) => JSON.stringify(n)).join(", ")}`);
  }, 60_000);
});

describe("bench TLS and token flags", () => {
  it("turn into the driver's TLS files and token, reading --token-file", () => {
    const dir = mkdtempSync(join(tmpdir(), "rt-bench-flags-"));
    const file = join(dir, "token");
    writeFileSync(file, "s3cret-p\n");
    expect(securityFlags({ tlsCa: "/ca.pem", tlsServerName: "broker.example", tokenFile: file })).toEqual({ tls: { caFile: "/ca.pem", serverName: "broker.example" }, token: "s3cret-p" });
    expect(securityFlags({ token: "t" })).toEqual({ token: "t" });
    expect(securityFlags({})).toEqual({});
  });

  it("refuse a certificate without its key, two token sources and a token file that is not one token", () => {
    const dir = mkdtempSync(join(tmpdir(), "rt-bench-flags-"));
    const two = join(dir, "two");
    writeFileSync(two, "a b\n");
    expect(() => securityFlags({ tlsCert: "/c.pem" })).toThrow("--tls-cert and --tls-key go together");
    expect(() => securityFlags({ token: "a", tokenFile: two })).toThrow("give --token or --token-file, not both");
    expect(() => securityFlags({ tokenFile: two })).toThrow(/expected one token/);
    expect(() => securityFlags({ tokenFile: join(dir, "missing") })).toThrow(/--token-file .*missing: ENOENT/);
  });
});
