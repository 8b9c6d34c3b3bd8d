import { mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ScenarioError, UsageError } from "../errors.js";
import { loadSet } from "../suite/index.js";
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
    expect(s).toMatchObject({ rate: "unthrottled", batchSize: 100, messageSizeBytes: 128, broker: { storage: "memory", fsync: false }, driver: "ratatoskr", driverOptions: {} });
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
    // A fixed rate on a rate: max scenario drops its search: block (the confirmation run of a found rate).
    const max = `${base.replace("messages: 100\n", "")}rate: max\nsearch: {stepSeconds: 5}\n`;
    const fixed = parseScenario(max, "max.yaml", ["rate=125000", "durationSeconds=30"]);
    expect(fixed.rate).toBe(125000);
    expect(fixed.search).toBeUndefined();
    expect(parseScenario(max, "max.yaml", ["rate=max"]).search).toMatchObject({ stepSeconds: 5 });
  });

  it("rejects duplicate keys", () => {
    expect(issuesOf(`${base}topics: 5\n`)[0]!.expected).toBe("valid YAML");
  });

  it("accepts every scenario shipped in scenarios/ and scenarios/published/, and the published set", () => {
    const root = join(import.meta.dirname, "..", "..", "scenarios");
    const dirs = [root, ...readdirSync(root).map((d) => join(root, d)).filter((d) => statSync(d).isDirectory())];
    const files = dirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith(".yaml") && f !== "set.yaml").map((f) => join(d, f)));
    expect(files.length).toBeGreaterThanOrEqual(15);
    for (const f of files) expect(loadScenario(f).name).toBe(f.slice(f.lastIndexOf("/") + 1).replace(/\.yaml$/, ""));
    expect(loadSet(join(root, "published", "set.yaml")).runs.length).toBeGreaterThanOrEqual(15);
    expect(loadSet(join(root, "faults", "set.yaml")).runs.map((r) => r.label)).toEqual(["ratatoskr-fsync", "ratatoskr-nofsync", "jetstream-file", "ratatoskr-fsync", "ratatoskr-nofsync", "jetstream-file"]);
  });

  it("refuses a top-level field that moved into driverOptions, naming where it went", () => {
    const moved = { path: "v2Publish", expected: "no top-level v2Publish: it moved to driverOptions.ratatoskr.publish (write it there)", got: '"unary"' };
    expect(issuesOf(`${base}v2Publish: unary\n`)).toEqual([moved]);
    expect(issuesOf(base, ["v2Publish=unary"])).toEqual([moved]);
    // Reported together with the scenario's other problems, not instead of them.
    expect(issuesOf(`${base}v2Publish: unary\nbatchSize: 0\n`).map((i) => i.path)).toEqual(["v2Publish", "batchSize"]);
    expect(parseScenario(`${base}driverOptions: {ratatoskr: {publish: unary}}\n`, "ok.yaml").driverOptions).toEqual({ ratatoskr: { publish: "unary" } });
    expect(parseScenario(base, "ok.yaml", ["driverOptions.ratatoskr.publish=unary"]).driverOptions).toEqual({ ratatoskr: { publish: "unary" } });
  });

  it("validates a driver's options block with that driver's schema", () => {
    expect(issuesOf(`${base}driverOptions: {ratatoskr: {publish: pigeon}}\n`)).toEqual([{ path: "driverOptions.ratatoskr.publish", expected: 'one of "stream" | "unary"', got: '"pigeon"' }]);
    expect(issuesOf(`${base}driverOptions: {nats: {publish: unary}}\n`)).toEqual([{ path: "driverOptions.nats.publish", expected: "a known field (this one is unknown)", got: '"unary"' }]);
  });

  it("reads a scenario file from disk", () => {
    const dir = mkdtempSync(join(tmpdir(), "scn-"));
    const file = join(dir, "x.yaml");
    writeFileSync(file, base);
    expect(loadScenario(file).topics).toBe(4);
  });
});
