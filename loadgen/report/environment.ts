/** The machine and software a run was measured on (for result.json's `environment`). */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Environment {
  hostname: string;
  cpuModel: string;
  cpuCores: number;
  memoryBytes: number;
  os: string;
  kernel: string;
  arch: string;
  node: string;
  packages: Record<string, string>;
  gitCommit: string;
  gitDirty: boolean;
}

const repoRoot = join(fileURLToPath(import.meta.url), "..", "..", "..");

function pkgVersion(name: string): string {
  for (const base of [repoRoot, join(repoRoot, "..")]) {
    try {
      const pkg = JSON.parse(readFileSync(join(base, name === "ratatoskr" ? "" : `node_modules/${name}`, "package.json"), "utf8")) as { version?: string };
      if (pkg.version) return pkg.version;
    } catch {
      // try the next base (compiled output lives one level deeper)
    }
  }
  return "unknown";
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync("git", args, { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

function osName(): string {
  try {
    const rel = readFileSync("/etc/os-release", "utf8");
    const m = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(rel);
    if (m) return m[1]!;
  } catch {
    // not Linux
  }
  return `${os.type()} ${os.release()}`;
}

export function captureEnvironment(): Environment {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cpuCores: cpus.length,
    memoryBytes: os.totalmem(),
    os: osName(),
    kernel: os.release(),
    arch: process.arch,
    node: process.version,
    packages: Object.fromEntries(
      ["ratatoskr", "@grpc/grpc-js", "nats", "hdr-histogram-js", "echarts", "yaml", "zod"].map((n) => [n, pkgVersion(n)]),
    ),
    gitCommit: git(["rev-parse", "HEAD"]) ?? "unknown",
    gitDirty: (git(["status", "--porcelain", "--untracked-files=no"]) ?? "") !== "",
  };
}
