#!/usr/bin/env bash
# CPU-profile the broker and the load generator under one scenario:
#   bash scripts/profile-bench.sh <scenario.yaml> [--set k=v ...]
# Starts the compiled broker under `node --cpu-prof` on a free loopback port, runs
# `ratatoskr bench --target` under `node --cpu-prof`, stops the broker with SIGTERM (by PID; it
# writes its profile on exit) and prints where each process spent its time.
# Profiles: .tmp/profile/<scenario>-<time>/{broker,generator}/*.cpuprofile (open in Chrome DevTools).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bash scripts/profile-bench.sh <scenario.yaml> [bench args...]" >&2; exit 2; }
scenario=$1; shift
[ -f dist/cli/main.js ] || npm run build
out=".tmp/profile/$(basename "$scenario" .yaml)-$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$out/broker" "$out/generator"
log="$out/broker.log"
extra=()
# A durable scenario needs the broker started durable; pass e.g. BROKER_ARGS="--data-dir /tmp/d --fsync".
read -r -a extra <<< "${BROKER_ARGS:-}"
node --cpu-prof --cpu-prof-dir="$out/broker" dist/cli/main.js broker --host 127.0.0.1 --port 0 "${extra[@]}" > "$log" 2>&1 &
broker=$!
trap 'kill -TERM $broker 2>/dev/null || true' EXIT
address=""
for _ in $(seq 1 300); do
  address=$(grep -o '"address":"[^"]*"' "$log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
  [ -n "$address" ] && break
  kill -0 $broker 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1 # polling a log file for the listening line; not a synchronisation stand-in in a test
done
[ -n "$address" ] || { echo "broker did not start" >&2; exit 1; }
echo "broker pid $broker at $address"
node --cpu-prof --cpu-prof-dir="$out/generator" dist/cli/main.js bench "$scenario" --target "$address" --out "$out/report" --quiet "$@" || true
kill -TERM $broker; wait $broker || true
trap - EXIT
for p in broker generator; do
  echo; echo "=== $p"; node scripts/cpuprofile-top.mjs "$(ls "$out/$p"/*.cpuprofile | head -1)" 20
done
