#!/usr/bin/env python3
"""Decision quality of cpscale against the Kubernetes HPA and the oracle.

For each trace, runs `cpscale sim` once with cpscale, the oracle and HPA at
every CPU target from 0.30 to 0.95 (step 0.05), all in one pass, and checks:

  H(v)  = the lowest HPA cost among runs whose violation % is <= v
  pass  = cpscale cost <= 0.85 * H(cpscale's violation %)
          or cpscale cost <= 1.10 * oracle cost
          (if no HPA run has as few violations: cpscale cost <= the cost of
           the HPA run with the fewest violations)
  and, where some HPA run reaches <= 1.0 % violations, cpscale does too.

Usage: bench/quality.py CPSCALE [TRACE:SCALE ...] [-- extra sim flags]
Prints a table; exits 1 when a check fails.
"""
import json
import subprocess
import sys

DEFAULT_TRACES = [
    "../shared/traces/nasa-jul95-1m.csv:900",
    "../shared/traces/twitter-aug21-1m.csv:15",
    "../shared/traces/nab-elb-5m.csv:3500",
]
HPA_TARGETS = [round(0.30 + 0.05 * i, 2) for i in range(14)]


def run(binary, trace, scale, extra):
    policies = ["cpscale", "oracle"] + ["hpa:%.2f" % t for t in HPA_TARGETS]
    cmd = [binary, "sim", trace, "--scale", str(scale), "--json", "--quiet",
           "--policy", ",".join(policies)] + extra
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {p["policy"]: p for p in json.loads(out)["policies"]}


def check(results):
    cps, oracle = results["cpscale"], results["oracle"]
    hpa = [results["hpa:%.2f" % t] for t in HPA_TARGETS]
    v = cps["violation_pct"]
    eligible = [h["cost_usd"] for h in hpa if h["violation_pct"] <= v]
    fewest = min(hpa, key=lambda h: (h["violation_pct"], h["cost_usd"]))
    if eligible:
        h_v = min(eligible)
        cost_ok = cps["cost_usd"] <= 0.85 * h_v or cps["cost_usd"] <= 1.10 * oracle["cost_usd"]
        bound = "0.85*H(v)=%.2f" % (0.85 * h_v)
    else:
        h_v = None
        cost_ok = cps["cost_usd"] <= fewest["cost_usd"]
        bound = "<= fewest-viol HPA %.2f" % fewest["cost_usd"]
    any_hpa_1pct = any(h["violation_pct"] <= 1.0 for h in hpa)
    slo_ok = (not any_hpa_1pct) or v <= 1.0
    return h_v, bound, cost_ok, slo_ok, fewest


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1:]
    if not args:
        print(__doc__)
        return 2
    binary, traces = args[0], args[1:] or DEFAULT_TRACES
    failed = 0
    for spec in traces:
        trace, scale = spec.rsplit(":", 1)
        r = run(binary, trace, float(scale), extra)
        h_v, bound, cost_ok, slo_ok, fewest = check(r)
        cps, oracle = r["cpscale"], r["oracle"]
        print("== %s (scale %s)" % (trace.split("/")[-1], scale))
        print("   %-10s %12s %9s %10s" % ("policy", "cost $", "viol %", "x oracle"))
        for name in ["cpscale", "oracle"] + ["hpa:%.2f" % t for t in HPA_TARGETS]:
            p = r[name]
            print("   %-10s %12.2f %9.3f %10.3f" % (name, p["cost_usd"], p["violation_pct"],
                                                   p["cost_vs_oracle"]))
        hv = "%.2f" % h_v if h_v is not None else "none"
        print("   H(%.3f%%) = %s; cpscale %.2f vs %s or 1.10*oracle=%.2f -> cost %s; "
              "<=1%% violations %s" % (cps["violation_pct"], hv, cps["cost_usd"], bound,
                                       1.10 * oracle["cost_usd"], "PASS" if cost_ok else "FAIL",
                                       "PASS" if slo_ok else "FAIL"))
        if h_v:
            print("   cpscale / H(v) = %.3f" % (cps["cost_usd"] / h_v))
        failed += (not cost_ok) + (not slo_ok)
    print("quality: %d passed, %d failed" % (2 * len(traces) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
