#!/usr/bin/env bash
# How far the harness is from a bare client (docs/performance.md, "Generator ceiling"):
#   bash scripts/generator-ceiling.sh
# One invocation starts one nats-server and one ratatoskr broker (loopback, free ports), then
# for NATS core and ratatoskr v2 (at-least-once) on 1 → 1 (throughput.yaml) and 1 → 10
# (fan-out.yaml) runs `ratatoskr calibrate --target`: bare client and harness alternating,
# PASSES pairs each, and prints the medians and their ratio. Target: harness ≥ 0.9× bare.
# Environment: PASSES (default 3); BENCH_ARGS extra arguments for every harness run (e.g.
# BENCH_ARGS="--workers 2"); CASES to run a subset (e.g. CASES="nats:throughput"); SET scenario
# overrides for both sides of every case (e.g. SET="messages=5000000": a 1M-message NATS run
# measures about half a second).
# Figures: .tmp/generator-ceiling/<time>/<driver>-<scenario>.json. Servers are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
passes=${PASSES:-3}
cases=${CASES:-"nats:throughput nats:fan-out ratatoskr:throughput ratatoskr:fan-out"}
calibrate_args=()
for a in ${BENCH_ARGS:-}; do calibrate_args+=("--bench-arg=$a"); done
for a in ${SET:-}; do calibrate_args+=("--set" "$a"); done
[ -f dist/cli/main.js ] || npm run build
out=".tmp/generator-ceiling/$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$out"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; rm -rf "$out/nats-store"; }
trap cleanup EXIT

# Wait (bounded) for a regex in a server's log; prints the first capture.
await_line() { # log pid regex
  for _ in $(seq 1 300); do
    local m
    m=$(grep -o -E "$3" "$1" 2>/dev/null | head -1 || true)
    [ -n "$m" ] && { echo "$m"; return 0; }
    kill -0 "$2" 2>/dev/null || { cat "$1" >&2; return 1; }
    sleep 0.1 # polling a server's log for its listening line
  done
  echo "no listening line in $1" >&2; return 1
}

nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
# A longer write deadline than the default 10 s: on a busy machine a bare fan-out subscriber
# falls that far behind a publisher in its own process and is cut off as a slow consumer.
echo 'write_deadline: "60s"' > "$out/nats.conf"
"$nats_bin" -c "$out/nats.conf" -a 127.0.0.1 -p -1 -js -sd "$out/nats-store" > "$out/nats.log" 2>&1 &
pids+=($!)
nats_addr=$(await_line "$out/nats.log" $! 'client connections on [0-9.]+:[0-9]+' | grep -o -E '[0-9.]+:[0-9]+$')
node dist/cli/main.js broker --host 127.0.0.1 --port 0 > "$out/broker.log" 2>&1 &
pids+=($!)
broker_addr=$(await_line "$out/broker.log" $! '"address":"[^"]*"' | cut -d'"' -f4)
echo "nats-server at $nats_addr, ratatoskr broker at $broker_addr; $passes passes; bench args: ${BENCH_ARGS:-none}; set: ${SET:-none}"

for c in $cases; do
  driver=${c%%:*}; scenario=${c#*:}
  target=$nats_addr; [ "$driver" = ratatoskr ] && target=$broker_addr
  echo; echo "== $driver, $scenario"
  node dist/cli/main.js calibrate "scenarios/published/$scenario.yaml" --driver "$driver" --target "$target" \
    --passes "$passes" --out "$out/$driver-$scenario.json" "${calibrate_args[@]}" || echo "($driver, $scenario: calibrate failed; see above)"
done

echo; echo "| driver | scenario | bare (median) | harness (median) | ratio | passes (ratio) |"
echo "|---|---|---:|---:|---:|---|"
for c in $cases; do
  driver=${c%%:*}; scenario=${c#*:}
  [ -f "$out/$driver-$scenario.json" ] || { echo "| $driver | $scenario | failed | | | |"; continue; }
  node -e '
    const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const k = (n) => (n / 1000).toFixed(1) + "K/s";
    console.log(`| ${c.driver} | ${process.argv[2]} | ${k(c.median.bareDeliveriesPerSecond)} | ${k(c.median.harnessDeliveriesPerSecond)} | ${c.median.ratio.toFixed(2)} | ${c.passes.map((p) => p.ratio.toFixed(2)).join(", ")} |`);
  ' "$out/$driver-$scenario.json" "$scenario"
done
echo; echo "figures in $out"
