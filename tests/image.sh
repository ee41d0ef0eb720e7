#!/usr/bin/env bash
# The controller's image without a Docker daemon: an OCI image layout directory holding
# one layer — the berth binary (stripped), the C libraries it links as this Debian
# machine's libc6 and libgcc-s1 packages ship them, a non-root user (65532), the CA bundle
# for registries, an empty cache directory — and a config whose entrypoint is berth.
# Byte-identical for the same binary and libraries (sorted, owned by root, mtime 0).
#
# Usage: tests/image.sh BERTH_BINARY LAYOUT_DIR   (`cargo xtask image` builds the release
# binary and runs this; `berth controller push-image LAYOUT_DIR oci://…:TAG` pushes it.)
set -euo pipefail
umask 022

berth=$(realpath "${1:?usage: tests/image.sh BERTH_BINARY LAYOUT_DIR}")
layout=${2:?usage: tests/image.sh BERTH_BINARY LAYOUT_DIR}
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT

install -d "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/var/cache/berth"
strip -o "$root/usr/local/bin/berth" "$berth"
chmod 0755 "$root/usr/local/bin/berth"
# Each library at the path the binary asks for (the loader at /lib64, the rest as ldd
# finds them), copied from the files the symlinks name.
libraries=$(ldd "$berth" 2>/dev/null || true) # a static binary links none
echo "$libraries" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' |
    while read -r lib; do
        install -D -m 0755 "$(realpath "$lib")" "$root$lib"
    done
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
chmod 1777 "$root/tmp" "$root/var/cache/berth"

rm -rf "$layout"
install -d "$layout/blobs/sha256"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
    -C "$root" -cf "$layout/layer.tar" .
# blob FILE: moved into blobs/ under its digest; prints `sha256:<hex> <size>`.
blob() {
    local hex size
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    mv "$1" "$layout/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}
read -r layer layer_size < <(blob "$layout/layer.tar")
version=$("$berth" --version)
architecture=$(dpkg --print-architecture 2>/dev/null || echo amd64)
printf '{"architecture":"%s","os":"linux","config":{"User":"65532:65532","Entrypoint":["/usr/local/bin/berth"],"Env":["PATH=/usr/local/bin:/usr/bin:/bin","BERTH_CACHE_DIR=/var/cache/berth"],"WorkingDir":"/","Labels":{"org.opencontainers.image.title":"berth","org.opencontainers.image.version":"%s"}},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$architecture" "${version#berth }" "$layer" >"$layout/config.json"
read -r config config_size < <(blob "$layout/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" >"$layout/manifest.json"
read -r manifest manifest_size < <(blob "$layout/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s}]}' \
    "$manifest" "$manifest_size" >"$layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
echo "image: $layout (manifest $manifest, one layer of $((layer_size / 1048576)) MiB)" >&2
