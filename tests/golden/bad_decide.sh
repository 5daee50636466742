#!/usr/bin/env bash
# `cpscale decide` input errors through the real binary: a document that is
# JSON but wrong for decide (a value of the wrong type, out of range, an
# unknown key, a required key left out, a bad target) exits 2 with exactly
# one line on stderr, "FILE:LINE:COL: PATH: message", at the offending value
# (the key, for an unknown key; the object that lacks it, for a missing
# key). Columns count characters, a byte order mark being one, as in
# jansson's own syntax errors. Every expected position below was counted by
# hand on the document above it. Input from stdin is named "-".
#
# usage: bash tests/golden/bad_decide.sh path/to/cpscale   (from the repo root)
# Ends with "N passed, N failed"; exits 1 if anything failed.
set -u

bin=${1:?usage: bad_decide.sh path/to/cpscale}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

EXIT_INPUT_ERROR=2

pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    printf 'FAIL %s: %s\n' "$1" "$2"
    sed 's/^/    stderr: /' "$tmp/stderr" | head -5
}

# expect NAME FILE EXPECTED_STDERR_LINE: decide --input FILE exits 2 and
# prints exactly that one line on stderr
expect() {
    local name=$1 file=$2 expected=$3
    "$bin" decide --input "$file" >"$tmp/stdout" 2>"$tmp/stderr" <"${stdin:-/dev/null}"
    local rc=$?
    if [ "$rc" -ne "$EXIT_INPUT_ERROR" ]; then
        fail "$name" "exit $rc, expected $EXIT_INPUT_ERROR"
    elif [ "$(cat "$tmp/stderr")" != "$expected" ]; then
        fail "$name" "expected stderr: $expected"
    elif [ -s "$tmp/stdout" ]; then
        fail "$name" "printed a decision"
    else
        pass
    fi
}

# a string where a number goes: line 4, after four blanks and "qps": (col 12)
cat >"$tmp/wrong-type.json" <<'EOF'
{
  "now": 1000,
  "observation": {
    "qps": "950",
    "replicas": 10
  }
}
EOF
expect "a wrong type" "$tmp/wrong-type.json" \
    "$tmp/wrong-type.json:4:12: observation.qps: expected a number"

# a negative replica count in the second entry: line 5, col 27
cat >"$tmp/negative.json" <<'EOF'
{"now": 1000,
 "observation": {"replicas": 10},
 "history": {"recommendations": [
   {"t": 985, "replicas": 12},
   {"t": 990, "replicas": -3}
 ]}}
EOF
expect "a negative integer" "$tmp/negative.json" \
    "$tmp/negative.json:5:27: history.recommendations[1].replicas: expected an integer in [0, 1000000]"

# a time whose milliseconds would not fit (an overflow in the rails before
# it was refused): "now" at line 1, col 9; an entry's "t" at line 3, col 41
cat >"$tmp/far-now.json" <<'EOF'
{"now": 1e300, "observation": {"replicas": 10}}
EOF
expect "a time out of range" "$tmp/far-now.json" \
    "$tmp/far-now.json:1:9: now: out of range: seconds since the epoch, 0 to 1e11"
cat >"$tmp/far-t.json" <<'EOF'
{"now": 1000,
 "observation": {"replicas": 10},
 "history": {"scale_events": [{"t": -9.3e15, "change": 2}]}}
EOF
expect "a history time out of range" "$tmp/far-t.json" \
    "$tmp/far-t.json:3:37: history.scale_events[0].t: out of range: seconds since the epoch, 0 to 1e11"

# an unknown key in a history entry, at the key: line 3, col 61
cat >"$tmp/entry-key.json" <<'EOF'
{"now": 1000,
 "observation": {"replicas": 10},
 "history": {"recommendations": [{"t": 990, "replicas": 12, "x": 2}]}}
EOF
expect "an unknown key in a history entry" "$tmp/entry-key.json" \
    "$tmp/entry-key.json:3:61: history.recommendations[0].x: unknown key"

# an unknown key is placed at the key: line 2, col 37
cat >"$tmp/unknown-key.json" <<'EOF'
{"now": 1000, "observation": {"replicas": 10},
 "history": {"recommendations": [], "scale_event": []}}
EOF
expect "an unknown key" "$tmp/unknown-key.json" \
    "$tmp/unknown-key.json:2:37: history.scale_event: unknown key"

# a misspelt top-level key: col 15
printf '{"now": 1000, "obsrevation": {}}' >"$tmp/top-key.json"
expect "an unknown top-level key" "$tmp/top-key.json" \
    "$tmp/top-key.json:1:15: obsrevation: unknown key (now, target, observation, history, recommendation)"

# a required key left out: at the object that lacks it, line 2, col 17
cat >"$tmp/missing.json" <<'EOF'
{"now": 1000,
 "observation": {"qps": 950}}
EOF
expect "a missing key" "$tmp/missing.json" \
    "$tmp/missing.json:2:17: observation.replicas: required (the current spec.replicas)"

# the observation left out: at the document, line 1, col 1
printf '{"now": 1000}' >"$tmp/no-observation.json"
expect "no observation" "$tmp/no-observation.json" \
    "$tmp/no-observation.json:1:1: observation: required (an object with at least \"replicas\")"

# a target key out of range, past a query holding \" and a 2-byte é (one
# column): line 2, col 89
cat >"$tmp/target.json" <<'EOF'
{"now": 1000,
 "target": {"queries": {"qps": "sum(rate(x{le=\"é\"}[1m]))"}, "slo": {"latency_p95_ms": -5}},
 "observation": {"replicas": 10}}
EOF
expect "a bad target key" "$tmp/target.json" \
    "$tmp/target.json:2:89: target.slo.latency_p95_ms: \"-5\" is out of range (must be >= 0.001 and <= 1e+09)"

# a target key of the wrong type inside a list: line 4, col 55
cat >"$tmp/target-policy.json" <<'EOF'
{"now": 1000, "observation": {"replicas": 10},
 "target": {"behavior": {"scaleUp": {"policies": [
   {"type": "Pods", "value": 4, "periodSeconds": 15},
   {"type": "Percent", "value": 100, "periodSeconds": "15s"}]}}}}
EOF
expect "a bad target policy" "$tmp/target-policy.json" \
    "$tmp/target-policy.json:4:55: target.behavior.scaleUp.policies[1].periodSeconds: expected an integer, got the string \"15s\""

# a string where an entry's time goes: one message (not a second "needs
# t" after it), col 83
printf '{"now": 1000, "observation": {"replicas": 10}, "history": {"scale_events": [{"t": "x", "change": 1}]}}' \
    >"$tmp/entry-time.json"
expect "a bad entry time" "$tmp/entry-time.json" \
    "$tmp/entry-time.json:1:83: history.scale_events[0].t: expected a number"

# an entry without its count: at the entry, col 77
printf '{"now": 1000, "observation": {"replicas": 10}, "history": {"scale_events": [{"t": 5}]}}' \
    >"$tmp/entry-short.json"
expect "an incomplete entry" "$tmp/entry-short.json" \
    "$tmp/entry-short.json:1:77: history.scale_events[0]: needs \"t\" and \"change\""

# after a byte order mark (one column): col 44
printf '\xef\xbb\xbf{"now": 1000, "observation": {"replicas": 1.5}}' >"$tmp/bom.json"
expect "a bad value after a byte order mark" "$tmp/bom.json" \
    "$tmp/bom.json:1:44: observation.replicas: expected an integer in [0, 1000000]"

# a top level that is not an object: at its start, line 2, col 3
printf '\n  [1, 2]\n' >"$tmp/array.json"
expect "not an object" "$tmp/array.json" "$tmp/array.json:2:3: \$: expected a JSON object"

# from stdin, named "-": col 9
printf '{"now": "soon"}' >"$tmp/stdin.json"
stdin=$tmp/stdin.json expect "stdin" - "-:1:9: now: expected a number"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
