#!/usr/bin/env bash
# N Components (default 200) on the local control plane, two ways side by side in one run,
# each repeated (default 2 rounds, the ways alternating), each round in a namespace of its own:
#   controller: one `berth controller` (started beforehand, leading), then `kubectl apply` of
#               N Component objects and `kubectl wait --for=condition=Ready` on all of them;
#   cli:        one `berth deploy --spec DIR --wait` of the same N specs.
# With the controller's N Components Ready (last round): its resident memory, then over a
# quiet window (BENCH_STEADY seconds, default 120; each Component's interval 60 s) the
# requests it sent, from its /metrics, per Component per interval; then the time to delete
# all N Components (the controller removing what each made). Prints each figure; it
# reports, it never fails on a figure.
#
# Usage: tests/bench-controller.sh BERTH_BINARY (`cargo xtask bench-controller` builds it
# and runs this). kubectl comes from Debian's kubernetes-client, installed on first use.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
berth=$(realpath "${1:?usage: tests/bench-controller.sh BERTH_BINARY}")
count=${BENCH_COMPONENTS:-200}
rounds=${BENCH_ROUNDS:-2}
steady=${BENCH_STEADY:-120}

for tool in kubectl curl; do
    if ! command -v "$tool" >/dev/null; then
        package=$([ "$tool" = kubectl ] && echo kubernetes-client || echo curl)
        if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
            echo "bench-controller: install $tool (Debian: apt-get install -y $package)" >&2
            exit 1
        fi
        echo "bench-controller: installing $tool (Debian's $package)" >&2
        apt-get install -y -qq "$package" >/dev/null 2>&1 ||
            { apt-get update -qq && apt-get install -y -qq "$package" >/dev/null; }
    fi
done

cd "$root"
state=${BERTH_CLUSTER_DIR:-$root/.cluster}
started=0
[ -f "$state/admin.kubeconfig" ] && pgrep -f "kube-apiserver.*$state" >/dev/null 2>&1 || started=1
up_log=$(mktemp)
if ! tests/cluster/up.sh >"$up_log.out" 2>"$up_log"; then
    cat "$up_log" >&2
    echo "bench-controller: the local control plane did not start (log above)" >&2
    exit 1
fi
KUBECONFIG=$(tail -n 1 "$up_log.out")
export KUBECONFIG
rm -f "$up_log" "$up_log.out"

work=$(mktemp -d)
controller_pid=
stop_controller() {
    if [ -n "$controller_pid" ]; then
        kill -TERM "$controller_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$controller_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$controller_pid" 2>/dev/null || true
        wait "$controller_pid" 2>/dev/null || true
        controller_pid=
    fi
}
cleanup() {
    stop_controller
    for ns in $(kubectl get ns -o name 2>/dev/null | grep -o 'bench-ctl-.*'); do
        kubectl -n "$ns" patch component --all --type=merge \
            -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
        kubectl delete ns "$ns" --wait=false >/dev/null 2>&1 || true
    done
    rm -rf "$work"
    if [ "$started" = 1 ]; then tests/cluster/down.sh >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

"$berth" controller crd | kubectl apply -f - >/dev/null
kubectl wait --for=condition=Established crd/components.berth.dev --timeout=60s >/dev/null
"$berth" -n default controller rbac | kubectl apply -f - >/dev/null # the Lease's namespace

mkdir -p "$work/specs"
{
    printf '{"apiVersion":"v1","kind":"List","items":['
    sep=
    for i in $(seq -w 1 "$count"); do
        printf 'component_name: c%s\nimage: example/bench:1\nreplicas: 1\nports: ["8080:0"]\n' "$i" \
            >"$work/specs/c$i.yaml"
        printf '%s' "$sep"
        sep=,
        printf '{"apiVersion":"berth.dev/v1alpha1","kind":"Component","metadata":{"name":"c%s"},"spec":{"interval":"60s","component":{"component_name":"c%s","image":"example/bench:1","replicas":1,"ports":["8080:0"]}}}' "$i" "$i"
    done
    printf ']}'
} >"$work/components.json"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }

way_cli() {
    "$berth" -n "$1" deploy --spec "$work/specs" --wait --timeout 600s >/dev/null
}
start_controller() {
    local ns=$1
    "$berth" -n "$ns" controller --lease "$ns" --http 127.0.0.1:0 2>"$work/controller.log" &
    controller_pid=$!
    for _ in $(seq 1 300); do
        grep -q 'leading: reconciling' "$work/controller.log" && break
        sleep 0.1
    done
    grep -q 'leading: reconciling' "$work/controller.log" ||
        { cat "$work/controller.log" >&2; echo "bench-controller: the controller did not lead" >&2; exit 1; }
    address=$(grep -o 'on http://[0-9.:]*' "$work/controller.log" | head -1 | cut -c11-)
}
way_controller() {
    kubectl -n "$1" apply -f "$work/components.json" >/dev/null
    kubectl -n "$1" wait --for=condition=Ready component --all --timeout=600s >/dev/null
}
requests() {
    curl -sf "http://$address/metrics" |
        awk -v k="$1" -F'[{}" ]+' '$1 == "berth_controller_requests_total" && $3 == k {print $NF}'
}

declare -A times
echo "bench-controller: $count components (a Deployment and a Service each), $rounds rounds"
for round in $(seq 1 "$rounds"); do
    for way in controller cli; do
        ns="bench-ctl-$way-$round"
        kubectl create ns "$ns" >/dev/null
        if [ "$way" = controller ]; then start_controller "$ns"; fi
        start=$(now)
        "way_$way" "$ns"
        took=$(since "$start")
        times[$way]+="$took "
        printf '  round %s  %-10s %7.2f s\n' "$round" "$way" "$took"
        if [ "$way" = controller ]; then
            if [ "$round" = "$rounds" ]; then
                pid=$controller_pid
                rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
                hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
                printf '  controller memory at %s Ready: %s MiB resident (peak %s MiB)\n' \
                    "$count" "$((rss / 1024))" "$((hwm / 1024))"
                sleep 5 # the last statuses written
                r0=$(requests read) w0=$(requests write) l0=$(requests lease)
                sleep "$steady"
                r1=$(requests read) w1=$(requests write) l1=$(requests lease)
                awk -v r=$((r1 - r0)) -v w=$((w1 - w0)) -v l=$((l1 - l0)) -v n="$count" -v s="$steady" 'BEGIN {
                    printf "  steady state, %d s: %d reads, %d writes, %d Lease requests: %.2f reads and %.2f writes per Component per 60 s interval\n",
                        s, r, w, l, r / n / (s / 60), w / n / (s / 60) }'
                start=$(now)
                kubectl -n "$ns" delete component --all --timeout=600s >/dev/null
                printf '  controller: %s Components deleted, everything they made removed: %7.2f s\n' \
                    "$count" "$(since "$start")"
            else
                kubectl -n "$ns" delete component --all --timeout=600s >/dev/null
            fi
            stop_controller
        fi
        kubectl delete ns "$ns" --wait=false >/dev/null
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
controller=$(echo "${times[controller]}" | median)
cli=$(echo "${times[cli]}" | median)
echo "medians:"
printf '  controller, kubectl apply until all Ready   %7.2f s\n' "$controller"
printf '  berth deploy --spec DIR --wait              %7.2f s  (%sx the controller)\n' "$cli" \
    "$(awk -v a="$cli" -v b="$controller" 'BEGIN {printf "%.2f", a / b}')"
