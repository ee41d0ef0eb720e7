#!/usr/bin/env bash
# Stop the local control plane started by up.sh: TERM each recorded pid, KILL what is left
# after a few seconds. Logs stay in the state dir; pid files are removed.
#
# Env knobs:
#   BERTH_CLUSTER_DIR           state dir (default <repo>/.cluster)
#   BERTH_CLUSTER_STOP_TIMEOUT  seconds between TERM and KILL (default 10)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="${BERTH_CLUSTER_DIR:-$ROOT/.cluster}"
GRACE="${BERTH_CLUSTER_STOP_TIMEOUT:-10}"

log() { printf 'cluster-down: %s\n' "$*" >&2; }

[ -d "$STATE" ] || exit 0
STATE="$(cd "$STATE" && pwd)"

# Name in the pid file -> a word its command line must contain (guards against reused pids).
declare -A MARK=(
    [sim-node]=berth-sim-node
    [kube-controller-manager]=kube-controller-manager
    [kube-apiserver]=kube-apiserver
    [etcd]=etcd
    [watchdog]=watchdog.sh
)
ORDER=(sim-node kube-controller-manager kube-apiserver etcd watchdog)

ours() { # pid name -> true if pid is still the process up.sh recorded
    local cmdline
    [ -r "/proc/$1/cmdline" ] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline")"
    [[ "$cmdline" == *"${MARK[$2]}"* && "$cmdline" == *"$STATE"* ]]
}

declare -A PIDS=()
for name in "${ORDER[@]}"; do
    f="$STATE/$name.pid"
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    # The watchdog runs this script: do not signal ourselves.
    if [ "$name" = watchdog ] && [ -n "${BERTH_CLUSTER_FROM_WATCHDOG:-}" ]; then
        rm -f "$f"
        continue
    fi
    if [ -n "$pid" ] && ours "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        PIDS[$name]="$pid"
    else
        rm -f "$f"
    fi
done

[ "${#PIDS[@]}" -gt 0 ] || exit 0
log "stopping ${!PIDS[*]} (state in $STATE)"
deadline=$((SECONDS + GRACE))
while :; do
    left=()
    for name in "${!PIDS[@]}"; do
        ours "${PIDS[$name]}" "$name" && left+=("$name")
    done
    [ "${#left[@]}" -gt 0 ] || break
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "killing ${left[*]} after ${GRACE}s"
        for name in "${left[@]}"; do kill -KILL "${PIDS[$name]}" 2>/dev/null || true; done
        sleep 0.2
        break
    fi
    sleep 0.1
done
# Dead processes stay zombies until their parent (often init, as up.sh has exited) reaps
# them; wait a little for that so that a pgrep right after this sees nothing.
deadline=$((SECONDS + 5))
for name in "${!PIDS[@]}"; do
    while [ -d "/proc/${PIDS[$name]}" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    rm -f "$STATE/$name.pid"
done
log "stopped"
