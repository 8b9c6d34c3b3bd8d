import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { faultedResult } from "../../test/support/index.js";
import { parseScenario } from "../run/index.js";
import { writeSuiteComparison } from "./render.js";
import type { SuiteManifest } from "./run.js";

// bench-suite on a fault scenario: two brokers' results of one kill scenario (synthetic faulted
// results of the fake driver, labelled as the suite would), read back from a suite directory.
describe("bench-suite comparison of a fault scenario", () => {
  it("puts each run's fault figures and durability promise side by side", async () => {
    const s = parseScenario("name: kill-test\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 400\nbatchSize: 20\nslo: {lostMax: 0}\n", "kill-test.yaml");
    // "durable" recovers 0.4 s after the kill; "slow" runs at half rate afterwards and never recovers.
    const durable = await faultedResult(s);
    const slow = await faultedResult(s, { perBucket: (t) => (t >= 10 && t < 13 ? 0 : t >= 13 ? 50 : 100) });
    const out = mkdtempSync(join(tmpdir(), "rt-suite-faults-"));
    const runs = [
      { label: "durable", r: durable },
      { label: "slow", r: slow },
    ];
    for (const { label, r } of runs) {
      mkdirSync(join(out, "kill-test", label), { recursive: true });
      writeFileSync(join(out, "kill-test", label, "result.json"), JSON.stringify(r));
    }
    writeFileSync(join(out, "set.yaml"), "name: faults\nruns:\n  - scenario: kill-test.yaml\n    drivers: [fake]\n    label: durable\n  - scenario: kill-test.yaml\n    drivers: [fake]\n    label: slow\n");
    const manifest: SuiteManifest = {
      kind: "ratatoskr-bench-suite",
      set: "set.yaml",
      setFile: "set.yaml",
      command: "ratatoskr bench-suite set.yaml --out x",
      startedAt: durable.run.startedAt,
      finishedAt: slow.run.startedAt,
      versions: {},
      runs: runs.map(({ label }) => ({ scenario: "kill-test", scenarioFile: "kill-test.yaml", set: [], pass: 1, label, driver: "fake", dir: join("kill-test", label), exitCode: 0, seconds: 1, command: "ratatoskr bench scenarios/kill-test.yaml --driver fake" })),
    };
    writeFileSync(join(out, "suite.json"), JSON.stringify(manifest));

    const { view } = writeSuiteComparison(out);
    expect(view.rows.map((r) => [r.label, r.faults?.worstUnavailableSeconds, r.faults?.worstRecoverySeconds, r.faults?.notRecovered])).toEqual([
      ["durable", 2.5, 0.4, 0],
      ["slow", 3, null, 1],
    ]);
    const md = readFileSync(join(out, "compare.md"), "utf8");
    expect(md).toContain("### kill-test: faults");
    expect(md).toContain("| run | storage | what it promises | faults | worst unavailable | worst recovery | lost | duplicates | worst e2e p99 in a fault | e2e p99 outside faults |");
    expect(md).toMatch(/\| durable \| memory \| in-process: at once; none \| 1 \| 2\.50 s \| 0\.40 s \| 0 \| 0 \| 10\.0\ds \| 2\.0\dms \|/);
    expect(md).toMatch(/\| slow \| memory \| [^|]+ \| 1 \| 3\.00 s \| not recovered \(1 of 1\) \| 0 \| 0 \|/);
    const html = readFileSync(join(out, "compare.html"), "utf8");
    expect(html).toContain("<h3>kill-test: faults</h3>");
    expect(html).toContain("not recovered (1 of 1)");
  });
});
