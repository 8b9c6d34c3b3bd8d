// The local multi-container run (docs/deploy.md, "Compose"): scripts/compose-run.sh starts the
// broker image and two generator containers with host networking from
// deploy/compose/compose.yaml, runs scenarios/sharded/sharded-smoke.yaml sharded 0/2 and 1/2 with one run
// id and start time, and merges the shards in a third container. The merged report must equal
// the sum of its shards (counts and histograms), deliver everything, and leave no container or
// network behind.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as hdr from "hdr-histogram-js";
import { afterAll, describe, expect, it } from "vitest";
import { readResult, type RunResult } from "../loadgen/index.js";
import { uniqueName } from "../test/support/index.js";
import { requireDockerAndImage } from "./support/docker-engine.js";

await requireDockerAndImage();

const run = promisify(execFile);
const reports = mkdtempSync(join(tmpdir(), "ratatoskr-compose-"));
const runId = uniqueName("compose");

afterAll(() => rmSync(reports, { recursive: true, force: true }));

async function docker(...args: string[]): Promise<string[]> {
  const { stdout } = await run("docker", args);
  return stdout.split("\n").filter((l) => l.trim() !== "");
}

/** A result's histogram, decoded: total count and the values the report prints. */
function histogramFigures(encoded: string[]) {
  const h = hdr.build({ bitBucketSize: 64, numberOfSignificantValueDigits: 3 });
  for (const e of encoded) h.add(hdr.decodeFromCompressedBase64(e, 32, false));
  return { count: h.totalCount, min: h.minNonZeroValue, max: h.maxValue, p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99) };
}

describe("Compose: one scenario sharded over two generator containers", () => {
  it("runs both shards against the broker container and merges them into one report that is their sum", async () => {
    const networksBefore = await docker("network", "ls", "--quiet");
    // compose-run.sh exits non-zero (with the compose output) if a shard or the merge fails.
    const { stdout } = await run("bash", ["scripts/compose-run.sh", "scenarios/sharded/sharded-smoke.yaml", reports], {
      env: { ...process.env, RATATOSKR_RUN_ID: runId },
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toContain("compose-run: shard-0 exited 0");
    expect(stdout).toContain("compose-run: shard-1 exited 0");

    const shards: RunResult[] = [0, 1].map((i) => readResult(join(reports, "shards", `shard-${i}`)));
    const merged = readResult(join(reports, "merged"));
    expect(shards.map((s) => s.run.shard)).toEqual([
      { index: 0, count: 2 },
      { index: 1, count: 2 },
    ]);
    expect(shards.map((s) => s.run.id)).toEqual([runId, runId]);
    expect(merged.run.shardsMerged).toBe(2);
    expect(merged.passed).toBe(true);

    // Counts: the merged figure is the sum of the shards' (topics are split, never shared).
    const summed = ["published", "measuredPublished", "expected", "delivered", "lost", "duplicates", "outOfOrder", "topics", "subscriptions", "producers"] as const;
    for (const key of summed) expect(merged.counts[key], key).toBe(shards[0]!.counts[key] + shards[1]!.counts[key]);
    expect(merged.counts.topics).toBe(8);
    expect(merged.counts.delivered).toBe(merged.counts.expected);
    expect(merged.counts.lost).toBe(0);

    // Histograms: the merged one is the two shards' added together, sample for sample.
    for (const key of ["e2e", "e2eUncorrected", "publish", "lateness"] as const) {
      expect(histogramFigures([merged.histograms[key]]), key).toEqual(histogramFigures(shards.map((s) => s.histograms[key])));
    }
    expect(histogramFigures([merged.histograms.e2e]).count).toBeGreaterThan(0);

    // Broker figures came from the broker container's /metrics, the same broker for both shards.
    expect(merged.broker.resourceSource).toMatch(/^metrics http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(merged.broker.peakRssBytes).toBeGreaterThan(0);

    // Host networking only: no compose network was created, and nothing is left running.
    expect(await docker("network", "ls", "--quiet")).toEqual(networksBefore);
    expect(await docker("ps", "--all", "--quiet", "--filter", `label=com.docker.compose.project=${runId}`)).toEqual([]);
  }, 240_000);
});
