import { describe, expect, it } from "vitest";
import { parseXml, xmlFind } from "../../test/support/index.js";
import { systemClock } from "../clock.js";
import { FakeDriver } from "../drivers/index.js";
import { buildPlan, parseScenario, runScenario } from "../run/index.js";
import { captureEnvironment } from "./environment.js";
import { renderJUnit, renderSummaryMarkdown, xmlEscape } from "./junit.js";
import { buildResult, judge, type RunResult } from "./result.js";

const env = captureEnvironment();

async function run(slo: string): Promise<RunResult> {
  const scenario = parseScenario(`name: junit-test\ntopics: 2\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 200\nbatchSize: 20\n${slo}`, "junit.yaml");
  const plan = buildPlan(scenario, "j1", { index: 0, count: 1 });
  const outcome = await runScenario(scenario, plan, new FakeDriver(), { clock: systemClock, intervalMs: 200 });
  const r = buildResult(scenario, plan, outcome, { runId: "j1", driver: "fake", environment: env, broker: { embedded: false, target: "in-process", args: [], storage: "memory", fsync: false } });
  outcome.recorder.destroy();
  return r;
}

describe("JUnit report of the gates", () => {
  it("names a failing gate with its limit, actual and the failure sentence, in XML that parses", async () => {
    const r = await run("slo: {lostMax: 0, e2eP50MaxMs: 0}\n");
    const doc = parseXml(renderJUnit([r]));
    expect(doc.name).toBe("testsuites");
    expect(doc.attributes).toMatchObject({ tests: "2", failures: "1", errors: "0" });
    const cases = xmlFind(doc, "testcase");
    expect(cases.map((c) => c.attributes["name"])).toEqual(["lost <= 0 messages", "e2e p50 <= 0 ms"]);
    expect(xmlFind(cases[0]!, "failure")).toEqual([]);
    const [failure] = xmlFind(cases[1]!, "failure");
    expect(failure!.attributes["message"]).toMatch(/^e2e p50 .* fails <= 0 ms \(off by /);
    expect(failure!.text).toContain("limit: <= 0 ms");
    expect(failure!.text).toMatch(/actual: [\d.]+ ms/);
  });

  it("writes a suite with zero testcases for a run without gates", async () => {
    const doc = parseXml(renderJUnit([await run("")]));
    expect(doc.attributes).toMatchObject({ tests: "0", failures: "0", errors: "0" });
    expect(xmlFind(doc, "testsuite")).toHaveLength(1);
    expect(xmlFind(doc, "testcase")).toEqual([]);
  });

  it("marks every gate of an interrupted run as an error, never as passed", async () => {
    const r = await run("slo: {lostMax: 1000}\n");
    const interrupted = judge({ ...r, run: { ...r.run, interrupted: true } });
    expect(interrupted.passed).toBe(false);
    const doc = parseXml(renderJUnit([interrupted]));
    expect(doc.attributes).toMatchObject({ tests: "1", failures: "0", errors: "1" });
    const [error] = xmlFind(doc, "error");
    expect(error!.attributes["type"]).toBe("interrupted");
    expect(renderSummaryMarkdown([interrupted])).toContain(": INTERRUPTED");
  });

  it("escapes markup in names and drops characters XML cannot carry", async () => {
    expect(xmlEscape(`a<b>&"c'\u0001`)).toBe("a&lt;b&gt;&amp;&quot;c&apos;");
    const plain = await run("slo: {lostMax: 0}\n");
    const r = { ...plain, run: { ...plain.run, scenario: "x<&>y" } };
    const doc = parseXml(renderJUnit([r], "suite <&>", [{ name: "z & <w>", message: 'exit 2: "bad"' }]));
    expect(xmlFind(doc, "testsuite").map((s) => s.attributes["name"])).toEqual(["x<&>y (fake)", "z & <w>"]);
    expect(doc.attributes["name"]).toBe("suite <&>");
    expect(doc.attributes).toMatchObject({ tests: "2", errors: "1" });
  });
});
