/**
 * The embedded peer: a `nats-server` from PATH as a child process, bound to 127.0.0.1 with a
 * server-chosen free port (`-p -1`: the server binds port 0 itself, so no probe-then-bind race),
 * JetStream enabled with a temporary store directory. Ready once it logs "Server is ready";
 * stopped with SIGTERM by PID (SIGKILL after a grace period), its store directory removed.
 * Its CPU and RSS are sampled from /proc/<pid> like the embedded reference broker's.
 * With `tls: true` it is started with a config file holding a `tls` block (a self-signed
 * certificate generated for the run, self-signed.ts) and `authorization { token }` (a random
 * token), both in a temporary directory removed at teardown.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { BrokerUnreachableError } from "../errors.js";
import type { ProcessControl } from "../faults/index.js";
import type { EmbeddedBroker, EmbeddedServerSpec, ProcessLog } from "./driver.js";
import { exited, signal, signalAndWait, stopChild, stopOrContinue } from "./process-signals.js";
import { generateSelfSigned, type GeneratedCertificate } from "./self-signed.js";

export const NATS_INSTALL_HINT = "install it with `apt-get install -y nats-server` (Debian package nats-server), or pass --target host:port of a running server";

/** Raised when no nats-server binary is found. */
export class NatsServerMissingError extends BrokerUnreachableError {
  constructor(searched: string[]) {
    super("embedded nats-server", `nats-server was not found on PATH (looked in ${searched.join(", ")}); ${NATS_INSTALL_HINT}`);
  }
}

export interface NatsServerOptions {
  /** PATH to search (default process.env.PATH). /usr/sbin is searched too: Debian installs there. */
  path?: string;
  /** Deadline for the "Server is ready" line. */
  timeoutMs?: number;
  /**
   * `true`: TLS with a generated certificate and a generated token. Files: TLS with this
   * certificate (tests bring their own CA's) and this token.
   */
  tls?: boolean | { certFile: string; keyFile: string; token: string };
}

export interface EmbeddedNatsServer extends EmbeddedBroker {
  /** `nats-server --version`, e.g. "v2.9.10". */
  version: string;
  storeDir: string;
}

/** Absolute path of nats-server, or throws NatsServerMissingError. */
export function findNatsServer(path = process.env.PATH ?? "", fallbacks: readonly string[] = ["/usr/sbin", "/usr/local/sbin"]): string {
  const dirs = [...path.split(delimiter).filter((d) => d !== ""), ...fallbacks];
  const searched = [...new Set(dirs)];
  for (const d of searched) {
    const candidate = join(d, "nats-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new NatsServerMissingError(searched);
}

export function natsServerVersion(binary: string): string {
  try {
    const out = execFileSync(binary, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return /v\d+\.\d+\.\d+\S*/.exec(out)?.[0] ?? out.trim();
  } catch {
    return "unknown";
  }
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<EmbeddedNatsServer> {
  const binary = findNatsServer(options.path);
  const version = natsServerVersion(binary);
  const timeoutMs = options.timeoutMs ?? 20_000;
  const storeDir = mkdtempSync(join(tmpdir(), "ratatoskr-nats-"));
  const args = ["-a", "127.0.0.1", "-p", "-1", "-js", "-sd", storeDir];
  let cert: GeneratedCertificate | undefined;
  let token: string | undefined;
  if (options.tls) {
    const given = typeof options.tls === "object" ? options.tls : undefined;
    if (!given) cert = await generateSelfSigned("ratatoskr-nats-tls-");
    token = given?.token ?? randomBytes(16).toString("hex");
    const files = given ?? cert!;
    const conf = join(storeDir, "nats-server.conf");
    writeFileSync(conf, `tls {\n  cert_file: ${JSON.stringify(files.certFile)}\n  key_file: ${JSON.stringify(files.keyFile)}\n}\nauthorization {\n  token: ${JSON.stringify(token)}\n}\n`, { mode: 0o600 });
    args.push("-c", conf);
  }
  const cleanupDir = (): void => {
    rmSync(storeDir, { recursive: true, force: true });
    cert?.remove();
  };
  let current: SpawnedNats;
  try {
    current = await spawnNats(binary, args, timeoutMs);
  } catch (err) {
    cleanupDir();
    throw err;
  }
  const ended: ProcessLog[] = [];
  // The process faults (docs/faults.md, "Process faults"): the same command line, so the same
  // JetStream store directory and a new free port (`-p -1`; the fault proxy is retargeted to it).
  const control: ProcessControl = {
    name: "nats-server",
    pid: () => (exited(current.child) ? undefined : current.child.pid),
    address: () => `127.0.0.1:${current.port}`,
    kill: async () => {
      await signalAndWait(current.child, "SIGKILL");
      ended.push({ pid: current.child.pid!, log: current.log() });
    },
    terminate: async () => {
      await stopChild(current.child);
      ended.push({ pid: current.child.pid!, log: current.log() });
    },
    start: async () => {
      if (!exited(current.child)) throw new Error(`nats-server pid ${current.child.pid} is still running`);
      current = await spawnNats(binary, args, Math.max(timeoutMs, 60_000));
      return `127.0.0.1:${current.port}`;
    },
    pause: () => stopOrContinue(current.child, "SIGSTOP", "nats-server"),
    resume: () => stopOrContinue(current.child, "SIGCONT", "nats-server"),
  };

  return {
    address: `127.0.0.1:${current.port}`,
    pid: current.child.pid!,
    args: [binary, ...args],
    dataDir: storeDir,
    storeDir,
    version,
    ...(cert ? { tls: { caFile: cert.certFile, serverName: "localhost" } } : {}),
    ...(token !== undefined ? { token } : {}),
    control,
    endedProcesses: () => [...ended],
    stop: () => {
      signal(current.child, "SIGCONT");
      return stopChild(current.child).finally(cleanupDir);
    },
  };
}

interface SpawnedNats {
  child: ChildProcess;
  port: number;
  log(): string;
}

const LOG_TAIL_CHARS = 64 * 1024;

async function spawnNats(binary: string, args: string[], timeoutMs: number): Promise<SpawnedNats> {
  // Its own process group, as the embedded broker (broker-process.ts): Ctrl-C reaches the generator only.
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let log = "";

  const port = await new Promise<number>((resolve, reject) => {
    let listening: number | undefined;
    let buffered = "";
    const timer = setTimeout(() => fail(`no "Server is ready" line within ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new BrokerUnreachableError("embedded nats-server", `${why}${log ? `; log: ${log.slice(-4000).trim()}` : ""}`));
    };
    child.on("exit", (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
    child.on("error", (err) => fail(err.message));
    child.stderr!.on("data", function onData(d: Buffer) {
      const text = d.toString("utf8");
      log = (log + text).slice(-LOG_TAIL_CHARS);
      buffered += text;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const m = /Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(line);
        if (m) listening = Number(m[1]);
        if (line.includes("Server is ready") && listening !== undefined) {
          clearTimeout(timer);
          child.removeAllListeners("exit");
          child.stderr!.off("data", onData);
          // Keep draining its log so a full pipe never blocks the server.
          child.stderr!.on("data", (more: Buffer) => (log = (log + more.toString("utf8")).slice(-LOG_TAIL_CHARS)));
          resolve(listening);
          return;
        }
      }
    });
  });
  return { child, port, log: () => log };
}


/** nats-server as the embedded server of the nats and jetstream drivers. */
export const natsServer: EmbeddedServerSpec = {
  name: "nats-server",
  start: (scenario) => startNatsServer({ tls: scenario.tls === true }),
  version: () => {
    try {
      return natsServerVersion(findNatsServer());
    } catch {
      return "not installed";
    }
  },
};
