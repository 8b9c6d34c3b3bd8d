// Derives broker.cost and the generator-bound verdict (whose broker CPU share reads the same
// samples) of committed results again from their own broker CPU samples, with today's definition
// (docs/loadgen.md, "Broker cost per message"), then judges the gates again; where anything
// changed it writes result.json back and re-renders the report.md and report.html beside it. For
// results written before a fix of that definition: 86893bb stopped reading a dip of a few ms
// between two sample sources as a broker restart, which had added the whole process's CPU again.
//   npx tsx scripts/rederive-broker-cost.ts <dir>...    (every result.json under each dir)
// Prints one line per result: the old and new CPU-µs per delivery and any verdict or gate that
// changed. Re-render a suite's comparison afterwards with `bench-suite <set> --out <dir> --render-only`.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { brokerCost, judge, renderHtml, renderMarkdown, withVerdict, type RunResult } from "../loadgen/report/index.js";

function resultFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...resultFiles(p));
    else if (name === "result.json") out.push(p);
  }
  return out;
}

const dirs = process.argv.slice(2);
if (dirs.length === 0) throw new Error("usage: npx tsx scripts/rederive-broker-cost.ts <dir>...");
for (const file of dirs.flatMap(resultFiles).sort()) {
  const r = JSON.parse(readFileSync(file, "utf8")) as RunResult;
  if (r.broker.cost === undefined) continue; // written before the figure: it is derived on reading
  const cost = brokerCost(r.broker.samples, r.run.phases, { deliveries: r.latency.e2e.count, published: r.counts.measuredPublished });
  const next = judge(withVerdict({ ...r, broker: { ...r.broker, cost } }));
  const changes: string[] = [];
  if (r.generatorBound?.bound !== next.generatorBound?.bound) changes.push(`generator-bound ${r.generatorBound?.bound} -> ${next.generatorBound?.bound}`);
  const failed = (x: RunResult) => x.gates.filter((g) => !g.passed).map((g) => g.name).join(", ") || "none";
  if (failed(r) !== failed(next)) changes.push(`failed gates ${failed(r)} -> ${failed(next)}`);
  const changed = JSON.stringify(next) !== JSON.stringify(r);
  if (changed) {
    writeFileSync(file, `${JSON.stringify(next, null, 1)}\n`);
    const dir = dirname(file);
    if (existsSync(join(dir, "report.md"))) writeFileSync(join(dir, "report.md"), renderMarkdown(next));
    if (existsSync(join(dir, "report.html"))) writeFileSync(join(dir, "report.html"), renderHtml(next));
  }
  process.stdout.write(`${file}: CPU-µs per delivery ${r.broker.cost?.cpuUsPerDelivery ?? null} -> ${cost?.cpuUsPerDelivery ?? null}${changes.length ? `; ${changes.join("; ")}` : ""}${changed ? "" : " (unchanged)"}\n`);
}
