#!/usr/bin/env bash
# Throughput of `cpscale tune`: configurations x simulated seconds per second
# of wall time (every candidate and HPA target replays the training part of
# each trace; the winners also replay the test part), with 1 thread and with
# every online CPU, and the speed-up between the two.
#   bench/tune_throughput.sh [CPSCALE] [TRACE[:SCALE]] [CANDIDATES]
# Default trace: ../shared/traces/nasa-jul95-1m.csv:900 when present, else a
# generated 28-day trace. A benchmark: it prints figures, it gates nothing.
set -euo pipefail
bin=${1:-build/cpscale}
trace=${2:-}
candidates=${3:-64}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$trace" ]; then
  if [ -f ../shared/traces/nasa-jul95-1m.csv ]; then
    trace=../shared/traces/nasa-jul95-1m.csv:900
  else
    "$bin" gen-trace --days 28 --seed 1 --output "$tmp/gen.csv"
    trace=$tmp/gen.csv
  fi
fi
cpus=$(nproc 2>/dev/null || echo 2)
run() { # JOBS -> "simulated_seconds elapsed_s"
  "$bin" tune "$trace" --candidates "$candidates" --jobs "$1" --json --quiet |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["simulated_seconds"], r["elapsed_s"])'
}
read -r sim1 t1 < <(run 1)
read -r simn tn < <(run "$cpus")
printf 'trace              %s\n' "$trace"
printf 'configurations     %d candidates + 18 HPA targets (and the oracle), train/test split 0.5\n' "$candidates"
printf 'simulated seconds  %.4g per run\n' "$sim1"
printf '1 thread           %.2f s: %.1f M configuration-seconds/s\n' "$t1" "$(echo "$sim1 / $t1 / 1000000" | bc -l)"
printf '%d threads          %.2f s: %.1f M configuration-seconds/s\n' "$cpus" "$tn" "$(echo "$simn / $tn / 1000000" | bc -l)"
printf 'speed-up           %.2fx on %d CPUs\n' "$(echo "$t1 / $tn" | bc -l)" "$cpus"
