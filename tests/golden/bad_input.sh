#!/usr/bin/env bash
# Trace input errors through the real binary (docs/model.md §1).
#
# usage: bash tests/golden/bad_input.sh path/to/cpscale   (from the repo root)
#
# - every tests/golden/traces/bad-*.csv must make `cpscale sim FILE --quiet`
#   exit 2 with "FILE:LINE:COL:" and a message on stderr, as listed in the
#   sibling bad-*.expect (line 1 "LINE:COL", line 2 a message substring);
# - overlong-line traces (too big to commit) are generated into a temp dir;
# - every tests/golden/traces/good-*.csv must exit 0 and print the report
#   table, with its "oracle" row, on stdout;
# - a nonexistent file exits 2; a gap warning names its line.
# Ends with "N passed, N failed"; exits 1 if anything failed.
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 path/to/cpscale" >&2
    exit 2
fi
bin=$1
traces=tests/golden/traces
if [ ! -x "$bin" ]; then
    echo "bad_input.sh: $bin is not an executable" >&2
    exit 2
fi
if [ ! -d "$traces" ]; then
    echo "bad_input.sh: run from the repository root ($traces not found)" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

EXIT_TRACE_ERROR=2
MAX_LINE=65536            # CPS_TRACE_MAX_LINE
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    printf 'FAIL %s: %s\n' "$1" "$2"
    if [ -s "$tmp/stderr" ]; then
        sed 's/^/    stderr: /' "$tmp/stderr" | head -5
    fi
}

# run FILE [extra args...]: sets $rc, output in $tmp/stdout and $tmp/stderr
run() {
    local file=$1
    shift
    "$bin" sim "$file" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
    rc=$?
}

# expect_error FILE LINE:COL MESSAGE
expect_error() {
    local file=$1 where=$2 message=$3
    run "$file" --quiet
    if [ "$rc" -ne "$EXIT_TRACE_ERROR" ]; then
        fail "$file" "exit $rc, expected $EXIT_TRACE_ERROR"
    elif ! grep -qF -- "$file:$where:" "$tmp/stderr"; then
        fail "$file" "stderr lacks \"$file:$where:\""
    elif ! grep -qF -- "$message" "$tmp/stderr"; then
        fail "$file" "stderr lacks \"$message\""
    else
        pass
    fi
}

# ---- committed bad traces -------------------------------------------------
n_bad=0
for csv in "$traces"/bad-*.csv; do
    [ -e "$csv" ] || continue
    n_bad=$((n_bad + 1))
    expect=${csv%.csv}.expect
    if [ ! -f "$expect" ]; then
        fail "$csv" "no $expect"
        continue
    fi
    where=$(sed -n 1p "$expect")
    message=$(sed -n 2p "$expect")
    if ! [[ "$where" =~ ^[0-9]+:[0-9]+$ ]] || [ -z "$message" ]; then
        fail "$expect" "first line must be LINE:COL, second a message"
        continue
    fi
    expect_error "$csv" "$where" "$message"
done
if [ "$n_bad" -lt 25 ]; then
    fail "$traces" "only $n_bad bad-*.csv files (expected at least 25)"
fi

# ---- generated overlong lines ---------------------------------------------
# "0,5" padded with spaces (which the parser would trim) to N bytes.
padded_row() {
    printf '0,5%*s' $(($1 - 3)) ''
}
too_long="line longer than $MAX_LINE bytes"
{
    printf 'timestamp,qps\n'
    padded_row $((MAX_LINE + 1))
    printf '\n1,5\n'
} >"$tmp/bad-overlong.csv"
expect_error "$tmp/bad-overlong.csv" "2:$((MAX_LINE + 1))" "$too_long"
# never ends: the parser must stop without waiting for a newline
{ printf 'timestamp,qps\n0,5\n1,6'; printf '%*s' 70000 ''; } >"$tmp/bad-overlong-no-newline.csv"
expect_error "$tmp/bad-overlong-no-newline.csv" "3:$((MAX_LINE + 1))" "$too_long"
# exactly the limit is fine
{
    printf 'timestamp,qps\n'
    padded_row "$MAX_LINE"
    printf '\n60,5\n'
} >"$tmp/good-longest-line.csv"

# ---- good traces ----------------------------------------------------------
n_good=0
for csv in "$traces"/good-*.csv "$tmp/good-longest-line.csv"; do
    [ -e "$csv" ] || continue
    n_good=$((n_good + 1))
    run "$csv" --quiet
    if [ "$rc" -ne 0 ]; then
        fail "$csv" "exit $rc, expected 0"
    elif ! grep -q '^oracle ' "$tmp/stdout"; then
        fail "$csv" "stdout has no \"oracle\" row in the report table"
    else
        pass
    fi
done
if [ "$n_good" -lt 5 ]; then
    fail "$traces" "only $n_good good traces (expected at least 4 + 1 generated)"
fi

# ---- a file that is not there ---------------------------------------------
missing="$tmp/no-such-trace.csv"
run "$missing" --quiet
if [ "$rc" -ne "$EXIT_TRACE_ERROR" ]; then
    fail "$missing" "exit $rc, expected $EXIT_TRACE_ERROR"
elif ! grep -qF -- "$missing" "$tmp/stderr"; then
    fail "$missing" "stderr does not name the file"
else
    pass
fi

# ---- gap warnings: steps 60 60 180 60, median 60, one gap ending at line 5 --
gap="$traces/gap-carry-forward.csv"
run "$gap"
if [ "$rc" -ne 0 ]; then
    fail "$gap" "exit $rc, expected 0"
elif ! grep -qF -- "$gap:5: warning: gap of 180 s" "$tmp/stderr"; then
    fail "$gap" "stderr lacks \"$gap:5: warning: gap of 180 s\""
elif [ "$(grep -c 'warning: gap' "$tmp/stderr")" -ne 1 ]; then
    fail "$gap" "expected exactly one gap warning"
else
    pass
fi
run "$gap" --quiet
if [ "$rc" -ne 0 ] || grep -q 'warning' "$tmp/stderr"; then
    fail "$gap --quiet" "exit $rc or a warning despite --quiet"
else
    pass
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
