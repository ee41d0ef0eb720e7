#!/usr/bin/env bash
# Provision the local Kubernetes control plane binaries, once per machine.
#
# Installs (through apt) etcd, Go, openssl and what the build needs, fetches Debian's
# kubernetes source package, swaps its vendored reflect2 1.0.1 (crashes under Go >= 1.18)
# for Debian's 1.0.2, builds kube-apiserver and kube-controller-manager in GOPATH mode and
# caches them in "$BERTH_CACHE/k8s-<debian source version>/bin". A later run finds the cache
# (by asking the local apt lists which source version they offer, or, before any
# `apt-get update`, by the version recorded last) and returns at once. Progress goes to
# stderr; the last stdout line is the cached bin directory.
#
# Env knobs:
#   BERTH_CACHE        cache root (default /var/cache/berth, or ~/.cache/berth if not writable)
#   BERTH_REBUILD=1    ignore the cache and build again
set -euo pipefail

log() { printf 'provision: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

APT_PACKAGES=(golang-go etcd-server rsync golang-github-modern-go-reflect2-dev openssl curl dpkg-dev make ca-certificates)
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

pick_cache_root() {
    local want="${BERTH_CACHE:-/var/cache/berth}"
    if mkdir -p "$want" 2>/dev/null && [ -w "$want" ]; then
        printf '%s\n' "$want"
    else
        local alt="${XDG_CACHE_HOME:-$HOME/.cache}/berth"
        mkdir -p "$alt"
        printf '%s\n' "$alt"
    fi
}

CACHE_ROOT="$(pick_cache_root)"
LAST_FILE="$CACHE_ROOT/k8s-last-version"

# The Debian source version apt offers (local lists only, no network); empty if unknown.
offered_version() {
    apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2; exit}'
}

set_key() {
    SRC_VERSION="$1"
    KEY_DIR="$CACHE_ROOT/k8s-${SRC_VERSION//:/_}"
    BIN_DIR="$KEY_DIR/bin"
    STAMP="$KEY_DIR/complete"
}

runtime_ready() {
    # kubectl: the controller's tests drive it as a platform team does.
    command -v etcd >/dev/null && command -v openssl >/dev/null && command -v curl >/dev/null &&
        command -v kubectl >/dev/null
}

cache_ready() {
    [ -n "${SRC_VERSION:-}" ] && [ -f "$STAMP" ] && [ -x "$BIN_DIR/kube-apiserver" ] &&
        [ -x "$BIN_DIR/kube-controller-manager" ]
}

cached_exit() {
    log "cached kubernetes binaries (source $SRC_VERSION) in $BIN_DIR"
    printf '%s\n' "$BIN_DIR"
    exit 0
}

try_cache() {
    [ "${BERTH_REBUILD:-0}" != 1 ] || return 0
    runtime_ready || return 0
    local v
    v="$(offered_version)"
    if [ -z "$v" ] && [ -f "$LAST_FILE" ]; then
        v="$(cat "$LAST_FILE")"
    fi
    [ -n "$v" ] || return 0
    set_key "$v"
    if cache_ready; then cached_exit; fi
}

try_cache

log "first use on this machine: installing the control plane's Debian packages (${APT_PACKAGES[*]})"
log "and building kube-apiserver and kube-controller-manager from Debian's kubernetes source:"
log "about 10 minutes, once; cached in $CACHE_ROOT"
[ "$(id -u)" = 0 ] || die "needs root for apt-get: run this once as root (or sudo) to fill $CACHE_ROOT"

# Serialize concurrent provisioning (e.g. two test processes on a fresh machine).
exec 9>"$CACHE_ROOT/.provision.lock"
if ! flock -n 9; then
    log "another provisioning run holds $CACHE_ROOT/.provision.lock; waiting"
    flock 9
fi
try_cache

APT_OPTS=(-y -q -o DPkg::Lock::Timeout=600)
export DEBIAN_FRONTEND=noninteractive

# 1. deb-src entry mirroring the Debian binary entries.
SRC_LIST=/etc/apt/sources.list.d/berth-deb-src.sources
if [ ! -f "$SRC_LIST" ]; then
    [ -f /etc/apt/sources.list.d/debian.sources ] || die "no /etc/apt/sources.list.d/debian.sources to mirror"
    log "adding deb-src entries in $SRC_LIST"
    sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$SRC_LIST.tmp"
    mv "$SRC_LIST.tmp" "$SRC_LIST"
fi

# 2. packages. apt-get update once per provisioning run (sources may be stale on a new machine).
log "apt-get update"
apt-get -q update >&2
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# kubectl only when there is none: Debian's kubernetes-client (the control plane's own
# version) would collide with a kubectl another package installed (Google Cloud SDK's).
command -v kubectl >/dev/null || missing+=(kubernetes-client)
if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get install "${missing[@]}" "${APT_OPTS[@]}" --no-install-recommends >&2
fi
runtime_ready || die "etcd/openssl/curl/kubectl still missing after apt-get install"

try_cache

# 3. the source package.
src_version="$(offered_version)"
[ -n "$src_version" ] || die "apt-cache showsrc kubernetes found nothing (deb-src entry not effective?)"
set_key "$src_version"
# Debian's "1.20.5+really1.20.2-1.1+deb12u1" is upstream 1.20.2.
upstream="${src_version#*:}"
case "$upstream" in *+really*) upstream="${upstream#*+really}" ;; esac
upstream="${upstream%%-*}"
upstream="${upstream%%+*}"

BUILD_DIR="$KEY_DIR/build"
rm -rf "$BUILD_DIR"
mkdir -p "$BUILD_DIR"
log "apt-get source kubernetes=$src_version into $BUILD_DIR"
(cd "$BUILD_DIR" && apt-get source -q "kubernetes=$src_version" >&2)
SRC_ROOT="$(find "$BUILD_DIR" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)"
if [ -z "$SRC_ROOT" ] || [ ! -f "$SRC_ROOT/Makefile" ]; then die "no kubernetes source tree under $BUILD_DIR"; fi

# 4. reflect2 1.0.1 -> 1.0.2.
VENDORED="$SRC_ROOT/vendor/github.com/modern-go/reflect2"
[ -d "$REFLECT2_SRC" ] || die "missing $REFLECT2_SRC (golang-github-modern-go-reflect2-dev)"
log "replacing vendored reflect2 with $REFLECT2_SRC"
rm -rf "$VENDORED"
mkdir -p "$VENDORED"
cp -a "$REFLECT2_SRC"/. "$VENDORED"/
find "$VENDORED" -name '*_test.go' -delete

# 5. GOPATH-mode build, the way Debian builds it.
log "building kube-apiserver and kube-controller-manager (several minutes on a cold Go cache)"
mkdir -p "$SRC_ROOT/.go/src/k8s.io"
ln -sfn "$SRC_ROOT" "$SRC_ROOT/.go/src/k8s.io/kubernetes"
started=$SECONDS
(
    cd "$SRC_ROOT/.go/src/k8s.io/kubernetes"
    export GOPATH="$SRC_ROOT/.go" GO111MODULE=off GOFLAGS='' CGO_ENABLED=0 GOPROXY=off
    export KUBE_GIT_VERSION="v$upstream" KUBE_GIT_TREE_STATE=clean
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2
)
log "build took $((SECONDS - started)) s"

out="$(find "$SRC_ROOT/_output" -type f -name kube-apiserver -path '*/bin/*' | head -n 1)"
[ -n "$out" ] || die "build produced no kube-apiserver under $SRC_ROOT/_output"
out_dir="$(dirname "$out")"
mkdir -p "$BIN_DIR.tmp"
cp "$out_dir/kube-apiserver" "$out_dir/kube-controller-manager" "$BIN_DIR.tmp/"
rm -rf "$BIN_DIR"
mv "$BIN_DIR.tmp" "$BIN_DIR"
printf 'source=%s\nupstream=%s\nbuilt=%s\n' "$src_version" "$upstream" "$(date -u +%FT%TZ)" >"$STAMP"
printf '%s\n' "$src_version" >"$LAST_FILE"
rm -rf "$BUILD_DIR"
log "cached in $BIN_DIR"
printf '%s\n' "$BIN_DIR"
