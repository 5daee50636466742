#!/usr/bin/env bash
# The worked trace of docs/model.md §9, run through the real binary:
#  - the trace is the first ```csv block of §9 and the command the
#    `cpscale sim ...` line of the first ```sh block there, both taken from
#    the document;
#  - every row "| policy | field | value |" of the table that follows the
#    "| policy | field | value |" header is compared with the JSON report
#    (policy "run" means a top-level key), within half a unit of the last
#    digit the document prints.
# Nothing expected is written in this script: edit a figure in the document
# (or change the model) and this suite fails.
# usage: bash tests/golden/model_examples.sh path/to/cpscale   (from the repo root)
# Ends with "N passed, N failed".
set -u

bin=${1:?usage: model_examples.sh path/to/cpscale}
doc=${CPS_MODEL_DOC:-docs/model.md}
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
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

if [ ! -r "$doc" ]; then
    fail "$doc can be read (run from the repository root)"
    finish
fi

# §9 alone: from its heading to the next level-2 heading.
awk '/^## 9\./ { f = 1; next } /^## / { f = 0 } f' "$doc" >"$tmp/section"

# The first ```csv block is the trace.
awk '/^```csv[[:space:]]*$/ && !done { f = 1; next }
     /^```[[:space:]]*$/ && f { f = 0; done = 1 }
     f' "$tmp/section" >"$tmp/tiny.csv"
if [ "$(wc -l <"$tmp/tiny.csv")" -ge 2 ]; then
    ok "§9 has the worked trace ($(($(wc -l <"$tmp/tiny.csv") - 1)) rows)"
else
    fail "§9 has a \`\`\`csv block with the worked trace"
    finish
fi

# The first ```sh block's `cpscale sim FILE ...` line is the command.
cmd=$(awk '/^```sh[[:space:]]*$/ && !done { f = 1; next }
           /^```[[:space:]]*$/ && f { f = 0; done = 1 }
           f && /^cpscale sim / { print; exit }' "$tmp/section")
read -r -a words <<<"$cmd"
if [ "${#words[@]}" -ge 3 ] && [[ " ${words[*]} " == *" --json "* ]]; then
    ok "§9 has the command: $cmd"
else
    fail "§9 has a \`\`\`sh block with a 'cpscale sim FILE ... --json' line" "$cmd"
    finish
fi
# cpscale -> the binary under test, the trace file name -> the extracted trace
args=("${words[@]:3}")
"$bin" sim "$tmp/tiny.csv" "${args[@]}" >"$tmp/report.json" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ]; then
    ok "cpscale sim runs the worked trace"
else
    fail "cpscale sim runs the worked trace (exit $rc)" "$(cat "$tmp/err")"
    finish
fi

# The expected-figures table: rows after its header, up to the first
# line that is not a table row.
awk '/^\| *policy *\| *field *\| *value *\|/ && !done { f = 1; next }
     f && /^\|[-| ]+\|[[:space:]]*$/ { next }
     f && /^\|/ { print; next }
     f { f = 0; done = 1 }' "$tmp/section" >"$tmp/expected"

# One verdict line per row: "ok<TAB>text" or "FAIL<TAB>text".
python3 - "$tmp/report.json" "$tmp/expected" "${args[*]}" >"$tmp/verdicts" <<'EOF'
import json, re, sys

report = json.load(open(sys.argv[1]))
rows = [line.rstrip("\n") for line in open(sys.argv[2]) if line.strip()]
args = sys.argv[3].split()
policies = {p["policy"]: p for p in report["policies"]}
listed = args[args.index("--policy") + 1].split(",") if "--policy" in args else []
seen = set()
row_re = re.compile(r"^\|\s*([^|]+?)\s*\|\s*([a-z_]+)\s*\|\s*([-+]?[0-9]+(?:\.[0-9]+)?)\s*\|\s*$")
for line in rows:
    m = row_re.match(line)
    if not m:
        print("FAIL\tcannot parse the row %r" % line)
        continue
    policy, field, text = m.groups()
    expected = float(text)
    decimals = len(text.split(".")[1]) if "." in text else 0
    tolerance = 0.5 * 10 ** -decimals + 1e-12 * abs(expected)
    source = report if policy == "run" else policies.get(policy)
    if source is None:
        print("FAIL\t%s: no such policy in the report" % policy)
        continue
    seen.add(policy)
    actual = source.get(field)
    name = "%s %s = %s" % (policy, field, text)
    if not isinstance(actual, (int, float)):
        print("FAIL\t%s (report has %r)" % (name, actual))
    elif abs(actual - expected) <= tolerance:
        print("ok\t%s (report: %.12g)" % (name, actual))
    else:
        print("FAIL\t%s (report: %.12g, off by %.3g)" % (name, actual, actual - expected))
# an empty or renamed table must not pass by checking nothing
for policy in listed:
    if policy not in seen:
        print("FAIL\tthe table has no row for %s" % policy)
if not rows:
    print("FAIL\tthe table of expected figures is empty or missing")
EOF
if [ $? -ne 0 ]; then
    fail "the report and the table can be compared" "$(cat "$tmp/verdicts")"
    finish
fi

while IFS=$'\t' read -r verdict text; do
    if [ "$verdict" = ok ]; then ok "$text"; else fail "$text"; fi
done <"$tmp/verdicts"
finish
