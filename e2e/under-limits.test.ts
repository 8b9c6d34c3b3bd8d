// Under limits: the broker container gets 1 CPU (pinned to one core) and 1 GiB of memory.
// The CI smoke scenario runs against it through `ratatoskr bench --target` and must pass its
// SLO gates; then a publish flood past the broker's memory budget is refused with
// RESOURCE_EXHAUSTED, and the container is not OOM-killed and keeps serving.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, healthCheck, uniqueName, v1Api, v1Client, v2Api, v2Client, type V2Api } from "../test/support/index.js";
import { containerState, dockerContainer, startBrokerContainer, type BrokerContainer } from "./support/broker-container.js";
import { requireDockerAndImage } from "./support/docker-engine.js";

await requireDockerAndImage();

const GiB = 1024 * 1024 * 1024;
// No RATATOSKR_MEMORY_BUDGET_BYTES: the default budget must follow the container's limit
// (a quarter of it), so a broker with default settings refuses instead of being OOM-killed.
const MEMORY_BUDGET_BYTES = GiB / 4;
const REPO = join(import.meta.dirname, "..");

let broker: BrokerContainer;
let api: V2Api;
let reportDir: string;

beforeAll(async () => {
  reportDir = mkdtempSync(join(tmpdir(), "ratatoskr-e2e-bench-"));
  broker = await startBrokerContainer({
    quota: { cpu: 1, memory: 1 },
    cpuset: "1",
  });
  api = v2Api(v2Client(broker.address));
});

afterAll(async () => {
  await broker?.container.stop();
  if (reportDir) rmSync(reportDir, { recursive: true, force: true });
});

function bench(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "cli/main.ts", "bench", ...args],
      { cwd: REPO, maxBuffer: 64 * 1024 * 1024, timeout: 150_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}\n${stderr}` }),
    );
  });
}

describe("under limits (1 CPU pinned, 1 GiB)", () => {
  it("runs with the limits applied: 1 CPU, pinned to core 1, 1 GiB", async () => {
    const info = await (await dockerContainer(broker.id)).inspect();
    expect(info.HostConfig.NanoCpus).toBe(1e9);
    expect(info.HostConfig.CpusetCpus).toBe("1");
    expect(info.HostConfig.Memory).toBe(GiB);
    const inside = await broker.container.exec(["node", "-e", "console.log(require('os').availableParallelism())"]);
    expect(inside.output.trim()).toBe("1");
  });

  it("passes the CI smoke scenario's SLO gates through ratatoskr bench --target", async () => {
    const run = await bench(["scenarios/ci-smoke.yaml", "--target", broker.address, "--out", reportDir, "--quiet"]);
    expect(run.code, run.output.slice(-4_000)).toBe(0);
    expect((await containerState(broker.id)).OOMKilled).toBe(false);
  });

  it("refuses a publish flood past the memory budget with RESOURCE_EXHAUSTED and is not OOM-killed", async () => {
    expect((await api.brokerStats()).memoryBudgetBytes).toBe(BigInt(MEMORY_BUDGET_BYTES));
    const topic = uniqueName("flood");
    await api.createTopic({ name: topic });
    await api.createSubscription({ name: `${topic}-sub`, topic }); // interest retention: nothing is acked, all is kept
    const payload = Buffer.alloc(16 * 1024, 7);
    const batch = Array.from({ length: 64 }, () => ({ payload })); // 1 MiB per request
    let accepted = 0;
    let refusal: ServiceError | undefined;
    while (refusal === undefined) {
      try {
        await api.publish(topic, batch);
        accepted += batch.length * payload.length;
      } catch (err) {
        refusal = err as ServiceError;
      }
      expect(accepted, "accepted more than the budget").toBeLessThanOrEqual(MEMORY_BUDGET_BYTES);
    }
    expect(refusal.code, refusal.message).toBe(status.RESOURCE_EXHAUSTED);
    expect(accepted).toBeGreaterThan(MEMORY_BUDGET_BYTES * 0.8);

    // Refused, not dropped: nothing accepted was discarded, and v1 publishes are refused too.
    const { stats } = await api.getTopic(topic);
    expect(stats!.retainedBytes).toBeGreaterThanOrEqual(BigInt(accepted));
    expect(stats!.discarded).toBe(0n);
    expect(await codeOf(v1Api(v1Client(broker.address)).publish({ topic, payload, metadata: {} }))).toBe(status.RESOURCE_EXHAUSTED);

    const state = await containerState(broker.id);
    expect(state).toMatchObject({ Running: true, OOMKilled: false, RestartCount: 0 });
    const brokerStats = await api.brokerStats();
    expect(brokerStats.rssBytes).toBeLessThan(BigInt(GiB));
    expect(await healthCheck(broker.address)).toBe("SERVING");

    // Freeing the topic frees the budget: publishing works again.
    await api.deleteTopic(topic);
    const again = uniqueName("after-flood");
    await api.createTopic({ name: again });
    expect(await api.publishText(again, ["ok"])).toEqual([1n]);
  });
});
