#!/usr/bin/env bash
# Simulator speed against awk on the same file, in one run:
#   cpscale sim ../shared/traces/nasa-jul95-1s.csv --scale 900 (cpscale, hpa, oracle)
#   awk -F, 'NR>1{s+=$2}END{print s}' ../shared/traces/nasa-jul95-1s.csv
# Prints the best of N runs of each, the ratio, and cpscale's peak RSS.
# Usage: bench/speed.sh [CPSCALE] [TRACE] [RUNS]
set -euo pipefail
bin=${1:-build/cpscale}
trace=${2:-../shared/traces/nasa-jul95-1s.csv}
runs=${3:-5}
[ -f "$trace" ] || { echo "speed: $trace not found" >&2; exit 2; }

best() { sort -n | head -1; }
# seconds of wall time for one run of a command (GNU time, or bash's own)
wall() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
cat "$trace" >/dev/null # warm the page cache for both
sim_times=() awk_times=()
for _ in $(seq "$runs"); do
  sim_times+=("$(wall "$bin" sim "$trace" --scale 900 --quiet)")
  awk_times+=("$(wall awk -F, 'NR>1{s+=$2}END{print s}' "$trace")")
done
sim=$(printf '%s\n' "${sim_times[@]}" | best)
awk_s=$(printf '%s\n' "${awk_times[@]}" | best)
rss_kb=$(/usr/bin/time -f '%M' "$bin" sim "$trace" --scale 900 --quiet 2>&1 >/dev/null | tail -1)
rows=$(($(wc -l < "$trace") - 1))
printf 'trace            %s (%d rows)\n' "$trace" "$rows"
printf 'cpscale sim      %.3f s (best of %d; policies cpscale,hpa,oracle)\n' "$sim" "$runs"
printf 'awk sum          %.3f s (best of %d)\n' "$awk_s" "$runs"
printf 'ratio            %.2f (must be <= 2.0, target <= 1.0)\n' "$(echo "$sim / $awk_s" | bc -l)"
printf 'peak RSS         %.1f MB (target <= 64 MB)\n' "$(echo "$rss_kb / 1024" | bc -l)"
printf 'simulated        %.1f M seconds/s per policy set\n' "$(echo "$rows / $sim / 1000000" | bc -l)"
