// The broker image under test, started the house way: host networking (all traffic on
// 127.0.0.1), a free port chosen here and passed by RATATOSKR_PORT, readiness from the broker's
// "listening" log line, never withExposedPorts (host mode has no port mappings).
import { randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { GenericContainer, getContainerRuntimeClient, Wait, type StartedTestContainer } from "testcontainers";
import { BROKER_IMAGE } from "./docker-engine.js";

/** testcontainers 11 has no cpuset option; `hostConfig` is protected, so a subclass sets it. */
export class HostNetContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    this.withNetworkMode("host");
  }

  /** Pins the container to these CPUs (cpuset syntax, e.g. "1"). */
  withCpuset(cpus: string): this {
    this.hostConfig.CpusetCpus = cpus;
    return this;
  }

  /** Mounts a named Docker volume (created on first use, outlives the container). */
  withNamedVolume(name: string, target: string): this {
    return this.withBindMounts([{ source: name, target, mode: "rw" }]);
  }
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
      .once("error", reject)
      .listen(0, "127.0.0.1", () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
  });
}

export interface BrokerContainerOptions {
  /** Defaults to a free port. */
  port?: number;
  /** RATATOSKR_* settings (RATATOSKR_HOST and RATATOSKR_PORT are set here). */
  env?: Record<string, string>;
  /** A named volume mounted at /data (set RATATOSKR_DATA_DIR=/data to use it). */
  volume?: string;
  /** Host directories bind-mounted read-only (certificates, token files), e.g. { "/certs": dir }. */
  readOnlyMounts?: Record<string, string>;
  /** CPU count (fractions allowed) and memory in GiB. */
  quota?: { cpu?: number; memory?: number };
  cpuset?: string;
  /** Docker health check interval for the image's HEALTHCHECK (default: the image's 10 s). */
  healthIntervalMs?: number;
  startupTimeoutMs?: number;
}

/** A started broker container and what the tests need to reach and inspect it. */
export interface BrokerContainer {
  container: StartedTestContainer;
  id: string;
  port: number;
  /** "127.0.0.1:<port>" */
  address: string;
  /** ms from start() to the "listening" line having been seen. */
  startMs: number;
}

const LISTENING = /"msg":"listening"/;

export async function startBrokerContainer(options: BrokerContainerOptions = {}): Promise<BrokerContainer> {
  const port = options.port ?? (await freePort());
  const c = new HostNetContainer(BROKER_IMAGE)
    // Log level info at least: readiness is the "listening" line.
    .withEnvironment({ ...options.env, RATATOSKR_LOG_LEVEL: "info", RATATOSKR_HOST: "127.0.0.1", RATATOSKR_PORT: String(port) })
    .withWaitStrategy(Wait.forLogMessage(LISTENING))
    .withStartupTimeout(options.startupTimeoutMs ?? 30_000);
  if (options.volume !== undefined) c.withNamedVolume(options.volume, "/data");
  if (options.readOnlyMounts !== undefined) {
    c.withBindMounts(Object.entries(options.readOnlyMounts).map(([target, source]) => ({ source, target, mode: "ro" as const })));
  }
  if (options.quota !== undefined) c.withResourcesQuota(options.quota);
  if (options.cpuset !== undefined) c.withCpuset(options.cpuset);
  if (options.healthIntervalMs !== undefined) {
    c.withHealthCheck({ test: ["CMD", "node", "/app/healthcheck.mjs"], interval: options.healthIntervalMs, timeout: 3_000, retries: 3 });
  }
  // A label of our own, so a container whose start failed (testcontainers stops it but leaves it
  // behind) can be found and removed by this call, and by nothing else.
  const startId = randomUUID();
  c.withLabels({ "ratatoskr.e2e.start": startId });
  const t0 = performance.now();
  let container: StartedTestContainer;
  try {
    container = await c.start();
  } catch (err) {
    await removeByStartLabel(startId);
    throw err;
  }
  return { container, id: container.getId(), port, address: `127.0.0.1:${port}`, startMs: Math.round(performance.now() - t0) };
}

async function removeByStartLabel(startId: string): Promise<void> {
  const client = await getContainerRuntimeClient();
  const found = await client.container.dockerode.listContainers({ all: true, filters: { label: [`ratatoskr.e2e.start=${startId}`] } });
  for (const info of found) await client.container.dockerode.getContainer(info.Id).remove({ force: true, v: true }).catch(() => undefined);
}

/** The dockerode handle of a container (kill with a signal, inspect, snapshot logs). */
export async function dockerContainer(id: string) {
  const client = await getContainerRuntimeClient();
  return client.container.getById(id);
}

/** Docker's view of the container's state. */
export async function containerState(id: string): Promise<{ Status: string; Running: boolean; ExitCode: number; OOMKilled: boolean; RestartCount: number; Health?: { Status: string } }> {
  const info = await (await dockerContainer(id)).inspect();
  return { ...info.State, RestartCount: info.RestartCount } as never;
}

/** The container's stdout+stderr so far (a snapshot; testcontainers' logs() follows). */
export async function containerLogs(id: string): Promise<string> {
  const buf = (await (await dockerContainer(id)).logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  return demux(buf);
}

/** Strips Docker's 8-byte stream headers from a non-TTY log buffer. */
function demux(buf: Buffer): string {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  return Buffer.concat(out).toString("utf8");
}

/** The broker's JSON log lines (non-JSON lines skipped). */
export async function brokerLogLines(id: string): Promise<Array<Record<string, unknown>>> {
  return (await containerLogs(id))
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** Sends SIGKILL (no grace: a crash). The container stays until stop()/remove. */
export async function killContainer(id: string): Promise<void> {
  await (await dockerContainer(id)).kill({ signal: "SIGKILL" });
}

/** Removes a container (stopped or not) and its anonymous volumes. */
export async function removeContainer(id: string): Promise<void> {
  await (await dockerContainer(id)).remove({ force: true, v: true });
}

/** Stops (no grace) and removes each container, then removes the named volume; for afterAll. */
export async function cleanUp(containers: BrokerContainer[], volume?: string): Promise<void> {
  for (const b of containers) {
    await b.container.stop().catch(() => undefined);
    await removeContainer(b.id).catch(() => undefined); // stop() after stop({ remove: false }) may leave it
  }
  if (volume !== undefined) await removeVolume(volume);
}

/** Removes a named volume (named volumes outlive stop({ removeVolumes: true })). */
export async function removeVolume(name: string): Promise<void> {
  const client = await getContainerRuntimeClient();
  try {
    await client.container.dockerode.getVolume(name).remove({ force: true });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err; // never created: nothing to remove
  }
}
