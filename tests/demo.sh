#!/usr/bin/env bash
# The demo: what a user sees when berth turns the full example into Kubernetes objects.
set -euo pipefail
berth=${1:-target/release/berth}
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step berth render --spec examples/full.yaml --config examples/site.yaml -n demo
"$berth" render --spec examples/full.yaml --config examples/site.yaml -n demo

step berth render --spec examples/minimal.yaml -o json
"$berth" render --spec examples/minimal.yaml -o json

step 'berth render --spec bad-ports.yaml   # bad input: a clear error, non-zero exit'
bad=$(mktemp --suffix=.yaml)
trap 'rm -f "$bad"' EXIT
printf 'component_name: web\nimage: nginx:1.27\nports: ["8080:0", "9101:"]\n' > "$bad"
if "$berth" render --spec "$bad"; then
    echo "expected a refusal" >&2
    exit 1
else
    echo "(exit code $?)"
fi
