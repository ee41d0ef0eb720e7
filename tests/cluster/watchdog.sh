#!/usr/bin/env bash
# Started by up.sh when BERTH_CLUSTER_OWNER_PID is set: stops the cluster in STATE (arg 1)
# with down.sh once no pid recorded in STATE/owners/ is alive any more.
set -euo pipefail

STATE="$1"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export BERTH_CLUSTER_DIR="$STATE" BERTH_CLUSTER_FROM_WATCHDOG=1

any_owner_alive() {
    local f
    for f in "$STATE"/owners/*; do
        [ -e "$f" ] || continue
        if kill -0 "${f##*/}" 2>/dev/null; then return 0; fi
        rm -f "$f"
    done
    return 1
}

while :; do
    sleep 1
    any_owner_alive && continue
    # An up.sh in progress may be registering a new owner: decide under its lock.
    exec 8>"$STATE/.lock"
    flock 8
    if ! any_owner_alive; then
        printf 'watchdog: all owners gone at %s, stopping the cluster\n' "$(date -u +%FT%TZ)"
        "$HERE/down.sh"
        rm -f "$STATE/watchdog.pid"
        exit 0
    fi
    exec 8>&-
done
