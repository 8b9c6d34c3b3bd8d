#!/usr/bin/env bash
# Stops the dockerd that scripts/ci-e2e-setup.sh started, by the PID it recorded, and waits
# (deadline 30 s) for it to exit. Does nothing when setup found an engine already running.
set -uo pipefail
cd "$(dirname "$0")/.."
PIDFILE=${RATATOSKR_DOCKERD_PIDFILE:-.tmp/dockerd.pid}

if [ ! -f "$PIDFILE" ]; then
  echo "no $PIDFILE: dockerd was not started by ci-e2e-setup.sh; leaving any engine alone"
  exit 0
fi
pid=$(cat "$PIDFILE")
if ! kill -0 "$pid" 2>/dev/null; then
  echo "dockerd (PID $pid) is not running"
  rm -f "$PIDFILE"
  exit 0
fi
# Containers left by a crashed test run would keep their ports; remove only testcontainers' own.
leftover=$(docker ps -aq --filter label=org.testcontainers=true 2>/dev/null || true)
if [ -n "$leftover" ]; then
  echo "removing leftover test containers: $(echo $leftover)"
  docker rm -f $leftover >/dev/null 2>&1 || true
fi
kill -TERM "$pid"
deadline=$(( $(date +%s) + 30 ))
while kill -0 "$pid" 2>/dev/null; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "dockerd (PID $pid) still running after 30 s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    break
  fi
  sleep 0.1
done
rm -f "$PIDFILE"
echo "dockerd (PID $pid) stopped"
