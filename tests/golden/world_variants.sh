#!/usr/bin/env bash
# World variants (docs/model.md §10) through the real binary:
#  - the variant flags at their defaults change no figure of the §9 trace
#    (only the fields the report gains);
#  - the deterministic world's oracle on that trace against a hand count,
#    with λmax(1) solved here independently of the code;
#  - jitter runs are reproducible by seed, and a what-if list of variants
#    gives each value's plain-run figures;
#  - bad values and combinations exit 2 naming the flag or file:line:col.
# usage: bash tests/golden/world_variants.sh path/to/cpscale   (from the repo root)
# Ends with "N passed, N failed".
set -u

bin=${1:?usage: world_variants.sh path/to/cpscale}
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
check() { # name, command...
    local name=$1
    shift
    local out
    if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$out"; fi
}

printf 'timestamp,qps\n0,50\n60,500\n120,50\n180,50\n' >"$tmp/tiny.csv"
policies=oracle,static:9,hpa,cpscale

"$bin" sim "$tmp/tiny.csv" --policy $policies --hpa-target 0.5 --json >"$tmp/plain.json"
"$bin" sim "$tmp/tiny.csv" --policy $policies --hpa-target 0.5 --json \
    --service-times exponential --capacity-drift 0 --startup-jitter 0s --world-seed 7 \
    --budget-window 7d >"$tmp/defaults.json"
check "variant flags at their defaults change no figure" python3 - "$tmp/plain.json" "$tmp/defaults.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
a["params"].pop("world_seed"); b["params"].pop("world_seed")
assert a == b, (a, b)
for p in a["policies"]:
    assert "worst_window_violation_pct" in p
# 240 s is shorter than 7d: the one window is the whole trace
for p in a["policies"]:
    assert abs(p["worst_window_violation_pct"] - p["violation_pct"]) < 1e-9, p
EOF

"$bin" sim "$tmp/tiny.csv" --policy oracle,hpa --json --service-times deterministic >"$tmp/det.json"
check "deterministic: the oracle's pod-seconds by hand" python3 - "$tmp/det.json" <<'EOF'
import json, math, sys
# M/D/1 per pod, p95 = 20 + 10 (1 + ln(ρ/0.05) / (2 (1 − ρ))) ms at μ = 100:
# solve p95 = 100 for ρ by bisection, λmax(1) = 100 ρ
lo, hi = 0.05, 1.0
for _ in range(200):
    mid = (lo + hi) / 2
    if 20 + 10 * (1 + math.log(mid / 0.05) / (2 * (1 - mid))) <= 100:
        lo = mid
    else:
        hi = mid
one = 100 * lo
c50, c500 = math.ceil(50 / one), math.ceil(500 / one)
# level 1 busy all 240 s; levels 2..c500 busy 60 s after 30 s of startup
expected = 240 * c50 + (c500 - c50) * (60 + 30)
d = json.load(open(sys.argv[1]))
oracle = d["policies"][0]
assert d["params"]["service_times"] == "deterministic"
assert oracle["pod_seconds"] == expected, (oracle["pod_seconds"], expected, one)
assert oracle["peak_pods"] == c500 and c500 == 7
EOF

run_jitter() { "$bin" sim "$tmp/tiny.csv" --policy hpa:0.3,oracle --json --startup 5s --startup-jitter 120s --world-seed "$1"; }
run_jitter 1 >"$tmp/j1.json"
run_jitter 1 >"$tmp/j1b.json"
run_jitter 2 >"$tmp/j2.json"
check "jitter: the same seed gives the same report" cmp "$tmp/j1.json" "$tmp/j1b.json"
check "jitter: another seed another one" python3 - "$tmp/j1.json" "$tmp/j2.json" <<'EOF'
import json, sys
a, b = (json.load(open(p))["policies"] for p in sys.argv[1:3])
assert [p["pod_seconds"] for p in a] != [p["pod_seconds"] for p in b], (a, b)
EOF

"$bin" sim "$tmp/tiny.csv" --policy oracle,hpa --json --service-times exponential,lognormal:2 \
    >"$tmp/whatif.json"
"$bin" sim "$tmp/tiny.csv" --policy oracle,hpa --json --service-times lognormal:2 >"$tmp/ln2.json"
check "what-if over --service-times: each value is its plain run" python3 - "$tmp/whatif.json" "$tmp/ln2.json" <<'EOF'
import json, sys
w, plain = (json.load(open(p)) for p in sys.argv[1:3])
assert w["parameter"] == "service-times"
second = w["values"][1]
assert second["value"] == "lognormal:2"
for p, q in zip(second["policies"], plain["policies"]):
    for key in q:
        assert p[key] == q[key], (key, p[key], q[key])
EOF

printf 'sim:\n  service_times: deterministic\n' >"$tmp/det.yaml"
"$bin" sim "$tmp/tiny.csv" --policy oracle,hpa --json --config "$tmp/det.yaml" >"$tmp/det_cfg.json"
check "sim: service_times in the config is the flag" cmp "$tmp/det.json" "$tmp/det_cfg.json"

bad() { # name, expected text, args...
    local name=$1 want=$2
    shift 2
    local out rc
    out=$("$bin" sim "$tmp/tiny.csv" --policy hpa "$@" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -eq 2 ] && printf '%s' "$out" | grep -qF -- "$want"; then
        ok "$name"
    else
        fail "$name (exit $rc)" "$out"
    fi
}
bad "unknown service times" '--service-times: "gamma" is not exponential' --service-times gamma
bad "lognormal without a CV" '--service-times' --service-times lognormal:
bad "drift of 1" '--capacity-drift: "1" must be in [0, 1)' --capacity-drift 1
bad "drift not a number" '--capacity-drift: "x"' --capacity-drift x
bad "jitter not a duration" '--startup-jitter: "soon"' --startup-jitter soon
bad "seed not whole" '--world-seed: "1.5" is not a whole number' --world-seed 1.5
bad "budget window not whole hours" '--budget-window: "90m"' --budget-window 90m
bad "pooled with deterministic" 'pooled routing' --routing pooled --service-times deterministic
bad "pooled with drift" 'pooled routing' --routing pooled --capacity-drift 0.1
bad "record-trace with a latency variant" '--record-trace' --record-trace "$tmp/r.csv" \
    --service-times deterministic
printf 'sim:\n  service_times: weibull\n' >"$tmp/bad.yaml"
bad "a bad config value names file:line:col" "$tmp/bad.yaml:2:" --config "$tmp/bad.yaml"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
