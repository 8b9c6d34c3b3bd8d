// What the metrics endpoint's per-event observations cost (broker/server/metrics.ts): a publish
// histogram observation (performance.now() pair + Histogram.observe with a label) and a delivery
// lag observation (clock read + observe), per call, against the no-metrics observer. A quick
// check for the hot-path claim in docs/operations.md, "Metrics"; the figures depend on the machine.
//   npx tsx scripts/metrics-observe-cost.ts [iterations]
import { performance } from "node:perf_hooks";
import { BrokerMetrics, createBrokerCore, MemoryStore, NO_METRICS, type BrokerObserver } from "../broker/index.js";

const n = Number(process.argv[2] ?? 2_000_000);
const core = createBrokerCore({ store: new MemoryStore() });
const metrics = new BrokerMetrics(core, { version: "bench" });

function run(label: string, observer: BrokerObserver): void {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const started = observer.publishStart();
    observer.publishDone("v2", started);
  }
  const t1 = performance.now();
  const publishedAt = Date.now();
  for (let i = 0; i < n; i++) observer.delivered(publishedAt);
  const t2 = performance.now();
  console.log(`${label.padEnd(12)} publish observation ${(((t1 - t0) * 1e6) / n).toFixed(0)} ns/call, delivery observation ${(((t2 - t1) * 1e6) / n).toFixed(0)} ns/frame`);
}

for (let round = 0; round < 2; round++) {
  run("no metrics", NO_METRICS);
  run("prom-client", metrics);
}
await core.close();
