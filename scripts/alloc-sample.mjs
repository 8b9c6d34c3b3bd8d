// Sample every allocation a process makes in a time window, collected or not (V8's sampling heap
// profiler with the objects of minor and major GCs kept), so "what allocates" has an answer where
// a heap snapshot shows only what survived. Load it into any node process with --import; a
// `ratatoskr bench` passes its node flags to the embedded broker, so both processes write one:
//   ALLOC_FROM=35000 ALLOC_TO=55000 ALLOC_OUT=/tmp/ult \
//     node --import ./scripts/alloc-sample.mjs dist/cli/main.js bench scenarios/ultimate.yaml --set messages=200000
//   node scripts/heapprofile-top.mjs /tmp/ult.<pid>.heapprofile
// ALLOC_FROM / ALLOC_TO: ms after the process starts; ALLOC_OUT: a path prefix (pid and
// .heapprofile are appended). One sample per 8 KiB allocated on average.
// ALLOC_MINOR=0: leave out what scavenges collected, so the profile holds what survived them (promoted
// to the old space, or still live): the garbage a full collection has to find.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

const session = new Session();
session.connect();
const from = Number(process.env.ALLOC_FROM ?? 30000);
const to = Number(process.env.ALLOC_TO ?? 50000);
const out = `${process.env.ALLOC_OUT ?? "/tmp/alloc"}.${process.pid}.heapprofile`;
setTimeout(() => {
  session.post("HeapProfiler.startSampling", { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.ALLOC_MINOR !== "0" }, () => {});
  setTimeout(() => {
    session.post("HeapProfiler.stopSampling", (err, result) => {
      if (err) return process.stderr.write(`alloc-sample: ${err.message}\n`);
      writeFileSync(out, JSON.stringify(result.profile));
      process.stderr.write(`alloc-sample: ${out}\n`);
    });
  }, to - from).unref();
}, from).unref();
