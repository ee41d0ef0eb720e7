#!/usr/bin/env bash
# The demo: berth's main job on the local control plane, as a user would see it.
# Starts the control plane if it is not running (and stops it again at the end).
set -euo pipefail
berth=$(realpath "${1:?usage: tests/demo.sh BERTH_BINARY (cargo xtask demo builds it and runs this)}")
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

state=${BERTH_CLUSTER_DIR:-$PWD/.cluster}
started=0
running_before=0
[ -f "$state/admin.kubeconfig" ] && pgrep -f "kube-apiserver.*$state" >/dev/null 2>&1 && running_before=1
echo "starting the local control plane..."
up_log=$(mktemp)
if ! tests/cluster/up.sh >"$up_log.out" 2>"$up_log"; then
    cat "$up_log" >&2
    echo "the local control plane did not start (log above)" >&2
    exit 1
fi
KUBECONFIG=$(tail -n 1 "$up_log.out")
rm -f "$up_log" "$up_log.out"
export KUBECONFIG
[ "$running_before" = 1 ] || started=1
cleanup() {
    "$berth" undeploy inventory >/dev/null 2>&1 || true
    if [ "$started" = 1 ]; then tests/cluster/down.sh >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step berth render --spec examples/full.yaml --config examples/site.yaml '| head -20'
"$berth" render --spec examples/full.yaml --config examples/site.yaml | head -20

specs=$(mktemp -d)
cp examples/full.yaml examples/minimal.yaml "$specs"
step "berth render --spec specs/ --config examples/site.yaml | grep -E '^kind:|^  name:'   # a directory: every spec in it"
"$berth" render --spec "$specs" --config examples/site.yaml | grep -E '^kind:|^  name:'
rm -rf "$specs"

step berth deploy --spec examples/full.yaml --config examples/site.yaml --wait
"$berth" deploy --spec examples/full.yaml --config examples/site.yaml --wait

step berth status inventory
"$berth" status inventory

step berth exec inventory -- sh -c "'echo hello from \$PWD; exit 0'"
"$berth" exec inventory -- sh -c 'echo hello from $PWD; exit 0'

step berth scale inventory 5 --wait
"$berth" scale inventory 5 --wait

step berth upgrade inventory registry.example.com/platform/inventory:2.5.0 --wait
"$berth" upgrade inventory registry.example.com/platform/inventory:2.5.0 --wait

step berth history inventory
"$berth" history inventory

step berth rollback inventory --wait
"$berth" rollback inventory --wait

step berth status inventory
"$berth" status inventory

step berth undeploy inventory --wait
"$berth" undeploy inventory --wait

step 'berth deploy --spec bad-ports.yaml   # bad input: a clear error, nothing created'
bad=$(mktemp --suffix=.yaml)
printf 'component_name: web\nimage: nginx:1.27\nports: ["8080:0", "9101:"]\n' > "$bad"
if "$berth" deploy --spec "$bad"; then
    echo "expected a refusal" >&2
    exit 1
else
    echo "(exit code $?)"
fi
rm -f "$bad"
