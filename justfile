# berth — the developers' commands. `just` lists them. `just` is optional (`cargo install
# --locked just`): the README's two commands are `cargo xtask demo` and `cargo xtask test`.

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

# The demo: berth's main job on the local control plane (= `cargo xtask demo`; sets up what it needs).
demo:
    cargo xtask demo

# Every test: formatting, lints (native and guest), docs, unit, CLI and cluster tests (= `cargo xtask test`).
test:
    cargo xtask test

# The README's two commands on a clean clone, wasm target removed, no cargo-installed tools.
test-fresh-machine:
    tests/fresh-machine.sh

# Benchmarks (criterion).
bench:
    cargo bench -p berth

# Whole-process timing of `berth render` (hyperfine): warm cache, first run, peak memory.
bench-cli:
    cargo xtask bench-cli

# 50 components deployed and waited for: one berth, 50 berths, kubectl apply + rollout status.
bench-fleet:
    cargo xtask bench-fleet

# Build the example site rules: target/wasm32-wasip2/release/site_rules.wasm.
site-rules:
    cargo build --release -p site-rules --target wasm32-wasip2

# Build the same rules in Python (componentize-py, from PyPI on first use): target/python-rules.wasm.
python-rules:
    examples/python-rules/build.sh

# Property tests beyond CI's 256 cases per property, e.g. `just fuzz 250000`.
fuzz cases="20000":
    PROPTEST_CASES={{cases}} cargo test -p berth-fuzz --release
