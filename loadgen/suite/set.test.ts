import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadSet } from "./set.js";

const dir = mkdtempSync(join(tmpdir(), "rt-suite-"));
writeFileSync(join(dir, "s.yaml"), "name: s\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 10\n");
writeFileSync(join(dir, "d.yaml"), "name: d\ntopics: 1\nsubscriptions: {perTopic: 1}\nproducers: 1\nmessages: 10\nbroker: {storage: durable, fsync: true}\n");

function setFile(body: string): string {
  const f = join(dir, `set-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(f, body);
  return f;
}

describe("set files", () => {
  it("expands scenarios × drivers into named runs, with labels and overrides", () => {
    const { runs } = loadSet(setFile("name: x\nruns:\n  - scenario: s.yaml\n    drivers: [ratatoskr, nats]\n  - scenario: d.yaml\n    drivers: [jetstream]\n    label: jetstream-file\n    set: [broker.fsync=false]\n"));
    expect(runs.map((r) => r.dir)).toEqual([join("s", "ratatoskr"), join("s", "nats"), join("d", "jetstream-file")]);
    expect(runs[2]!.scenario.broker).toMatchObject({ storage: "durable", fsync: false });
  });

  it("refuses the whole set before running when a driver cannot honour a scenario", () => {
    const f = setFile("name: x\nruns:\n  - scenario: d.yaml\n    drivers: [ratatoskr, nats, jetstream]\n");
    expect(() => loadSet(f)).toThrow(/d\.yaml × nats: broker\.storage=durable[\s\S]*d\.yaml × jetstream: broker\.fsync=true/);
  });

  it("refuses two runs with the same name and a label on several drivers", () => {
    expect(() => loadSet(setFile("name: x\nruns:\n  - scenario: s.yaml\n    drivers: [nats]\n  - scenario: s.yaml\n    drivers: [nats]\n"))).toThrow(/two runs named/);
    expect(() => loadSet(setFile("name: x\nruns:\n  - scenario: s.yaml\n    drivers: [nats, jetstream]\n    label: both\n"))).toThrow();
  });
});
