#!/usr/bin/env bash
# Deploying and waiting for N components (default 50) on the local control plane, three
# ways side by side in one run, each repeated (default 3 rounds, the ways alternating):
#   one:    one `berth deploy --spec DIR --wait` process (bounded concurrency, default 8);
#   serial: N `berth deploy --spec FILE --wait` processes, one after the other;
#   kubectl: `kubectl apply -f` of the same objects (rendered by berth beforehand, not
#            timed) and then `kubectl rollout status` for each Deployment.
# Each round of each way starts in a namespace of its own, deleted afterwards. Prints each
# time and the medians; it reports, it never fails on a figure.
#
# Usage: tests/bench-fleet.sh BERTH_BINARY (`cargo xtask bench-fleet` builds it and runs
# this). kubectl comes from Debian's kubernetes-client (the same Kubernetes as the control
# plane), installed on first use.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
berth=$(realpath "${1:?usage: tests/bench-fleet.sh BERTH_BINARY}")
count=${BENCH_COMPONENTS:-50}
rounds=${BENCH_ROUNDS:-3}
concurrency=${BENCH_CONCURRENCY:-8}

if ! command -v kubectl >/dev/null; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "bench-fleet: install kubectl (Debian: apt-get install -y kubernetes-client)" >&2
        exit 1
    fi
    echo "bench-fleet: installing kubectl (Debian's kubernetes-client)" >&2
    apt-get install -y -qq kubernetes-client >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq kubernetes-client >/dev/null; }
fi

cd "$root"
state=${BERTH_CLUSTER_DIR:-$root/.cluster}
started=0
[ -f "$state/admin.kubeconfig" ] && pgrep -f "kube-apiserver.*$state" >/dev/null 2>&1 || started=1
up_log=$(mktemp)
if ! tests/cluster/up.sh >"$up_log.out" 2>"$up_log"; then
    cat "$up_log" >&2
    echo "bench-fleet: the local control plane did not start (log above)" >&2
    exit 1
fi
KUBECONFIG=$(tail -n 1 "$up_log.out")
export KUBECONFIG
rm -f "$up_log" "$up_log.out"

work=$(mktemp -d)
cleanup() {
    for ns in $(kubectl get ns -o name 2>/dev/null | grep -o 'bench-fleet-.*'); do
        kubectl delete ns "$ns" --wait=false >/dev/null 2>&1 || true
    done
    rm -rf "$work"
    if [ "$started" = 1 ]; then tests/cluster/down.sh >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

mkdir -p "$work/specs"
for i in $(seq -w 1 "$count"); do
    printf 'component_name: c%s\nimage: example/bench:1\nreplicas: 1\nports: ["8080:0"]\n' "$i" \
        >"$work/specs/c$i.yaml"
done
"$berth" render --spec "$work/specs" -n placeholder >"$work/all.yaml"
sed -i '/^  namespace: placeholder$/d' "$work/all.yaml"
deployments=$(grep -A1 '^kind: Deployment' "$work/all.yaml" | grep -c '^kind' || true)

now() { date +%s.%N; }
fresh_ns() {
    local ns="bench-fleet-$1-$2"
    kubectl create ns "$ns" >/dev/null
    printf '%s' "$ns"
}
drop_ns() { kubectl delete ns "$1" --wait=false >/dev/null; }

way_one() {
    "$berth" -n "$1" deploy --spec "$work/specs" --wait --timeout 600s \
        --max-concurrency "$concurrency" >/dev/null
}
way_serial() {
    local f
    for f in "$work"/specs/*.yaml; do
        "$berth" -n "$1" deploy --spec "$f" --wait --timeout 600s >/dev/null
    done
}
way_kubectl() {
    local d
    kubectl -n "$1" apply -f "$work/all.yaml" >/dev/null
    for d in $(kubectl -n "$1" get deployments -o name); do
        kubectl -n "$1" rollout status "$d" --timeout 600s >/dev/null
    done
}

declare -A times
echo "bench-fleet: $count components ($deployments Deployments, one Service each), $rounds rounds, berth --max-concurrency $concurrency"
for round in $(seq 1 "$rounds"); do
    for way in one serial kubectl; do
        ns=$(fresh_ns "$way" "$round")
        start=$(now)
        "way_$way" "$ns"
        took=$(awk -v a="$start" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')
        times[$way]+="$took "
        printf '  round %s  %-8s %6.2f s\n' "$round" "$way" "$took"
        drop_ns "$ns"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
one=$(echo "${times[one]}" | median)
serial=$(echo "${times[serial]}" | median)
kube=$(echo "${times[kubectl]}" | median)
echo "medians:"
printf '  one berth process         %6.2f s\n' "$one"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
printf '  %s berth processes        %6.2f s  (%sx the one process)\n' "$count" "$serial" "$(ratio "$serial" "$one")"
printf '  kubectl apply + rollout   %6.2f s  (%sx the one process)\n' "$kube" "$(ratio "$kube" "$one")"
