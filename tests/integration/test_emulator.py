#!/usr/bin/env python3
"""The workload emulator, seen through a real Prometheus, matches the model.

Starts tests/fakes/workload_emulator.py with a handful of Deployments whose
replica counts come from files (no apiserver), has the Debian prometheus
binary scrape it every second, and runs each default query of
config/default.yaml (read from the file, not copied) against it:

  phase 1 (18 s after the first scrape): the queries with their [1m] windows shortened to
    [15s]. A rate over [1m] needs a full minute of samples before it is right
    (over a partly filled window rate() divides a short delta by the whole
    range and reads low), and the suite must stay well under two minutes;
    only the window length changes, the metric names, labels, label_replace
    and joins under test are the file's.
  phase 2 (63 s after it): the queries exactly as written, [1m] and all.

Each check compares one series per (namespace, deployment) with the model of
docs/model.md (μ 100/s, base 20 ms): qps = the demand, p95 within 15 % of
base + ln 20/(μ − λ/c), cpu = min(λ/(cμ), 1), ready = ready pods, cost =
--price. Negative checks: a Deployment with no pods has no qps, p95, cpu or
cost series (ready_replicas is 0); one with no ready pods or no requests
has a NaN p95, which the controller must treat as missing. The emulator's
state file is checked from the world's side too, and a few pure checks of
the emulator's model and trace parser run first.

Usage: test_emulator.py [--cpscale PATH]   (--cpscale is accepted and unused)
Prints one line per check, then "N passed, N failed"; exit 1 on a failure.
"""

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))

import harness  # noqa: E402
import workload_emulator as emu  # noqa: E402

DEFAULT_CONFIG = os.path.join(REPO, "config", "default.yaml")
EMULATOR = os.path.join(REPO, "tests", "fakes", "workload_emulator.py")
QUERY_NAMES = ("qps", "p95_ms", "cpu_utilization", "ready_replicas", "cost_per_pod_hour",
               "budget_qps", "budget_p95_ms")

MU = 100.0
BASE_MS = 20.0
PRICE = 0.08          # not the default, so the flag is proven to reach the cost
STARTUP_S = 40.0      # the cold target's pods start during phase 1, ready by phase 2
SHORT_WINDOW = "15s"
# Offsets from the first scrape of both emulators.
PHASE1_AT_S = 18.0    # 15 s window full, plus scrape slack
PHASE2_AT_S = 63.0    # 1 m window full, plus scrape slack
COLD_SCALE_AT_S = 0.0
SHRINK_AT_S = PHASE1_AT_S + 3.0
WALL_LIMIT_S = 110.0  # the whole run must stay under two minutes

# Relative tolerances.
TOL_QPS = 0.03
TOL_P95 = 0.15
TOL_CPU = 0.03
TOL_COST = 1e-9


# load_queries: the `queries:` block of config/default.yaml as {name: PromQL}.
# A tiny reader for exactly what that block holds: `  name: >-` keys whose
# folded scalar continues on more-indented lines (joined by single spaces,
# as YAML folds them), and comment lines. Anything else there is an error,
# so a change in the file's shape fails loudly instead of testing nothing.
def load_queries(path):
    queries, current, key_indent, in_block = {}, None, None, False
    with open(path) as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.rstrip("\n")
            stripped = line.strip()
            indent = len(line) - len(line.lstrip(" "))
            if not in_block:
                in_block = line == "queries:"
                continue
            if not stripped:
                continue
            if indent == 0:
                break
            if stripped.startswith("#"):
                continue
            match = re.fullmatch(r"([A-Za-z0-9_]+):\s*>-\s*", stripped)
            if match and (key_indent is None or indent == key_indent):
                key_indent = indent
                current = match.group(1)
                queries[current] = []
            elif current is not None and indent > key_indent:
                queries[current].append(stripped)
            else:
                raise ValueError("%s:%d: unexpected line in queries: %r" % (path, number, line))
    return {k: " ".join(v) for k, v in queries.items()}


def shorten(promql):
    return promql.replace("[1m]", "[%s]" % SHORT_WINDOW)


def model_p95_ms(lam, ready):
    if lam <= 0:
        return BASE_MS + 1000 * math.log(20) / MU
    if ready == 0 or lam / ready >= MU:
        return math.inf
    return BASE_MS + 1000 * math.log(20) / (MU - lam / ready)


# One emulated Deployment: its demand and the replica counts the test
# writes (start, and optional (time, count) changes).
TARGETS = [
    # namespace, name, spec, rate, replicas at start, scheduled changes
    ("shop", "web", "const:150", 150.0, 2, ()),
    ("shop", "api", "TRACE", 40.0, 1, ()),                     # RFC 3339 trace file
    ("batch", "worker-pool", "const:900", 900.0, 10, ()),      # hyphen in the name
    ("shop", "hot", "const:250", 250.0, 2, ()),                # saturated: λ/c > μ
    ("shop", "idle", "const:0", 0.0, 1, ()),                   # no requests at all
    ("shop", "gone", "const:30", 30.0, 0, ()),                 # no pods at all
    ("shop", "cold", "const:50", 50.0, 0, ((COLD_SCALE_AT_S, 2),)),
    ("shop", "shrink", "ramp:60,60,10,10,10,10", 60.0, 3, ((SHRINK_AT_S, 1),)),
]
# Served by a second emulator with --pods-per-target-cap: its 10 pods show
# as CAP series whose sums are what the queries need.
CAP = 3
CAPPED_TARGETS = [("capped", "big", "const:900", 900.0, 10, ())]
ALL_TARGETS = TARGETS + CAPPED_TARGETS


class Checks:
    """Table of results: each check prints one line as it is made."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.accuracy = []  # (what, measured, want, relative error)

    def record(self, ok, what, detail):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print("%s %s: %s" % ("ok  " if ok else "FAIL", what, detail), flush=True)

    def near(self, what, got, want, tol):
        if got is None or (isinstance(got, float) and math.isnan(got)):
            self.record(False, what, "no value (want %.6g)" % want)
            return
        err = abs(got - want) / abs(want) if want else abs(got)
        self.accuracy.append((what, got, want, err))
        self.record(err <= tol, what, "%.6g (want %.6g, error %.2f%%, limit %.1f%%)"
                    % (got, want, 100 * err, 100 * tol))

    def missing(self, what, got):
        ok = got is None or (isinstance(got, float) and math.isnan(got))
        self.record(ok, what, "missing as expected (%s)" % ("absent" if got is None else "NaN")
                    if ok else "want absent or NaN, got %r" % got)

    def zero(self, what, got, tol=1e-6):
        ok = got is not None and not math.isnan(got) and abs(got) <= tol
        self.record(ok, what, "%r (want 0)" % (got,))

    def equal(self, what, got, want):
        self.record(got == want, what, "%r (want %r)" % (got, want))


# ----------------------------------------------------------- pure checks

def pure_checks(checks):
    model = emu.Model(MU, BASE_MS / 1000, 0.1)
    for lam, c, want in ((50, 1, 79.914645), (150, 2, 139.829291), (900, 10, 319.573227)):
        checks.near("model p95(%g, %d) = docs/model.md §9" % (lam, c), model.p95(lam, c) * 1000, want, 1e-6)
    checks.equal("model p95 infinite with no ready pods", model.p95(10, 0), math.inf)
    ramp = emu.parse_profile("ramp:10,110,5,10,5,20", 1.0)
    for tau, want in ((0, 10), (4.9, 10), (10, 60), (15, 110), (19.9, 110), (30, 60), (40, 10), (1e6, 10)):
        checks.near("ramp rate at trace second %g" % tau, ramp.rate_at(tau), want, 1e-9)
    with tempfile.TemporaryDirectory(prefix="cps-emu-trace-") as tmp:
        good = os.path.join(tmp, "good.csv")
        with open(good, "w") as fh:
            fh.write("qps,timestamp\n5,1000\n7,1010.5\n")
        trace = emu.parse_profile(good, 2.0)
        checks.equal("trace carries the rate forward (scaled)",
                     [trace.rate_at(t) for t in (0, 10.4, 10.5, 99)], [10.0, 10.0, 14.0, 14.0])
        bad = os.path.join(tmp, "bad.csv")
        with open(bad, "w") as fh:
            fh.write("timestamp,qps\n1000,5\n1000,6\n")
        try:
            emu.parse_profile(bad, 1.0)
            message = "accepted"
        except emu.InputError as exc:
            message = str(exc)
        checks.record(message.startswith(bad + ":3:1:"), "trace error names file:line:col", message)


# ----------------------------------------------------------- live checks

def by_deployment(result, what, checks):
    """{(namespace, deployment): float}; a duplicate key is a failed check."""
    out = {}
    for series in result:
        labels = series["metric"]
        key = (labels.get("namespace"), labels.get("deployment"))
        if key in out:
            checks.record(False, what, "two series for %s/%s" % key)
        out[key] = float(series["value"][1])
    return out


def live_checks(checks, prom, queries, phase, state, expect_ready):
    """One phase: run every query once and check each target's value.
    expect_ready maps target name to the ready pods the phase expects."""
    results = {}
    for name in QUERY_NAMES:
        promql = queries[name] if phase == "phase2" else shorten(queries[name])
        data = prom.query(promql)
        checks.equal("%s %s result type" % (phase, name), data["resultType"], "vector")
        results[name] = by_deployment(data["result"], "%s %s" % (phase, name), checks)

    for namespace, name, _spec, rate, _start, _changes in ALL_TARGETS:
        key = (namespace, name)
        where = "%s %s/%s" % (phase, namespace, name)
        ready = expect_ready[name]
        pods = expect_ready["_pods_" + name]
        checks.equal(where + " ready_replicas", results["ready_replicas"].get(key), float(ready))
        if pods == 0:
            for query in ("qps", "p95_ms", "cpu_utilization", "cost_per_pod_hour", "budget_qps",
                          "budget_p95_ms"):
                checks.equal(where + " %s absent (no pods)" % query, results[query].get(key), None)
            continue
        checks.near(where + " cost_per_pod_hour", results["cost_per_pod_hour"].get(key), PRICE, TOL_COST)
        if name == "cold" and phase == "phase1":
            checks.zero(where + " qps (no pod ready)", results["qps"].get(key))
            checks.missing(where + " p95_ms (no pod ready)", results["p95_ms"].get(key))
            checks.zero(where + " cpu_utilization (no pod ready)", results["cpu_utilization"].get(key))
            checks.zero(where + " budget_qps (no pod ready)", results["budget_qps"].get(key))
            checks.missing(where + " budget_p95_ms (no pod ready)", results["budget_p95_ms"].get(key))
            continue
        # The budget's queries see the last scrape interval alone: the
        # current rate and p95 even where the 1 m window still spans a
        # change (shrink: 3 -> 1 pods; cold: ready for part of it).
        want_p95 = model_p95_ms(rate, ready)
        if rate > 0:
            checks.near(where + " budget_qps", results["budget_qps"].get(key), rate, TOL_QPS)
            if math.isinf(want_p95):
                checks.near(where + " budget_p95_ms (saturated)", results["budget_p95_ms"].get(key),
                            1000 * emu.BUCKETS[-1], 1e-9)
            else:
                checks.near(where + " budget_p95_ms", results["budget_p95_ms"].get(key), want_p95,
                            TOL_P95)
        if name == "shrink" and phase == "phase2":
            # The 1 m window spans 3 -> 1: the per-pod load changed, the
            # total did not, and the deleted pods' partial series add up.
            checks.near(where + " qps across scaling", results["qps"].get(key), rate, TOL_QPS * 2)
            continue
        if name == "cold" and phase == "phase2":
            # Ready for only part of the 1 m window (nothing is served
            # before): checked over the short window below instead.
            continue
        if rate == 0:
            checks.zero(where + " qps (idle)", results["qps"].get(key))
            checks.missing(where + " p95_ms (no requests)", results["p95_ms"].get(key))
            checks.zero(where + " budget_qps (idle)", results["budget_qps"].get(key))
            checks.missing(where + " budget_p95_ms (no requests)", results["budget_p95_ms"].get(key))
            continue
        checks.near(where + " qps", results["qps"].get(key), rate, TOL_QPS)
        if math.isinf(want_p95):
            # Saturated: every request is above the largest finite bucket,
            # so histogram_quantile answers that bucket's bound.
            checks.near(where + " p95_ms (saturated)", results["p95_ms"].get(key),
                        1000 * emu.BUCKETS[-1], 1e-9)
        else:
            checks.near(where + " p95_ms", results["p95_ms"].get(key), want_p95, TOL_P95)
        checks.near(where + " cpu_utilization", results["cpu_utilization"].get(key),
                    min(rate / (ready * MU), 1.0), TOL_CPU)

    # The world's own view, from the emulator's state file.
    for namespace, name, _spec, rate, start, _changes in ALL_TARGETS:
        entry = state["targets"]["%s/%s" % (namespace, name)]
        where = "%s state %s/%s" % (phase, namespace, name)
        checks.equal(where + " pods/ready", (entry["replicas"], entry["ready"]),
                     (expect_ready["_pods_" + name], expect_ready[name]))
        want = model_p95_ms(rate, entry["ready"])
        got = entry["p95_ms"]
        checks.record((got is None and math.isinf(want)) or (got is not None and abs(got - want) < 1e-6),
                      where + " p95_ms", "%r (want %r)" % (got, want))
        checks.equal(where + " violating", entry["violating"], rate > 0 and want > 100.0)
        # Cost so far: pod-seconds × price; pods that changed make it a range.
        seconds = entry["_t"]
        pods_now = expect_ready["_pods_" + name]
        lo_pods, hi_pods = min(pods_now, start), max(pods_now, start)
        cost = entry["cost_usd_total"]
        lo, hi = (n * seconds * PRICE / 3600 for n in (lo_pods, hi_pods))
        ok = lo * (1 - 1e-9) - 1e-12 <= cost <= hi * (1 + 1e-9) + 1e-12
        checks.record(ok, where + " cost_usd_total",
                      "%.6g USD after %.1f s (%d..%d pods: %.6g..%.6g)"
                      % (cost, seconds, lo_pods, hi_pods, lo, hi))


def count_series(prom, promql):
    return len(prom.query(promql)["result"])


def write_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# emulator_args: the command line of one emulator over `targets`, each
# with a replicas file in workdir (created with its start count; returned
# in replicas_files so the schedule can rewrite it).
def emulator_args(label, targets, workdir, trace, replicas_files, extra=()):
    args = [sys.executable, EMULATOR, "--service-rate", MU, "--base-latency-ms", BASE_MS,
            "--startup-s", STARTUP_S, "--price", PRICE, "--seed", 7,
            "--port-file", os.path.join(workdir, label + ".port"),
            "--state-file", os.path.join(workdir, label + ".state.json"),
            "--duration", WALL_LIMIT_S] + list(extra)
    for namespace, name, spec, _rate, start, _changes in targets:
        args += ["--target", "%s/%s=%s" % (namespace, name, trace if spec == "TRACE" else spec)]
        path = os.path.join(workdir, "%s.replicas" % name)
        write_file(path, "%d\n" % start)
        replicas_files[name] = path
        args += ["--replicas-file", "%s/%s=%s" % (namespace, name, path)]
    return args


def read_port(path):
    return int(harness.wait_until(
        lambda: open(path).read().strip() if os.path.exists(path) else None, 15, path))


def run(checks, workdir, started):
    queries = load_queries(DEFAULT_CONFIG)
    checks.equal("default.yaml has every query", sorted(queries), sorted(QUERY_NAMES))

    trace = os.path.join(workdir, "api.csv")
    # RFC 3339 stamps; the second row is an hour out, so 40/s holds throughout.
    write_file(trace, "timestamp,qps\n2024-05-01T12:00:00Z,40\n2024-05-01T13:00:00+00:00,500\n")
    replicas_files = {}
    main_args = emulator_args("main", TARGETS, workdir, trace, replicas_files)
    capped_args = emulator_args("capped", CAPPED_TARGETS, workdir, trace, replicas_files,
                                ["--pods-per-target-cap", CAP])

    with contextlib.ExitStack() as stack:
        emulators = [stack.enter_context(harness.Process(main_args, name="emulator", log_dir=workdir)),
                     stack.enter_context(harness.Process(capped_args, name="capped", log_dir=workdir))]
        ports = [read_port(os.path.join(workdir, label + ".port")) for label in ("main", "capped")]
        prom = stack.enter_context(harness.Prometheus(
            scrape_targets=["127.0.0.1:%d" % port for port in ports]))
        prom.wait_for_series('up{job="emulator"} == 1', timeout=15, min_series=2)
        # The schedule counts from the first successful scrape of both: a
        # rate window that reaches back before a series' first sample reads
        # low (rate() extrapolates at most half an interval past it).
        t0 = time.monotonic()
        pending = sorted((at, name, n) for _ns, name, _s, _r, _st, changes in ALL_TARGETS
                         for at, n in changes)

        def sleep_until(offset):
            # Apply the scheduled replica changes on the way.
            while True:
                now = time.monotonic() - t0
                while pending and pending[0][0] <= now:
                    _at, name, n = pending.pop(0)
                    write_file(replicas_files[name], "%d\n" % n)
                if now >= offset:
                    return
                if time.monotonic() - started > WALL_LIMIT_S:
                    raise TimeoutError("suite ran over %ss" % WALL_LIMIT_S)
                nxt = pending[0][0] if pending else offset
                time.sleep(max(0.05, min(offset, nxt) - now))

        def state():
            merged = {"targets": {}}
            for label in ("main", "capped"):
                with open(os.path.join(workdir, label + ".state.json")) as fh:
                    one = json.load(fh)
                for key, entry in one["targets"].items():
                    entry["_t"] = one["t"]
                    merged["targets"][key] = entry
            return merged

        expect = {}
        for _ns, name, _s, _r, start, _changes in ALL_TARGETS:
            expect[name] = start
            expect["_pods_" + name] = start
        expect["cold"], expect["_pods_cold"] = 0, 2   # created, still starting

        try:
            sleep_until(PHASE1_AT_S)
            live_checks(checks, prom, queries, "phase1", state(), expect)
            checks.equal("phase1 series of worker-pool pods",
                         count_series(prom, 'http_requests_total{namespace="batch",pod=~"worker-pool-.*"}'),
                         10)
            checks.equal("phase1 series of capped/big (10 pods in %d slots)" % CAP,
                         count_series(prom, 'http_requests_total{namespace="capped"}'), CAP)
            checks.equal("phase1 nodes priced (two emulators, distinct names)",
                         count_series(prom, "node_cpu_hourly_cost"), 6)

            sleep_until(PHASE2_AT_S)
            expect["cold"], expect["_pods_cold"] = 2, 2
            expect["shrink"], expect["_pods_shrink"] = 1, 1
            live_checks(checks, prom, queries, "phase2", state(), expect)
            # Deleted pods' series end with a staleness marker: gone at once.
            checks.equal("phase2 series of shrink pods after 3 -> 1",
                         count_series(prom, 'http_requests_total{pod=~"shrink-.*"}'), 1)
            checks.equal("phase2 series of cold pods",
                         count_series(prom, 'http_requests_total{pod=~"cold-.*"}'), 2)
            # The cold pods, ready since about 41 s, carry the load now.
            cold = {}
            for query in ("qps", "p95_ms", "cpu_utilization"):
                result = prom.query(shorten(queries[query]))["result"]
                cold[query] = by_deployment(result, "phase2 cold " + query, checks).get(("shop", "cold"))
            checks.near("phase2 shop/cold qps [15s] once ready", cold["qps"], 50.0, TOL_QPS)
            checks.near("phase2 shop/cold p95_ms [15s] once ready", cold["p95_ms"],
                        model_p95_ms(50.0, 2), TOL_P95)
            checks.near("phase2 shop/cold cpu_utilization [15s] once ready",
                        cold["cpu_utilization"], 0.25, TOL_CPU)
        except BaseException:
            raise  # the `with` blocks print every log on their way out
        else:
            if checks.failed:
                prom.dump_logs()
                for emulator in emulators:
                    emulator.dump_logs()
        # Both emulators stop cleanly on SIGTERM (exit status 0).
        for emulator in emulators:
            checks.equal("%s exits 0 on SIGTERM" % emulator.name, emulator.stop(), 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpscale", help="accepted for the suite runner; unused")
    parser.parse_args()
    harness.install_signal_handlers()
    started = time.monotonic()
    checks = Checks()
    pure_checks(checks)
    workdir = tempfile.mkdtemp(prefix="cps-test-emulator-")
    try:
        run(checks, workdir, started)
    except (Exception, KeyboardInterrupt, SystemExit) as exc:  # noqa: BLE001 - count it, still summarise
        checks.record(False, "suite", "%s: %s" % (type(exc).__name__, exc))
    finally:
        if not os.environ.get("CPS_KEEP_LOGS"):
            shutil.rmtree(workdir, ignore_errors=True)
    if checks.accuracy:
        print("accuracy (worst first):")
        for what, got, want, err in sorted(checks.accuracy, key=lambda a: -a[3])[:12]:
            print("  %-58s %12.6g vs %12.6g  %.3f%%" % (what, got, want, 100 * err))
    print("%d passed, %d failed (%.1f s)" % (checks.passed, checks.failed, time.monotonic() - started))
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
