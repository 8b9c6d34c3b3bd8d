#!/usr/bin/env node
// Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by package/file,
// so "where does the time go" has an answer in a closing note or a report.
// Usage: node scripts/cpuprofile-top.mjs <file.cpuprofile> [top=25] [fromSec toSec]
// (fromSec/toSec: only samples in that window of the profile, seconds from its start)
import { readFileSync } from "node:fs";

const [file, topArg, fromArg, toArg] = process.argv.slice(2);
if (!file) {
  console.error("usage: node scripts/cpuprofile-top.mjs <file.cpuprofile> [top]");
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map();
const dt = profile.timeDeltas;
const fromUs = fromArg === undefined ? -Infinity : Number(fromArg) * 1e6;
const toUs = toArg === undefined ? Infinity : Number(toArg) * 1e6;
let atUs = 0;
for (let i = 0; i < profile.samples.length; i++) {
  atUs += dt[i] ?? 0;
  if (atUs < fromUs || atUs > toUs) continue;
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (dt[i] ?? 0));
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const shortUrl = (url) => {
  if (!url) return "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length);
  const m = url.match(/\/(broker|loadgen|cli|proto|dist)\/.*/);
  return m ? m[0].slice(1) : url.replace(/^file:\/\//, "");
};
const area = (url) => {
  if (!url) return "(native/gc/idle)";
  if (url.startsWith("node:")) return url.split("/")[0];
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const m = url.match(/\/(?:dist\/)?(broker\/[a-z]+|loadgen(?:\/[a-z]+(?=\/))?|cli|proto)\//);
  return m ? m[1] : "other";
};

const fn = new Map();
const areas = new Map();
for (const [id, us] of selfUs) {
  const { callFrame: c } = byId.get(id);
  const name = c.functionName || "(anonymous)";
  const key = name.startsWith("(") ? name : `${name}  ${shortUrl(c.url)}:${c.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + us);
  const a = name === "(idle)" ? "(idle)" : name === "(garbage collector)" ? "(garbage collector)" : name === "(program)" ? "(program)" : area(c.url);
  areas.set(a, (areas.get(a) ?? 0) + us);
}
if (process.env.PER_SECOND) {
  // Busy share of each second of the profile, to find an episode worth a closer look.
  const idleIds = new Set(profile.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
  const busyPerSec = [];
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += dt[i] ?? 0;
    const sec = Math.floor(t / 1e6);
    if (!idleIds.has(profile.samples[i])) busyPerSec[sec] = (busyPerSec[sec] ?? 0) + (dt[i] ?? 0);
  }
  console.log("busy % per second: " + Array.from(busyPerSec, (us, i) => `${i}:${Math.round((us ?? 0) / 1e4)}`).join(" "));
}
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
const busy = total - (areas.get("(idle)") ?? 0);
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy`);
console.log("\nby area (self time)");
for (const [k, us] of [...areas].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${pct(us)}  ${k}`);
console.log("\nby function (self time)");
for (const [k, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${k}`);
