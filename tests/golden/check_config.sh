#!/usr/bin/env bash
#
# Golden tests for `cpscale check-config FILE`, run from the repository root
# (ctest does): bash tests/golden/check_config.sh path/to/cpscale
#
#   bad-*.yaml   must exit 2, and stderr must contain "FILE:" followed by the
#                first line of the sibling bad-*.expect ("LINE:COL: message",
#                the message part being a substring of the real one).
#   good-*.yaml  must exit 0, and what it prints (the effective config) must
#                itself pass check-config and print the same again.
#
# Ends with "N passed, N failed". A binary without check-config is skipped.
set -u

bin=${1:?usage: check_config.sh path/to/cpscale}
cases_dir=$(dirname "$0")/config_cases
passed=0
failed=0

if [ ! -x "$bin" ] || ! "$bin" check-config --help >/dev/null 2>&1; then
    n=$(ls "$cases_dir"/*.yaml 2>/dev/null | wc -l)
    echo "check_config: $bin has no check-config command yet: skipped"
    echo "0 passed, 0 failed, $n skipped"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "not ok $1: $2"
    failed=$((failed + 1))
}

for file in "$cases_dir"/bad-*.yaml; do
    name=$(basename "$file" .yaml)
    expect_file=${file%.yaml}.expect
    if [ ! -f "$expect_file" ]; then
        fail "$name" "missing $(basename "$expect_file")"
        continue
    fi
    expect=$(head -n 1 "$expect_file")
    "$bin" check-config "$file" >"$tmp/out" 2>"$tmp/err" </dev/null
    rc=$?
    if [ "$rc" -ne 2 ]; then
        fail "$name" "exit $rc, expected 2; stderr: $(head -c 300 "$tmp/err")"
    elif ! grep -qF -- "$file:$expect" "$tmp/err"; then
        fail "$name" "stderr lacks \"$file:$expect\"; got: $(head -c 300 "$tmp/err")"
    elif [ -s "$tmp/out" ]; then
        fail "$name" "printed a config on stdout despite the error"
    else
        passed=$((passed + 1))
    fi
done

for file in "$cases_dir"/good-*.yaml; do
    name=$(basename "$file" .yaml)
    "$bin" check-config "$file" >"$tmp/effective.yaml" 2>"$tmp/err" </dev/null
    rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$name" "exit $rc, expected 0; stderr: $(head -c 300 "$tmp/err")"
        continue
    fi
    # the effective config is a valid config that prints the same (but for
    # its header comment, which names the file)
    "$bin" check-config "$tmp/effective.yaml" >"$tmp/again.yaml" 2>"$tmp/err" </dev/null
    rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$name" "the printed config does not load (exit $rc): $(head -c 300 "$tmp/err")"
    elif ! diff <(sed 1d "$tmp/effective.yaml") <(sed 1d "$tmp/again.yaml") >"$tmp/diff"; then
        fail "$name" "printing is not stable: $(head -c 300 "$tmp/diff")"
    else
        passed=$((passed + 1))
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
