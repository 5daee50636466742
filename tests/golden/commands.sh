#!/usr/bin/env bash
#
# The command table: every command `cpscale --help` lists answers its own
# --help with exit 0 on stdout, an unknown command exits 2 naming it, and no
# command at all prints the usage to stderr with exit 2; a few flag values
# once taken loosely are refused (gen-trace --step 1.5, tune --budget 1%%,
# tune --budget 0.01 without '%', sim and tune --scale 0) and decide skips
# a byte order mark. Run from the
# repository root (ctest does): bash tests/golden/commands.sh path/to/cpscale
#
# Ends with "N passed, N failed".
set -u

bin=${1:?usage: commands.sh path/to/cpscale}
passed=0
failed=0

check() { # NAME CONDITION...
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "not ok $name" >&2
    fi
}

# the command names: the first word of each line of the Commands: block that
# starts with two spaces and a letter
commands=$("$bin" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\).*/\1/p')
check "the usage lists eight commands" test "$(echo "$commands" | wc -l)" -eq 8

for c in $commands; do
    out=$("$bin" "$c" --help 2>/dev/null)
    rc=$?
    check "$c --help exits 0" test "$rc" -eq 0
    check "$c --help prints its page" test -n "$out"
done

err=$("$bin" no-such-command 2>&1 >/dev/null)
rc=$?
check "an unknown command exits 2" test "$rc" -eq 2
check "an unknown command is named" grep -q '"no-such-command"' <<<"$err"

err=$("$bin" 2>&1 >/dev/null)
rc=$?
check "no command exits 2" test "$rc" -eq 2
check "no command prints the usage" grep -q '^Commands:' <<<"$err"

# flags whose values used to be taken loosely
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
err=$("$bin" gen-trace --days 1 --step 1.5 --output "$tmp/t.csv" 2>&1 >/dev/null)
rc=$?
check "gen-trace --step 1.5 exits 2" test "$rc" -eq 2
check "gen-trace --step 1.5 is not whole seconds" grep -q 'not a whole number of seconds' <<<"$err"
"$bin" gen-trace --days 1 --step 60 --output "$tmp/t.csv" >/dev/null 2>&1
err=$("$bin" tune "$tmp/t.csv" --budget '1%%' 2>&1 >/dev/null)
rc=$?
check "tune --budget 1%% exits 2" test "$rc" -eq 2
check "tune --budget 1%% is not a number" grep -q 'is not a number' <<<"$err"
# a count that is not whole ran truncated (--max-replicas 1.5 as 1), and
# strtod's hexadecimal (0x10, 0x1p-1) was taken where the trace and the
# config refuse it
for args in "sim $tmp/t.csv --max-replicas 1.5" "sim $tmp/t.csv --min-replicas 2.9" \
            "sim $tmp/t.csv --steps $tmp/s.csv --steps-every 1.5" "tune $tmp/t.csv --jobs 1.5"; do
    err=$("$bin" $args 2>&1 >/dev/null)
    rc=$?
    check "${args#* * } exits 2" test "$rc" -eq 2
    check "${args#* * } is not a whole number" grep -q 'is not a whole number' <<<"$err"
done
for args in "--scale 0x10" "--price 0x1p-3" "--policy hpa:0x1p-1" "--service-times lognormal:0x1p-1"; do
    err=$("$bin" sim "$tmp/t.csv" $args 2>&1 >/dev/null)
    rc=$?
    check "sim $args exits 2" test "$rc" -eq 2
    check "sim $args names its value" grep -q "${args#* }" <<<"$err"
done
# a large peak with wide noise wrote rates over the trace format's 1e12,
# which sim then refused: every trace gen-trace writes reads back
"$bin" gen-trace --peak 1e9 --noise 2 --days 30 --bursts-per-day 100 --output "$tmp/wide.csv"
check "gen-trace caps its rates at 1e12" awk -F, 'NR > 1 && $2 > 1e12 { bad = 1 } END { exit bad }' \
    "$tmp/wide.csv"
check "gen-trace's widest trace reads back" \
    bash -c '"$0" sim "$1" --policy oracle --quiet >/dev/null' "$bin" "$tmp/wide.csv"
# the scale's range is open at 0 above it too (it said [0, 1e+12] there)
err=$("$bin" sim "$tmp/t.csv" --scale 2e12 2>&1 >/dev/null)
check "sim --scale 2e12 names the range (0, 1e+12]" grep -qF '"2e12" is outside (0, 1e+12]' <<<"$err"
# the flag held the base latency to what the config's key holds (1 day)
err=$("$bin" sim "$tmp/t.csv" --base-latency 25h 2>&1 >/dev/null)
rc=$?
check "sim --base-latency 25h exits 2" test "$rc" -eq 2
check "sim --base-latency 25h names the range" grep -q 'base latency must be in \[0, 1d\]' <<<"$err"
# pooled routing's exact table costs time in the square of the pods: past
# 10,000 it is refused at once (20,000 took 46 s, a million hours)
err=$(timeout 20 "$bin" sim "$tmp/t.csv" --routing pooled --max-replicas 1000000 2>&1 >/dev/null)
rc=$?
check "sim --routing pooled --max-replicas 1000000 exits 2 at once" test "$rc" -eq 2
check "sim --routing pooled names its limit" grep -q 'pooled routing: at most 10000 replicas' <<<"$err"
# tune --budget is a percent, slo.violation_budget a fraction: a bare number
# below 0.1 (0.01, 0.005) is refused as a likely fraction, naming both
# spellings
for budget in 0.01 0.005 0.09; do
    err=$("$bin" tune "$tmp/t.csv" --budget "$budget" --candidates 1 --quiet 2>&1 >/dev/null)
    rc=$?
    check "tune --budget $budget exits 2" test "$rc" -eq 2
    check "tune --budget $budget offers $budget%" grep -qF "or \"$budget%\" if" <<<"$err"
done
err=$("$bin" tune "$tmp/t.csv" --budget 0.01 --candidates 1 --quiet 2>&1 >/dev/null)
check "tune --budget 0.01 offers 1%" grep -qF 'write "1%" for 1 %' <<<"$err"
# ... and taken as a percent with '%', or when 0 or from 0.1 up (the JSON
# report's budget_pct as jansson prints it)
for pair in '0.01%=0.01' '0.05 %=0.05' '0=0.0' '0.1=0.1' '1=1.0'; do
    budget=${pair%=*} want=${pair#*=}
    out=$("$bin" tune "$tmp/t.csv" --budget "$budget" --candidates 1 --jobs 1 --quiet --json 2>/dev/null)
    rc=$?
    check "tune --budget '$budget' runs" test "$rc" -eq 0
    check "tune --budget '$budget' is $want %" grep -qF "\"budget_pct\": $want," <<<"$out"
done
# --scale 0 replays no request at all (every policy at min replicas, a
# "result"); like a negative or non-finite scale it is refused, in tune too
for scale in 0 -0 -1 nan inf; do
    err=$("$bin" sim "$tmp/t.csv" --quiet --scale "$scale" 2>&1 >/dev/null)
    rc=$?
    check "sim --scale $scale exits 2" test "$rc" -eq 2
    check "sim --scale $scale names the flag" grep -q '^cpscale sim: --scale: ' <<<"$err"
done
err=$("$bin" tune "$tmp/t.csv" --scale 0 2>&1 >/dev/null)
rc=$?
check "tune --scale 0 exits 2" test "$rc" -eq 2
check "tune --scale 0 says why" grep -qF 'cpscale tune: --scale: "0" is outside (0,' <<<"$err"
err=$("$bin" sim "$tmp/t.csv" --steps-every 60 2>&1 >/dev/null)
rc=$?
check "sim --steps-every without --steps exits 2" test "$rc" -eq 2
check "sim --steps-every without --steps says why" grep -q 'needs --steps FILE' <<<"$err"
# a byte order mark before decide's JSON is skipped, as in configs and traces
printf '\xef\xbb\xbf{"now": 0, "observation": {"qps": 10, "p95_ms": 30, "cpu_utilization": 0.2, "replicas": 3, "ready_replicas": 3}}' >"$tmp/bom.json"
out=$("$bin" decide --input "$tmp/bom.json" 2>&1)
rc=$?
check "decide reads JSON after a byte order mark" test "$rc" -eq 0
check "decide answers after a byte order mark" grep -q '"desired"' <<<"$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
