#!/usr/bin/env bash
# Runs one scenario on Kubernetes, sharded over N generator pods, and merges the shards
# (docs/deploy.md, "Kubernetes"):
#
#   deploy/k8s/run.sh <scenario.yaml> [shards (default 4)] [start delay in s (default 90)]
#
# Uses the current kubectl context and namespace. Applies broker.yaml (and waits for the broker
# to be ready), makes the ConfigMaps ratatoskr-scenario and ratatoskr-run, applies
# bench-job.yaml with N shards, waits for every index to finish, then applies merge-job.yaml
# and prints its summary. The merged report is in the ratatoskr-reports volume under
# <run id>/merged/. Exits with the merge Job's outcome: 0 merged and passed, 1 otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

[ $# -ge 1 ] && [ $# -le 3 ] || { echo "usage: deploy/k8s/run.sh <scenario.yaml> [shards] [start delay s]" >&2; exit 2; }
scenario=$1
shards=${2:-4}
delay=${3:-90}
[ -f "$scenario" ] || { echo "run.sh: no scenario file $scenario" >&2; exit 2; }
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: shards must be a positive integer; got $shards" >&2; exit 2; }
[[ $delay =~ ^[0-9]+$ ]] || { echo "run.sh: start delay must be whole seconds; got $delay" >&2; exit 2; }
command -v kubectl >/dev/null || { echo "run.sh: kubectl is missing" >&2; exit 2; }
poll_s=${RATATOSKR_K8S_POLL_S:-5}
timeout_s=${RATATOSKR_K8S_TIMEOUT_S:-3600}

missing=()
for s in ratatoskr-tls ratatoskr-tokens ratatoskr-ca ratatoskr-bench-token; do
  kubectl get secret "$s" >/dev/null 2>&1 || missing+=("$s")
done
if [ ${#missing[@]} -gt 0 ]; then
  cat >&2 <<MSG
run.sh: missing Secrets: ${missing[*]}. Create them first (docs/deploy.md, "Kubernetes"), e.g.
  kubectl create secret tls ratatoskr-tls --cert=server.crt --key=server.key
  kubectl create secret generic ratatoskr-tokens --from-file=tokens.json
  kubectl create secret generic ratatoskr-ca --from-file=ca.crt
  kubectl create secret generic ratatoskr-bench-token --from-literal=token=<the bench token of tokens.json>
MSG
  exit 2
fi

run_id=${RATATOSKR_RUN_ID:-k8s-$(date +%s)}
# Every shard starts producing at this instant: late enough for all pods to be scheduled,
# pulled and connected (a start in the past makes each shard start at once, unaligned).
start_at=$(( $(date +%s) * 1000 + delay * 1000 ))
echo "run.sh: run $run_id, $shards shards, start at $start_at"

kubectl apply -f "$here/broker.yaml"
kubectl rollout status statefulset/ratatoskr --timeout=300s

apply_config() { kubectl create configmap "$@" --dry-run=client -o yaml | kubectl apply -f -; }
apply_config ratatoskr-scenario --from-file=scenario.yaml="$scenario"
apply_config ratatoskr-run --from-literal=RUN_ID="$run_id" --from-literal=START_AT="$start_at"

# A Job's pod template cannot change: the previous run's Jobs go first.
kubectl delete job ratatoskr-bench ratatoskr-merge --ignore-not-found --wait=true
sed -e "s/^  completions: 4$/  completions: $shards/" \
    -e "s/^  parallelism: 4$/  parallelism: $shards/" \
    -e "s/^  maxFailedIndexes: 4$/  maxFailedIndexes: $shards/" \
    -e "s|--shard=\$(JOB_COMPLETION_INDEX)/4|--shard=\$(JOB_COMPLETION_INDEX)/$shards|" \
    "$here/bench-job.yaml" | kubectl apply -f -

# Every index finished, passed or not (a shard whose gates failed still wrote its report).
waited=0
while :; do
  read -r ok failed < <(kubectl get job ratatoskr-bench -o jsonpath='{.status.succeeded} {.status.failed}{"\n"}' | awk '{print ($1==""?0:$1), ($2==""?0:$2)}')
  [ $((ok + failed)) -ge "$shards" ] && break
  [ "$waited" -ge "$timeout_s" ] && { echo "run.sh: the shards did not finish within $timeout_s s ($ok passed, $failed failed)" >&2; exit 1; }
  sleep "$poll_s"; waited=$((waited + poll_s))
done
echo "run.sh: shards finished: $ok exited 0, $failed did not"

kubectl apply -f "$here/merge-job.yaml"
waited=0
while :; do
  read -r ok failed < <(kubectl get job ratatoskr-merge -o jsonpath='{.status.succeeded} {.status.failed}{"\n"}' | awk '{print ($1==""?0:$1), ($2==""?0:$2)}')
  [ $((ok + failed)) -ge 1 ] && break
  [ "$waited" -ge "$timeout_s" ] && { echo "run.sh: the merge did not finish within $timeout_s s" >&2; exit 1; }
  sleep "$poll_s"; waited=$((waited + poll_s))
done
kubectl logs job/ratatoskr-merge
echo "run.sh: merged report in volume ratatoskr-reports at $run_id/merged/"
[ "$ok" -ge 1 ]
