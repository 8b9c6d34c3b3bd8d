#!/usr/bin/env bash
# Builds the images the e2e suites run:
#   nodebase:local          - from the host's node (scripts/docker-base-image.sh), once
#   ratatoskr-broker:local  - docker/Dockerfile over a staged context: dist/, proto/,
#                             package.json and the production node_modules only
#
#   scripts/build-images.sh [--no-compile] [--force-base]
#     --no-compile   use the existing dist/ instead of running `npm run build` first
#     --force-base   rebuild nodebase:local even if it exists
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${RATATOSKR_BROKER_IMAGE:-ratatoskr-broker:local}
compile=1
force_base=()
for arg in "$@"; do
  case "$arg" in
    --no-compile) compile=0 ;;
    --force-base) force_base=(--force) ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

if ! docker info >/dev/null 2>&1; then
  echo "No Docker engine reachable: start one with 'sudo bash scripts/ci-e2e-setup.sh' (see docs/testing.md, End-to-end tests)" >&2
  exit 1
fi

t0=$(date +%s%N)
bash scripts/docker-base-image.sh "${force_base[@]}"
t1=$(date +%s%N)

if [ "$compile" -eq 1 ]; then
  npm run build
elif [ ! -f dist/cli/main.js ]; then
  echo "dist/cli/main.js is missing: run 'npm run build' (or drop --no-compile)" >&2
  exit 1
fi
t2=$(date +%s%N)

ctx=build/image
rm -rf "$ctx"
mkdir -p "$ctx/node_modules"
cp -r dist proto package.json package-lock.json "$ctx/"
cp docker/Dockerfile docker/healthcheck.mjs "$ctx/"
# Production dependencies only, read from npm's own tree (read-only: nothing in the shared
# node_modules is touched). Hard links keep the copy instant and free; each package is copied
# without its nested node_modules, which npm lists separately when they are needed.
node scripts/docker-stage-modules.mjs "$ctx/node_modules"
t3=$(date +%s%N)

previous=$(docker image inspect "$IMAGE" --format '{{.Id}}' 2>/dev/null || true)
docker build -q -t "$IMAGE" "$ctx" >/dev/null
t4=$(date +%s%N)
# The image this build replaced is now untagged: remove it (and only it) unless a container uses it.
current=$(docker image inspect "$IMAGE" --format '{{.Id}}')
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi

ms() { echo $(( ($2 - $1) / 1000000 )); }
size=$(docker image inspect "$IMAGE" --format '{{.Size}}')
echo "image $IMAGE built ($(( size / 1024 / 1024 )) MB): base $(ms "$t0" "$t1") ms, compile $(ms "$t1" "$t2") ms, stage $(ms "$t2" "$t3") ms, docker build $(ms "$t3" "$t4") ms"
