#!/usr/bin/env python3
"""`cpscale record` against a real Prometheus (the round trip) and against
misbehaving servers (the errors).

Round trip: a generated trace (gen-trace, then `cpscale sim --record-trace`
for p95_ms, replicas and spot-like prices) is written as OpenMetrics gauges
for the target and for two decoy targets, backfilled into a fresh TSDB with
`promtool tsdb create-blocks-from openmetrics`, and recorded back through a
loopback proxy that checks the bearer token and headers from the config and
logs every request. Checked:
  - every original row comes back at its timestamp with the same values
    (within float rounding), decoys never leak in, empty p95_ms stays empty;
  - a 20-minute hole in the qps samples comes back as missing rows, not
    zeros, and stderr names it;
  - the 8-day span at 60 s (11,520 points) is split into requests of at most
    11,000 points;
  - placeholder queries ($namespace/$deployment) and cluster-wide queries
    (matched by prometheus.labels) both work;
  - the result is a trace `cpscale sim` accepts.
Errors: garbage answers, an answer over --max-body, a server slower than
--timeout, a query Prometheus rejects, a target with no data, a missing token
file, bad flags: each gives its exit code and a message naming the problem.

Usage: test_record.py --cpscale PATH. Ends with "N passed, N failed".
"""
import argparse
import csv
import http.server
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NAMESPACE = "shop"
DEPLOYMENT = "web"
TOKEN = "s3cret-token-for-tests"
TENANT = "tenant-a"
STEP_S = 60
DAYS = 8                       # 11,520 points: more than one request
GAP_FIRST_ROW = 3000           # qps samples removed for 20 rows from here
GAP_ROWS = 20
PROM_POINTS_LIMIT = 11000      # Prometheus' points-per-series limit
SLOW_SERVER_DELAY_S = 3.0
RUN_TIMEOUT_S = 120
REL_TOL = 1e-9

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print("ok   %s" % what)
        else:
            self.failed += 1
            print("FAIL %s%s" % (what, (": " + detail) if detail else ""))
        return ok


def run(args, timeout=RUN_TIMEOUT_S):
    env = dict(os.environ, no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def close(a, b):
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


def make_trace(cpscale, tmp):
    """An 8-day trace with every column, made by cpscale's generator and world."""
    base = os.path.join(tmp, "base.csv")
    full = os.path.join(tmp, "original.csv")
    out = run([cpscale, "gen-trace", "--days", str(DAYS), "--seed", "11", "--with-cost",
               "--output", base])
    assert out.returncode == 0, out.stderr
    out = run([cpscale, "sim", base, "--policy", "cpscale", "--quiet", "--record-trace", full,
               "--record-step", "%ds" % STEP_S, "--service-rate", "90"])
    assert out.returncode == 0, out.stderr
    with open(full) as fh:
        return list(csv.DictReader(fh))


def openmetrics(rows):
    """Gauges for the target plus decoys that a wrong label match would pick up."""
    lines = []

    def family(name, help_text, series):
        lines.append("# HELP %s %s" % (name, help_text))
        lines.append("# TYPE %s gauge" % name)
        for labels, samples in series:
            label_text = ",".join('%s="%s"' % kv for kv in labels)
            for t, v in samples:
                lines.append("%s{%s} %s %d" % (name, label_text, repr(v), t))

    target = (("namespace", NAMESPACE), ("deployment", DEPLOYMENT))
    decoy_name = (("namespace", NAMESPACE), ("deployment", DEPLOYMENT + "-canary"))
    decoy_ns = (("namespace", "other"), ("deployment", DEPLOYMENT))
    times = [int(float(r["timestamp"])) for r in rows]
    qps = [(t, float(r["qps"])) for i, (t, r) in enumerate(zip(times, rows))
           if not GAP_FIRST_ROW <= i < GAP_FIRST_ROW + GAP_ROWS]
    p95 = [(t, float(r["p95_ms"]) / 1000.0) for t, r in zip(times, rows) if r["p95_ms"] != ""]
    ready = [(t, float(r["replicas"])) for t, r in zip(times, rows)]
    cost = [(t, float(r["cost_per_pod_hour"])) for t, r in zip(times, rows)]
    decoy = [(t, 12345.0) for t in times]
    family("cps_test_qps", "requests per second", [(target, qps), (decoy_name, decoy),
                                                   (decoy_ns, decoy)])
    family("cps_test_p95_seconds", "p95 latency", [(target, p95), (decoy_name, decoy)])
    family("cps_test_ready", "ready replicas", [(target, ready), (decoy_ns, decoy)])
    family("cps_test_cost", "USD per pod-hour", [(target, cost), (decoy_name, decoy)])
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class Proxy:
    """A loopback HTTP server for cpscale record to talk to. mode:
    forward  check token and tenant header, forward to Prometheus, log;
    garbage  answer 200 with a body that is not JSON;
    slow     answer after SLOW_SERVER_DELAY_S."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.mode = "forward"
        self.requests = []
        self.rejected = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                form = urllib.parse.parse_qs(body.decode())
                if proxy.mode == "garbage":
                    return self.reply(200, b"<html>login page</html>", "text/html")
                if proxy.mode == "slow":
                    time.sleep(SLOW_SERVER_DELAY_S)
                    return self.reply(200, b"{}", "application/json")
                if (self.headers.get("Authorization") != "Bearer " + TOKEN or
                        self.headers.get("X-Scope-OrgID") != TENANT):
                    proxy.rejected += 1
                    return self.reply(401, b'{"status":"error","errorType":"auth",'
                                           b'"error":"missing credentials"}', "application/json")
                proxy.requests.append({k: v[0] for k, v in form.items()})
                req = urllib.request.Request(proxy.upstream + self.path, data=body,
                                             method="POST")
                req.add_header("Content-Type", "application/x-www-form-urlencoded")
                try:
                    with _DIRECT.open(req, timeout=30) as resp:
                        return self.reply(resp.status, resp.read(), "application/json")
                except urllib.error.HTTPError as err:
                    return self.reply(err.code, err.read(), "application/json")

            def reply(self, status, payload, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", harness.free_port()), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        return False


def write_config(path, url, token_file, queries=None):
    queries = queries or {
        # cluster-wide: one series per target, matched by prometheus.labels
        "qps": "cps_test_qps",
        # written for one target: placeholders become escaped string literals
        "p95_ms": "1000 * cps_test_p95_seconds{namespace=$namespace, deployment=$deployment}",
        "ready_replicas": "sum by (namespace, deployment) (cps_test_ready)",
        "cost_per_pod_hour": 'cps_test_cost{namespace="$namespace", deployment=~"$deployment"}',
    }
    with open(path, "w") as fh:
        fh.write("prometheus:\n  url: %s\n  bearer_token_file: %s\n  headers:\n"
                 "    X-Scope-OrgID: %s\n  labels:\n    namespace: namespace\n"
                 "    deployment: deployment\nqueries:\n" % (url, token_file, TENANT))
        for key, query in queries.items():
            fh.write("  %s: %s\n" % (key, json.dumps(query)))


def record_args(cpscale, config, rows, extra=()):
    return [cpscale, "record", "--namespace", NAMESPACE, "--deployment", DEPLOYMENT,
            "--from", rows[0]["timestamp"], "--to", rows[-1]["timestamp"],
            "--step", "%ds" % STEP_S, "--config", config] + list(extra)


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def check_round_trip(res, cpscale, tmp, rows, proxy, config):
    out_path = os.path.join(tmp, "recorded.csv")
    out = run(record_args(cpscale, config, rows, ["--output", out_path]))
    if not res.check(out.returncode == 0, "record exits 0", out.stderr[-2000:]):
        return
    res.check(proxy.rejected == 0, "every request carried the bearer token and the header")
    with open(out_path) as fh:
        got = {float(r["timestamp"]): r for r in csv.DictReader(fh)}
    gap = set(range(GAP_FIRST_ROW, GAP_FIRST_ROW + GAP_ROWS))
    missing, wrong, leaked = [], [], []
    for i, r in enumerate(rows):
        t = float(r["timestamp"])
        if i in gap:
            if t in got:
                leaked.append(t)
            continue
        g = got.get(t)
        if g is None:
            missing.append(t)
            continue
        for col in ("qps", "p95_ms", "replicas", "cost_per_pod_hour"):
            if r[col] == "" or g[col] == "":
                if r[col] != g[col]:
                    wrong.append((t, col, r[col], g[col]))
            elif not close(float(r[col]), float(g[col])):
                wrong.append((t, col, r[col], g[col]))
    res.check(not missing, "every original row comes back (%d rows)" % (len(rows) - GAP_ROWS),
              "missing %d, first %s" % (len(missing), missing[:3]))
    res.check(not wrong, "values equal the original within rounding (decoys ignored)",
              "%d differ, first %s" % (len(wrong), wrong[:3]))
    res.check(not leaked, "the 20-minute qps hole stays a hole (no zeros, no rows)",
              "rows at %s" % leaked[:3])
    res.check(len(got) == len(rows) - GAP_ROWS, "no extra rows",
              "%d rows, expected %d" % (len(got), len(rows) - GAP_ROWS))
    empty_p95 = sum(1 for r in rows if r["p95_ms"] == "")
    res.check(empty_p95 == 0 or any(g["p95_ms"] == "" for g in got.values()),
              "p95_ms left empty where the original had none (%d rows)" % empty_p95)
    gap_start = iso(float(rows[GAP_FIRST_ROW]["timestamp"]))
    gap_end = iso(float(rows[GAP_FIRST_ROW + GAP_ROWS - 1]["timestamp"]))
    res.check("gap" in out.stderr and gap_start in out.stderr and gap_end in out.stderr,
              "the gap is named on stderr (%s .. %s)" % (gap_start, gap_end), out.stderr[-800:])
    points = [round((float(q["end"]) - float(q["start"])) / float(q["step"])) + 1
              for q in proxy.requests]
    res.check(points and max(points) <= PROM_POINTS_LIMIT and len(proxy.requests) >= 8,
              "the span is split into requests under %d points (%d requests, largest %d)"
              % (PROM_POINTS_LIMIT, len(proxy.requests), max(points) if points else 0))
    sim = run([cpscale, "sim", out_path, "--quiet", "--policy", "oracle", "--json"])
    res.check(sim.returncode == 0 and json.loads(sim.stdout)["seconds"] > 0,
              "cpscale sim replays the recorded trace", sim.stderr[-500:])


def check_errors(res, cpscale, tmp, rows, prom, proxy, config, token_file):
    # an answer bigger than --max-body
    out = run(record_args(cpscale, config, rows, ["--max-body", "4096", "--quiet"]))
    res.check(out.returncode == 1 and "larger than 4096 bytes" in out.stderr,
              "an answer over --max-body is refused (exit 1)", out.stderr[-500:])
    # garbage from a server that is not Prometheus
    proxy.mode = "garbage"
    out = run(record_args(cpscale, config, rows, ["--quiet"]))
    res.check(out.returncode == 1 and "not JSON" in out.stderr,
              "a body that is not JSON is a clear error (exit 1)", out.stderr[-500:])
    # a server slower than --timeout
    proxy.mode = "slow"
    started = time.monotonic()
    out = run(record_args(cpscale, config, rows, ["--timeout", "1s", "--quiet"]))
    took = time.monotonic() - started
    res.check(out.returncode == 1 and "no answer within 1.0 s" in out.stderr and
              took < SLOW_SERVER_DELAY_S + 2, "a slow server hits --timeout (exit 1, %.1f s)" % took,
              out.stderr[-500:])
    proxy.mode = "forward"
    # the cost query turned off (""): an empty cost column, and it is not sent
    off = os.path.join(tmp, "cost-off.yaml")
    write_config(off, proxy.url, token_file, {
        "qps": "cps_test_qps",
        "p95_ms": "1000 * cps_test_p95_seconds{namespace=$namespace, deployment=$deployment}",
        "ready_replicas": "sum by (namespace, deployment) (cps_test_ready)",
        "cost_per_pod_hour": ""})
    sent_before = len(proxy.requests)
    off_csv = os.path.join(tmp, "cost-off.csv")
    out = run(record_args(cpscale, off, rows, ["--quiet", "--output", off_csv]))
    costs = set()
    if out.returncode == 0:
        with open(off_csv) as fh:
            costs = {r.get("cost_per_pod_hour", "") for r in csv.DictReader(fh)}
    sent = [q.get("query", "") for q in proxy.requests[sent_before:]]
    res.check(out.returncode == 0 and costs <= {"", None} and
              not any("cps_test_cost" in q for q in sent) and sent,
              "cost_per_pod_hour \"\" leaves the cost column empty and is not queried",
              "exit %d, costs %s, %d requests: %s" % (out.returncode, sorted(costs, key=str)[:3],
                                                      len(sent), out.stderr[-300:]))
    # a query Prometheus rejects: its own message, exit 2
    bad = os.path.join(tmp, "bad-query.yaml")
    write_config(bad, prom.url, token_file, {"qps": "sum(cps_test_qps"})
    out = run(record_args(cpscale, bad, rows, ["--quiet"]))
    res.check(out.returncode == 2 and "bad_data" in out.stderr and "queries.qps" in out.stderr,
              "a query Prometheus rejects names the query and Prometheus' reason (exit 2)",
              out.stderr[-500:])
    # no data for the target
    args = record_args(cpscale, config, rows, ["--quiet"])
    args[args.index("--deployment") + 1] = "nothing-here"
    out = run(args)
    res.check(out.returncode == 1 and "no qps for shop/nothing-here" in out.stderr,
              "a target without data is an error, not an empty trace (exit 1)", out.stderr[-500:])
    # a token file that is not there: a config problem
    missing = os.path.join(tmp, "no-token.yaml")
    write_config(missing, proxy.url, os.path.join(tmp, "absent-token"))
    out = run(record_args(cpscale, missing, rows, ["--quiet"]))
    res.check(out.returncode == 2 and "absent-token" in out.stderr and TOKEN not in out.stderr,
              "a missing token file is a config error (exit 2)", out.stderr[-500:])
    # flags
    out = run([cpscale, "record", "--namespace", "Shop!", "--deployment", "web", "--from", "now-1h",
               "--to", "now"])
    res.check(out.returncode == 2 and "--namespace" in out.stderr, "a bad namespace is refused")
    out = run([cpscale, "record", "--namespace", "shop", "--deployment", "web", "--from",
               "yesterday", "--to", "now"])
    res.check(out.returncode == 2 and "--from" in out.stderr, "a bad time is refused")
    out = run([cpscale, "record", "--namespace", "shop", "--deployment", "web", "--from", "now",
               "--to", "now-1h"])
    res.check(out.returncode == 2 and "before its start" in out.stderr, "a reversed span is refused")
    out = run([cpscale, "record", "--help"])
    res.check(out.returncode == 0 and all(s in out.stdout for s in
                                          ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS",
                                           "EXIT STATUS", "EXAMPLES")), "--help is a man page")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpscale", required=True)
    args = parser.parse_args()
    harness.install_signal_handlers()
    cpscale = os.path.abspath(args.cpscale)
    res = Results()
    if not (os.path.exists(harness.PROMETHEUS_BIN) and os.path.exists(harness.PROMTOOL_BIN)):
        print("test_record: prometheus/promtool not installed (.ci/install-deps test)")
        print("0 passed, 1 failed")
        return 1
    with tempfile.TemporaryDirectory(prefix="cps-record-") as tmp:
        rows = make_trace(cpscale, tmp)
        token_file = os.path.join(tmp, "token")
        with open(token_file, "w") as fh:
            fh.write(TOKEN + "\n")
        # lookback 30 s < step: a step without a sample is missing, as in a real gap
        with harness.Prometheus(blocks_from_openmetrics=openmetrics(rows),
                                extra_args=["--query.lookback-delta=30s"]) as prom:
            with Proxy(prom.url) as proxy:
                config = os.path.join(tmp, "config.yaml")
                write_config(config, proxy.url, token_file)
                check_round_trip(res, cpscale, tmp, rows, proxy, config)
                check_errors(res, cpscale, tmp, rows, prom, proxy, config, token_file)
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
