/**
 * The embedded broker: `ratatoskr broker` as a child process on 127.0.0.1 with a free port,
 * started with the same Node runtime and loader flags as this process (cli-entry.ts, so it works
 * under tsx and compiled). Stopped with SIGTERM, by PID, at teardown. With `tls: true` it gets a
 * self-signed certificate generated into its own temporary directory (self-signed.ts), removed
 * at teardown; clients trust that certificate as the CA.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliEntry, nodeArgs } from "../cli-entry.js";
import { BrokerUnreachableError } from "../errors.js";
import type { ProcessControl } from "../faults/index.js";
import type { BrokerSettings, DurabilityPromise, EmbeddedBroker, EmbeddedServerSpec, ProcessLog } from "./driver.js";
import { exited, signal, signalAndWait, stopChild, stopOrContinue } from "./process-signals.js";
import { generateSelfSigned, type GeneratedCertificate } from "./self-signed.js";

/** The reference broker as the embedded server of the ratatoskr drivers (v2 and v1). */
export const referenceBroker: EmbeddedServerSpec = {
  name: "ratatoskr broker",
  start: (scenario) => startEmbeddedBroker(scenario.broker, 20_000, scenario.tls === true),
};

/** The storage column for a run against the reference broker. */
export function referenceBrokerStorage(broker: BrokerSettings): string {
  if (broker.storage !== "durable") return "memory";
  return broker.fsync ? "durable, fsync" : "durable, no fsync";
}

/** The reference broker's storage and flush, as a durability disclosure (docs/storage.md, "What `--fsync` guarantees"). */
export function referenceBrokerDurability(broker: BrokerSettings): Pick<DurabilityPromise, "storage" | "flush" | "replicas"> {
  if (broker.storage !== "durable") return { storage: "memory (lost when the broker stops or is killed)", flush: "none", replicas: 1 };
  return {
    storage: "LMDB on disk (survives kill -9)",
    flush: broker.fsync
      ? "fdatasync before each publish ack (group commit): survives a power loss"
      : "page cache at the ack, background flush every second: survives kill -9, not a power loss",
    replicas: 1,
  };
}

export function brokerArgs(broker: BrokerSettings, dataDir: string | undefined, cert?: { certFile: string; keyFile: string }): string[] {
  const args = ["broker", "--host", "127.0.0.1", "--port", "0", "--log-level", "info"];
  if (cert) args.push("--tls-cert", cert.certFile, "--tls-key", cert.keyFile);
  if (dataDir) args.push("--data-dir", dataDir);
  if (dataDir && broker.fsync) args.push("--fsync=true");
  if (broker.memoryBudgetBytes !== undefined) args.push("--memory-budget-bytes", String(broker.memoryBudgetBytes));
  args.push(...broker.args);
  return args;
}

export async function startEmbeddedBroker(broker: BrokerSettings, timeoutMs = 20_000, tls = false): Promise<EmbeddedBroker> {
  const cert: GeneratedCertificate | undefined = tls ? await generateSelfSigned("ratatoskr-bench-tls-") : undefined;
  const dataDir = broker.storage === "durable" ? mkdtempSync(join(tmpdir(), "ratatoskr-bench-")) : undefined;
  const args = brokerArgs(broker, dataDir, cert);
  const cleanupDir = (): void => {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    cert?.remove();
  };
  let current: Spawned;
  try {
    current = await spawnBroker(args, timeoutMs);
  } catch (err) {
    cleanupDir();
    throw err;
  }
  const ended: ProcessLog[] = [];
  // The process faults (docs/faults.md, "Process faults"): the same command line, so the same
  // data directory and a new free port (the fault proxy is retargeted to it).
  const control: ProcessControl = {
    name: "ratatoskr broker",
    pid: () => (exited(current.child) ? undefined : current.child.pid),
    address: () => current.address,
    kill: async () => {
      await signalAndWait(current.child, "SIGKILL");
      ended.push({ pid: current.child.pid!, log: current.log() });
    },
    terminate: async () => {
      await stopChild(current.child);
      ended.push({ pid: current.child.pid!, log: current.log() });
    },
    start: async () => {
      if (!exited(current.child)) throw new Error(`ratatoskr broker pid ${current.child.pid} is still running`);
      // A restart under load (the generator at full rate beside it) may be slow: a longer deadline.
      current = await spawnBroker(args, Math.max(timeoutMs, 60_000));
      return current.address;
    },
    pause: () => stopOrContinue(current.child, "SIGSTOP", "ratatoskr broker"),
    resume: () => stopOrContinue(current.child, "SIGCONT", "ratatoskr broker"),
  };
  return {
    address: current.address,
    pid: current.child.pid!,
    args,
    ...(dataDir ? { dataDir } : {}),
    ...(cert ? { tls: { caFile: cert.certFile, serverName: "localhost" } } : {}),
    control,
    endedProcesses: () => [...ended],
    // A paused broker cannot act on SIGTERM: continue it first.
    stop: () => {
      signal(current.child, "SIGCONT");
      return stopChild(current.child).finally(cleanupDir);
    },
  };
}

interface Spawned {
  child: ChildProcess;
  address: string;
  /** The tail of its output (stdout log lines and stderr), for the record of a restarted broker. */
  log(): string;
}

const LOG_TAIL_CHARS = 64 * 1024;

/**
 * The generator's environment without its RATATOSKR_* variables: the broker reads its settings
 * from those too, and an embedded broker's settings are the scenario's (its command line, which
 * the result records). A setting the report does not show would be a run that is not what it says.
 */
export function embeddedBrokerEnv(env: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; ignored: string[] } {
  const out: NodeJS.ProcessEnv = { ...env, NODE_OPTIONS: env.NODE_OPTIONS ?? "" };
  const ignored = Object.keys(out).filter((k) => k.startsWith("RATATOSKR_")).sort();
  for (const k of ignored) delete out[k];
  return { env: out, ignored };
}

async function spawnBroker(args: string[], timeoutMs: number): Promise<Spawned> {
  const { env, ignored } = embeddedBrokerEnv(process.env);
  if (ignored.length > 0) {
    process.stderr.write(`embedded broker: not passing ${ignored.join(", ")} from the environment (its settings are the scenario's broker.args, which the report records)\n`);
  }
  const child = spawn(process.execPath, [...nodeArgs(), cliEntry(), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
    // Its own process group: a terminal's Ctrl-C reaches the generator only, which keeps the
    // broker up for the interrupted run's short drain and then stops it by PID.
    detached: true,
  });
  let stderr = "";
  let output = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString("utf8")).slice(-4000);
    output = (output + d.toString("utf8")).slice(-LOG_TAIL_CHARS);
  });

  const address = await new Promise<string>((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => fail(`no "listening" line within ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new BrokerUnreachableError("embedded broker", `${why}${stderr ? `; stderr: ${stderr.trim()}` : ""}`));
    };
    child.on("exit", (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
    child.on("error", (err) => fail(err.message));
    child.stdout!.on("data", function onData(d: Buffer) {
      buffered += d.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const addr = listeningAddress(line);
        if (addr) {
          clearTimeout(timer);
          child.removeAllListeners("exit");
          child.stdout!.off("data", onData);
          // Keep draining its log (and the tail of it for the record).
          child.stdout!.on("data", (more: Buffer) => (output = (output + more.toString("utf8")).slice(-LOG_TAIL_CHARS)));
          resolve(addr);
          return;
        }
      }
    });
  });
  return { child, address, log: () => output };
}


function listeningAddress(line: string): string | undefined {
  if (!line.includes('"listening"')) return undefined;
  try {
    const rec = JSON.parse(line) as { msg?: unknown; address?: unknown };
    return rec.msg === "listening" && typeof rec.address === "string" ? rec.address : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds (utime, stime), RSS (VmRSS) and peak RSS (VmHWM, the kernel's high-water mark,
 * so short runs and peaks between samples count) of a local process from /proc (Linux);
 * undefined elsewhere or once the process is gone.
 */
export function procSample(pid: number): { cpuUserSeconds: number; cpuSystemSeconds: number; rssBytes: number; peakRssBytes?: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = 100; // USER_HZ on Linux
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    return {
      cpuUserSeconds: Number(rest[11]) / ticks,
      cpuSystemSeconds: Number(rest[12]) / ticks,
      rssBytes: rss ? Number(rss[1]) * 1024 : 0,
      ...(hwm ? { peakRssBytes: Number(hwm[1]) * 1024 } : {}),
    };
  } catch {
    return undefined;
  }
}
