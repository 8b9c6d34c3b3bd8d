import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkStartAt, DRIVER_NAMES, START_AT_MAX_FUTURE_MS, START_AT_MAX_PAST_MS, UsageError } from "../loadgen/index.js";
import { parseXml, xmlFind } from "../test/support/index.js";

// The documented exit codes (docs/loadgen.md, "Exit codes"), through the real CLI as a child
// process: 0 gates held, 1 a gate failed, 2 anything to fix first, 130 interrupted.

const repo = join(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "rt-exit-"));
const live = new Set<number>();
afterAll(() => {
  for (const pid of live) process.kill(pid, "SIGKILL");
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ratatoskr ...args`; `onStderr` sees each stderr chunk (e.g. to interrupt at a phase). */
function cli(args: string[], onStderr?: (all: string, pid: number) => void, ownGroup = false): Promise<Run> {
  const proc = spawn(process.execPath, ["--import", "tsx", "cli/main.ts", ...args], { cwd: repo, stdio: ["ignore", "pipe", "pipe"], detached: ownGroup });
  live.add(proc.pid!);
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    onStderr?.(stderr, proc.pid!);
  });
  return new Promise((resolve) =>
    proc.on("close", (code) => {
      live.delete(proc.pid!);
      resolve({ code, stdout, stderr });
    }),
  );
}

function scenario(name: string, body: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `name: ${name}\ndriver: fake\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 1\nbatchSize: 20\n${body}`);
  return file;
}
const passing = scenario("passing", "messages: 200\nslo: {deliveredRatioMin: 1, lostMax: 0}\n");
const failing = scenario("failing", "messages: 200\nslo: {lostMax: 0, e2eP50MaxMs: 0}\n");
const long = scenario("long", "durationSeconds: 600\nrate: 2000\ndrainTimeoutSeconds: 600\nslo: {lostMax: 0}\n");
/** The embedded reference broker (no `driver: fake`): would print "starting embedded" first. */
const embedded = join(dir, "embedded.yaml");
writeFileSync(embedded, "name: embedded\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 10\n");

const oneLine = (r: Run) => r.stderr.trim().split("\n");

describe("ratatoskr exit codes (CLI process)", { timeout: 60_000 }, () => {
  it("0 when every gate held, 1 when one failed; --junit names the failed gate in XML that parses", async () => {
    const ok = await cli(["bench", passing, "--out", join(dir, "ok"), "--quiet"]);
    expect(ok.code).toBe(0);
    const junit = join(dir, "ci", "junit.xml");
    const summary = join(dir, "ci", "summary.md");
    const bad = await cli(["bench", failing, "--out", join(dir, "bad"), "--quiet", "--junit", junit, "--summary-md", summary]);
    expect(bad.code).toBe(1);
    const doc = parseXml(readFileSync(junit, "utf8"));
    const failed = xmlFind(doc, "testcase").filter((c) => xmlFind(c, "failure").length > 0);
    expect(failed.map((c) => c.attributes["name"])).toEqual(["e2e p50 <= 0 ms"]);
    expect(readFileSync(summary, "utf8")).toMatch(/^### failing \(fake\): FAIL$/m);
    expect(readFileSync(summary, "utf8")).toMatch(/\| e2e p50 \| <= 0 ms \| [\d.]+ ms \| \*\*FAIL\*\*/);
  });

  it.each([
    [["bench", "x.yaml", "--bogus"], "ratatoskr bench: unknown argument: bogus (see ratatoskr bench --help)"],
    [["bench"], "ratatoskr bench: missing the scenario file: ratatoskr bench <scenario.yaml> (see ratatoskr bench --help)"],
    [["bench", "x.yaml", "--driver", "kafka"], `ratatoskr bench: invalid values: Argument: driver, Given: "kafka", Choices: ${DRIVER_NAMES.map((n) => JSON.stringify(n)).join(", ")} (see ratatoskr bench --help)`],
    [["bench-suite"], "ratatoskr bench-suite: not enough non-option arguments: got 0, need at least 1 (see ratatoskr bench-suite --help)"],
    [["report", "merge", "a.json"], "ratatoskr report merge: missing required argument: out (see ratatoskr report merge --help)"],
    [["report", "render"], "ratatoskr report render: not enough non-option arguments: got 0, need at least 1 (see ratatoskr report render --help)"],
    [["broker", "--bogus"], "ratatoskr broker: unknown argument: bogus (see ratatoskr broker --help)"],
    [["calibrate"], "ratatoskr calibrate: not enough non-option arguments: got 0, need at least 1 (see ratatoskr calibrate --help)"],
    [[], "ratatoskr: name a command: broker, bench, bench-suite, calibrate or report (see ratatoskr --help)"],
  ])("2 with one line for the usage error of %j", async (args, line) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(oneLine(r)).toEqual([line]);
  });

  it("2 for a bad scenario, a bad --start-at and an unreadable report", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "name: bad\ndriver: fake\ntopics: 0\nmessages: 10\n");
    const r = await cli(["bench", bad, "--out", join(dir, "bad-scenario")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ratatoskr bench: invalid scenario .*bad\.yaml:\n {2}at topics: /);
    for (const startAt of ["abc", String(Date.now() + 3 * 24 * 3600 * 1000)]) {
      const s = await cli(["bench", passing, "--start-at", startAt, "--out", join(dir, "start-at")]);
      expect(s.code, startAt).toBe(2);
      expect(oneLine(s)[0]).toMatch(/^ratatoskr bench: --start-at /);
    }
    expect(existsSync(join(dir, "start-at"))).toBe(false);
    const missing = await cli(["report", "render", join(dir, "nowhere")]);
    expect(missing.code).toBe(2);
    expect(oneLine(missing)).toEqual([expect.stringMatching(/^ratatoskr report render: cannot read .*nowhere\/result\.json: /)]);
  });

  it("2 for an --out that cannot be written, before the embedded broker is started", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "");
    for (const [out, why] of [
      [join(file, "report"), "a file is in the way (not a directory)"],
      ["/proc/self/ratatoskr-report", "/proc is a kernel pseudo filesystem, not a place for reports"],
      ["/sys/kernel/ratatoskr", "/sys is a kernel pseudo filesystem, not a place for reports"],
    ] as const) {
      const r = await cli(["bench", embedded, "--out", out]);
      expect(r.code, out).toBe(2);
      // The one line is the refusal: no "starting embedded ratatoskr" progress line came first.
      expect(oneLine(r)).toEqual([`ratatoskr bench: cannot write ${out}: ${why}`]);
    }
  });

  it("2 for a --junit file or bench-suite --out that cannot be written, before any run", async () => {
    const junit = await cli(["bench", embedded, "--out", join(dir, "unused"), "--junit", "/proc/junit.xml"]);
    expect(junit.code).toBe(2);
    expect(oneLine(junit)).toEqual(["ratatoskr bench: cannot write /proc/junit.xml: /proc is a kernel pseudo filesystem, not a place for reports"]);
    const suite = await cli(["bench-suite", "no-such-set.yaml", "--out", "/proc/suite"]);
    expect(suite.code).toBe(2);
    expect(oneLine(suite)).toEqual(["ratatoskr bench-suite: cannot write /proc/suite: /proc is a kernel pseudo filesystem, not a place for reports"]);
  });

  it("130 on Ctrl-C during the measure phase, with the report written and marked interrupted", async () => {
    const out = join(dir, "interrupted");
    const junit = join(dir, "interrupted.xml");
    let sent = false;
    const r = await cli(["bench", long, "--out", out, "--junit", junit], (all, pid) => {
      // The first progress line of the measure phase: producers are publishing.
      if (!sent && /^\[measure /m.test(all)) {
        sent = true;
        process.kill(pid, "SIGINT");
      }
    });
    expect(r.code).toBe(130);
    expect(r.stderr).toContain("ratatoskr bench: SIGINT: stopping producers");
    expect(r.stdout).toContain(`INTERRUPTED: partial report in ${out}/`);
    const result = JSON.parse(readFileSync(join(out, "result.json"), "utf8")) as { run: { interrupted: boolean }; passed: boolean; counts: { lost: number; measuredPublished: number } };
    expect(result.run.interrupted).toBe(true);
    expect(result.passed).toBe(false);
    expect(result.counts.lost).toBe(0);
    expect(result.counts.measuredPublished).toBeGreaterThan(0);
    expect(readFileSync(join(out, "report.md"), "utf8").split("\n")[0]).toMatch(/^\*\*INTERRUPTED\*\*/);
    expect(xmlFind(parseXml(readFileSync(junit, "utf8")), "error").map((e) => e.attributes["type"])).toEqual(["interrupted"]);
  });

  it("130 on a terminal's Ctrl-C (SIGINT to the process group) with the embedded broker kept up for the drain", async () => {
    const file = join(dir, "embedded-long.yaml");
    writeFileSync(file, "name: embedded-long\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 1\nbatchSize: 20\ndurationSeconds: 600\nrate: 1000\nslo: {lostMax: 0}\n");
    const out = join(dir, "embedded-interrupted");
    let sent = false;
    const r = await cli(
      ["bench", file, "--out", out],
      (all, pid) => {
        if (!sent && /^\[measure /m.test(all)) {
          sent = true;
          process.kill(-pid, "SIGINT"); // the whole group, as a terminal does
        }
      },
      true,
    );
    expect(r.code).toBe(130);
    const result = JSON.parse(readFileSync(join(out, "result.json"), "utf8")) as { run: { interrupted: boolean }; broker: { embedded: boolean }; counts: { lost: number; streamErrors: number; delivered: number } };
    expect(result.run.interrupted).toBe(true);
    expect(result.broker.embedded).toBe(true);
    expect(result.counts).toMatchObject({ lost: 0, streamErrors: 0 });
    expect(result.counts.delivered).toBeGreaterThan(0);
  });

  it("bench-suite: 130 on Ctrl-C, no further run started, --junit covers the interrupted run", async () => {
    const set = join(dir, "set.yaml");
    writeFileSync(set, "name: s\nruns:\n  - scenario: long.yaml\n    drivers: [fake]\n  - scenario: passing.yaml\n    drivers: [fake]\n");
    const out = join(dir, "suite");
    const junit = join(dir, "suite.xml");
    let sent = false;
    const r = await cli(
      ["bench-suite", set, "--out", out, "--junit", junit],
      (all, pid) => {
        if (!sent && /^\[measure /m.test(all)) {
          sent = true;
          process.kill(-pid, "SIGINT");
        }
      },
      true,
    );
    expect(r.code).toBe(130);
    const manifest = JSON.parse(readFileSync(join(out, "suite.json"), "utf8")) as { runs: { scenario: string; exitCode: number }[] };
    expect(manifest.runs.map((x) => [x.scenario, x.exitCode])).toEqual([["long", 130]]);
    const suites = xmlFind(parseXml(readFileSync(junit, "utf8")), "testsuite");
    expect(suites.map((x) => [x.attributes["name"], x.attributes["errors"]])).toEqual([["long (fake)", "1"]]);
  });

  it("bench --list names the scenarios with their description, and every driver", async () => {
    const r = await cli(["bench", "--list"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}ci-smoke\.yaml +CI correctness check against the embedded broker: /m);
    for (const d of DRIVER_NAMES) expect(r.stdout).toMatch(new RegExp(`^ {2}${d} +\\S`, "m"));
  });

  it("report render refuses to overwrite a report in --out unless --force", async () => {
    const target = join(dir, "rendered");
    mkdirSync(target, { recursive: true });
    expect((await cli(["report", "render", join(dir, "ok"), "--out", target])).code).toBe(0);
    const before = readFileSync(join(target, "report.md"), "utf8");
    const again = await cli(["report", "render", join(dir, "bad"), "--out", target]);
    expect(again.code).toBe(2);
    expect(oneLine(again)).toEqual([`ratatoskr report render: cannot write ${target}: it already holds a report (report.md, report.html, e2e.hgrm, e2e-uncorrected.hgrm, publish.hgrm, lateness.hgrm, e2e.hlog); pass --force to overwrite it`]);
    expect(readFileSync(join(target, "report.md"), "utf8")).toBe(before);
    expect((await cli(["report", "render", join(dir, "bad"), "--out", target, "--force"])).code).toBe(0);
    expect(readFileSync(join(target, "report.md"), "utf8")).toMatch(/^# failing: FAIL/);
  });
});

describe("--start-at bounds", () => {
  const now = 1_800_000_000_000;
  it("takes an integer epoch ms from 1 h before now to 24 h after", () => {
    for (const t of [now, now - START_AT_MAX_PAST_MS, now + START_AT_MAX_FUTURE_MS]) expect(() => checkStartAt(t, now)).not.toThrow();
  });
  it.each([Number.NaN, Infinity, 1.5, 1, now - START_AT_MAX_PAST_MS - 1, now + START_AT_MAX_FUTURE_MS + 1])("refuses %s", (t) => {
    expect(() => checkStartAt(t, now)).toThrow(UsageError);
  });
});
