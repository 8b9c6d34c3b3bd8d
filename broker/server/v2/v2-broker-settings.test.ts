import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startV2TestServer, type V2TestServer } from "../../../test/support/index.js";

// GetBrokerStats states the settings the broker runs with, so a report can be labelled from the
// broker itself rather than from what its caller believes it asked for.
describe("GetBrokerStats states the effective settings", () => {
  const dirs: string[] = [];
  const servers: V2TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function start(config: Parameters<typeof startV2TestServer>[0]): Promise<V2TestServer> {
    const srv = await startV2TestServer(config);
    servers.push(srv);
    return srv;
  }

  function dataDir(): string {
    const d = mkdtempSync(join(tmpdir(), "ratatoskr-settings-"));
    dirs.push(d);
    return d;
  }

  it("memory: fsync false even when asked for, and the memory budget in force", async () => {
    const srv = await start({ fsync: true, memoryBudgetBytes: 123_456, diskBudgetBytes: 789 });
    const stats = await srv.api.brokerStats();
    expect(stats).toMatchObject({ storage: "memory", fsync: false, memoryBudgetBytes: 123_456n, diskBudgetBytes: 789n, budgetBytes: 123_456n });
  });

  it("durable with fsync: fsync true and the disk budget in force", async () => {
    const srv = await start({ dataDir: dataDir(), fsync: true, memoryBudgetBytes: 1000, diskBudgetBytes: 50_000_000 });
    const stats = await srv.api.brokerStats();
    expect(stats).toMatchObject({ storage: "durable", fsync: true, memoryBudgetBytes: 1000n, diskBudgetBytes: 50_000_000n, budgetBytes: 50_000_000n });
  });

  it("durable without fsync: fsync false, an unlimited disk budget is 0", async () => {
    const srv = await start({ dataDir: dataDir(), fsync: false, diskBudgetBytes: 0 });
    const stats = await srv.api.brokerStats();
    expect(stats).toMatchObject({ storage: "durable", fsync: false, diskBudgetBytes: 0n, budgetBytes: 0n });
  });
});
