/**
 * What the embedded peer servers that cannot bind port 0 themselves (redis-server, mosquitto)
 * share: finding the binary (one line naming the Debian package when it is missing), a free
 * loopback port, starting the server in its own process group with its log kept in a file of its
 * temporary directory, readiness by a log line and then a real client round trip (no sleeps),
 * a retry on the rare port race. They stop by PID with process-signals.ts stopChild.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, appendFileSync, constants, copyFileSync, existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { basename, delimiter, join } from "node:path";
import { BrokerUnreachableError } from "../errors.js";

/** Raised when a peer server's binary is not installed: one line naming the package. */
export class PeerServerMissingError extends BrokerUnreachableError {
  constructor(binary: string, debianPackage: string, searched: string[]) {
    super(
      `embedded ${binary}`,
      `${binary} was not found on PATH (looked in ${searched.join(", ")}); install it with \`apt-get install -y ${debianPackage}\` (Debian package ${debianPackage}), or pass --target host:port of a running server`,
    );
  }
}

/** Absolute path of `binary` on `path` or in the fallback folders, or throws PeerServerMissingError. */
export function findPeerBinary(binary: string, debianPackage: string, path = process.env.PATH ?? "", fallbacks: readonly string[] = ["/usr/sbin", "/usr/local/sbin", "/usr/bin"]): string {
  const searched = [...new Set([...path.split(delimiter).filter((d) => d !== ""), ...fallbacks])];
  for (const d of searched) {
    const candidate = join(d, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new PeerServerMissingError(binary, debianPackage, searched);
}

/** A port that was free on 127.0.0.1 a moment ago (the server may still lose a race for it: see startPeerServer). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
      .once("error", reject)
      .listen(0, "127.0.0.1", () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
  });
}

export interface PeerServerSpec {
  /** Name for errors, e.g. "redis-server". */
  name: string;
  binary: string;
  /** Arguments for a given port. */
  args: (port: number) => string[];
  /** The log file the server's stdout and stderr are appended to. */
  logFile: string;
  /** A log line that says the server listens (its port is then confirmed by `ready`). */
  readyLine: RegExp;
  /** A log line that says the port was taken (another try with a new port). */
  portTakenLine: RegExp;
  /** A real client round trip against 127.0.0.1:port; rejects if the server does not answer. */
  ready: (port: number) => Promise<void>;
  timeoutMs: number;
  /** Removes the temporary directory (on a failed start and after stop). */
  cleanup: () => void;
}

export interface StartedPeer {
  child: ChildProcess;
  port: number;
  args: string[];
  /** The last few KB of the log (for error messages). */
  tail: () => string;
}

const PORT_TRIES = 4;

export async function startPeerServer(spec: PeerServerSpec): Promise<StartedPeer> {
  let lastWhy = "";
  for (let attempt = 0; attempt < PORT_TRIES; attempt++) {
    const port = await freeLoopbackPort();
    const args = spec.args(port);
    const outcome = await startOnce(spec, port, args);
    if ("child" in outcome) return outcome;
    lastWhy = outcome.why;
    if (!outcome.portTaken) break;
  }
  spec.cleanup();
  throw new BrokerUnreachableError(`embedded ${spec.name}`, lastWhy);
}

async function startOnce(spec: PeerServerSpec, port: number, args: string[]): Promise<StartedPeer | { why: string; portTaken: boolean }> {
  // Its own process group, as the embedded broker (broker-process.ts): Ctrl-C reaches the generator only.
  const child = spawn(spec.binary, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  let tail = "";
  let buffered = "";
  let sawReady = false;
  let portTaken = false;
  let onLine: (() => void) | undefined;
  const take = (d: Buffer): void => {
    const text = d.toString("utf8");
    appendFileSync(spec.logFile, text);
    tail = (tail + text).slice(-4000);
    buffered += text;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (spec.readyLine.test(line)) sawReady = true;
      if (spec.portTakenLine.test(line)) portTaken = true;
    }
    onLine?.();
  };
  // Both pipes are drained for the server's whole life, so a full pipe never blocks it.
  child.stdout!.on("data", take);
  child.stderr!.on("data", take);
  const result = await new Promise<true | string>((resolve) => {
    const timer = setTimeout(() => finish(`no ready line (${spec.readyLine.source}) within ${spec.timeoutMs} ms`), spec.timeoutMs);
    let done = false;
    const finish = (outcome: true | string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      onLine = undefined;
      child.removeListener("exit", onExit);
      resolve(outcome);
    };
    const onExit = (code: number | null, signal: string | null): void => finish(`exited early (code ${code}, signal ${signal})`);
    child.on("exit", onExit);
    child.on("error", (err) => finish(err.message));
    onLine = () => {
      if (!sawReady) return;
      onLine = undefined;
      // The line says it listens; a real client round trip says it answers on this port.
      spec.ready(port).then(
        () => finish(true),
        (err: unknown) => finish(`logged ready but a client could not talk to 127.0.0.1:${port}: ${err instanceof Error ? err.message : String(err)}`),
      );
    };
  });
  if (result === true) return { child, port, args, tail: () => tail };
  child.kill("SIGKILL");
  return { why: `${result}${tail ? `; log: ${tail.trim()}` : ""}`, portTaken };
}

/** Copies a server log into `dir` (the report folder) under its own name; the path, or undefined when there is no log. */
export function keepLogIn(logFile: string, dir: string): string | undefined {
  if (!existsSync(logFile)) return undefined;
  mkdirSync(dir, { recursive: true });
  const to = join(dir, basename(logFile));
  copyFileSync(logFile, to);
  return to;
}
