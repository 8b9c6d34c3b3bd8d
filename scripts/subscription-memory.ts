// Memory per subscription and per consumer stream, on both sides (docs/performance.md,
// "Memory per subscription"). Starts the built reference broker (`node dist/cli/main.js broker`,
// memory store) as a child process and, in this process, the load generator's own ratatoskr
// driver (the code `ratatoskr bench` runs). Three states are measured on each side:
//
//   topics      the topics created, nothing else
//   subscribed  + S subscriptions (CreateSubscription)
//   streaming   + S Consume streams open (one per subscription, over --connections channels)
//
// Each state is measured after a full GC by a heap snapshot: the live heap, by constructor. The
// per-subscription figure is (subscribed − topics) / S and the per-stream figure is
// (streaming − subscribed) / S; the constructors that grew most are printed, which is where a
// subscription's and a stream's bytes go. A heap snapshot costs memory itself (and this process
// parses them), so RSS is read only with `--rss`, which takes no snapshot: RSS a second after
// each state settles (the broker's without a forced GC, so it includes garbage not yet collected).
//
//   npm run build && node --import tsx scripts/subscription-memory.ts [--rss]
// (the build is what both sides measure: the broker runs dist/cli/main.js, the generator dist/loadgen)
//   options: --subscriptions 10000 --topics 1000 --connections 16 --max-outstanding 500 --top 15
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { writeHeapSnapshot } from "node:v8";
import { credentials } from "@grpc/grpc-js";
import { BrokerClient, type BrokerStats } from "../proto/gen/ratatoskr/v2/broker.js";
import type { Consumer, DeliverySink } from "../loadgen/index.js";

// The generator side is the built code `ratatoskr bench` runs (dist/), not the sources through
// tsx: tsx's esbuild names every function with Object.defineProperty, which gives each closure a
// 256-byte property dictionary the build does not have (2 KB per stream of the driver's closures,
// counted in the generator's figures before 2026-12-03).
const built = new URL("../dist/loadgen/index.js", import.meta.url).href;
const { createDriver, procSample, systemClock } = (await import(built)) as typeof import("../loadgen/index.js");

const { values } = parseArgs({
  options: {
    subscriptions: { type: "string", default: "10000" },
    topics: { type: "string", default: "1000" },
    connections: { type: "string", default: "16" },
    "max-outstanding": { type: "string", default: "500" },
    top: { type: "string", default: "15" },
    rss: { type: "boolean", default: false },
  },
});
const SUBSCRIPTIONS = Number(values.subscriptions);
const TOPICS = Number(values.topics);
const TOP = Number(values.top);
const MiB = 1024 * 1024;
const entry = join(import.meta.dirname, "..", "dist", "cli", "main.js");

/** Live heap by constructor name, from a heap snapshot (taken after a full GC). */
type HeapByName = Map<string, { bytes: number; count: number }>;

function readSnapshot(file: string): { total: number; byName: HeapByName } {
  const snap = JSON.parse(readFileSync(file, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const types: string[] = snap.snapshot.meta.node_types[0];
  const byName: HeapByName = new Map();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const size = snap.nodes[i + sizeAt]!;
    total += size;
    const type = types[snap.nodes[i + typeAt]!];
    // Objects by constructor; strings, code, arrays and the rest by their kind.
    const name = type === "object" || type === "closure" ? `${snap.strings[snap.nodes[i + nameAt]!]}${type === "closure" ? " (closure)" : ""}` : `(${type})`;
    const sum = byName.get(name) ?? { bytes: 0, count: 0 };
    sum.bytes += size;
    sum.count += 1;
    byName.set(name, sum);
  }
  return { total, byName };
}


interface State {
  heap: number;
  rss: number;
  byName: HeapByName;
}

const dir = mkdtempSync(join(tmpdir(), "ratatoskr-submem-"));
// The broker writes a heap snapshot into its working directory on SIGUSR2 (after a full GC).
const broker = spawn(process.execPath, ["--heapsnapshot-signal=SIGUSR2", entry, "broker", "--host", "127.0.0.1", "--port", "0", "--log-level", "warn"], {
  cwd: dir,
  stdio: ["ignore", "pipe", "inherit"],
});
const brokerPid = broker.pid!;

const settle = () => new Promise((r) => setTimeout(r, 1000));

async function brokerState(): Promise<State> {
  if (values.rss) {
    await settle();
    return { heap: NaN, rss: procSample(brokerPid)?.rssBytes ?? NaN, byName: new Map() };
  }
  const rss = procSample(brokerPid)?.rssBytes ?? NaN;
  const before = new Set(readdirSync(dir));
  process.kill(brokerPid, "SIGUSR2");
  let file: string | undefined;
  // The snapshot is written by the broker's main thread; wait for the file to appear and stop growing.
  for (let last = -1; ; ) {
    await new Promise((r) => setTimeout(r, 500));
    file ??= readdirSync(dir).find((f) => f.endsWith(".heapsnapshot") && !before.has(f));
    if (!file) continue;
    const size = readFileSync(join(dir, file)).length;
    if (size === last && size > 0) break;
    last = size;
  }
  const { total, byName } = readSnapshot(join(dir, file));
  rmSync(join(dir, file));
  return { heap: total, rss, byName };
}

function generatorState(): State {
  if (values.rss) return { heap: NaN, rss: process.memoryUsage().rss, byName: new Map() };
  const file = join(dir, `generator-${Date.now()}.heapsnapshot`);
  writeHeapSnapshot(file);
  const { total, byName } = readSnapshot(file);
  rmSync(file);
  return { heap: total, rss: process.memoryUsage().rss, byName };
}

function growth(from: State, to: State): string[] {
  const rows: [string, number, number][] = [];
  for (const [name, b] of to.byName) {
    const a = from.byName.get(name) ?? { bytes: 0, count: 0 };
    rows.push([name, b.bytes - a.bytes, b.count - a.count]);
  }
  rows.sort((x, y) => y[1] - x[1]);
  return rows.slice(0, TOP).map(([name, bytes, count]) => `    ${(bytes / SUBSCRIPTIONS).toFixed(0).padStart(7)} B  ${(count / SUBSCRIPTIONS).toFixed(2).padStart(6)} objects  ${name}`);
}

function report(side: string, topics: State, subscribed: State, streaming: State): void {
  const per = (a: number, b: number) => `${((b - a) / SUBSCRIPTIONS).toFixed(0)} B`;
  const what = values.rss ? "RSS" : "live heap";
  const at = (s: State) => ((values.rss ? s.rss : s.heap) / MiB).toFixed(1);
  const of = (s: State) => (values.rss ? s.rss : s.heap);
  console.log(`\n${side}: ${what} ${at(topics)} → ${at(subscribed)} → ${at(streaming)} MiB (topics → subscribed → streaming)`);
  console.log(`  per subscription: ${what} ${per(of(topics), of(subscribed))}`);
  console.log(`  per stream:       ${what} ${per(of(subscribed), of(streaming))}`);
  if (values.rss) return;
  console.log(`  what a subscription adds (per subscription):`);
  for (const line of growth(topics, subscribed)) console.log(line);
  console.log(`  what a stream adds (per stream):`);
  for (const line of growth(subscribed, streaming)) console.log(line);
}

async function main(): Promise<void> {
  const target = await new Promise<string>((resolve, reject) => {
    let buffered = "";
    broker.stdout!.on("data", (d: Buffer) => {
      buffered += d.toString("utf8");
      const m = /"address":"([^"]+)"/.exec(buffered);
      if (m) resolve(m[1]!);
    });
    broker.on("exit", (code) => reject(new Error(`broker exited early (code ${code})`)));
  });
  const driver = createDriver("ratatoskr", {
    target,
    connections: Number(values.connections),
    maxOutstandingMessages: Number(values["max-outstanding"]),
    connectTimeoutMs: 10_000,
    clock: systemClock,
    broker: { storage: "memory", fsync: false, args: [] },
  });
  await driver.connect();
  const topics = Array.from({ length: TOPICS }, (_, i) => `submem-${i}`);
  await driver.createTopics(topics);
  const specs = Array.from({ length: SUBSCRIPTIONS }, (_, slot) => ({ slot, name: `submem-sub-${slot}`, topic: topics[slot % TOPICS]! }));
  const b0 = await brokerState();
  const g0 = generatorState();
  for (let i = 0; i < specs.length; i += 500) await Promise.all(specs.slice(i, i + 500).map((s) => driver.createSubscription(s)));
  const b1 = await brokerState();
  const g1 = generatorState();
  const sink: DeliverySink = { onDelivery: () => {}, onStreamError: (slot, err) => console.error(`stream ${slot}: ${err.message}`) };
  const consumers: Consumer[] = [];
  const started = performance.now();
  for (let i = 0; i < specs.length; i += 500) consumers.push(...(await Promise.all(specs.slice(i, i + 500).map((s) => driver.openConsumer(s, 0, sink)))));
  // Every stream is registered with the broker before the state is measured.
  const stats = new BrokerClient(target, credentials.createInsecure());
  for (;;) {
    const s = await new Promise<BrokerStats>((resolve, reject) => stats.getBrokerStats({}, (err, r) => (err ? reject(err) : resolve(r))));
    if (s.consumers >= SUBSCRIPTIONS) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  stats.close();
  const openSeconds = (performance.now() - started) / 1000;
  const b2 = await brokerState();
  const g2 = generatorState();
  console.log(`${SUBSCRIPTIONS} subscriptions over ${TOPICS} topics, ${SUBSCRIPTIONS} Consume streams over ${values.connections} connections (opened in ${openSeconds.toFixed(1)} s), maxOutstandingMessages ${values["max-outstanding"]}`);
  report(`broker (pid ${brokerPid}, built)`, b0, b1, b2);
  report("generator (this process, the bench ratatoskr driver)", g0, g1, g2);
  for (const c of consumers) c.close();
  await driver.cleanup([], []);
  await driver.close();
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    broker.kill("SIGTERM");
    broker.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  });
