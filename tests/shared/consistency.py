#!/usr/bin/env python3
"""Consistency of `cpscale sim` figures on a real trace (the stress cases).

Runs the default policies plus static ones and checks relations that must
hold whatever the trace: every policy saw the same requests; cost equals
pod-seconds times the price; violation shares are percentages; cost per
million matches cost and requests; average pods match pod-seconds; the
oracle costs no more than any policy that never violated the SLO; a static
count that always meets the SLO (the oracle's peak) violates only while its
first pods start.
Usage: consistency.py CPSCALE TRACE SCALE
Prints "N passed, N failed" and exits 1 on a failure.
"""
import json
import subprocess
import sys


def sim(binary, trace, scale, policies):
    out = subprocess.run([binary, "sim", trace, "--scale", str(scale), "--json", "--quiet",
                          "--policy", policies], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    binary, trace, scale = sys.argv[1], sys.argv[2], float(sys.argv[3])
    first = sim(binary, trace, scale, "cpscale,hpa,oracle")
    peak = next(p for p in first["policies"] if p["policy"] == "oracle")["peak_pods"]
    report = sim(binary, trace, scale, "cpscale,hpa,oracle,static:%d" % peak)
    price = report["params"]["price"]
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL %s: %s" % (trace, what))

    seconds, requests = report["seconds"], report["requests"]
    check(seconds > 0 and requests > 0, "ran something")
    policies = {p["policy"]: p for p in report["policies"]}
    oracle = policies["oracle"]
    for name, p in policies.items():
        check(abs(p["cost_usd"] - p["pod_seconds"] * price / 3600) <= 1e-6 * max(1, p["cost_usd"]),
              "%s cost = pod-seconds x price" % name)
        check(0 <= p["violation_pct"] <= 100 and 0 <= p["violation_time_pct"] <= 100,
              "%s violation shares are percentages" % name)
        check(abs(p["cost_per_million"] - p["cost_usd"] / requests * 1e6) <= 1e-6 * p["cost_per_million"],
              "%s cost per million" % name)
        check(abs(p["avg_pods"] - p["pod_seconds"] / seconds) <= 1e-6 * max(1, p["avg_pods"]),
              "%s average pods" % name)
        check(p["peak_pods"] >= p["avg_pods"] - 1e-9, "%s peak >= average" % name)
        if p["violation_pct"] == 0:
            check(p["cost_usd"] >= oracle["cost_usd"] - 1e-9, "%s without violations costs >= oracle" % name)
    static = policies["static:%d" % peak]
    # static at the oracle's peak can only miss the SLO while its first pods start
    startup = report["params"]["startup_s"]
    check(static["violating_seconds"] <= startup,
          "static:%d (oracle's peak) violates only during the first startup" % peak)
    check(static["peak_pods"] == peak, "static:%d peaks at %d" % (peak, peak))
    # the default run and the run with an extra static policy agree (policies are independent)
    for p in first["policies"]:
        q = policies[p["policy"]]
        check(p["cost_usd"] == q["cost_usd"] and p["violation_pct"] == q["violation_pct"],
              "%s is independent of the other policies" % p["policy"])
    for name in ("cpscale", "hpa", "oracle"):
        p = policies[name]
        print("   %-9s cost %10.2f  viol %7.3f%%  viol time %7.3f%%  x oracle %6.3f" %
              (name, p["cost_usd"], p["violation_pct"], p["violation_time_pct"], p["cost_vs_oracle"]))
    print("%s: %d passed, %d failed" % (trace.split("/")[-1], passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
