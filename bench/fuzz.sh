#!/usr/bin/env bash
# Fuzz every parser target for a fixed time each and report the figures.
#
#   bench/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]   (default 180 s, all targets)
#   CPS_FUZZ_RUNS=10000000 bench/fuzz.sh 1800         (stop each target at 10 M
#                                                      executions, 30 min at most)
#
# Configures build-fuzz with clang and -DCPS_FUZZ=ON (the fuzz package set:
# .ci/install-deps fuzz), builds the fuzz_<name> targets and runs them one
# after the other, one fuzzer process at a time (in-process libFuzzer, no
# -jobs/-fork), each on a temporary copy of tests/fuzz/corpus/<name> so the
# repository's corpus does not grow. A crash, leak, UB report, timeout or
# out-of-memory stops that target; its reproducer is kept under
# build-fuzz/fuzz-artifacts/ (add it to tests/fuzz/corpus/<name>/ with the
# fix). Prints per target: executions, exec/s, seconds, crashes. Exits 1 when
# any target found something.
set -euo pipefail

SECONDS_PER_TARGET=${1:-180}
shift || true # the rest, when given, names targets (trace, config, ...)
RSS_LIMIT_MB=2048
UNIT_TIMEOUT_S=25 # one input taking longer than this is reported as a hang
RUNS=${CPS_FUZZ_RUNS:--1} # -1: no execution cap, only the time box

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
artifacts=$build/fuzz-artifacts

if ! command -v clang >/dev/null 2>&1; then
  echo "clang not found: run .ci/install-deps fuzz" >&2
  exit 2
fi
CC=clang cmake -S "$root" -B "$build" -DCPS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for src in "$root"/tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    targets+=("${name#fuzz_}")
  done
fi
for name in "${targets[@]}"; do
  if [ ! -f "$root/tests/fuzz/fuzz_$name.c" ]; then
    echo "no fuzz target $name (tests/fuzz/fuzz_$name.c)" >&2
    exit 2
  fi
done
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}" >/dev/null

mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-12s %14s %10s %8s %8s\n' target executions exec/s seconds crashes
status=0
for name in "${targets[@]}"; do
  corpus=$work/corpus-$name
  mkdir -p "$corpus"
  cp "$root/tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || true
  log=$work/$name.log
  start=$(date +%s)
  set +e
  "$build/tests/fuzz_$name" "$corpus" -max_total_time="$SECONDS_PER_TARGET" -runs="$RUNS" \
    -rss_limit_mb="$RSS_LIMIT_MB" -timeout="$UNIT_TIMEOUT_S" -print_final_stats=1 \
    -artifact_prefix="$artifacts/$name-" >"$log" 2>&1
  rc=$?
  set -e
  elapsed=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ -z "$execs" ]; then # no final stats after some crashes: last status line
    execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  fi
  execs=${execs:-0}
  per_s=$((execs / (elapsed > 0 ? elapsed : 1)))
  found=$(grep -c '^artifact_prefix=.*Test unit written to' "$log" || true)
  if [ "$rc" -ne 0 ] && [ "$found" -eq 0 ]; then
    found=1 # died without writing a reproducer: still a finding
  fi
  printf '%-12s %14s %10s %8s %8s\n' "$name" "$execs" "$per_s" "$elapsed" "$found"
  if [ "$found" -ne 0 ]; then
    status=1
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | sed 's/^/    /' | head -8
    cp "$log" "$artifacts/$name.log"
  fi
done
exit $status
