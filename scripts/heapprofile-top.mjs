#!/usr/bin/env node
// Summarise a sampling heap profile (scripts/alloc-sample.mjs, or a .heapprofile from DevTools):
// bytes allocated by function (file:line) and its caller, largest first.
// Usage: node scripts/heapprofile-top.mjs <file.heapprofile> [top=30]
// Functions inlined by the optimizing compiler are counted under the function they were inlined into.
import { readFileSync } from "node:fs";

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error("usage: node scripts/heapprofile-top.mjs <file.heapprofile> [top]");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8"));
const where = (frame) => `${frame.functionName || "(anonymous)"} ${frame.url.split("/").slice(-2).join("/")}:${frame.lineNumber + 1}`;
const bytes = new Map();
let total = 0;
const walk = (node, caller) => {
  const here = where(node.callFrame);
  if (node.selfSize > 0) {
    total += node.selfSize;
    const key = `${here}  <- ${caller}`;
    bytes.set(key, (bytes.get(key) ?? 0) + node.selfSize);
  }
  for (const child of node.children) walk(child, here);
};
walk(profile.head, "");
for (const [key, b] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30))) {
  console.log(`${((100 * b) / total).toFixed(1).padStart(5)}%  ${(b / 2 ** 20).toFixed(0).padStart(6)} MiB  ${key}`);
}
console.log(`total ${(total / 2 ** 20).toFixed(0)} MiB sampled`);
