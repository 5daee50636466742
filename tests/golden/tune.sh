#!/usr/bin/env bash
# `cpscale tune` through the real binary, on generated traces:
#  - the same result for --jobs 1 and --jobs 2;
#  - --shard i/3 three times then --merge prints exactly what one unsharded
#    run prints (files or a directory), and merging refuses incomplete,
#    repeated or foreign shard sets;
#  - the figures are `cpscale sim`'s: the default config, HPA at the chosen
#    target and the oracle on each part (each part cut into a trace file of
#    its own), and the tuned config loaded from the printed fragment;
#  - the fragment passes check-config; the winner meets the budget;
#  - usage errors exit 2; --help is a man page.
# usage: bash tests/golden/tune.sh path/to/cpscale   (from the repo root)
# Ends with "N passed, N failed".
set -u

bin=${1:?usage: tune.sh path/to/cpscale}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
CANDIDATES=24
ROWS_PER_DAY=1440   # gen-trace writes one row a minute

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() {
    failed=$((failed + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '%s\n' "$2" | head -20 | sed 's/^/    /'
}
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@" >"$tmp/check.out" 2>&1; then ok "$name"; else fail "$name" "$(cat "$tmp/check.out")"; fi
}

"$bin" gen-trace --days 2 --seed 5 --output "$tmp/a.csv" || exit 1
"$bin" gen-trace --days 2 --seed 9 --peak 800 --bursts-per-day 6 --output "$tmp/b.csv" || exit 1
args=("$tmp/a.csv" "$tmp/b.csv:1.5" --candidates "$CANDIDATES" --quiet)

# ---- the same answer however the work is split ---------------------------
"$bin" tune "${args[@]}" --jobs 1 >"$tmp/jobs1.txt" 2>"$tmp/err1"
rc=$?
if [ $rc -eq 0 ] && grep -q '^defaults:' "$tmp/jobs1.txt"; then ok "tune runs (exit 0)"; else
    fail "tune runs (exit $rc)" "$(cat "$tmp/err1")"; fi
"$bin" tune "${args[@]}" --jobs 2 >"$tmp/jobs2.txt" 2>/dev/null
check "--jobs 1 and --jobs 2 print the same" cmp "$tmp/jobs1.txt" "$tmp/jobs2.txt"
mkdir -p "$tmp/shards"
for i in 0 1 2; do
    "$bin" tune "${args[@]}" --shard "$i/3" --jobs 1 --output "$tmp/shards/s$i.json" ||
        fail "shard $i/3 runs"
done
"$bin" tune --merge "$tmp/shards/s0.json" "$tmp/shards/s1.json" "$tmp/shards/s2.json" \
    >"$tmp/merged.txt" 2>"$tmp/merge.err"
check "3 shards merged = the unsharded run" cmp "$tmp/jobs1.txt" "$tmp/merged.txt"
"$bin" tune --merge "$tmp/shards" >"$tmp/merged-dir.txt" 2>/dev/null
check "merging a directory of shards = the unsharded run" cmp "$tmp/jobs1.txt" "$tmp/merged-dir.txt"
"$bin" tune --merge "$tmp/shards/s2.json" "$tmp/shards/s0.json" "$tmp/shards/s1.json" \
    >"$tmp/merged-order.txt" 2>/dev/null
check "shard order does not matter" cmp "$tmp/jobs1.txt" "$tmp/merged-order.txt"
"$bin" tune "${args[@]}" --json >"$tmp/tune.json" 2>/dev/null
"$bin" tune --merge "$tmp/shards" --json >"$tmp/merged.json" 2>/dev/null
check "--json: merged = unsharded (timing aside)" python3 - "$tmp/tune.json" "$tmp/merged.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for d in (a, b):  # time and work done are not results
    d.pop("elapsed_s", None)
    d.pop("simulated_seconds", None)
assert a == b, "differ"
EOF

out=$("$bin" tune --merge "$tmp/shards/s0.json" "$tmp/shards/s1.json" 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q "3 shards, 2 shard files" <<<"$out"; then ok "a missing shard is refused"; else
    fail "a missing shard is refused (exit $rc)" "$out"; fi
out=$("$bin" tune --merge "$tmp/shards/s0.json" "$tmp/shards/s0.json" "$tmp/shards/s1.json" 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q "given twice" <<<"$out"; then ok "a repeated shard is refused"; else
    fail "a repeated shard is refused (exit $rc)" "$out"; fi
"$bin" tune "${args[@]}" --seed 2 --shard 1/3 --output "$tmp/other-seed.json" 2>/dev/null
out=$("$bin" tune --merge "$tmp/shards/s0.json" "$tmp/other-seed.json" "$tmp/shards/s2.json" 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q "another run" <<<"$out"; then ok "a shard of another run is refused"; else
    fail "a shard of another run is refused (exit $rc)" "$out"; fi
echo '{"format": "something else"}' >"$tmp/foreign.json"
out=$("$bin" tune --merge "$tmp/foreign.json" 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q "not a cpscale tune shard" <<<"$out"; then ok "a foreign JSON file is refused"; else
    fail "a foreign JSON file is refused (exit $rc)" "$out"; fi
echo '{"format": ' >"$tmp/broken.json"
out=$("$bin" tune --merge "$tmp/broken.json" 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q "broken.json:" <<<"$out"; then ok "broken JSON names the file"; else
    fail "broken JSON names the file (exit $rc)" "$out"; fi
for scale in 1e300 -3 0; do
    out=$("$bin" tune "$tmp/a.csv:$scale" --candidates 2 2>&1)
    rc=$?
    if [ $rc -eq 2 ] && grep -q "a.csv:$scale: the scale \"$scale\" is out of range" <<<"$out"; then
        ok "TRACE:$scale is refused as sim's --scale would be"
    else fail "TRACE:$scale is refused (exit $rc)" "$out"; fi
done

# ---- the fragment ------------------------------------------------------------
"$bin" tune "${args[@]}" --output "$tmp/fragment.yaml" >"$tmp/with-output.txt" 2>/dev/null
sed -n '/^defaults:/,$p' "$tmp/jobs1.txt" >"$tmp/fragment-stdout.yaml"
check "--output writes the fragment that stdout shows" cmp "$tmp/fragment.yaml" "$tmp/fragment-stdout.yaml"
check "the fragment passes check-config" "$bin" check-config "$tmp/fragment.yaml"

# ---- the figures are the simulator's -------------------------------------------
# Each part replayed as its own trace: rows [0, split) and [split, end).
split=$ROWS_PER_DAY
for t in a b; do
    head -n $((split + 1)) "$tmp/$t.csv" >"$tmp/$t-train.csv"
    { head -n 1 "$tmp/$t.csv"; tail -n +$((split + 2)) "$tmp/$t.csv"; } >"$tmp/$t-test.csv"
done
check "each figure equals cpscale sim on that part" python3 - "$bin" "$tmp" <<'EOF'
import json, subprocess, sys
binary, tmp = sys.argv[1], sys.argv[2]
result = json.load(open(tmp + "/tune.json"))
problems = []

def sim(trace, scale, policies, config=None):
    cmd = [binary, "sim", trace, "--scale", repr(scale), "--quiet", "--json", "--policy", policies]
    if config:
        cmd += ["--config", config]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return {p["policy"]: p for p in json.loads(out)["policies"]}

def same(name, got, want):
    for key in ("cost_usd", "violation_pct", "pod_starts", "scale_actions"):
        if abs(got[key] - want[key]) > 1e-9 * max(1.0, abs(want[key])):
            problems.append("%s %s: tune %r, sim %r" % (name, key, got[key], want[key]))

for tr, letter, scale in zip(result["traces"], "ab", (1.0, 1.5)):
    hpa = "hpa:%r" % tr["hpa_target"]
    for part in ("train", "test"):
        path = "%s/%s-%s.csv" % (tmp, letter, part)
        s = sim(path, scale, "cpscale,%s,oracle" % hpa)
        same("%s %s default" % (letter, part), tr["default"][part], s["cpscale"])
        same("%s %s %s" % (letter, part, hpa), tr["hpa"][part], s[hpa])
        same("%s %s oracle" % (letter, part), tr["oracle"][part], s["oracle"])
        t = sim(path, scale, "cpscale", tmp + "/fragment.yaml")
        same("%s %s tuned (fragment as config)" % (letter, part), tr["tuned"][part], t["cpscale"])
    if tr["train_seconds"] != 86400 or tr["test_seconds"] != 86400:
        problems.append("split %r/%r" % (tr["train_seconds"], tr["test_seconds"]))
if result["best_meets_budget"]:
    for tr in result["traces"]:
        if tr["tuned"]["train"]["violation_pct"] > result["budget_pct"]:
            problems.append("winner over the budget on %s" % tr["trace"])
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
check "the winner is no dearer than the default where both meet the budget" python3 - "$tmp/tune.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
b = r["budget_pct"]
ok_default = all(t["default"]["train"]["violation_pct"] <= b for t in r["traces"])
if ok_default and r["best_meets_budget"]:
    rel = lambda k: sum(t[k]["train"]["cost_usd"] / t["oracle"]["train"]["cost_usd"]
                        for t in r["traces"])
    sys.exit(0 if rel("tuned") <= rel("default") + 1e-12 else 1)
EOF

# ---- usage ---------------------------------------------------------------------
expect_usage() { # NAME MESSAGE ARGS...
    local name=$1 message=$2
    shift 2
    out=$("$bin" tune "$@" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$message" <<<"$out"; then ok "$name"; else
        fail "$name (exit $rc)" "$out"; fi
}
expect_usage "no trace" "give 1 to" --candidates 4
expect_usage "a bad budget" "--budget" "$tmp/a.csv" --budget lots
expect_usage "a shard index out of range" "--shard" "$tmp/a.csv" --shard 3/3
expect_usage "a train fraction of 1" "--train-fraction" "$tmp/a.csv" --train-fraction 1
expect_usage "--merge with --shard" "do not go together" --merge --shard 0/2 "$tmp/shards"
{ echo timestamp,qps; for i in $(seq 0 29); do echo "$((i * 60)),100"; done; } >"$tmp/short.csv"
expect_usage "a trace too short to split" "too short" "$tmp/short.csv"
printf 'timestamp,qps\n0,1\n60,x\n' >"$tmp/bad.csv"
expect_usage "a bad trace names file:line:col" "$tmp/bad.csv:3:" "$tmp/bad.csv"
expect_usage "a missing trace" "cannot open" "$tmp/none.csv"
out=$("$bin" tune --help)
if grep -q '^NAME' <<<"$out" && grep -q '^SYNOPSIS' <<<"$out" && grep -q '^DESCRIPTION' <<<"$out" &&
    grep -q '^OPTIONS' <<<"$out" && grep -q '^EXIT STATUS' <<<"$out" && grep -q '^EXAMPLES' <<<"$out"; then
    ok "--help is a man page"
else
    fail "--help is a man page" "$out"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
