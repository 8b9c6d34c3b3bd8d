// scripts/shard-local.sh: the Kubernetes/Compose shard flow as plain processes (docs/deploy.md,
// "Shards and the merge"): one broker, two `bench --shard i/2` processes with one run id and one
// start time, one `report merge` of the directory they wrote. The merged counts are the sums of
// the shards', and both shards start producing at the agreed instant.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { readResult } from "../../loadgen/index.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "rt-shard-local-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("scripts/shard-local.sh", () => {
  it("runs two shards against one broker and merges them into their sum", async () => {
    const scenario = join(dir, "tiny.yaml");
    writeFileSync(
      scenario,
      "name: shard-local\ntopics: 4\nsubscriptions: {perTopic: 2}\nproducers: 2\nmessages: 2000\nrate: 2000\nbatchSize: 50\nwarmupSeconds: 0\ndrainTimeoutSeconds: 20\nworkers: 1\nslo: {lostMax: 0, deliveredRatioMin: 1}\n",
    );
    const reports = join(dir, "reports");
    const { stdout } = await run("bash", ["scripts/shard-local.sh", scenario, reports, "2"], { env: { ...process.env, RATATOSKR_RUN_ID: "shard-local-test" } });
    expect(stdout).toContain("shard-local: shard 0 exited 0");
    expect(stdout).toContain("shard-local: shard 1 exited 0");
    const shards = [0, 1].map((i) => readResult(join(reports, "shards", `shard-${i}`)));
    const merged = readResult(join(reports, "merged"));
    expect(merged.run.shardsMerged).toBe(2);
    expect(merged.passed).toBe(true);
    for (const key of ["published", "expected", "delivered", "lost", "duplicates", "topics", "subscriptions"] as const) {
      expect(merged.counts[key], key).toBe(shards[0]!.counts[key] + shards[1]!.counts[key]);
    }
    expect(merged.counts.delivered).toBe(2000 * 2);
    expect(shards.map((s) => s.run.id)).toEqual(["shard-local-test", "shard-local-test"]);
    // The broker it started is gone once the script has exited: its port refuses connections.
    const address = /broker (127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
    expect(address).toBeDefined();
    const [host, port] = address!.split(":");
    const refused = await new Promise<boolean>((resolve) => {
      const sock = connect(Number(port), host!);
      sock.once("connect", () => (sock.destroy(), resolve(false)));
      sock.once("error", () => resolve(true));
    });
    expect(refused).toBe(true);
  }, 180_000);
});
