# berth — the commands. `just` lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Start the local control plane (builds it once per machine); prints the admin kubeconfig path last.
cluster-up:
    tests/cluster/up.sh

# Stop the local control plane started by cluster-up.
cluster-down:
    tests/cluster/down.sh

# Integration test of the local control plane. Starts its own cluster (stopped when the test
# process exits) unless BERTH_KUBECONFIG names one, e.g. from `just cluster-up`.
test-cluster:
    cargo test -p berth-e2e --test control_plane

# The demo: berth's main job on the local control plane.
demo:
    cargo build --release --quiet
    tests/demo.sh target/release/berth

# Every test: formatting, lints (native and guest), unit, CLI and cluster tests.
test:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --quiet -- -D warnings
    cargo clippy -p berth-rules --target wasm32-wasip2 --quiet -- -D warnings
    cargo clippy -p site-rules -p berth-hostile-rules -p berth-other-world --target wasm32-wasip2 --quiet -- -D warnings
    kubeconfig=$(tests/cluster/up.sh | tail -n 1)
    trap tests/cluster/down.sh EXIT
    BERTH_KUBECONFIG="$kubeconfig" cargo test --workspace

# Benchmarks (criterion).
bench:
    cargo bench -p berth

# Whole-process timing of `berth render` (hyperfine): warm cache, first run, peak memory.
bench-cli:
    cargo build --release --quiet
    tests/bench-cli.sh target/release/berth

# Build the example site rules: target/wasm32-wasip2/release/site_rules.wasm.
site-rules:
    cargo build --release -p site-rules --target wasm32-wasip2

# Property tests beyond CI's 256 cases per property, e.g. `just fuzz 250000`.
fuzz cases="20000":
    PROPTEST_CASES={{cases}} cargo test -p berth-fuzz --release
