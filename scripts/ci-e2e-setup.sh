#!/usr/bin/env bash
# Prepares a machine for the e2e tier (called by .ci/run; also fine by hand, as root):
#   1. installs docker.io with apt when dockerd is missing, and docker-compose (e2e/compose.test.ts);
#   2. starts `dockerd --bridge=none --iptables=false` in the background unless an engine is
#      already reachable (containers then run with host networking only: traffic stays on
#      127.0.0.1), removing a stale /var/run/docker.pid first;
#   3. waits for `docker info` (deadline 60 s) and records the PID it started in
#      .tmp/dockerd.pid, which scripts/ci-e2e-teardown.sh stops;
#   4. builds nodebase:local and ratatoskr-broker:local (scripts/build-images.sh).
# Compiles first, unless given --no-compile (.ci/run has just built dist/).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tmp
PIDFILE=${RATATOSKR_DOCKERD_PIDFILE:-.tmp/dockerd.pid}
LOG=${RATATOSKR_DOCKERD_LOG:-.tmp/dockerd.log}
t0=$(date +%s%N)
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

if ! command -v dockerd >/dev/null 2>&1; then
  echo "dockerd not found: installing docker.io with apt"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io
  echo "docker.io installed in $(ms_since "$t0") ms"
fi
# e2e/compose.test.ts runs deploy/compose/compose.yaml through Debian's docker-compose (1.29).
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "docker-compose not found: installing it with apt"
  tc=$(date +%s%N)
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose
  echo "docker-compose installed in $(ms_since "$tc") ms"
fi

if docker info >/dev/null 2>&1; then
  echo "a Docker engine is already reachable; using it (not started here, so teardown leaves it alone)"
  rm -f "$PIDFILE"
else
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    echo "removing stale /var/run/docker.pid"
    rm -f /var/run/docker.pid
  fi
  t1=$(date +%s%N)
  nohup dockerd --bridge=none --iptables=false >"$LOG" 2>&1 &
  pid=$!
  echo "$pid" >"$PIDFILE"
  deadline=$(( $(date +%s) + 60 ))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "dockerd exited during start-up; last lines of $LOG:" >&2
      tail -n 20 "$LOG" >&2
      rm -f "$PIDFILE"
      exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "dockerd (PID $pid) not ready after 60 s; see $LOG" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "dockerd started (PID $pid, ready in $(ms_since "$t1") ms, log $LOG)"
fi

# .ci/run has just compiled and passes --no-compile; by hand, compile so the image is never stale.
if [ "${1:-}" = "--no-compile" ] && [ -f dist/cli/main.js ]; then
  bash scripts/build-images.sh --no-compile
else
  bash scripts/build-images.sh
fi
echo "e2e setup done in $(ms_since "$t0") ms"
