import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runSuite, type SuiteManifest } from "./run.js";
import type { Row } from "./compare.js";
import { suiteTitle, writeSuiteComparison } from "./render.js";

// The one command end to end: a set of two runs (each a `ratatoskr bench` child process), then
// the side-by-side comparison. The fake driver keeps it fast; the NATS drivers have their own
// end-to-end tests through `bench`.
describe("bench-suite", () => {
  it("runs every entry of a set as its own bench process and renders them side by side", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rt-suite-run-"));
    writeFileSync(join(dir, "tiny.yaml"), "name: tiny\ntopics: 2\nsubscriptions: {perTopic: 2}\nproducers: 1\nmessages: 2000\nbatchSize: 50\nslo: {deliveredRatioMin: 1}\n");
    writeFileSync(
      join(dir, "set.yaml"),
      "name: t\nnotes: [disclosed]\nruns:\n  - scenario: tiny.yaml\n    drivers: [fake]\n  - scenario: tiny.yaml\n    drivers: [fake]\n    label: fake-small\n    set: [messages=1000]\n" +
        "targets:\n  - {name: small vs big, scenario: tiny, metric: deliveryRate, subject: fake-small, peers: [fake], min: 0.000001}\n",
    );
    const out = join(dir, "out");
    const lines: string[] = [];
    const code = await runSuite({ set: join(dir, "set.yaml"), out, keepHlog: false, quiet: true }, (s) => lines.push(s));
    expect(code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, "suite.json"), "utf8")) as SuiteManifest;
    expect(manifest.runs.map((r) => [r.dir, r.exitCode])).toEqual([[join("tiny", "fake"), 0], [join("tiny", "fake-small"), 0]]);
    expect(manifest.runs[1]!.command).toBe("ratatoskr bench scenarios/tiny.yaml --driver fake --set messages=1000");
    expect(existsSync(join(out, "scenarios", "tiny.yaml"))).toBe(true);
    expect(readdirSync(join(out, "tiny", "fake")).filter((f) => f.endsWith(".hlog"))).toEqual([]);

    const { files, view } = writeSuiteComparison(out);
    expect(files.map((f) => f.slice(out.length + 1))).toEqual(["compare.md", "compare.html"]);
    expect(view.rows.map((r) => [r.label, r.deliveredPct])).toEqual([["fake", 100], ["fake-small", 100]]);
    const md = readFileSync(join(out, "compare.md"), "utf8");
    expect(md).toContain("- disclosed");
    // The title names only what ran (the fake is no peer), and the promise of each run is listed.
    expect(md.startsWith("# t: ratatoskr\n")).toBe(true);
    expect(md).toContain("## What each run promises");
    const promise = "| memory | in-process: at once | memory of this process | none | none (the fake delivers each message once unless told to duplicate) | 1 | send order per publisher, unless told to reorder |  |";
    expect(md).toContain(`| fake ${promise}`);
    expect(md).toContain(`| fake-small ${promise}`);
    expect(md).toMatch(/\| fake-small \| memory \| [\d.K]+ \| [\d.K]+ \|/);
    expect(md).toMatch(/\| small vs big \| fake-small: [\d.K]+\/s \| fake: [\d.K]+\/s \| [\d.]+× \| ≥ 0\.000001 \| met( \(fake(-small)? was generator-bound(; fake(-small)? was generator-bound)?\))? \|/);
    expect(readFileSync(join(out, "compare.html"), "utf8")).toMatch(/<svg[\s\S]*<\/svg>/);
  }, 120_000);

  it("titles the comparison with the peer drivers that ran, in their order", () => {
    const rows = ["ratatoskr", "nats", "ratatoskr-v1", "rabbitmq", "nats", "mqtt"].map((driver) => ({ driver }) as Row);
    expect(suiteTitle("published", rows)).toBe("published: ratatoskr side by side with nats, rabbitmq and mqtt");
    expect(suiteTitle("p", rows.slice(0, 2))).toBe("p: ratatoskr side by side with nats");
  });

  it("with --repeat, runs the whole set pass after pass and compares each run's median pass", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rt-suite-repeat-"));
    writeFileSync(join(dir, "tiny.yaml"), "name: tiny\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 500\nbatchSize: 50\n");
    writeFileSync(join(dir, "set.yaml"), "name: t\nruns:\n  - scenario: tiny.yaml\n    drivers: [fake]\n  - scenario: tiny.yaml\n    drivers: [fake]\n    label: other\n");
    const out = join(dir, "out");
    const code = await runSuite({ set: join(dir, "set.yaml"), out, keepHlog: false, quiet: true, repeat: 3 }, () => undefined);
    expect(code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, "suite.json"), "utf8")) as SuiteManifest;
    // Interleaved: every run of pass 1, then pass 2, then pass 3.
    expect(manifest.runs.map((r) => [r.label, r.pass])).toEqual([["fake", 1], ["other", 1], ["fake", 2], ["other", 2], ["fake", 3], ["other", 3]]);
    expect(manifest.runs[2]!.dir).toBe(join("tiny", "fake", "pass-2"));
    const { view } = writeSuiteComparison(out);
    expect(view.rows.map((r) => [r.label, r.passes?.count])).toEqual([["fake", 3], ["other", 3]]);
    const md = readFileSync(join(out, "compare.md"), "utf8");
    expect(md).toMatch(/- fake: median of 3 passes \(deliveries\/s [\d.K]+\/s – [\d.K]+\/s\)/);
    expect(md).toContain("| tiny × other (pass 3) | 0 |");
  }, 120_000);
});
