#!/usr/bin/env bash
#
# The command table: every command `cpscale --help` lists answers its own
# --help with exit 0 on stdout, an unknown command exits 2 naming it, and no
# command at all prints the usage to stderr with exit 2. Run from the
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

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
