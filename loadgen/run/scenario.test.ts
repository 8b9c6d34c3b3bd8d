import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ScenarioError, UsageError } from "../errors.js";
import { loadScenario, parseScenario, totalSubscriptions } from "./scenario.js";

const base = "name: t\ntopics: 4\nsubscriptions: {perTopic: 2}\nproducers: 2\nmessages: 100\n";

function issuesOf(text: string, overrides: string[] = []) {
  try {
    parseScenario(text, "bad.yaml", overrides);
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return (err as ScenarioError).issues;
  }
  throw new Error("expected a ScenarioError");
}

describe("scenario validation", () => {
  it("fills defaults for a minimal scenario", () => {
    const s = parseScenario(base, "ok.yaml");
    expect(s).toMatchObject({ rate: "unthrottled", batchSize: 100, messageSizeBytes: 128, broker: { storage: "memory", fsync: false } });
    expect(totalSubscriptions(s)).toBe(8);
  });

  it("rejects unknown fields, naming the path", () => {
    expect(issuesOf(`${base}brokr: {storage: memory}\n`)).toEqual([{ path: "brokr", expected: "a known field (this one is unknown)", got: "a mapping" }]);
    expect(issuesOf(`${base}slo: {lossMax: 0}\n`)[0]).toMatchObject({ path: "slo.lossMax" });
  });

  it("says what was expected and what was found", () => {
    expect(issuesOf(base.replace("topics: 4", "topics: four"))).toEqual([{ path: "topics", expected: "number", got: '"four"' }]);
    expect(issuesOf(`${base}messageSizeBytes: 8\n`)).toEqual([{ path: "messageSizeBytes", expected: "a value >= 40", got: "number 8" }]);
    expect(issuesOf(`${base}broker: {storage: disk}\n`)).toEqual([{ path: "broker.storage", expected: 'one of "memory" | "durable"', got: '"disk"' }]);
  });

  it("explains the alternatives of a union", () => {
    const [issue] = issuesOf(`${base}rate: fast\n`);
    expect(issue).toMatchObject({ path: "rate", got: '"fast"' });
    expect(issue!.expected).toContain('"unthrottled"');
    expect(issue!.expected).toContain("number");
  });

  it("requires exactly one of messages and durationSeconds", () => {
    expect(issuesOf(base.replace("messages: 100\n", ""))[0]).toMatchObject({ path: "messages", expected: "exactly one of messages / durationSeconds" });
    expect(issuesOf(`${base}durationSeconds: 5\n`)[0]).toMatchObject({ path: "messages" });
  });

  it("names the file in the error message", () => {
    expect(() => parseScenario("topics: [", "scenarios/broken.yaml")).toThrow(/invalid scenario scenarios\/broken\.yaml/);
    expect(() => loadScenario("/nonexistent/x.yaml")).toThrow(ScenarioError);
  });

  it("applies --set overrides before validation, switching exclusive forms", () => {
    const s = parseScenario(base, "ok.yaml", ["rate=2500", "broker.storage=durable", "durationSeconds=3", "subscriptions.total=3"]);
    expect(s.rate).toBe(2500);
    expect(s.broker.storage).toBe("durable");
    expect(s.messages).toBeUndefined();
    expect(s.durationSeconds).toBe(3);
    expect(s.subscriptions).toEqual({ total: 3 });
    expect(issuesOf(base, ["rate=-1"])[0]).toMatchObject({ path: "rate" });
    expect(() => parseScenario(base, "ok.yaml", ["rate"])).toThrow(UsageError);
  });

  it("rejects duplicate keys", () => {
    expect(issuesOf(`${base}topics: 5\n`)[0]!.expected).toBe("valid YAML");
  });

  it("accepts every scenario shipped in scenarios/", () => {
    const dir = join(import.meta.dirname, "..", "..", "scenarios");
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThanOrEqual(9);
    for (const f of files) expect(loadScenario(join(dir, f)).name).toBe(f.replace(/\.yaml$/, ""));
  });

  it("reads a scenario file from disk", () => {
    const dir = mkdtempSync(join(tmpdir(), "scn-"));
    const file = join(dir, "x.yaml");
    writeFileSync(file, base);
    expect(loadScenario(file).topics).toBe(4);
  });
});
