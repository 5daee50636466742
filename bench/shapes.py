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
  hourly-spike    cron-15m's daily cycle with an 8x spike in minute :00 of
                  every hour instead (an hourly job much larger than the
                  service's own traffic), 14 days
  llm-57s         LLM serving reported every 57 s (steps that do not
                  divide the minute): a daily cycle (0.6-1.0 of 600 req/s),
                  15 % noise per step, and level shifts of up to 2x either
                  way every ~1.5 days at random, 14 days
  micro-bursts    a low-traffic service (1 req/s at heart, so counted per
                  minute its noise is ~13 %, written x300) with ten bursts
                  a day at random minutes, each one minute of 3-8x: bursts
                  no memory can foresee and no HPA target absorbs, 14 days

Smooth traffic whose noise is independent from minute to minute is where a
one-minute window undercounts violations most (lib/slo_budget.c): these
are the traces that show whether the feedback's aim keeps the budget.

Usage: bench/shapes.py CPSCALE [--keep DIR] [--jobs N] [--check-slo] [--reference]
Prints the table. Exits 0, or with --check-slo 1 when a run misses the SLO
half of the rule (tests/golden/budget_shapes.sh: the budget must hold on
these shapes), but for the runs in KNOWN_SLO_MISSES, which must stay within
their bound (a ratchet, as bench/quality-known-misses.txt). The cost half
is reported, not checked: on smooth traffic it is out of reach for a
policy that does not know the next minute (see the README).

A second table backs that with a reference per run: a schedule that knows
each minute's smooth level exactly (the trace's centred 31-minute mean),
so that only the minute-to-minute noise is unknown to it, and keeps
ceil(m x level / lambda_max(1)) pods, at least 1, with m the smallest
multiplier (in steps of 0.005) that keeps at most 1 % of the requests in
minutes whose rate is over what those pods serve within the SLO. Pod-
minutes, no start-up, default world (docs/model.md section 3: 100 req/s
per pod, 20 ms base, the SLO at 100 ms): a reference, not a bound, and a
generous one, since no causal policy knows the level. It is reported
against the oracle counted the same way (the pods each minute's rate
needs) and against the table's H(v). Where it costs over 0.85 x H(v) and
over 1.10 x the oracle, the cost half is out of reach for any policy
that is not told the noise. Where the load has a predictable part shorter
than that window (cron-15m, periodic-6m), the reference does not know it
and says nothing; where no m up to 3 keeps the budget (spikes of 3x and
more: hourly-spike, micro-bursts) it has no row. It counts rows as
minutes: llm-57s's are 57 s.
"""
import argparse
import math
import os
import random
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Runs that still miss the SLO half, and the violation % each may reach
# (today's figure + 0.05), as "TRACE xSCALE". micro-bursts: no HPA target
# gets under 3.1-3.4 %, so the rule asks for no more than HPA's fewest,
# the run at 0.30, whose standing 3.3x headroom absorbs the smaller bursts;
# a burst of one minute is over before any pod asked for on it is ready,
# so only standing pods count, and cpscale's come within 0.05 points of
# that run's. A trial with the feedback's ceiling at 4 z instead of 3
# passed the SLO half here (3.36 and 2.82 %) at 15-21 % more cost, which
# failed the cost half at both scales, and cost 2-17 % more on four other
# micro-burst traces. The last miss before it, a 2x spike every 15 minutes at full
# scale (1.51 %, then 1.08 % with a margin on remembered bursts, where HPA
# at 0.30 holds 0.41 %), holds 0.95 % since the forecast's quantile is
# learned rather than taken as normal.
KNOWN_SLO_MISSES = {"micro-bursts.csv x1": 3.51, "micro-bursts.csv x0.1": 3.24}
START = 1704067200  # Monday 2024-01-01 00:00 UTC
MINUTE = 60
DAY_MINUTES = 1440
# the default world's SLO-safe rate of one pod (docs/model.md section 3):
# mu - ln(20) / (SLO - base latency), in req/s
SAFE_RATE_PER_POD = 100.0 - math.log(20.0) / ((100.0 - 20.0) / 1000.0)
LEVEL_WINDOW_MINUTES = 31
REFERENCE_BUDGET = 0.01


def write(path, rates, step_s=MINUTE):
    """A trace file of one row per `step_s` seconds from START."""
    with open(path, "w") as out:
        out.write("timestamp,qps\n")
        for i, qps in enumerate(rates):
            out.write("%d,%.3f\n" % (START + step_s * i, max(qps, 0.0)))


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


def daily_with_spikes(rng, every_minutes, factor):
    """14 days of a daily cycle (0.8-1.0 of 1500 req/s, 4 % noise per
    minute), times `factor` in the first minute of every `every_minutes`."""
    rates = []
    for m in range(14 * DAY_MINUTES):
        qps = 1500.0 * daily_cycle(m) * math.exp(rng.gauss(0, 0.04))
        rates.append(qps * factor if m % every_minutes == 0 else qps)
    return rates


def cron_15m(rng):
    return daily_with_spikes(rng, 15, 2)


def hourly_spike(rng):
    return daily_with_spikes(rng, 60, 8)


def periodic_6m(rng):
    return [2000.0 * daily_cycle(m) * (1 + 0.3 * math.sin(2 * math.pi * m / 6)) *
            math.exp(rng.gauss(0, 0.04)) for m in range(14 * DAY_MINUTES)]


LLM_STEP_S = 57


def llm_57s(rng):
    rates, level = [], 1.0
    for i in range(14 * 86400 // LLM_STEP_S):
        if rng.random() < LLM_STEP_S / (1.5 * 86400):
            level = math.exp(rng.uniform(-0.7, 0.7))
        hour = (i * LLM_STEP_S % 86400) / 3600.0
        shape = 0.6 + 0.4 * math.exp(-((hour - 14) / 5) ** 2)
        rates.append(600.0 * level * shape * math.exp(rng.gauss(0, 0.15)))
    return rates


def micro_bursts(rng):
    rates = []
    for m in range(14 * DAY_MINUTES):
        hour = (m % DAY_MINUTES) / 60.0
        level = 0.6 + 0.4 * math.exp(-((hour - 14) / 5) ** 2)
        if rng.random() < 10.0 / DAY_MINUTES:
            level *= rng.uniform(3, 8)
        rates.append(300.0 * poisson(rng, level * MINUTE) / MINUTE)
    return rates


def level_known_reference(rates):
    """(m, its cost / the oracle's) of the level-known schedule (module
    docstring) on per-minute `rates`, both in pod-minutes; None for a trace
    without requests. m is searched upward from 1: the violating share
    only falls as m grows."""
    n = len(rates)
    prefix = [0.0]
    for qps in rates:
        prefix.append(prefix[-1] + qps)
    half = LEVEL_WINDOW_MINUTES // 2
    level = [(prefix[min(n, i + half + 1)] - prefix[max(0, i - half)]) /
             (min(n, i + half + 1) - max(0, i - half)) for i in range(n)]
    total = prefix[-1]
    if total <= 0:
        return None
    oracle = sum(max(1, math.ceil(qps / SAFE_RATE_PER_POD)) for qps in rates)
    for step in range(401):
        m = 1.0 + 0.005 * step
        pods = [max(1, math.ceil(m * lv / SAFE_RATE_PER_POD)) for lv in level]
        over = sum(qps for qps, k in zip(rates, pods) if qps > k * SAFE_RATE_PER_POD)
        if over <= REFERENCE_BUDGET * total:
            return m, sum(pods) / oracle
    return None


def reference_self_test():
    """level_known_reference on traces whose answer is known: a constant
    rate needs no margin and costs what the oracle does; on noisy ones the
    m returned keeps the budget and the step below it does not (checked by
    recounting here, not by the function's own loop)."""
    assert level_known_reference([1000.0] * 600) == (1.0, 1.0)
    assert level_known_reference([0.0] * 60) is None
    for noise in (0.03, 0.1, 0.3):
        rng = random.Random(noise)
        rates = [1000.0 * math.exp(rng.gauss(0, noise)) for _ in range(3000)]
        m, ratio = level_known_reference(rates)
        assert ratio > 1.0, (noise, m, ratio)
        half = LEVEL_WINDOW_MINUTES // 2

        def over_share(mult):
            over = 0.0
            for i, qps in enumerate(rates):
                window = rates[max(0, i - half):i + half + 1]
                pods = max(1, math.ceil(mult * sum(window) / len(window) / SAFE_RATE_PER_POD))
                over += qps if qps > pods * SAFE_RATE_PER_POD else 0.0
            return over / sum(rates)
        assert over_share(m) <= REFERENCE_BUDGET, (noise, m)
        assert over_share(m - 0.005) > REFERENCE_BUDGET, (noise, m)
    print("shapes: reference self-test passed")


def print_references(rows, traces):
    """The reference table: one line per quality.py table row."""
    print()
    print("level-known reference (see the header): m, its cost / oracle, / H(v); cpscale / oracle")
    print("%-28s %6s %6s %8s %8s %8s" % ("trace", "scale", "m", "x oracle", "/ H(v)", "cps x or"))
    for r in rows:
        rates = [qps * float(r[1]) for qps in traces[r[0]]]
        ref = level_known_reference(rates)
        if ref is None:
            continue
        oracle_usd = float(r[2]) / float(r[7])
        h_v = float(r[5].rstrip("*"))
        print("%-28s %6s %6.3f %8.3f %8.3f %8.3f" % (r[0], r[1], ref[0], ref[1],
                                                   ref[1] * oracle_usd / h_v, float(r[7])))


def read_rates(path):
    """The qps column of a trace written by write() or gen-trace."""
    with open(path) as trace:
        next(trace)
        return [float(line.split(",")[1]) for line in trace if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cpscale", nargs="?")
    ap.add_argument("--keep", metavar="DIR", help="write the traces here and keep them")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--check-slo", action="store_true",
                    help="exit 1 when a run misses the SLO half of the rule")
    ap.add_argument("--reference", action="store_true",
                    help="also print the level-known reference per run")
    ap.add_argument("--self-test", action="store_true",
                    help="check the level-known reference on traces with known answers")
    args = ap.parse_args()
    if args.self_test:
        reference_self_test()
        return 0
    if not args.cpscale:
        ap.error("CPSCALE is required")
    workdir = args.keep or tempfile.mkdtemp(prefix="cps-shapes-")
    os.makedirs(workdir, exist_ok=True)
    specs = []
    for name, make, scale in (("business-hours", business_hours, 1),
                              ("flash-crowd", flash_crowd, 1),
                              ("stationary", stationary, 5),
                              ("weekly-holidays", weekly_holidays, 2),
                              ("cron-15m", cron_15m, 1),
                              ("hourly-spike", hourly_spike, 1),
                              ("periodic-6m", periodic_6m, 1),
                              ("llm-57s", llm_57s, 1),
                              ("micro-bursts", micro_bursts, 1)):
        path = os.path.join(workdir, name + ".csv")
        write(path, make(random.Random(name)), LLM_STEP_S if name == "llm-57s" else MINUTE)
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
    if args.reference and rows:
        print_references(rows, {name: read_rates(os.path.join(workdir, name))
                                for name in sorted({r[0] for r in rows})})
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
