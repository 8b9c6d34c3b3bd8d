#!/usr/bin/env bash
# Broker CPU-µs per delivery of two builds, runs alternating (A B, B A, ...) so that whatever else
# the machine does drifts over both alike:
#   bash scripts/broker-cost-ab.sh <base-dir> <scenario.yaml> [passes] [bench args...]
# <base-dir> is another checkout with its own `npm run build` done, e.g.
#   mkdir -p .tmp/base && git archive <commit> | tar -x -C .tmp/base && ln -s "$PWD/node_modules" .tmp/base/node_modules && (cd .tmp/base && npm run build)
# Each run is `node <dir>/dist/cli/main.js bench <scenario> --quiet` (embedded broker of that
# build); the figure is broker.cost (docs/loadgen.md, "Broker cost per message"), derived from
# the samples for a build older than the figure. Prints one line per run and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bash scripts/broker-cost-ab.sh <base-dir> <scenario.yaml> [passes] [bench args...]" >&2; exit 2; }
base=$1; scenario=$2; passes=${3:-3}; shift $(( $# >= 3 ? 3 : 2 ))
[ -f dist/cli/main.js ] || npm run build
[ -f "$base/dist/cli/main.js" ] || { echo "$base has no dist/cli/main.js: run npm run build there" >&2; exit 2; }
out=".tmp/cost-ab/$(basename "$scenario" .yaml)-$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$out"
for p in $(seq 1 "$passes"); do
  if (( p % 2 )); then order="base head"; else order="head base"; fi
  for which in $order; do
    dir=.; [ "$which" = base ] && dir=$base
    node "$dir/dist/cli/main.js" bench "$scenario" --out "$out/$which-$p" --quiet "$@" > "$out/$which-$p.log" 2>&1 || true
  done
done
node --input-type=module -e '
import { readFileSync, existsSync } from "node:fs";
import { costOf } from "./dist/loadgen/report/index.js";
const [out, passes] = [process.argv[1], Number(process.argv[2])];
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };
const figures = { base: [], head: [] };
for (let p = 1; p <= passes; p++) for (const w of ["base", "head"]) {
  const f = `${out}/${w}-${p}/result.json`;
  if (!existsSync(f)) { console.log(`${w} pass ${p}: no result (see ${out}/${w}-${p}.log)`); continue; }
  const r = JSON.parse(readFileSync(f, "utf8"));
  const c = costOf(r);
  figures[w].push({ us: c?.cpuUsPerDelivery ?? NaN, rate: r.throughput.deliveryRate });
  console.log(`${w} pass ${p}: ${c?.cpuUsPerDelivery ?? "n/a"} CPU-µs/delivery, ${c?.cpuUsPerPublish ?? "n/a"} per publish, ${r.throughput.deliveryRate} deliveries/s, ${r.passed ? "PASS" : "FAIL"}`);
}
for (const w of ["base", "head"]) console.log(`${w} median: ${med(figures[w].map((x) => x.us))} CPU-µs/delivery, ${med(figures[w].map((x) => x.rate))} deliveries/s`);
' "$out" "$passes"
