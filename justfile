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
