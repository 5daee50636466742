#!/usr/bin/env python3
"""The controller's cost per tick at 1,000 and 10,000 targets.

For each size N it starts the fake kube-apiserver with N Deployments, a real
Prometheus holding one series per Deployment for each metric (backfilled
with promtool, queried through a counting proxy), and `cpscale run
--dry-run` with N targets. After a warm-up tick it measures, over the next
ticks:
  - CPU seconds per tick (utime + stime of the process, /proc/PID/stat);
  - peak and current RSS (/proc/PID/status VmHWM, VmRSS);
  - Prometheus queries per tick (counted by the proxy, not by cpscale);
  - Kubernetes requests per tick and the tick's wall time (histogram).
It prints one table row per size. Loopback only; everything it starts is
stopped at the end.

Usage: bench/controller_scale.py [--cpscale build/cpscale] [--sizes 1000,10000]
                                 [--ticks 3]
"""

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402
import kubefake  # noqa: E402

FAULT_PROXY = os.path.join(REPO, "tests", "fakes", "fault_proxy.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_STEP_S = 15
HISTORY_S = 600  # backfilled history; the lookback is widened to cover it
QUERIES = {"qps": "bench_qps", "p95_ms": "bench_p95_ms", "cpu_utilization": "bench_cpu",
           "cost_per_pod_hour": "bench_cost_per_pod_hour"}


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
    lines += ["  %s: %s" % (k, v) for k, v in QUERIES.items()]
    lines += ["leader_election:", "  enabled: false", "defaults:", "  max_replicas: 50",
              "targets:"]
    for i in range(n):
        lines += ["  - namespace: bench", "    deployment: app-%d" % i]
    return "\n".join(lines) + "\n"


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


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


def count_lines(path):
    try:
        with open(path) as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def measure(cpscale, n, ticks, workdir, watch=True):
    """Run one size; returns a dict of figures."""
    interval_s = max(5, n // 400)  # leave room for the fake's Python to answer
    now = time.time()
    with kubefake.FakeApiserver() as kube, \
            harness.Prometheus(blocks_from_openmetrics=openmetrics(n, now - 5),
                               extra_args=["--query.lookback-delta=1h"]) as prom:
        kube.seed(deployments(n))
        proxy_log = os.path.join(workdir, "proxy-%d.log" % n)
        port_file = os.path.join(workdir, "proxy-%d.port" % n)
        proxy = harness.Process([sys.executable, FAULT_PROXY, "--upstream", prom.url,
                                 "--port-file", port_file, "--log", proxy_log],
                                name="proxy", log_dir=workdir)
        proxy.start()
        harness.wait_until(lambda: os.path.exists(port_file), 20, "proxy")
        with open(port_file) as handle:
            proxy_url = "http://127.0.0.1:%d" % int(handle.read())
        config = os.path.join(workdir, "config-%d.yaml" % n)
        with open(config, "w") as handle:
            handle.write(config_text(n, proxy_url, interval_s))
        kubeconfig = kube.write_kubeconfig(os.path.join(workdir, "kubeconfig"))
        log_path = os.path.join(workdir, "controller-%d.log" % n)
        controller = harness.Process([cpscale, "run", "--config", config, "--kubeconfig",
                                      kubeconfig, "--dry-run", "--log-level", "warn",
                                      "--listen", "127.0.0.1:0", "--log-format", "json",
                                      "--kube-timeout", "60s",
                                      "--watch=%s" % ("true" if watch else "false")],
                                     name="controller-%d" % n, log_dir=workdir)
        controller.start()
        pid = controller.pid
        port = None
        # the start line is at info level; find the port from /proc instead
        def listening_port():
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
        port = harness.wait_until(listening_port, 30, "controller port")

        def scrape():
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as r:
                return r.read().decode()

        def ticks_done():
            return metric_value(scrape(), "cpscale_ticks_total") or 0

        harness.wait_until(lambda: ticks_done() >= 1, 20 + 4 * interval_s, "warm-up tick")
        text = scrape()
        t0 = metric_value(text, "cpscale_ticks_total")
        cpu0 = metric_value(text, "cpscale_process_cpu_seconds")
        kube0 = len(kube.log())
        q0 = count_lines(proxy_log)
        dur0 = metric_value(text, "cpscale_tick_duration_seconds_sum")
        harness.wait_until(lambda: ticks_done() >= t0 + ticks, (ticks + 2) * interval_s * 3,
                           "measured ticks")
        text = scrape()
        t1 = metric_value(text, "cpscale_ticks_total")
        cpu1 = metric_value(text, "cpscale_process_cpu_seconds")
        dur1 = metric_value(text, "cpscale_tick_duration_seconds_sum")
        memory = memory_kb(pid)
        skipped = metric_value(text, "cpscale_ticks_skipped_total")
        kube1 = len(kube.log())
        q1 = count_lines(proxy_log)
        controller.stop()
        proxy.stop()
    done = t1 - t0
    return {"targets": n, "interval_s": interval_s, "ticks": int(done),
            "cpu_ms_per_tick": 1000 * (cpu1 - cpu0) / done,
            "tick_wall_s": (dur1 - dur0) / done,
            "rss_mb": memory.get("VmRSS", 0) / 1024, "peak_rss_mb": memory.get("VmHWM", 0) / 1024,
            "prom_queries_per_tick": (q1 - q0) / done,
            "kube_requests_per_tick": (kube1 - kube0) / done,
            "ticks_skipped": skipped}


def main():
    parser = harness.bench_arg_parser(__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--ticks", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--watch", default="true", choices=("true", "false"),
                        help="false: two GETs per target per tick instead of LIST+WATCH")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="cps-bench-")
    rows = []
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            rows.append(measure(os.path.abspath(args.cpscale), n, args.ticks, workdir,
                                args.watch == "true"))
            row = rows[-1]
            print("targets %6d (%s): %.1f ms CPU/tick, RSS %.1f MB (peak %.1f), %.1f Prometheus "
                  "queries/tick, %.0f Kubernetes requests/tick, tick wall %.2f s, "
                  "interval %d s, %d ticks measured, %d skipped"
                  % (row["targets"], "LIST+WATCH" if args.watch == "true" else "GETs",
                     row["cpu_ms_per_tick"], row["rss_mb"], row["peak_rss_mb"],
                     row["prom_queries_per_tick"], row["kube_requests_per_tick"],
                     row["tick_wall_s"], row["interval_s"], row["ticks"],
                     row["ticks_skipped"] or 0))
            sys.stdout.flush()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
