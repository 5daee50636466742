#!/usr/bin/env python3
"""Decision quality in worlds the policy was not designed against.

Runs bench/quality.py's rule on nasa-jul95-1m.csv and twitter-aug21-1m.csv
(at their SOURCES.md scales) in the default world and in each variant world
below. The variant's flags go to the whole `cpscale sim` pass, so HPA's
targets are swept in that same world and cpscale is judged against what the
HPA reaches there. cpscale keeps its default config: nothing is re-tuned.

  deterministic   --service-times deterministic
  lognormal:2     --service-times lognormal:2
  drift 0.2       --capacity-drift 0.2
  jitter 90s      --startup-jitter 90s
  (each with --world-seed 1)
  start 120s      --startup 120s: pods take 120 s to be ready where the
                  config (policy.startup) says 30 s

A build without a variant's flags prints "variant not available in this
build" on that row; such a row is neither passed nor failed.

Usage: bench/worlds.py CPSCALE [-v] [--report-only] [--jobs N] [--traces DIR]
                       [-- extra sim flags for every run]
Exits 1 when a check fails (unless --report-only), 2 on a usage error.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quality  # noqa: E402

TRACES = ["nasa-jul95-1m.csv", "twitter-aug21-1m.csv"]
WORLD_SEED = ["--world-seed", "1"]
VARIANTS = [
    ("default", []),
    ("deterministic", ["--service-times", "deterministic"] + WORLD_SEED),
    ("lognormal:2", ["--service-times", "lognormal:2"] + WORLD_SEED),
    ("drift 0.2", ["--capacity-drift", "0.2"] + WORLD_SEED),
    ("jitter 90s", ["--startup-jitter", "90s"] + WORLD_SEED),
    ("start 120s", ["--startup", "120s"]),
]


def main():
    argv, extra = quality.split_extra(sys.argv[1:])
    ap = argparse.ArgumentParser(usage=__doc__.split("Usage: ")[1].split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--traces", default=quality.DEFAULT_TRACES_DIR)
    ap.add_argument("--known-misses", metavar="FILE",
                    help="runs the rule is known to fail, with bounds (a ratchet)")
    args = ap.parse_args(argv)
    started = time.monotonic()
    scales = quality.source_scales(args.traces)
    runs = []
    for label, flags in VARIANTS:
        for name in TRACES:
            if name not in scales:
                raise SystemExit("worlds: %s: no scale in SOURCES.md" % name)
            runs.append((label, os.path.join(args.traces, name), scales[name], flags))
    outcomes = quality.run_all(args.binary, runs, extra, args.jobs)
    passed, failed, unavailable, known = quality.report(
        outcomes, args.verbose, label_width=13,
        misses=quality.load_known_misses(args.known_misses))
    print("worlds: %d checks passed, %d known misses within their bounds, %d failed%s; "
          "wall time %.1f s%s" % (
        passed, known, failed, ", %d runs unavailable" % unavailable if unavailable else "",
        time.monotonic() - started, " (report only)" if args.report_only else ""))
    return 1 if failed and not args.report_only else 0


if __name__ == "__main__":
    sys.exit(main())
