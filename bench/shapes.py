#!/usr/bin/env python3
"""The quality table on synthetic traffic of shapes the public traces lack.

The policy is meant to hold its budget on traffic it has never seen. This
writes deterministic synthetic traces of shapes that real services have
and ../shared/traces does not, then runs bench/quality.py on them (at the
scale written and at a tenth of it), the same rule and the same default
config as on the real traces:

  business-hours  weekdays 08:00-19:00, idle nights and weekends, counted
                  per minute (Poisson), 14 days
  flash-crowd     a ~10 req/s service with three crowds of 300x the median
                  (ramp 2-5 min, 25 min held, 15 min decay), 12 days
  stationary      800 req/s, 4 % noise per minute, a 3x spike of 4 minutes
                  every ~67 hours, 14 days
  weekly-holidays a daily cycle peaking at 14:00, weekends and three
                  holidays at 55 %, 5 % noise per minute, 8 weeks
  daily-noise-N   `cpscale gen-trace` daily cycles without bursts, noise
                  N = 2, 5, 10 and 20 % per minute, 14 days
  cron-15m        a daily cycle (0.8-1.0 of 1500 req/s, 4 % noise) with a
                  2x spike in every minute :00, :15, :30 and :45 (a batch
                  job on a schedule), 14 days
  periodic-6m     a daily cycle (0.8-1.0 of 2000 req/s, 4 % noise) that
                  swings +-30 % with a period of 6 minutes, 14 days

Smooth traffic whose noise is independent from minute to minute is where a
one-minute window undercounts violations most (lib/slo_budget.c): these
are the traces that show whether the feedback's aim keeps the budget.

Usage: bench/shapes.py CPSCALE [--keep DIR] [--jobs N] [--check-slo]
Prints the table. Exits 0, or with --check-slo 1 when a run misses the SLO
half of the rule (tests/golden/budget_shapes.sh: the budget must hold on
these shapes), but for the runs in KNOWN_SLO_MISSES, which must stay within
their bound (a ratchet, as bench/quality-known-misses.txt). The cost half
is reported, not checked: on smooth traffic it is out of reach for a
policy that does not know the next minute (see the README).
"""
import argparse
import math
import os
import random
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Runs that still miss the SLO half, and the violation % each may reach:
# today's figure + 0.05. A 2x spike every 15 minutes at full scale: the
# pods for a remembered burst come with the forecast's margin, but the
# one-minute window still shows each spike after it has ended, and the
# policy answers it with pods it no longer needs while the next spike's
# are not all there yet (1.08 %, where HPA at 0.30 holds 0.41 %; it was
# 1.51 % before the margin).
KNOWN_SLO_MISSES = {"cron-15m.csv x1": 1.13}
START = 1704067200  # Monday 2024-01-01 00:00 UTC
MINUTE = 60
DAY_MINUTES = 1440


def write(path, rates):
    """A trace file of one row per minute from START."""
    with open(path, "w") as out:
        out.write("timestamp,qps\n")
        for m, qps in enumerate(rates):
            out.write("%d,%.3f\n" % (START + MINUTE * m, max(qps, 0.0)))


def poisson(rng, mean):
    """A Poisson draw (Knuth's method below 50, else the normal limit)."""
    if mean <= 0:
        return 0
    if mean >= 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def business_hours(rng):
    rates = []
    for m in range(14 * DAY_MINUTES):
        day, hour = (m // DAY_MINUTES) % 7, (m % DAY_MINUTES) / 60.0
        level = 0.0
        if day < 5 and 8 <= hour < 19:
            level = 40.0 * math.sin(math.pi * (hour - 8) / 11) ** 0.7
        rates.append(poisson(rng, level * MINUTE) / MINUTE)
    return rates


def flash_crowd(rng):
    crowds = [(2 * DAY_MINUTES + 600, 3), (5 * DAY_MINUTES + 200, 2), (9 * DAY_MINUTES + 1000, 5)]
    rates = []
    for m in range(12 * DAY_MINUTES):
        hour = (m % DAY_MINUTES) / 60.0
        qps = 10.0 * (1 + 0.3 * math.sin(2 * math.pi * (hour - 9) / 24)) * math.exp(rng.gauss(0, 0.1))
        for start, ramp in crowds:
            if start <= m < start + 25:
                qps = max(qps, 3000.0 * min(1.0, (m - start + 1) / ramp) * math.exp(rng.gauss(0, 0.05)))
            elif start + 25 <= m < start + 40:
                qps = max(qps, 3000.0 * math.exp(-(m - start - 25) / 4.0))
        rates.append(qps)
    return rates


def stationary(rng):
    rates = []
    for m in range(14 * DAY_MINUTES):
        qps = 800.0 * math.exp(rng.gauss(0, 0.04))
        rates.append(qps * 3 if m % 4001 < 4 else qps)
    return rates


def weekly_holidays(rng):
    rates = []
    for m in range(56 * DAY_MINUTES):
        day, hour = m // DAY_MINUTES, (m % DAY_MINUTES) / 60.0
        level = 0.55 if day % 7 >= 5 or day in (17, 38, 39) else 1.0
        shape = 0.35 + 0.65 * math.exp(-((hour - 14) / 4.5) ** 2)
        rates.append(2000.0 * level * shape * math.exp(rng.gauss(0, 0.05)))
    return rates


def daily_cycle(m):
    """0.8-1.0, peaking at 14:00."""
    hour = (m % DAY_MINUTES) / 60.0
    return 0.9 + 0.1 * math.sin(2 * math.pi * (hour - 8) / 24)


def cron_15m(rng):
    rates = []
    for m in range(14 * DAY_MINUTES):
        qps = 1500.0 * daily_cycle(m) * math.exp(rng.gauss(0, 0.04))
        rates.append(qps * 2 if m % 15 == 0 else qps)
    return rates


def periodic_6m(rng):
    return [2000.0 * daily_cycle(m) * (1 + 0.3 * math.sin(2 * math.pi * m / 6)) *
            math.exp(rng.gauss(0, 0.04)) for m in range(14 * DAY_MINUTES)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cpscale")
    ap.add_argument("--keep", metavar="DIR", help="write the traces here and keep them")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--check-slo", action="store_true",
                    help="exit 1 when a run misses the SLO half of the rule")
    args = ap.parse_args()
    workdir = args.keep or tempfile.mkdtemp(prefix="cps-shapes-")
    os.makedirs(workdir, exist_ok=True)
    specs = []
    for name, make, scale in (("business-hours", business_hours, 1),
                              ("flash-crowd", flash_crowd, 1),
                              ("stationary", stationary, 5),
                              ("weekly-holidays", weekly_holidays, 2),
                              ("cron-15m", cron_15m, 1),
                              ("periodic-6m", periodic_6m, 1)):
        path = os.path.join(workdir, name + ".csv")
        write(path, make(random.Random(name)))
        specs += ["%s:%g" % (path, scale), "%s:%g" % (path, scale / 10)]
    for noise in (0.02, 0.05, 0.1, 0.2):
        path = os.path.join(workdir, "daily-noise-%d.csv" % round(100 * noise))
        subprocess.run([args.cpscale, "gen-trace", "--days", "14", "--noise", str(noise),
                        "--bursts-per-day", "0", "--seed", "3", "--output", path], check=True)
        specs += ["%s:1" % path, "%s:0.1" % path]
    run = subprocess.run([sys.executable, os.path.join(REPO, "bench", "quality.py"),
                          args.cpscale] + specs + ["--report-only", "--jobs", str(args.jobs)],
                         stdout=subprocess.PIPE, universal_newlines=True)
    sys.stdout.write(run.stdout)
    code = run.returncode
    # a table row: trace, scale, eight figures, then the SLO and cost verdicts
    rows = [line.split() for line in run.stdout.splitlines()]
    rows = [r for r in rows if len(r) == 11 and r[0].endswith(".csv")]
    slo_misses, known = [], 0
    for r in rows:
        run_name = r[0] + " x" + r[1]
        if r[9] == "ok":
            continue
        bound = KNOWN_SLO_MISSES.get(run_name)
        if bound is not None and float(r[3]) <= bound:
            print("shapes: %s: known SLO miss (%s %%, bound %.2f %%)" % (run_name, r[3], bound))
            known += 1
            continue
        slo_misses.append(run_name)
    if code == 0 and len(rows) != len(specs):
        print("shapes: %d table rows for %d runs" % (len(rows), len(specs)))
        code = 1
    if code == 0 and args.check_slo:
        print("shapes: SLO half %s" % (
            "missed by " + ", ".join(slo_misses) if slo_misses
            else "met by %d of %d runs, %d known misses within their bounds"
            % (len(rows) - known, len(rows), known)))
        code = 1 if slo_misses else 0
    if not args.keep:
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)
    return code


if __name__ == "__main__":
    sys.exit(main())
