#!/usr/bin/env bash
# Whole-process timing of `berth render` (hyperfine) and its peak memory (/usr/bin/time -v).
#
# Usage: tests/bench-cli.sh BERTH_BINARY   (`cargo xtask bench-cli` / `just bench-cli`
# builds it first). Measures, on examples/full.yaml with examples/site.yaml:
#   - warm:  compiled-code cache warm (BERTH_CACHE_DIR in a temp dir, filled once first);
#   - first: cache emptied before every run, so each run compiles the component;
#   - floor: `berth --version`, the process without any rules work, and `true`, any process;
#   - many:  one process rendering N = 1, 10, 100, 1000 copies of the full example (distinct
#            names) from one multi-document file, and 1000 from a directory of files;
# then peak RSS of a warm and of a first run. Prints the figures against issue 6's targets
# (warm < 15 ms wall, < 30 MiB peak, N components linear); it reports, it never fails on a
# figure.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
berth=$(realpath "${1:?usage: tests/bench-cli.sh BERTH_BINARY (cargo xtask bench-cli builds it and runs this)}")
spec=$root/examples/full.yaml
site=$root/examples/site.yaml
warm_runs=${BENCH_WARM_RUNS:-200}
first_runs=${BENCH_FIRST_RUNS:-10}

if [[ ! -x $berth ]]; then
    echo "bench-cli: $berth is missing; run \`cargo build --release\` first" >&2
    exit 1
fi

# hyperfine and GNU time come from Debian; install them when missing (CI runs as root).
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[[ -x /usr/bin/time ]] || need+=(time)
if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "bench-cli: install ${need[*]} (Debian: apt-get install -y ${need[*]})" >&2
        exit 1
    fi
    apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
warm_cache=$tmp/warm-cache
cold_cache=$tmp/cold-cache
render=("$berth" render --spec "$spec" --config "$site")

# Warm the cache once; the output must be right before anything is timed.
BERTH_CACHE_DIR=$warm_cache "${render[@]}" >"$tmp/out.yaml"
grep -q '^kind: Deployment' "$tmp/out.yaml" || {
    echo "bench-cli: berth render printed no Deployment" >&2
    exit 1
}

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(uname -r)"
echo "== $berth ($(stat -c %s "$berth") bytes)"
echo

hyperfine -N --style basic --warmup 20 --runs "$warm_runs" \
    --export-csv "$tmp/warm.csv" \
    --command-name "warm: berth render (cache warm)" \
    "env BERTH_CACHE_DIR=$warm_cache ${render[*]}" \
    --command-name "floor: berth --version" \
    "$berth --version" \
    --command-name "floor: true" \
    "$(command -v true)"
echo
hyperfine -N --style basic --runs "$first_runs" \
    --export-csv "$tmp/first.csv" \
    --prepare "rm -rf $cold_cache" \
    --command-name "first: berth render (cache emptied before each run)" \
    "env BERTH_CACHE_DIR=$cold_cache ${render[*]}"

# N copies of the full example, `inventory-0` …, as a directory and as one YAML stream.
counts=(1 10 100 1000)
mkdir -p "$tmp/dir"
for ((i = 0; i < 1000; i++)); do
    sed "s/^component_name: inventory$/component_name: inventory-$i/" "$spec" >"$tmp/dir/c$i.yaml"
done
for n in "${counts[@]}"; do
    for ((i = 0; i < n; i++)); do
        echo ---
        cat "$tmp/dir/c$i.yaml"
    done >"$tmp/many-$n.yaml"
done
many=()
for n in "${counts[@]}"; do
    many+=(--command-name "many: $n" "env BERTH_CACHE_DIR=$warm_cache ${render[*]/$spec/$tmp/many-$n.yaml} -o json")
done
many+=(--command-name "many: dir 1000" "env BERTH_CACHE_DIR=$warm_cache ${render[*]/$spec/$tmp/dir} -o json")
echo
hyperfine -N --style basic --warmup 3 --min-runs 10 --export-csv "$tmp/many.csv" "${many[@]}"
"$berth" render --spec "$tmp/many-1000.yaml" --config "$site" -o json >"$tmp/many.json"
deployments=$(grep -c '"kind": "Deployment"' "$tmp/many.json")
[[ $deployments == 1000 ]] || {
    echo "bench-cli: 1000 specs rendered $deployments Deployments" >&2
    exit 1
}

# Peak resident set, largest of a few runs, in KiB.
peak_kib() {
    local max=0 kib
    for _ in 1 2 3 4 5; do
        [[ $1 == cold ]] && rm -rf "$cold_cache"
        kib=$(BERTH_CACHE_DIR=$2 /usr/bin/time -v "${render[@]}" 2>&1 >/dev/null |
            awk -F': ' '/Maximum resident set size/ {print $2}')
        ((kib > max)) && max=$kib
    done
    echo "$max"
}
warm_kib=$(peak_kib warm "$warm_cache")
first_kib=$(peak_kib cold "$cold_cache")

# hyperfine's CSV: command,mean,stddev,median,user,system,min,max (seconds).
field() { awk -F, -v name="$2" -v col="$3" '$1 ~ name {printf "%.2f", $col * 1000}' "$1"; }
warm_mean=$(field "$tmp/warm.csv" '^warm' 2)
warm_sd=$(field "$tmp/warm.csv" '^warm' 3)
warm_median=$(field "$tmp/warm.csv" '^warm' 4)
floor_mean=$(field "$tmp/warm.csv" '^floor: berth' 2)
true_mean=$(field "$tmp/warm.csv" '^floor: true' 2)
first_mean=$(field "$tmp/first.csv" '^first' 2)
first_sd=$(field "$tmp/first.csv" '^first' 3)
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v < t) ? "met" : "NOT met"}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

many_1=$(field "$tmp/many.csv" '^many: 1$' 2)
many_1000=$(field "$tmp/many.csv" '^many: 1000$' 2)
dir_1000=$(field "$tmp/many.csv" '^many: dir 1000$' 2)
per() { awk -v t="$1" -v base="$many_1" -v n="$2" 'BEGIN {printf "%.1f", (t - base) * 1000 / (n - 1)}'; }

echo
echo "== summary"
printf '%-38s %s\n' \
    "warm render, wall (mean ± sd):" "$warm_mean ± $warm_sd ms (median $warm_median ms; target < 15 ms: $(verdict "$warm_mean" 15))" \
    "warm render, peak RSS:" "$(mib "$warm_kib") MiB (target < 30 MiB: $(verdict "$(mib "$warm_kib")" 30))" \
    "first run (compiles), wall:" "$first_mean ± $first_sd ms" \
    "first run, peak RSS:" "$(mib "$first_kib") MiB" \
    "process floor (berth --version):" "$floor_mean ms" \
    "any process (true):" "$true_mean ms" \
    "N components, one process (-o json):" "$(for n in "${counts[@]}"; do printf '%s: %s ms  ' "$n" "$(field "$tmp/many.csv" "^many: $n\$" 2)"; done)" \
    "each component beyond the first:" "$(per "$many_1000" 1000) µs (multi-document file), $(per "$dir_1000" 1000) µs (directory of 1000 files)"
