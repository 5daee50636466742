#!/usr/bin/env bash
# Simulator speed against awk on the same file:
#   cpscale sim ../shared/traces/nasa-jul95-1s.csv --scale 900 --quiet (cpscale, hpa, oracle)
#   awk -F, 'NR>1{s+=$2}END{print s}' ../shared/traces/nasa-jul95-1s.csv
#
# Two measures, printed with what they mean:
#   CPU ratio  (the bar): PAIRS paired runs, each pair one sim run and one awk
#              run back to back (which goes first alternates); each run's CPU
#              time is user+sys of that process (bash `times`, 1 ms steps);
#              the ratio sim/awk is taken per pair and the MEDIAN is reported.
#              Pairing and the median keep a noisy shared machine from
#              favouring either side.
#   wall ratio (kept for comparison): best wall time of RUNS runs of each.
# Then cpscale's peak RSS (GNU time %M) and the simulated seconds per second.
# Usage: bench/speed.sh [CPSCALE] [TRACE] [RUNS] [PAIRS]
set -euo pipefail
bin=${1:-build/cpscale}
trace=${2:-../shared/traces/nasa-jul95-1s.csv}
runs=${3:-5}
pairs=${4:-7}
[ -f "$trace" ] || { echo "speed: $trace not found" >&2; exit 2; }
[ -x "$bin" ] || { echo "speed: $bin is not an executable" >&2; exit 2; }

sim_cmd=("$bin" sim "$trace" --scale 900 --quiet)
awk_cmd=(awk -F, 'NR>1{s+=$2}END{print s}' "$trace")

best() { sort -g | head -1; }
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# seconds of wall time for one run of a command
wall() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

# seconds of CPU time (user + sys) of one run of a command: the second line
# of `times` in a subshell is what that subshell's children used
cpu() {
  (
    "$@" >/dev/null 2>&1
    times
  ) | awk 'NR == 2 {
      n = split($0, f, /[ms ]+/)
      print f[1] * 60 + f[2] + f[3] * 60 + f[4]
    }'
}

cat "$trace" >/dev/null # warm the page cache for both

ratios=() sim_cpus=() awk_cpus=()
for i in $(seq "$pairs"); do
  if [ $((i % 2)) -eq 1 ]; then
    s=$(cpu "${sim_cmd[@]}")
    a=$(cpu "${awk_cmd[@]}")
  else
    a=$(cpu "${awk_cmd[@]}")
    s=$(cpu "${sim_cmd[@]}")
  fi
  sim_cpus+=("$s") awk_cpus+=("$a")
  ratios+=("$(echo "$s / $a" | bc -l)")
done

sim_times=() awk_times=()
for _ in $(seq "$runs"); do
  sim_times+=("$(wall "${sim_cmd[@]}")")
  awk_times+=("$(wall "${awk_cmd[@]}")")
done
sim=$(printf '%s\n' "${sim_times[@]}" | best)
awk_s=$(printf '%s\n' "${awk_times[@]}" | best)
rss_kb=$(/usr/bin/time -f '%M' "${sim_cmd[@]}" 2>&1 >/dev/null | tail -1)
rows=$(($(wc -l < "$trace") - 1))

printf 'trace            %s (%d rows)\n' "$trace" "$rows"
printf 'CPU time pairs   sim/awk per pair (user+sys s):'
for i in $(seq 0 $((pairs - 1))); do
  printf ' %.3f/%.3f' "${sim_cpus[$i]}" "${awk_cpus[$i]}"
done
printf '\n'
printf 'CPU ratio        %.2f  median of %d paired sim/awk CPU-time ratios (target <= 1.0)\n' \
  "$(printf '%s\n' "${ratios[@]}" | median)" "$pairs"
printf 'cpscale sim      %.3f s wall (best of %d; policies cpscale,hpa,oracle)\n' "$sim" "$runs"
printf 'awk sum          %.3f s wall (best of %d)\n' "$awk_s" "$runs"
printf 'wall ratio       %.2f  best-of-%d wall times, sim/awk (must be <= 2.0)\n' \
  "$(echo "$sim / $awk_s" | bc -l)" "$runs"
printf 'peak RSS         %.1f MB of cpscale sim (target < 16 MB)\n' "$(echo "$rss_kb / 1024" | bc -l)"
printf 'simulated        %.1f M seconds/s per policy set (wall)\n' \
  "$(echo "$rows / $sim / 1000000" | bc -l)"
