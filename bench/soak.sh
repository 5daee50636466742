#!/usr/bin/env bash
# The fault soak at full length: 30 simulated days of 15 s ticks (172,800)
# on a 10 ms interval against the fakes, random faults of every class, the
# safety invariants checked for every tick (tests/integration/soak.py says
# how). About 35-40 minutes on 2 cores. Prints the checks, then the figures.
#
#   bench/soak.sh [DAYS [SEED]]        (default 30 days, seed 1)
#
# Writes the figures as JSON to build/soak-report.json as well.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
days=${1:-30}
seed=${2:-1}
report=$root/build/soak-report.json
make -C "$root" build >/dev/null
status=0
python3 "$root/tests/integration/soak.py" --cpscale "$root/build/cpscale" --days "$days" \
  --seed "$seed" --report "$report" | grep -v '^figures: ' || status=$?
[ -f "$report" ] || exit 1
python3 - "$report" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
a, b = f["a"], f["b"]
print()
print("ticks: A %d, B %d (%d runs of B) in %.0f s; %d rounds of episodes"
      % (a["ticks"], b["ticks"], f["b_runs"], f["elapsed_s"], f["rounds"]))
print("ticks with missing data: A %d, B %d; PATCHes: A %d, B %d; scale-downs: A %d, B %d"
      % (a["missing_ticks"], b["missing_ticks"], a["patches"], b["patches"],
         a["scale_downs"], b["scale_downs"]))
print("SIGTERMs: %d (%d while leading)" % (f["sigterms"], f["sigterms_while_leading"]))
print()
print("%-18s %9s %17s" % ("fault class", "episodes", "requests/events"))
for kind in sorted(f["episodes"]):
    print("%-18s %9d %17d" % (kind, f["episodes"][kind], f["faulted_requests"].get(kind, 0)))
print()
rss = f.get("rss_kb", {})
print("RSS of A: %s kB after warm-up, %s kB at the end (max %s kB in the last quarter)"
      % (rss.get("start"), rss.get("end"), rss.get("max_last_quarter")))
breaks = f.get("breaks", {})
print("invariant breaks: %d %s" % (sum(breaks.values()), json.dumps(breaks) if breaks else ""))
print()
print("%-18s %9s" % ("fault class", "breaks"))
for kind, n in sorted(f.get("breaks_by_class", {}).items()):
    print("%-18s %9d" % (kind, n))
print()
print("persistent 410: LISTs of A per episode %s" % f.get("watch_gone_lists_per_episode"))
print("silent watch: re-lists of A for no_progress %s" % f.get("watch_silent_relists_a"))
p = f.get("probes", {})
print("/healthz under %s slow clients: %s probes, %s unanswered, slowest %s s"
      % (64, p.get("count"), p.get("unanswered"), p.get("slowest_s")))
print("huge Retry-After: %s" % json.dumps(f.get("retry_after_huge")))
PY
exit $status
