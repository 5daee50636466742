#!/usr/bin/env bash
# What-if runs of `cpscale sim` (a world flag given a list of values):
#  - the table has a row per value and policy;
#  - with --json, each value's figures are exactly those of a plain
#    `cpscale sim` run with that single value, and the changes are the
#    differences from the first value;
#  - physics: price only scales cost (decisions do not depend on it without a
#    cost target), --scale multiplies the requests;
#  - one list at a time, given once (not twice, nor with a single value of
#    the same flag); lists do not go with --steps/--plot/--record-trace;
#    bad or repeated values exit 2.
# usage: bash tests/golden/whatif.sh path/to/cpscale   (from the repo root)
# Ends with "N passed, N failed".
set -u

bin=${1:?usage: whatif.sh path/to/cpscale}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() {
    failed=$((failed + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '%s\n' "$2" | head -20 | sed 's/^/    /'
}

"$bin" gen-trace --days 1 --seed 21 --output "$tmp/t.csv" || exit 1

out=$("$bin" sim "$tmp/t.csv" --quiet --startup 5s,30s,120s 2>&1)
rc=$?
rows=$(grep -cE '^(5s|30s|120s) +cpscale|^ +(hpa|oracle) ' <<<"$out")
if [ $rc -eq 0 ] && [ "$rows" -eq 9 ] && grep -q "change %" <<<"$out"; then
    ok "the table has 3 values x 3 policies"
else
    fail "the table has 3 values x 3 policies (exit $rc, $rows rows)" "$out"
fi

# compare FLAG LIST: each value's figures = a single-value run; changes = differences
compare() {
    local flag=$1 list=$2
    "$bin" sim "$tmp/t.csv" --quiet --json "$flag" "$list" >"$tmp/whatif.json" 2>"$tmp/err" || {
        fail "$flag $list --json" "$(cat "$tmp/err")"
        return
    }
    if python3 - "$bin" "$tmp/t.csv" "$flag" "$tmp/whatif.json" <<'EOF'; then
import json, subprocess, sys
binary, trace, flag, path = sys.argv[1:5]
w = json.load(open(path))
problems = []
first = {p["policy"]: p for p in w["values"][0]["policies"]}
for v in w["values"]:
    single = subprocess.run([binary, "sim", trace, "--quiet", "--json", flag, v["value"]],
                            capture_output=True, text=True, check=True).stdout
    s = {p["policy"]: p for p in json.loads(single)["policies"]}
    if json.loads(single)["params"] != v["params"]:
        problems.append("%s: params differ" % v["value"])
    for p in v["policies"]:
        q = s[p["policy"]]
        for key in ("cost_usd", "violation_pct", "pod_starts", "scale_actions", "peak_pods"):
            if p[key] != q[key]:
                problems.append("%s %s %s: %r vs single run %r" % (v["value"], p["policy"], key,
                                                                  p[key], q[key]))
        f = first[p["policy"]]
        if abs(p["change_cost_usd"] - (p["cost_usd"] - f["cost_usd"])) > 1e-9:
            problems.append("%s %s change_cost_usd" % (v["value"], p["policy"]))
        if abs(p["change_violation_pct"] - (p["violation_pct"] - f["violation_pct"])) > 1e-9:
            problems.append("%s %s change_violation_pct" % (v["value"], p["policy"]))
if problems:
    print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
        ok "$flag $list: each value = a single-value sim run; changes are differences"
    else
        fail "$flag $list: each value = a single-value sim run"
    fi
}
compare --startup 5s,30s,120s
compare --service-rate 100,60
compare --routing random,pooled
compare --lag 0s,45s
compare --interval 15s,1m

"$bin" sim "$tmp/t.csv" --quiet --json --price 0.02,0.05 >"$tmp/price.json"
if python3 - "$tmp/price.json" <<'EOF'; then
import json, sys
w = json.load(open(sys.argv[1]))
a, b = ({p["policy"]: p for p in v["policies"]} for v in w["values"])
bad = [n for n in a if abs(b[n]["cost_usd"] / a[n]["cost_usd"] - 2.5) > 1e-9
       or b[n]["violation_pct"] != a[n]["violation_pct"]]
sys.exit(1 if bad else 0)
EOF
    ok "price 0.02 -> 0.05 multiplies every cost by 2.5 and changes no violation"
else
    fail "price 0.02 -> 0.05 multiplies every cost by 2.5"
fi
"$bin" sim "$tmp/t.csv" --quiet --json --scale 1,2 >"$tmp/scale.json"
if python3 -c '
import json, sys
w = json.load(open(sys.argv[1]))
r = [v["requests"] for v in w["values"]]
sys.exit(0 if abs(r[1] / r[0] - 2) < 1e-12 else 1)' "$tmp/scale.json"; then
    ok "scale 1 -> 2 doubles the requests"
else
    fail "scale 1 -> 2 doubles the requests"
fi

expect_usage() { # NAME MESSAGE ARGS...
    local name=$1 message=$2
    shift 2
    out=$("$bin" sim "$tmp/t.csv" --quiet "$@" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$message" <<<"$out"; then ok "$name"; else
        fail "$name (exit $rc)" "$out"; fi
}
expect_usage "two lists are refused" "one list at a time" --startup 5s,30s --price 0.02,0.05
expect_usage "one flag listing twice is refused" "--startup lists values twice" --startup 5s,30s --startup 60s,90s
expect_usage "a list and a single value of one flag are refused" "--lag is given both a list and a single value" --lag 0s,15s --lag 30s
expect_usage "a single value, then a list of one flag, are refused" "--lag is given both" --lag 30s --lag 0s,15s
expect_usage "a list with --steps is refused" "take one world" --startup 5s,30s --steps "$tmp/s.csv"
expect_usage "a list with --record-trace is refused" "take one world" --lag 0s,15s --record-trace "$tmp/r.csv"
expect_usage "a bad value is refused" "--startup" --startup 5s,soon
expect_usage "a repeated value is refused" "listed twice" --price 0.05,0.05
expect_usage "an empty item is refused" "bad list item" --scale 1,,2
expect_usage "a zero scale is refused" '--scale: "0" is outside (0,' --scale 0,1
expect_usage "a value the world refuses names the flag" "--interval" --interval 0s,15s
if "$bin" sim "$tmp/t.csv" --quiet --record-trace "$tmp/rec.csv" >/dev/null &&
    [ "$(head -n 1 "$tmp/rec.csv")" = "timestamp,qps,p95_ms,replicas,cost_per_pod_hour" ] &&
    [ "$(wc -l <"$tmp/rec.csv")" -eq 1441 ]; then
    ok "--record-trace writes the trace columns, one row a minute"
else
    fail "--record-trace writes the trace columns, one row a minute" "$(head -3 "$tmp/rec.csv")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
