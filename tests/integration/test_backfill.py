#!/usr/bin/env python3
"""A controller that starts with history in Prometheus picks up where the
policy left off: `cpscale run --backfill` replays the history into the
policy state before it decides, so a restart loses neither the burst
memory nor the violation budget.

The world: 6 h of history ending now, written as OpenMetrics gauges and
backfilled into a fresh Prometheus with `promtool tsdb create-blocks-from
openmetrics`, for two Deployments with identical data (shop/web and
shop/web-b): a steady 100 req/s with a 4x burst in the same clock minute of
every hour, chosen so that its next occurrence comes 100-160 s after the
history ends; p95 over the SLO at every 20th sample outside the bursts (a
share of requests worked out here from the samples). The fake
kube-apiserver serves both Deployments at 4 replicas. Then, at once:
  controller A  --backfill 7h, target shop/web
  controller B  --backfill 0 (disabled), target shop/web-b
and the run lasts until 20 s into the burst minute. Checked:
  (a) A logs a decision bound by burst memory before the burst minute, and
      PATCHes the scale subresource to the burst's pods (400 req/s at
      50 req/s per pod) before it starts;
  (b) A's decisions report the budget spent as the history's violating
      share over the 1 % budget, within 10 % relative;
  (c) B does neither: no burst-memory decision, no PATCH to the burst's
      pods, and a budget near zero;
  and A counts cpscale_policy_backfill_total{result="ok"} 1.
Restarted mid-run: controller R (--backfill 7h, target shop/web-r, same
data) is killed with SIGKILL a few ticks after its state was built, and
started again at once. The second R must
  (d) start from the budget the first R had (its first decision's budget
      spent within 10 % of the first R's last), pre-scale for the burst as
      (a) says, and
  (e) decide as A, which was never restarted, decides at the same time:
      the same count on every tick, except within one interval of a change
      of A's count (the two tick at different instants), and the same
      budget spent within 10 %.
The history also holds cpscale_policy_startup_learned_seconds as two
replicas exported it (75 s and 60 s) and as a pod gone 2 h before exported
it (300 s): A and both R plan with 75 s after their backfill, B with the
configured 30 s.
Then shutdown: a controller whose backfill waits on a Prometheus that never
answers a range query exits 0 on SIGTERM within seconds (the worker's
transfer is cancelled and the thread joined), not after the backfill's
60 s bound.

Usage: test_backfill.py --cpscale PATH [--keep]. Ends with "N passed,
N failed". Bounded (about 3 minutes); everything on 127.0.0.1.
"""

import argparse
import http.server
import json
import math
import os
import re
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import harness  # noqa: E402
import kubefake  # noqa: E402
from test_controller import Checks, Controller, deployment, namespace_object, patches  # noqa: E402
from test_controller import patched_replicas  # noqa: E402

NAMESPACE = "shop"
WITH, WITHOUT, RESTARTED = "web", "web-b", "web-r"
HISTORY_S = 6 * 3600
SAMPLE_S = 10            # spacing of the history's samples
INTERVAL = "10s"         # the controller's tick, the backfill's step
STARTUP_S = 30
# The learned start-up the controllers exported before
# (cpscale_policy_startup_learned_seconds): 75 s by the leader, 60 s by its
# standby (it missed a scale-up), and 300 s by a pod gone since 2 h before
# the history ends, which must not count
EXPORTED_STARTUP_S = {"leader": 75.0, "standby": 60.0}
GONE_POD_STARTUP_S, GONE_POD_UNTIL_S = 300.0, 2 * 3600
LAG_S = 10
STEADY_QPS = 100.0
BURST_QPS = 400.0
RPS_PER_POD = 50.0
REPLICAS = 4
SLO_MS = 250.0
BUDGET = 0.01
VIOLATING_EVERY = 20     # every 20th sample outside the bursts is over the SLO
SERVICE_RATE = 100.0     # for the CPU series: qps / (ready x μ)
FIRST_BURST_AFTER_S = (100, 160)  # the next burst minute starts this long after "now"
AFTER_BURST_START_S = 20
REL_TOL = 0.10
SHUTDOWN_BOUND_S = 15    # SIGTERM to exit with a backfill stuck (its own bound is 60 s)


def choose_burst_minute(now):
    """The first minute of the hour that starts 100-160 s after now."""
    start = (int(now) // 60 + 1) * 60
    while start - now < FIRST_BURST_AFTER_S[0]:
        start += 60
    assert start - now <= FIRST_BURST_AFTER_S[1]
    return start, (start // 60) % 60


def history(now, burst_minute):
    """Samples (t, qps, p95_ms) every SAMPLE_S up to now. A sample at t
    shows the metrics window the policy files at t - lag - 30 s, so the
    burst is written where that time falls in the burst minute."""
    end = int(now) // SAMPLE_S * SAMPLE_S
    samples = []
    for i, t in enumerate(range(end - HISTORY_S, end + 1, SAMPLE_S)):
        filed = t - LAG_S - 30
        burst = (filed // 60) % 60 == burst_minute
        qps = BURST_QPS if burst else STEADY_QPS
        violating = not burst and i % VIOLATING_EVERY == 7 and t < end - 120
        samples.append((t, qps, 400.0 if violating else 60.0))
    return samples


def violating_share(samples):
    """The share of requests over the SLO as the policy counts them: the
    replay steps at the sample spacing, so each sample is one step of
    rate x step, violating when its p95 is over the SLO. (The week-long
    budget window weighs 6 h of steps within 4 % of each other, evenly
    over the violating and the clean ones.)"""
    all_requests = sum(q for _, q, _ in samples)
    bad = sum(q for _, q, p in samples if p > SLO_MS)
    return bad / all_requests


def openmetrics(samples):
    lines = []
    series = (("cps_bf_qps", 1), ("cps_bf_p95_ms", 2))
    for name, column in series:
        lines += ["# HELP %s test history" % name, "# TYPE %s gauge" % name]
        for dep in (WITH, WITHOUT, RESTARTED):
            for row in samples:
                lines.append('%s{namespace="%s",deployment="%s"} %r %d'
                             % (name, NAMESPACE, dep, row[column], row[0]))
    for name, value in (("cps_bf_ready", lambda q: float(REPLICAS)),
                        ("cps_bf_cpu", lambda q: min(1.0, q / (REPLICAS * SERVICE_RATE)))):
        lines += ["# HELP %s test history" % name, "# TYPE %s gauge" % name]
        for dep in (WITH, WITHOUT, RESTARTED):
            for t, q, _ in samples:
                lines.append('%s{namespace="%s",deployment="%s"} %r %d'
                             % (name, NAMESPACE, dep, value(q), t))
    name = "cpscale_policy_startup_learned_seconds"
    lines += ["# HELP %s test history" % name, "# TYPE %s gauge" % name]
    end = samples[-1][0]
    exporters = sorted(EXPORTED_STARTUP_S.items()) + [("gone", GONE_POD_STARTUP_S)]
    for dep in (WITH, WITHOUT, RESTARTED):
        for pod, value in exporters:
            for t, _, _ in samples[::6]:   # a scrape a minute
                if pod != "gone" or t <= end - GONE_POD_UNTIL_S:
                    lines.append('%s{namespace="%s",name="%s",pod="%s"} %r %d'
                                 % (name, NAMESPACE, dep, pod, value, t))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def startup_gauge(controller, name):
    """The controller's cpscale_policy_startup_seconds for shop/NAME, or None."""
    status, metrics = controller.http("/metrics")
    if status != 200:
        return None
    labels = '{namespace="%s",name="%s"}' % (NAMESPACE, name)
    for line in metrics.splitlines():
        if line.startswith("cpscale_policy_startup_seconds" + labels + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def check_startup(checks, label, controller, applied, name, want):
    """The start-up the controller plans with (its gauge) is `want`, within
    1 % (a restored one halves over a day), and, when it was restored, the
    backfill's log line says what it read. The gauge is the last decision's:
    a tick that decided while the backfill was still being read exported
    the configured start-up, so the value is awaited for up to 30 s (three
    ticks) from the call, which comes as soon as the backfill's "applied"
    line is seen."""
    deadline = time.time() + 30   # exported from the first decision on the forecast on

    def close(value):
        return value is not None and abs(value - want) <= 0.01 * want
    got = startup_gauge(controller, name)
    while not close(got) and time.time() < deadline:
        time.sleep(0.5)
        got = startup_gauge(controller, name)
    checks.check("%s: plans with a start-up of %g s" % (label, want), close(got),
                 "cpscale_policy_startup_seconds %s" % got)
    if want != STARTUP_S:
        checks.check("%s: the backfill read the exported start-up" % label,
                     applied.get("startup_exported_s") == max(EXPORTED_STARTUP_S.values()),
                     str(applied.get("startup_exported_s")))


def write_config(path, prom_url, name):
    text = """interval: %s
listen: "127.0.0.1:0"
prometheus:
  url: %s
  timeout: 5s
queries:
  qps: 'cps_bf_qps{namespace=$namespace, deployment=$deployment}'
  p95_ms: 'cps_bf_p95_ms{namespace=$namespace, deployment=$deployment}'
  cpu_utilization: 'cps_bf_cpu{namespace=$namespace, deployment=$deployment}'
  ready_replicas: 'cps_bf_ready{namespace=$namespace, deployment=$deployment}'
  cost_per_pod_hour: 'vector(0.05)'
leader_election:
  enabled: false
defaults:
  slo:
    latency_p95_ms: %g
    violation_budget: %g
  capacity:
    rps_per_pod: %g
  policy:
    startup: %ds
    metrics_lag: %ds
targets:
  - namespace: %s
    deployment: %s
    min_replicas: 1
    max_replicas: 20
""" % (INTERVAL, prom_url, SLO_MS, BUDGET, RPS_PER_POD, STARTUP_S, LAG_S, NAMESPACE, name)
    with open(path, "w") as handle:
        handle.write(text)
    return path


def epoch_of(stamp):
    """2026-12-05T10:01:02.345Z -> epoch seconds."""
    whole, _, frac = stamp.rstrip("Z").partition(".")
    return (time.mktime(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) - time.timezone
            + (float("0." + frac) if frac else 0.0))


def budget_spent(detail):
    """The "budget N% spent" figure of a decision's detail, as a share."""
    match = re.search(r"budget (\d+)% spent", detail or "")
    return float(match.group(1)) / 100.0 if match else None


def burst_bound(record):
    return record.get("bound") == "burst_memory" or "burst_memory" in (record.get("detail") or "")


def examine(checks, label, controller, kube_records, name, burst_start, expect_burst,
            expected_spent):
    ticks = [r for r in controller.lines() if r.get("msg") == "tick"]
    before = [r for r in ticks if epoch_of(r["time"]) < burst_start]
    burst_pods = int(math.ceil(BURST_QPS / RPS_PER_POD))
    prescale = [r for r in before if burst_bound(r)]
    patched = [patched_replicas(p) for p in patches(kube_records, name=name)]
    patched_before = [r.get("desired") for r in before if r.get("action") == "patched"]
    big = [n for n in patched if n is not None and n >= burst_pods - 1]
    spent = [budget_spent(r.get("detail")) for r in ticks]
    spent = [s for s in spent if s is not None]
    if expect_burst:
        checks.check("%s: a decision bound by burst memory before the burst minute" % label,
                     bool(prescale), "%d decisions before it" % len(before))
        checks.check("%s: PATCHed to the burst's pods (%d) before the burst minute"
                     % (label, burst_pods),
                     any(d is not None and d >= burst_pods - 1 for d in patched_before) and
                     bool(big), "PATCHes %s; patched before: %s" % (patched, patched_before))
        got = spent[-1] if spent else None
        checks.check("%s: budget spent %.2f (the history's share / budget) within 10 %%"
                     % (label, expected_spent),
                     got is not None and abs(got - expected_spent) <= REL_TOL * expected_spent,
                     "decisions say %s" % got)
    else:
        checks.check("%s: no decision bound by burst memory before the burst minute" % label,
                     not prescale, "%d of them" % len(prescale))
        checks.check("%s: no PATCH to the burst's pods before the burst minute" % label,
                     not any(d is not None and d >= burst_pods - 1 for d in patched_before),
                     "patched before: %s" % patched_before)
        got = spent[-1] if spent else None
        checks.check("%s: budget spent near zero (fresh state)" % label,
                     got is not None and got < 0.1 * expected_spent, "decisions say %s" % got)


def backfill_end(controller):
    return controller.wait_for(lambda r: r.get("msg") in ("backfill applied", "backfill dropped",
                                                          "backfill failed"), 60,
                               "the backfill's end")[0]


def decisions_after(controller, since):
    """(epoch, desired, budget spent) of the controller's ticks after `since`."""
    rows = []
    for r in controller.lines():
        if r.get("msg") == "tick" and epoch_of(r["time"]) > since:
            rows.append((epoch_of(r["time"]), r.get("desired"), budget_spent(r.get("detail"))))
    return rows


def kill_mid_run(checks, restarted_config, kubeconfig, cpscale, workdir):
    """Start R, let it tick on its rebuilt state, SIGKILL it, start it again.
    Returns (the first R's last decision, the second R)."""
    args = ["--kubeconfig", kubeconfig, "--backfill", "7h"]
    first = Controller(cpscale, workdir, "restarted-before", restarted_config, args)
    applied = backfill_end(first)
    checks.check("restarted: the first run's state was rebuilt",
                 applied.get("msg") == "backfill applied", str(applied))
    since = epoch_of(applied["time"])
    harness.wait_until(lambda: len(decisions_after(first, since)) >= 2, 60,
                       "two ticks of the first run")
    last = decisions_after(first, since)[-1]
    first.stop(signal.SIGKILL)
    second = Controller(cpscale, workdir, "restarted-after", restarted_config, args)
    return last, second


def same_decisions(checks, restarted, applied_at, reference):
    """(e): the restarted controller's ticks against the reference's."""
    ours = decisions_after(restarted, applied_at)
    theirs = decisions_after(reference, applied_at - 30)
    changes = [now[0] for prev, now in zip(theirs, theirs[1:]) if now[1] != prev[1]]
    compared, differ = 0, []
    interval = float(INTERVAL.rstrip("s"))
    for t, desired, _ in ours:
        nearest = min(theirs, key=lambda row: abs(row[0] - t), default=None)
        if nearest is None or abs(nearest[0] - t) > interval:
            continue
        if any(abs(c - t) <= interval for c in changes):
            continue
        compared += 1
        if desired != nearest[1]:
            differ.append("%.0f: %s vs %s" % (t, desired, nearest[1]))
    checks.check("restarted: decides as the controller that was never restarted",
                 compared >= 3 and not differ,
                 "%d ticks compared; differing: %s" % (compared, differ[:5]))
    spent = [s for _, _, s in ours if s is not None]
    spent_ref = [s for _, _, s in theirs if s is not None]
    checks.check("restarted: budget spent as the never-restarted controller's, within 10 %",
                 bool(spent) and bool(spent_ref) and
                 abs(spent[-1] - spent_ref[-1]) <= REL_TOL * spent_ref[-1],
                 "%s vs %s" % (spent[-1:], spent_ref[-1:]))


class StuckPrometheus:
    """Answers instant queries with an empty vector at once and holds every
    range query open until stopped."""

    def __init__(self):
        release = self.release = threading.Event()
        self.range_requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self):
                if self.path.startswith("/api/v1/query_range"):
                    owner.range_requests += 1
                    release.wait(120)
                    return
                body = json.dumps({"status": "success",
                                   "data": {"resultType": "vector", "result": []}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def shutdown_with_backfill_stuck(checks, cpscale, workdir, kubeconfig):
    stuck = StuckPrometheus()
    try:
        c = Controller(cpscale, workdir, "stuck-backfill",
                       write_config(os.path.join(workdir, "c.yaml"), stuck.url, WITH),
                       ["--kubeconfig", kubeconfig, "--backfill", "1h"])
        c.wait_for(lambda r: r.get("msg") == "backfill started", 30, "the backfill's start")
        harness.wait_until(lambda: stuck.range_requests > 0, 30, "a range query")
        time.sleep(1)
        began = time.time()
        code = c.stop(signal.SIGTERM, SHUTDOWN_BOUND_S)
        took = time.time() - began
        checks.check("stuck backfill: exit 0 on SIGTERM within %d s" % SHUTDOWN_BOUND_S,
                     code == 0 and took < SHUTDOWN_BOUND_S, "exit %s after %.1f s" % (code, took))
        clean, report = c.valgrind_clean()
        checks.check("stuck backfill: valgrind clean", clean, report)
    finally:
        stuck.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpscale", required=True)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    harness.install_signal_handlers()
    checks = Checks()
    workdir = tempfile.mkdtemp(prefix="cps-backfill-")
    now = time.time()
    burst_start, burst_minute = choose_burst_minute(now)
    samples = history(now, burst_minute)
    expected_spent = violating_share(samples) / BUDGET
    print("burst minute :%02d starts in %.0f s; history's violating share %.4f"
          % (burst_minute, burst_start - now, expected_spent * BUDGET))
    kube = kubefake.FakeApiserver()
    prom = harness.Prometheus(blocks_from_openmetrics=openmetrics(samples))
    controllers = []
    try:
        kube.start()
        kube.seed(namespace_object(NAMESPACE))
        for name in (WITH, WITHOUT, RESTARTED):
            kube.seed(deployment(NAMESPACE, name, REPLICAS))
        kubeconfig = kube.write_kubeconfig(os.path.join(workdir, "kubeconfig"))
        kube.set_tokens({kube.token: "cpscale"})
        prom.start()
        a = Controller(args.cpscale, workdir, "with-backfill",
                       write_config(os.path.join(workdir, "a.yaml"), prom.url, WITH),
                       ["--kubeconfig", kubeconfig, "--backfill", "7h"])
        controllers.append(a)
        b = Controller(args.cpscale, workdir, "without-backfill",
                       write_config(os.path.join(workdir, "b.yaml"), prom.url, WITHOUT),
                       ["--kubeconfig", kubeconfig, "--backfill", "0"])
        controllers.append(b)
        applied = backfill_end(a)
        checks.check("with backfill: the state was swapped in",
                     applied.get("msg") == "backfill applied", str(applied))
        check_startup(checks, "with backfill", a, applied, WITH, EXPORTED_STARTUP_S["leader"])
        check_startup(checks, "without backfill", b, {}, WITHOUT, STARTUP_S)
        before_kill, r = kill_mid_run(
            checks, write_config(os.path.join(workdir, "r.yaml"), prom.url, RESTARTED),
            kubeconfig, args.cpscale, workdir)
        controllers.append(r)
        r_applied = backfill_end(r)
        checks.check("restarted: the state was rebuilt again",
                     r_applied.get("msg") == "backfill applied", str(r_applied))
        check_startup(checks, "restarted", r, r_applied, RESTARTED, EXPORTED_STARTUP_S["leader"])
        remaining = burst_start + AFTER_BURST_START_S - time.time()
        if remaining > 0:
            time.sleep(remaining)
        status, metrics = a.http("/metrics")
        checks.check("with backfill: cpscale_policy_backfill_total{result=\"ok\"} 1",
                     status == 200 and
                     'cpscale_policy_backfill_total{result="ok"} 1\n' in metrics,
                     "status %s" % status)
        status, metrics = b.http("/metrics")
        checks.check("without backfill: no backfill counted",
                     status == 200 and
                     'cpscale_policy_backfill_total{result="ok"} 0\n' in metrics and
                     not [r for r in b.lines() if r.get("msg", "").startswith("backfill")],
                     "status %s" % status)
        records = kube.log()
        examine(checks, "with backfill", a, records, WITH, burst_start, True, expected_spent)
        examine(checks, "without backfill", b, records, WITHOUT, burst_start, False,
                expected_spent)
        examine(checks, "restarted", r, records, RESTARTED, burst_start, True, expected_spent)
        r_since = epoch_of(r_applied["time"])
        after = [s for _, _, s in decisions_after(r, r_since) if s is not None]
        checks.check("restarted: starts from the budget it had before the kill (within 10 %)",
                     bool(after) and before_kill[2] is not None and
                     abs(after[0] - before_kill[2]) <= REL_TOL * before_kill[2],
                     "before %s, after %s" % (before_kill[2], after[:1]))
        same_decisions(checks, r, r_since, a)
        for controller in controllers:
            code = controller.stop(signal.SIGTERM, 20)
            checks.check("%s: exit 0 on SIGTERM" % controller.name, code == 0, str(code))
            clean, report = controller.valgrind_clean()
            checks.check("%s: valgrind clean" % controller.name, clean, report)
        controllers = []
        shutdown_with_backfill_stuck(checks, args.cpscale, workdir, kubeconfig)
    finally:
        for controller in controllers:
            controller.stop(signal.SIGKILL)
        prom.stop()
        kube.stop()
    return checks.finish(workdir, args.keep)


if __name__ == "__main__":
    sys.exit(main())
