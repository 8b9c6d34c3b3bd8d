#!/usr/bin/env bash
# The Kubernetes/Compose shard flow on one machine, without containers (docs/deploy.md, "Shards
# and the merge"): starts the reference broker, runs N `bench --shard i/N` processes with one
# --run-id and one --start-at against it, waits for all, merges their reports:
#
#   scripts/shard-local.sh <scenario.yaml> <reports dir> [shards (default 2)]
#
# Leaves <reports dir>/shards/shard-<i>/ and <reports dir>/merged/. Exits with the merge's code
# (0 passed, 1 a gate failed, 2 a shard missing), or 3 when the broker or a shard could not run.
# Runs from source with tsx unless RATATOSKR_CLI names another entry (e.g. dist/cli/main.js).
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 2 ] && [ $# -le 3 ] || { echo "usage: scripts/shard-local.sh <scenario.yaml> <reports dir> [shards]" >&2; exit 2; }
scenario=$1
reports=$2
shards=${3:-2}
[ -f "$scenario" ] || { echo "shard-local: no scenario file $scenario" >&2; exit 2; }
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "shard-local: shards must be a positive integer; got $shards" >&2; exit 2; }
# From source the CLI runs as `node --import tsx` (one process): under `npx tsx` the PID we stop
# would be npx's, and the broker under it outlived every run.
if [ -n "${RATATOSKR_CLI:-}" ]; then cli=(node "$RATATOSKR_CLI"); else cli=(node --import tsx cli/main.ts); fi
mkdir -p "$reports/shards"

log=$(mktemp)
broker_pid=""
shard_pids=()
cleanup() {
  for p in "${shard_pids[@]}" $broker_pid; do kill "$p" 2>/dev/null || true; done
  [ -n "$broker_pid" ] && wait "$broker_pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

"${cli[@]}" broker --host 127.0.0.1 --port 0 >"$log" 2>&1 &
broker_pid=$!
# The broker's one start-up line names its address (docs/operations.md, "Starting it").
address=""
for _ in $(seq 1 300); do
  address=$(sed -n 's/.*"msg":"listening","address":"\([^"]*\)".*/\1/p' "$log" | head -n 1)
  [ -n "$address" ] && break
  kill -0 "$broker_pid" 2>/dev/null || { echo "shard-local: the broker exited:" >&2; cat "$log" >&2; exit 3; }
  sleep 0.1
done
[ -n "$address" ] || { echo "shard-local: no listening line from the broker within 30 s" >&2; exit 3; }

run_id=${RATATOSKR_RUN_ID:-local-$(date +%s)-$$}
# One instant for all shards, after each process has started and connected.
start_at=$(( $(date +%s%3N) + ${RATATOSKR_START_DELAY_MS:-8000} ))
echo "shard-local: run $run_id, broker $address, $shards shards, start at $start_at"
for ((i = 0; i < shards; i++)); do
  "${cli[@]}" bench "$scenario" --target "$address" --shard "$i/$shards" --run-id "$run_id" \
    --start-at "$start_at" --out "$reports/shards/shard-$i" >"$reports/shards/shard-$i.log" 2>&1 &
  shard_pids+=($!)
done
status=0
for ((i = 0; i < shards; i++)); do
  code=0
  wait "${shard_pids[$i]}" || code=$?
  echo "shard-local: shard $i exited $code"
  # 1 = the shard's own gates failed: its report is complete and is merged all the same.
  if [ "$code" -ne 0 ] && [ "$code" -ne 1 ]; then tail -n 20 "$reports/shards/shard-$i.log" >&2; status=3; fi
done
shard_pids=()
[ "$status" -eq 0 ] || exit "$status"
code=0
"${cli[@]}" report merge "$reports/shards" --out "$reports/merged" || code=$?
exit "$code"
