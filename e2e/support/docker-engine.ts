// Talks to the Docker engine's API over its unix socket with node:http (no CLI, no TCP), for
// the checks that must run before testcontainers is asked for anything: is an engine there,
// and are the locally built images present (a missing image would be pulled, which fails here).
import { request } from "node:http";

/** The image every suite runs; built by scripts/build-images.sh. */
export const BROKER_IMAGE = process.env["RATATOSKR_BROKER_IMAGE"] ?? "ratatoskr-broker:local";

export const HOW_TO_START_DOCKER =
  "start one with `sudo bash scripts/ci-e2e-setup.sh` (installs docker.io if needed, starts dockerd --bridge=none --iptables=false, builds the images), see docs/testing.md, 'End-to-end tests'";

/** The engine's socket: DOCKER_HOST when it names a unix socket, else the default. */
export function dockerSocketPath(): string {
  const host = process.env["DOCKER_HOST"];
  if (host?.startsWith("unix://")) return host.slice("unix://".length);
  return "/var/run/docker.sock";
}

function get(path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: dockerSocketPath(), path, method: "GET", timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** Null when an engine answers /_ping, else a one-line reason. */
export async function dockerUnreachableReason(timeoutMs = 2_000): Promise<string | null> {
  const socket = dockerSocketPath();
  try {
    const res = await get("/_ping", timeoutMs);
    return res.status === 200 ? null : `Docker engine at ${socket} answered /_ping with HTTP ${res.status}`;
  } catch (err) {
    return `No Docker engine reachable at ${socket} (${(err as Error).message})`;
  }
}

/** Whether the engine has `image` (name:tag) locally. */
export async function imageExists(image: string): Promise<boolean> {
  const res = await get(`/images/${encodeURIComponent(image)}/json`, 5_000);
  return res.status === 200;
}

/** When the image was created, in ms since the epoch. */
export async function imageCreatedMs(image: string): Promise<number> {
  const res = await get(`/images/${encodeURIComponent(image)}/json`, 5_000);
  return Date.parse((JSON.parse(res.body) as { Created: string }).Created);
}

/**
 * Throws one readable line when the engine or the broker image is missing. Every suite awaits
 * this at load time, so a run without Docker fails at once instead of passing silently.
 */
export async function requireDockerAndImage(): Promise<void> {
  const reason = await dockerUnreachableReason();
  if (reason !== null) throw new Error(`${reason}: ${HOW_TO_START_DOCKER}`);
  if (!(await imageExists(BROKER_IMAGE))) {
    throw new Error(`Docker image ${BROKER_IMAGE} is missing: build it with \`bash scripts/build-images.sh\` (never pulled: no registry here)`);
  }
}
