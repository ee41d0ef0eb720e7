#!/usr/bin/env bash
# The README's quick-start commands, exactly as the README writes them, on a machine made to
# look fresh: a clean clone of the committed HEAD, the wasm32-wasip2 target removed from the
# toolchain (put back afterwards), and a new CARGO_HOME whose bin/ holds only rustup's own
# proxies (no `just`, no cargo-installed tool), PATH without /usr/local. Prints each
# command's wall time, then what the commands installed (Debian packages, rustup targets
# and components). The Kubernetes binary cache is shared unless BERTH_FRESH_K8S=cold, which
# gives the run an empty cache of its own (so it builds Kubernetes again, ~6-10 min).
#
# BERTH_FRESH_REPEAT=N then runs the test command N more times in that clone, nothing
# changed, and prints each run's wall time and counts: a suite that passes the first time
# and every time after.
#
#   tests/fresh-machine.sh            # or: just test-fresh-machine
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET=wasm32-wasip2
log() { printf 'fresh-machine: %s\n' "$*" >&2; }

work="$(mktemp -d /tmp/berth-fresh.XXXXXX)"
git clone -q "$ROOT" "$work/berth"
cd "$work/berth"
log "clean clone of $(git rev-parse --short HEAD) in $work/berth"

# The commands, from the README's first ```sh block under "## Quick start", comments dropped.
mapfile -t commands < <(
    awk '/^## Quick start/ {q = 1} q && /^```sh/ {b = 1; next} b && /^```/ {exit} b' README.md |
        sed -e 's/[[:space:]]*#.*$//' -e '/^[[:space:]]*$/d'
)
[ "${#commands[@]}" = 2 ] || { log "expected 2 commands in the README's quick start, found ${#commands[@]}"; exit 1; }

# A CARGO_HOME with rustup's proxies only: the files in ~/.cargo/bin identical to rustup.
real_cargo_home="${CARGO_HOME:-$HOME/.cargo}"
rustup_bin="$real_cargo_home/bin/rustup"
mkdir -p "$work/cargo-home/bin"
for f in "$real_cargo_home"/bin/*; do
    if cmp -s "$f" "$rustup_bin"; then ln -s "$rustup_bin" "$work/cargo-home/bin/$(basename "$f")"; fi
done
log "CARGO_HOME=$work/cargo-home, bin/: $(ls "$work/cargo-home/bin" | tr '\n' ' ')"

had_target=0
targets_before="$(rustup target list --installed | sort)"
grep -qx "$TARGET" <<<"$targets_before" && had_target=1
components_before="$(rustup component list --installed | sort)"
restore() {
    if [ "$had_target" = 1 ] && ! rustup target list --installed | grep -qx "$TARGET"; then
        log "restoring the $TARGET target"
        rustup target add "$TARGET" >/dev/null 2>&1 || log "could not restore $TARGET: rustup target add $TARGET"
    fi
    # The clone's build outputs (5-13 GB a run) go; its logs and cluster state stay to read.
    rm -rf "$work/berth/target"
}
trap restore EXIT
if [ "$had_target" = 1 ]; then
    rustup target remove "$TARGET" >/dev/null 2>&1
    log "removed the $TARGET target from the toolchain (restored at exit)"
fi

packages_before="$(dpkg-query -W -f '${Package}\n' | sort)"
env_fresh=(env -i HOME="$HOME" USER="${USER:-root}" LANG=C.UTF-8 TERM="${TERM:-dumb}"
    PATH="$work/cargo-home/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    CARGO_HOME="$work/cargo-home" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}")
if [ "${BERTH_FRESH_K8S:-}" = cold ]; then
    env_fresh+=(BERTH_CACHE="$work/k8s-cache")
    log "Kubernetes cache: cold ($work/k8s-cache)"
else
    log "Kubernetes cache: shared (BERTH_FRESH_K8S=cold for a cold one)"
fi
if ! "${env_fresh[@]}" bash -c 'command -v just' >/dev/null; then log "just: not on PATH"; fi

times=()
for cmd in "${commands[@]}" "cargo build --release"; do
    log "running: $cmd"
    start=$(date +%s)
    if ! "${env_fresh[@]}" bash -c "$cmd" >"$work/out.log" 2>&1; then
        tail -n 40 "$work/out.log" >&2
        log "FAILED: $cmd (after $(($(date +%s) - start)) s; whole log $work/out.log)"
        exit 1
    fi
    summary=$(awk '/^test result:/ {p += $4; f += $6} END {if (p + f) printf "  (tests: %d passed, %d failed)", p, f}' "$work/out.log")
    times+=("$(($(date +%s) - start)) s  $cmd$summary")
    grep -E '^berth setup:|^provision: (first use|apt-get install|build took)' "$work/out.log" |
        sed 's/^/    /' >&2 || true
done

for ((i = 1; i <= ${BERTH_FRESH_REPEAT:-0}; i++)); do
    cmd="${commands[1]}"
    log "again ($i of $BERTH_FRESH_REPEAT): $cmd"
    start=$(date +%s)
    if ! "${env_fresh[@]}" bash -c "$cmd" >"$work/again-$i.log" 2>&1; then
        tail -n 60 "$work/again-$i.log" >&2
        log "FAILED on run $i of $BERTH_FRESH_REPEAT: $cmd (after $(($(date +%s) - start)) s; whole log $work/again-$i.log)"
        exit 1
    fi
    summary=$(awk '/^test result:/ {p += $4; f += $6} END {printf "  (tests: %d passed, %d failed)", p, f}' "$work/again-$i.log")
    times+=("$(($(date +%s) - start)) s  again $i: $cmd$summary")
done

echo "== wall time of each command (cargo build --release: the README's claim that it works; \"again\": the repeats)"
printf '  %s\n' "${times[@]}"
echo "== Debian packages the commands installed"
comm -13 <(echo "$packages_before") <(dpkg-query -W -f '${Package}\n' | sort) | sed 's/^/  /' | grep . || echo "  (none: all were there already)"
echo "== rustup: targets and components the commands added"
comm -13 <(grep -vx "$TARGET" <<<"$targets_before") <(rustup target list --installed | sort) | sed 's/^/  target /'
comm -13 <(echo "$components_before") <(rustup component list --installed | sort) | sed 's/^/  component /'
echo "== cargo-installed binaries after the run: $(ls "$work/cargo-home/bin" | tr '\n' ' ')"
cd / # rustup (in the restore at exit) needs a working directory that still exists
rm -rf "$work"
