#!/usr/bin/env python3
"""The controller's cost per tick at 1,000, 10,000 and 30,000 targets.

For each size N it starts the fake kube-apiserver with N Deployments, a real
Prometheus holding one series per Deployment for each metric (backfilled
with promtool, queried through a counting proxy), and `cpscale run
--dry-run` with N targets (LIST+WATCH). After a warm-up tick it measures,
over the next ticks, with no scrape of /metrics inside the window (a scrape
now renders the text, so polling would be counted as tick cost):
  - CPU per tick: the process's CPU time (sum of /proc/PID/task/*/schedstat,
    nanoseconds) from the middle of one idle gap between ticks to the
    middle of another, divided by the ticks in between;
  - RSS at the end and its peak (/proc/PID/status VmRSS, VmHWM);
  - Prometheus queries per tick (counted by the proxy, not by cpscale);
  - Kubernetes requests per tick (the fake's request log);
  - one scrape of /metrics, in an idle gap: wall time, the controller's CPU
    for it, and its size (median of three).
With --acting N it also runs one size N with the controller ACTING (no
--dry-run, leader election off): before every tick, --acting-share of the
Deployments (3 %) are set to 1 replica behind its back (a seeded change,
which the watch delivers), so that share is PATCHed back every tick and
an Event is written for each rescale; those PATCHes and Events are in the
figures. Loopback only; everything it starts is stopped at the end.

Each size runs at the default interval (15 s), or longer where the fake's
Python needs the time (N / 400 s: 25 s at 10,000, 75 s at 30,000).

Usage: bench/controller_scale.py [--cpscale build/cpscale]
           [--sizes 1000,10000,30000] [--ticks 3] [--acting 10000] [--json]
           [--perf PREFIX] [--smaps PREFIX]
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402
import kubefake  # noqa: E402

FAULT_PROXY = os.path.join(REPO, "tests", "fakes", "fault_proxy.py")
SAMPLE_STEP_S = 15
HISTORY_S = 600  # backfilled history; the lookback is widened to cover it
# aggregated by namespace and deployment as the default queries are, so the
# answers have the default queries' shape (no __name__ label)
QUERIES = {key: "max by (namespace, deployment) (%s)" % metric
           for key, metric in (("qps", "bench_qps"), ("p95_ms", "bench_p95_ms"),
                               ("cpu_utilization", "bench_cpu"),
                               ("cost_per_pod_hour", "bench_cost_per_pod_hour"),
                               # the budget's last-scrape rate and p95: the same
                               # series (only their answers' cost matters here)
                               ("budget_qps", "bench_qps"), ("budget_p95_ms", "bench_p95_ms"))}


def openmetrics(n, end):
    """N series for each bench metric, one sample every 15 s up to `end`."""
    lines = []
    for metric, value in (("bench_qps", 120.0), ("bench_p95_ms", 60.0), ("bench_cpu", 0.5),
                          ("bench_cost_per_pod_hour", 0.05)):
        lines.append("# TYPE %s gauge" % metric)
        for i in range(n):
            labels = '{namespace="bench",deployment="app-%d"}' % i
            for t in range(int(end) - HISTORY_S, int(end), SAMPLE_STEP_S):
                lines.append("%s%s %g %d" % (metric, labels, value, t))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def deployment(i, replicas=2):
    name = "app-%d" % i
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "bench"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "a", "image": "a"}]}}},
            "status": {"replicas": replicas, "readyReplicas": replicas}}


def deployments(n):
    items = []
    for i in range(n):
        name = "app-%d" % i
        items.append({"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": name, "namespace": "bench"},
                      "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                               "template": {"metadata": {"labels": {"app": name}},
                                            "spec": {"containers": [{"name": "a", "image": "a"}]}}},
                      "status": {"replicas": 2, "readyReplicas": 2}})
    return {"apiVersion": "v1", "kind": "List", "items": items}


def config_text(n, prometheus_url, interval_s):
    lines = ["interval: %ds" % interval_s, "listen: \"127.0.0.1:0\"",
             "prometheus:", "  url: %s" % prometheus_url, "  timeout: 30s",
             "  max_staleness: 1h", "queries:"]
    lines += ["  %s: \"%s\"" % (k, v) for k, v in QUERIES.items()]
    lines += ["leader_election:", "  enabled: false", "defaults:", "  max_replicas: 50",
              "targets:"]
    for i in range(n):
        lines += ["  - namespace: bench", "    deployment: app-%d" % i]
    return "\n".join(lines) + "\n"


def cpu_seconds(pid):
    """CPU time of every thread of the process, seconds (ns resolution)."""
    total = 0
    task_dir = "/proc/%d/task" % pid
    for task in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, task, "schedstat")) as handle:
                total += int(handle.read().split()[0])
        except OSError:
            pass  # a thread that just ended
    return total / 1e9


def memory_kb(pid):
    values = {}
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def metric_value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def last_range_query(path):
    """When the proxy last saw a range query (the backfill's), Unix time."""
    last = 0.0
    try:
        with open(path) as handle:
            for line in handle:
                entry = json.loads(line)
                if entry.get("path") == "/api/v1/query_range":
                    last = entry["t"]
    except OSError:
        pass
    return last


def count_instant_queries(path):
    """Instant queries in the proxy's log (the backfill's range queries are
    not a tick's)."""
    try:
        with open(path) as handle:
            return sum(1 for line in handle if json.loads(line).get("path") == "/api/v1/query")
    except OSError:
        return 0


def listening_port(pid):
    """The controller's loopback listening port, found through /proc (the
    start line is at info level)."""
    for line in open("/proc/%d/net/tcp" % pid):
        parts = line.split()
        if parts[3] == "0A" and parts[1].startswith("0100007F"):
            inode = parts[9]
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "socket:[%s]" % inode:
                        return int(parts[1].split(":")[1], 16)
                except OSError:
                    pass
    return None


def scrape_once(port, pid):
    """One scrape of /metrics: (text, wall seconds, controller CPU seconds)."""
    cpu0 = cpu_seconds(pid)
    start = time.monotonic()
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=60) as r:
        text = r.read().decode()
    wall = time.monotonic() - start
    return text, wall, cpu_seconds(pid) - cpu0


def perturb(kube, n, share, tick):
    """Set `share` of the Deployments (a different slice each tick) to 1
    replica, as someone scaling them by hand would: the acting controller
    PATCHes them back."""
    count = max(1, int(n * share))
    first = (tick * count) % n
    kube.seed({"apiVersion": "v1", "kind": "List",
               "items": [deployment((first + i) % n, replicas=1) for i in range(count)]})
    return count


def measure(cpscale, n, ticks, workdir, watch=True, acting=False, share=0.03, perf_prefix=None,
            smaps_prefix=None):
    """Run one size; returns a dict of figures."""
    # the default interval (15 s), longer where the fake's Python needs
    # more time to answer; the history rings are sized per interval
    interval_s = max(15, n // 400)
    now = time.time()
    with kubefake.FakeApiserver() as kube, \
            harness.Prometheus(blocks_from_openmetrics=openmetrics(n, now - 5),
                               extra_args=["--query.lookback-delta=1h"]) as prom:
        kube.seed(deployments(n))
        run = "%d%s" % (n, "-acting" if acting else "")
        proxy_log = os.path.join(workdir, "proxy-%s.log" % run)
        port_file = os.path.join(workdir, "proxy-%s.port" % run)
        proxy = harness.Process([sys.executable, FAULT_PROXY, "--upstream", prom.url,
                                 "--port-file", port_file, "--log", proxy_log],
                                name="proxy", log_dir=workdir)
        proxy.start()
        harness.wait_until(lambda: os.path.exists(port_file), 20, "proxy")
        with open(port_file) as handle:
            proxy_url = "http://127.0.0.1:%d" % int(handle.read())
        config = os.path.join(workdir, "config-%s.yaml" % run)
        with open(config, "w") as handle:
            handle.write(config_text(n, proxy_url, interval_s))
        kubeconfig = kube.write_kubeconfig(os.path.join(workdir, "kubeconfig"))
        command = [cpscale, "run", "--config", config, "--kubeconfig", kubeconfig,
                   "--log-level", "warn", "--listen", "127.0.0.1:0", "--log-format", "json",
                   "--kube-timeout", "60s", "--watch=%s" % ("true" if watch else "false")]
        if not acting:
            command.append("--dry-run")
        controller = harness.Process(command, name="controller-%s" % run, log_dir=workdir)
        controller.start()
        pid = controller.pid
        port = harness.wait_until(lambda: listening_port(pid), 30, "controller port")

        def warmed_up():
            ticks = metric_value(scrape_once(port, pid)[0], "cpscale_ticks_total") or 0
            quiet = time.time() - last_range_query(proxy_log) > max(3, interval_s)
            return quiet and ticks >= (2 if acting else 1)

        # warm-up: the start's backfill of the policy state from Prometheus
        # history (once, not per tick), the first tick and, acting, the
        # first round of PATCHes
        harness.wait_until(warmed_up, 60 + 10 * interval_s, "warm-up", interval=1.0)
        time.sleep(interval_s / 2.0)  # the middle of the idle gap
        text = scrape_once(port, pid)[0]
        t0 = metric_value(text, "cpscale_ticks_total")
        dur0 = metric_value(text, "cpscale_tick_duration_seconds_sum")
        kube0 = len(kube.log())
        q0 = count_instant_queries(proxy_log)
        cpu0 = cpu_seconds(pid)
        recorder = None
        if perf_prefix:  # a profile of the measured ticks (perf adds its own overhead)
            recorder = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-p", str(pid),
                                         "-o", "%s-%s" % (perf_prefix, run)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        perturbed = 0
        for tick in range(ticks):
            if acting:
                perturbed += perturb(kube, n, share, tick)
            time.sleep(interval_s)
        cpu1 = cpu_seconds(pid)
        if recorder:
            recorder.send_signal(signal.SIGINT)
            recorder.wait()
        q1 = count_instant_queries(proxy_log)
        records = kube.log()
        window = records[kube0:]
        text = scrape_once(port, pid)[0]
        t1 = metric_value(text, "cpscale_ticks_total")
        dur1 = metric_value(text, "cpscale_tick_duration_seconds_sum")
        skipped = metric_value(text, "cpscale_ticks_skipped_total")
        scrapes = []
        for _ in range(3):
            body, wall, cpu = scrape_once(port, pid)
            scrapes.append((wall, cpu, len(body.encode())))
        scrapes.sort()
        memory = memory_kb(pid)
        if smaps_prefix:  # where the RSS is, mapping by mapping
            shutil.copy("/proc/%d/smaps" % pid, "%s-%s" % (smaps_prefix, run))
        controller.stop()
        proxy.stop()
    done = t1 - t0
    if done != ticks:
        print("warning: %d ticks in the window, %d expected" % (done, ticks), file=sys.stderr)

    def per_tick(count):
        return count / done if done else float("nan")

    def verbs(method, fragment):
        return sum(1 for r in window if r.get("method") == method and fragment in r.get("path", ""))
    wall, cpu, size = scrapes[1]
    return {"targets": n, "acting": acting, "interval_s": interval_s, "ticks": int(done),
            "cpu_ms_per_tick": 1000 * per_tick(cpu1 - cpu0),
            "tick_wall_s": per_tick(dur1 - dur0),
            "rss_mb": memory.get("VmRSS", 0) / 1024, "peak_rss_mb": memory.get("VmHWM", 0) / 1024,
            "prom_queries_per_tick": per_tick(q1 - q0),
            "kube_requests_per_tick": per_tick(len(window)),
            "patches_per_tick": per_tick(verbs("PATCH", "/scale")),
            "events_per_tick": per_tick(verbs("POST", "/events") + verbs("PATCH", "/events/")),
            "perturbed_per_tick": per_tick(perturbed),
            "scrape_ms": 1000 * wall, "scrape_cpu_ms": 1000 * cpu, "scrape_kb": size / 1024,
            "ticks_skipped": skipped}


def print_row(row, watch):
    print("targets %6d (%s%s): %.1f ms CPU/tick, RSS %.1f MB (peak %.1f), %.1f Prometheus "
          "queries/tick, %.0f Kubernetes requests/tick (%.0f PATCH, %.0f Event writes), "
          "scrape %.0f ms (%.0f ms CPU, %.0f kB), tick wall %.2f s, interval %d s, "
          "%d ticks measured, %d skipped"
          % (row["targets"], "LIST+WATCH" if watch else "GETs",
             ", acting" if row["acting"] else ", dry run",
             row["cpu_ms_per_tick"], row["rss_mb"], row["peak_rss_mb"],
             row["prom_queries_per_tick"], row["kube_requests_per_tick"],
             row["patches_per_tick"], row["events_per_tick"], row["scrape_ms"],
             row["scrape_cpu_ms"], row["scrape_kb"], row["tick_wall_s"], row["interval_s"],
             row["ticks"], row["ticks_skipped"] or 0))
    sys.stdout.flush()


def main():
    harness.install_signal_handlers()  # SIGTERM runs the atexit hook that stops what it started
    parser = harness.bench_arg_parser(__doc__)
    parser.add_argument("--sizes", default="1000,10000,30000")
    parser.add_argument("--ticks", type=int, default=3)
    parser.add_argument("--acting", type=int, default=10000,
                        help="targets of the acting run (0: none)")
    parser.add_argument("--acting-share", type=float, default=0.03,
                        help="share of the Deployments scaled behind the controller's back "
                             "before each tick of the acting run")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--watch", default="true", choices=("true", "false"),
                        help="false: two GETs per target per tick instead of LIST+WATCH")
    parser.add_argument("--perf", metavar="PREFIX",
                        help="record a perf profile of each run's measured ticks to PREFIX-RUN")
    parser.add_argument("--smaps", metavar="PREFIX",
                        help="copy each controller's /proc/PID/smaps at the end to PREFIX-RUN")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="cps-bench-")
    rows = []
    watch = args.watch == "true"
    runs = [(int(s), False) for s in args.sizes.split(",") if s]
    if args.acting:
        runs.append((args.acting, True))
    try:
        for n, acting in runs:
            started = time.monotonic()
            rows.append(measure(os.path.abspath(args.cpscale), n, args.ticks, workdir, watch,
                                acting, args.acting_share, args.perf, args.smaps))
            rows[-1]["bench_s"] = time.monotonic() - started
            print_row(rows[-1], watch)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
