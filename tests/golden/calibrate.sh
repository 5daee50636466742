#!/usr/bin/env bash
# `cpscale calibrate` recovers a known world: `cpscale sim --record-trace`
# writes what a deployment showed in a world whose service rate and base
# latency we chose (random and pooled routing, pods sized by cpscale or by
# HPA), and calibrate must find both within 5 %. Data that cannot identify
# the fit is refused with exit 2 and the reason; the printed `sim:` section
# is a valid config.
# usage: bash tests/golden/calibrate.sh path/to/cpscale   (from the repo root)
# Ends with "N passed, N failed".
set -u

bin=${1:?usage: calibrate.sh path/to/cpscale}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
TOLERANCE=0.05

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() {
    failed=$((failed + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '%s\n' "$2" | head -20 | sed 's/^/    /'
}

"$bin" gen-trace --days 3 --seed 4 --output "$tmp/demand.csv" || exit 1

# recover NAME ROUTING MU BASE_MS SIM_ARGS...: sim a world, calibrate, compare
recover() {
    local name=$1 routing=$2 mu=$3 base=$4
    shift 4
    if ! "$bin" sim "$tmp/demand.csv" --quiet --routing "$routing" --service-rate "$mu" \
        --base-latency "${base}ms" --record-trace "$tmp/$name.csv" "$@" >/dev/null 2>"$tmp/err"; then
        fail "$name: sim --record-trace" "$(cat "$tmp/err")"
        return
    fi
    if ! "$bin" calibrate "$tmp/$name.csv" --routing "$routing" --json >"$tmp/$name.json" 2>"$tmp/err"; then
        fail "$name: calibrate exits 0" "$(cat "$tmp/err")"
        return
    fi
    local verdict
    verdict=$(python3 - "$tmp/$name.json" "$mu" "$base" "$TOLERANCE" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
mu, base, tol = map(float, sys.argv[2:5])
e_mu = abs(r["service_rate"] / mu - 1)
e_base = abs(r["base_latency_ms"] / base - 1)
print("mu %.4g (%.2f %% off), base %.4g ms (%.2f %% off), R2 %.4f, %d of %d rows"
      % (r["service_rate"], 100 * e_mu, r["base_latency_ms"], 100 * e_base, r["r2"],
         r["rows"]["used"], r["rows"]["total"]))
sys.exit(0 if e_mu <= tol and e_base <= tol else 1)
EOF
    )
    if [ $? -eq 0 ]; then ok "$name: within 5 % ($verdict)"; else fail "$name: within 5 %" "$verdict"; fi
}

recover random-cpscale random 80 35 --policy cpscale
recover random-hpa random 120 5 --policy hpa:0.5 --record-policy hpa:0.5
recover random-static random 50 60 --policy static:100 --record-step 120s
recover random-slow random 25 150 --policy cpscale --slo 600 --record-step 30s
recover pooled-static pooled 40 10 --policy static:60

# the printed sim: section is a config that loads, with the fitted values
"$bin" calibrate "$tmp/random-cpscale.csv" >"$tmp/report.txt" 2>"$tmp/err"
sed -n '/^sim:/,$p' "$tmp/report.txt" >"$tmp/sim.yaml"
if "$bin" check-config "$tmp/sim.yaml" >"$tmp/effective.yaml" 2>"$tmp/err" &&
    grep -q "routing: random" "$tmp/effective.yaml" &&
    grep -Eq "service_rate: (79|80)\." "$tmp/effective.yaml"; then
    ok "the sim: section passes check-config"
else
    fail "the sim: section passes check-config" "$(cat "$tmp/sim.yaml" "$tmp/err")"
fi
for word in "R²" "RMSE" "|residual| p50" "used"; do
    if grep -qF "$word" "$tmp/report.txt"; then ok "the report shows $word"; else
        fail "the report shows $word" "$(cat "$tmp/report.txt")"; fi
done

# refusals: exit 2 and the reason
refuse() { # NAME REASON FILE [ARGS]
    local name=$1 reason=$2 file=$3
    shift 3
    out=$("$bin" calibrate "$file" "$@" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$reason" <<<"$out"; then ok "refuses: $name"; else
        fail "refuses: $name (exit $rc)" "$out"; fi
}
{ echo timestamp,qps; for i in $(seq 0 2000); do echo "$((i * 60)),500"; done; } >"$tmp/flat.csv"
"$bin" sim "$tmp/flat.csv" --quiet --policy static:10 --record-trace "$tmp/flat-rec.csv" >/dev/null
refuse "load per pod barely varies" "barely varies" "$tmp/flat-rec.csv"
{ echo timestamp,qps,p95_ms,replicas; for i in $(seq 0 99); do echo "$((i * 60)),$((500 + i)),5000,3"; done; } >"$tmp/saturated.csv"
refuse "only saturated rows" "saturated" "$tmp/saturated.csv"
refuse "no p95_ms column" "too few usable rows" "$tmp/demand.csv"
# pooled pods at low load: p95 is the service time alone, whatever the load
"$bin" sim "$tmp/demand.csv" --quiet --routing pooled --service-rate 40 --base-latency 10ms \
    --policy cpscale --record-trace "$tmp/pooled-idle.csv" >/dev/null
refuse "latency that never moves" "p95 barely varies" "$tmp/pooled-idle.csv" --routing pooled
head -n 12 "$tmp/random-cpscale.csv" >"$tmp/short.csv"
refuse "too few rows" "too few usable rows" "$tmp/short.csv"
refuse "a bad routing" "--routing" "$tmp/random-cpscale.csv" --routing sideways
printf 'timestamp,qps,p95_ms,replicas\n0,1,2,3\n60,1,x,3\n' >"$tmp/bad.csv"
refuse "a bad trace names file:line:col" "$tmp/bad.csv:3:" "$tmp/bad.csv"
out=$("$bin" calibrate --help)
if grep -q '^NAME' <<<"$out" && grep -q '^SYNOPSIS' <<<"$out" && grep -q '^DESCRIPTION' <<<"$out" &&
    grep -q '^OPTIONS' <<<"$out" && grep -q '^EXIT STATUS' <<<"$out" && grep -q '^EXAMPLES' <<<"$out"; then
    ok "--help is a man page"
else
    fail "--help is a man page" "$out"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
