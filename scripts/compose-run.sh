#!/usr/bin/env bash
# Runs one scenario sharded over the two generator containers of deploy/compose/compose.yaml
# against the broker image (host networking, loopback only), then merges the shards:
#
#   scripts/compose-run.sh <scenario.yaml> <reports dir>
#
# Leaves <reports dir>/shards/shard-{0,1}/ and <reports dir>/merged/ (docs/deploy.md, "Compose").
# Needs dockerd (scripts/ci-e2e-setup.sh), docker-compose (Debian package docker-compose) and the
# image ratatoskr-broker:local (scripts/build-images.sh). Exits with the merge's exit code (0 all
# gates passed, 1 a gate failed), or 3 when a shard could not run or the compose run itself failed.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -eq 2 ] || { echo "usage: scripts/compose-run.sh <scenario.yaml> <reports dir>" >&2; exit 2; }
scenario=$(realpath "$1")
[ -f "$scenario" ] || { echo "compose-run: no scenario file $1" >&2; exit 2; }
mkdir -p "$2"
reports=$(realpath "$2")
command -v docker-compose >/dev/null || { echo "compose-run: docker-compose is missing (apt-get install docker-compose)" >&2; exit 3; }

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
export RATATOSKR_SCENARIO_DIR=$(dirname "$scenario")
export RATATOSKR_SCENARIO=$(basename "$scenario")
export RATATOSKR_REPORTS_DIR=$reports
export RATATOSKR_PORT=$(free_port)
export RATATOSKR_METRICS_PORT=$(free_port)
export RATATOSKR_RUN_ID=${RATATOSKR_RUN_ID:-compose-$(date +%s)-$$}
project=$RATATOSKR_RUN_ID
# The shards start producing at one agreed instant, after the broker is healthy and both
# generator containers have connected (a start in the past would start each shard at once).
export RATATOSKR_START_AT=$(( $(date +%s%3N) + ${RATATOSKR_START_DELAY_MS:-15000} ))

compose() { docker-compose --project-name "$project" --file deploy/compose/compose.yaml "$@"; }
cleanup() { compose down --timeout 10 >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "compose-run: run $RATATOSKR_RUN_ID, broker 127.0.0.1:$RATATOSKR_PORT, shards start at $RATATOSKR_START_AT"
# `up -d` starts the shards once the broker's health check passes (depends_on: service_healthy).
compose up --detach broker shard-0 shard-1
status=0
for s in shard-0 shard-1; do
  code=$(docker wait "$(compose ps --quiet "$s")")
  echo "compose-run: $s exited $code"
  # 1 = the shard's own gates failed: its result is complete, so it is merged (the merged report
  # judges the gates again over the whole run). Anything else: no usable result.
  if [ "$code" -ne 0 ] && [ "$code" -ne 1 ]; then
    compose logs --no-color "$s" | tail -n 20 >&2
    status=3
  fi
done
[ "$status" -eq 0 ] || exit "$status"
# The shards are done: merge them (no-deps: the shards must not run again).
set +e
compose up --no-deps --exit-code-from merge merge
merged=$?
set -e
exit "$merged"
