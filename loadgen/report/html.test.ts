import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { HistogramLogReader } from "hdr-histogram-js";
import { chromium } from "playwright-core";
import { describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { FakeDriver, findDriver } from "../drivers/index.js";
import type { FaultEvent } from "../faults/index.js";
import { buildPlan, parseScenario, runScenario } from "../run/index.js";
import { captureEnvironment } from "./environment.js";
import { readResult, REPORT_FILES, writeReport } from "./files.js";
import { FAULT_BAND_COLOR, faultBandLabel, latencyOverTimeChart, renderHtml, throughputChart } from "./html.js";
import { buildResult } from "./result.js";

const CHROMIUM = "/usr/bin/chromium";

/** A fake run's report; with `faults`, two synthetic fault events (a pause and a cut) inside its measure phase. */
async function fakeReport(faults = false): Promise<string> {
  const s = parseScenario("name: html-test\ntopics: 2\nsubscriptions: {perTopic: 2}\nproducers: 2\nrate: 20000\nmessages: 20000\nwarmupSeconds: 0.3\nslo: {lostMax: 0}\n", "html-test.yaml");
  const plan = buildPlan(s, "h1");
  const outcome = await runScenario(s, plan, new FakeDriver(), { clock: systemClock, intervalMs: 100, sampleBroker: () => new FakeDriver().brokerStats() });
  const measure = outcome.phases.find((p) => p.phase === "measure")!;
  const events: FaultEvent[] = [
    { spec: 0, kind: "pause", occurrence: 0, startSec: measure.startSec + 0.2, endSec: measure.startSec + 0.4, detail: "SIGSTOP pid 1; SIGCONT after 0.2 s" },
    { spec: 1, kind: "cut", occurrence: 0, startSec: measure.startSec + 0.6, endSec: measure.startSec + 0.6, detail: "reset 4 connections" },
  ];
  const result = buildResult(s, plan, faults ? { ...outcome, faults: events } : outcome, {
    runId: "h1",
    driver: "fake",
    environment: captureEnvironment(),
    broker: { embedded: false, target: "in-process", args: [], storage: "memory", fsync: false },
    durability: findDriver("fake").promises?.(s.broker, {}),
  });
  const dir = mkdtempSync(join(tmpdir(), "rt-report-"));
  writeReport(dir, result);
  return dir;
}

describe("report files", () => {
  it("says a run is too short for per-second charts instead of drawing empty frames", async () => {
    const r = readResult(await fakeReport());
    expect(r.series.length).toBeGreaterThanOrEqual(2);
    const full = renderHtml(r);
    expect(full).toContain('id="chart-throughput"');
    expect(full).not.toContain("too short for a per-second chart");
    const short = renderHtml({ ...r, series: r.series.slice(0, 1) });
    expect(short).toContain("too short for a per-second chart (1 point)");
    expect(short).not.toContain('id="chart-throughput"');
    expect(short).not.toContain('id="chart-broker"');
    expect(short).toContain('id="chart-percentiles"'); // the whole-run histogram is still drawn
  });

  it("writes every report file and reads result.json back", async () => {
    const dir = await fakeReport(true);
    for (const f of REPORT_FILES) expect(existsSync(join(dir, f)), f).toBe(true);
    const r = readResult(dir);
    expect(r.counts.lost).toBe(0);
    // result.json carries every field its JSON Schema requires, at the top and one level down.
    const schema = JSON.parse(readFileSync(join(import.meta.dirname, "result.schema.json"), "utf8")) as {
      required: string[];
      properties: Record<string, { required?: string[] }>;
    };
    const record = r as unknown as Record<string, Record<string, unknown>>;
    for (const key of schema.required) expect(record, key).toHaveProperty(key);
    // The optional blocks of a faulted run are all there, so the loop below checks them too.
    for (const key of ["timeline", "faults", "faultFigures", "durability"]) expect(record, key).toHaveProperty(key);
    // Other optional objects (rateSearch, backlog: only their workloads write them) are checked when present.
    for (const [key, sub] of Object.entries(schema.properties)) {
      if (!schema.required.includes(key) && record[key] === undefined) continue;
      for (const k of sub.required ?? []) expect(record[key], `${key}.${k}`).toHaveProperty(k);
    }
    expect(readFileSync(join(dir, "e2e.hgrm"), "utf8")).toMatch(/Percentile/);
    const hlog = readFileSync(join(dir, "e2e.hlog"), "utf8");
    expect(hlog).toMatch(/^#\[Histogram log format version/m);
    // The interval log reads back: one histogram per interval, adding up to the whole-run e2e count.
    const reader = new HistogramLogReader(hlog);
    let intervals = 0;
    let total = 0;
    for (let h = reader.nextIntervalHistogram(); h !== null; h = reader.nextIntervalHistogram()) {
      intervals++;
      total += h.totalCount;
    }
    expect(intervals).toBe(r.intervalHistograms.length);
    expect(total).toBe(r.latency.e2e.count);
    const md = readFileSync(join(dir, "report.md"), "utf8");
    expect(md).toContain("| configuration | messages | topics | subscribers | throughput | deliveries | broker memory |");
    const html = readFileSync(join(dir, "report.html"), "utf8");
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  });

  it("draws each fault window as a shaded band on the throughput and latency timelines, and none without faults", async () => {
    const faulted = readResult(await fakeReport(true));
    const labels = faulted.faults!.map(faultBandLabel);
    expect(labels).toEqual(["pause #1", "cut #1"]);
    const plain = { ...faulted, faults: undefined };
    for (const chart of [throughputChart, latencyOverTimeChart]) {
      const svg = chart(faulted);
      for (const l of labels) expect(svg, chart.name).toContain(`>${l}<`);
      // The bands' fill: echarts writes the colour as rgb + fill-opacity.
      expect(svg, chart.name).toMatch(/fill="rgb\(214,39,40\)"[^>]*fill-opacity="0.18"/);
      const none = chart(plain);
      for (const l of labels) expect(none, chart.name).not.toContain(`>${l}<`);
      expect(none, chart.name).not.toMatch(/fill="rgb\(214,39,40\)"/);
    }
    expect(FAULT_BAND_COLOR).toContain("0.18");
    // And the faults table among the page's tables.
    const page = renderHtml(faulted);
    expect(page).toContain("<h2>Faults</h2>");
    expect(page).toMatch(/<td>pause #1<\/td><td>[\d.]+ s<\/td><td>0\.20 s<\/td>/);
    expect(renderHtml({ ...plain, faultFigures: undefined })).not.toContain("<h2>Faults</h2>");
  });

  it("shows its four charts in headless chromium with no console errors", async () => {
    // A missing browser fails this test, never skips it (`npm test` installs chromium as root).
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (scripts/test-deps.sh does it as root)`);
    const dir = await fakeReport(true); // with fault bands on the timelines
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") problems.push(m.text());
      });
      page.on("pageerror", (e) => problems.push(e.message));
      page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
      await page.goto(pathToFileURL(join(dir, "report.html")).href);
      const charts = await page.$$eval("figure.chart", (figs) =>
        figs.map((f) => {
          const svg = f.querySelector("svg");
          const box = svg?.getBoundingClientRect();
          return {
            id: f.id,
            width: box?.width ?? 0,
            height: box?.height ?? 0,
            paths: svg ? svg.querySelectorAll("path").length : 0,
            text: svg?.textContent ?? "",
          };
        }),
      );
      expect(charts.map((c) => c.id)).toEqual(["chart-throughput", "chart-latency-over-time", "chart-percentiles", "chart-broker"]);
      for (const c of charts) {
        expect(c.width, c.id).toBeGreaterThan(500);
        expect(c.height, c.id).toBeGreaterThan(200);
        expect(c.paths, c.id).toBeGreaterThan(3);
      }
      expect(charts[2]!.text).toContain("99%");
      expect(await page.title()).toMatch(/html-test: PASS/);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
