#!/usr/bin/env python3
"""The fault soak: `cpscale run` for the equivalent of D days of ticks
against the fakes, with random faults of every class, and the safety
invariants checked for every tick afterwards from what the fakes recorded.

One day is 5,760 ticks, the default 15 s interval's; the soak runs them on
a short interval (10 ms by default), so 30 days (172,800 ticks) take about
half an hour. The parts are the controller suite's: the fake kube-apiserver
(HTTPS, tokens, faults, a request log), the workload emulator (demand that
steps up and down every few seconds), Debian's Prometheus scraping it every
second, and a fault proxy in front of Prometheus for each controller.

Controller A (identity soak-a) runs from start to end. Controller B
(soak-b) comes and goes: a "two controllers" episode starts it, a
"sigterm" episode makes it the leader and sends SIGTERM in the middle of
one of its ticks. Episodes of 0.5-3 s follow each other at random, one
class at a time:

  prom_down prom_slow_timeout prom_slow_ok prom_5xx prom_garbage prom_stale
      Prometheus (through the proxies) resets connections, answers after
      the query timeout or within it, answers 500/503, or answers 200 with
      a body that is not a usable vector (not JSON, truncated, a matrix,
      NaN, negative, empty) or with samples older than max_staleness.
  api_401 api_403 api_409 api_429 api_5xx api_timeout api_slow
      the API server answers the controllers' scale PATCHes (and, for 401,
      everything they send) with that status, Retry-After on 429, or late.
  watch_break  LIST/WATCH fail and the watch history is compacted (410).
  watch_silent every watch is answered 200 and then sent no byte (the
      controllers close it after --watch-progress-timeout and re-list)
      while someone scales a target.
  watch_gone   every watch answers 410 Gone: re-lists must back off (the
      LISTs per episode are counted and bounded).
  slow_patches someone scales all the bulk targets up, the scale PATCHes
      are answered late, and half the time the leader's Lease requests
      fail meanwhile: PATCHes queued behind slow ones, then a lost Lease.
  retry_after_huge  one bulk target's PATCHes get 429 with
      `Retry-After: 1000000000` (it must decide on the target again within
      the 5-minute backoff ceiling once the fault ends, by A's own log:
      checked when the run lasts that long after it; when it next PATCHed
      is reported).
  slow_probes  64 connections to A's /healthz port each send one byte
      every 2 s; /healthz must still answer within a kubelet's 1 s probe
      timeout (the answer times are reported).
  someone_scales  another user (admin) scales a Deployment: real
      resourceVersion conflicts, and a reason to scale back down.
  lease_lost   the leader's Lease requests fail for longer than its renew
      deadline.
  lease_stolen admin writes the Lease to another holder.
  two_controllers  B starts (or keeps running) next to A.
  sigterm      B takes the lease (A's Lease requests fail), then SIGTERM.
  config_invalid  the config symlink swaps to an invalid file (syntax
      error, min > max, unknown key, wrong type, empty, negative SLO).
  config_valid    the symlink swaps to the other valid config.
  healthy      nothing.

After the main run, a second phase (--shard-episodes, 0 to skip) runs the
fault class shard_holder_killed on a sharded fleet (3 replicas, 6 shards,
36 targets; tests/integration/test_sharding.py's fixtures): each episode
SIGKILLs a random shard holder right after one of its PATCHes (mid-tick)
and restarts it after the hand-over. Checked from the fake's log: every
hand-over within lease_duration + 1.2 x retry_period, every PATCH from its
shard's Lease holder within its renew deadline, and no shard without an
acting holder longer than lease_duration + 1.2 x retry_period + one
interval.

Every config variant writes its queries with its own no-op suffix (`* 1`,
`/ 1`, and `- 0` for the invalid ones), so the query text the proxy logs
says which config each tick ran with. Checks, for every tick of A and B:

  1. within min/max: each PATCH's replicas and each logged decision lie
     in the bounds of the config that tick ran with;
  2. no scale-down on missing data: in a tick where a qps, p95 or CPU
     query met a fault that makes it missing, no PATCH goes below the
     replicas the controller had read (the resourceVersion it sent, mapped
     back through the fake's log), and no logged decision goes below
     `current`;
  3. no PATCH or Event without the lease: at the arrival of each PATCH
     and each Event write (POST, series PATCH) this controller's last
     Lease write (as the fake took it) names it and is younger than the
     renew deadline, so the Lease cannot have expired for anyone else. A
     forced takeover (admin writes another holder into an unexpired Lease,
     which no protocol does) is only seen at the next renew: a write may
     still land within one retry period (plus a renew waiting out the API
     timeout) after it, never later; the figures count those;
  4. the last good config is in force: each tick's queries are those of
     the newest valid config written before it (a tick that started less
     than a second after a swap may still run the one before), never an
     invalid one's;
  5. flat memory: A's RSS over the last quarter of the run stays within
     2 MiB of its RSS after the warm-up.
Each break is also charged to the fault class of the episode it fell in
(or its settling second), and the breaks are reported per class.
Besides api, web and idle, BULK_TARGETS more Deployments (bulk-NN, light
constant demand) run throughout, so a tick has many PATCHes to send.
Plus: B exits 0 after each SIGTERM and releases the Lease it held.

Usage: soak.py --cpscale build/cpscale [--days 1] [--interval 10ms]
               [--seed 1] [--report FILE.json] [--keep]
Prints one line per check and "N passed, N failed"; exits 1 on a failure.
"""

import argparse
import bisect
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
import kubefake  # noqa: E402
import test_controller as tc  # noqa: E402  (configs, controller process, fixtures)
import test_sharding as ts  # noqa: E402  (the sharded fleet and its judges)

TICKS_PER_DAY = 86400 // 15      # the default interval's ticks in a day
TARGETS = ("api", "web", "idle")
BULK_TARGETS = 20                # bulk-00.. : many targets, so PATCHes queue up
BULK = tuple("bulk-%02d" % i for i in range(BULK_TARGETS))
BULK_BOUNDS = (1, 6)
BULK_QPS = 20
ALL_TARGETS = TARGETS + BULK
# min/max per target in the two valid configs; the invalid ones say 1..40
GOOD_BOUNDS = {"good-1": dict({"api": (2, 12), "web": (1, 10), "idle": (1, 8)},
                              **{b: BULK_BOUNDS for b in BULK}),
               "good-2": dict({"api": (3, 16), "web": (2, 14), "idle": (2, 10)},
                              **{b: BULK_BOUNDS for b in BULK})}
INVALID_BOUNDS = (1, 40)
# what `admin` may set: inside both valid configs' bounds
POD_SERIES_CAP = 16               # the emulator's series slots per target (>= any max)
WEB_FALLBACK = 4                  # web's on_missing_metrics (inside both bounds)
ADMIN_RANGE = dict({"api": (3, 12), "web": (2, 10), "idle": (2, 8)},
                   **{b: BULK_BOUNDS for b in BULK})
QUERY_SUFFIX = {"good-1": " * 1", "good-2": " / 1", "invalid": " - 0"}
INVALID_KINDS = ("syntax", "min_above_max", "unknown_key", "wrong_type", "empty",
                 "negative_slo")
DECISION_METRICS = ("qps", "p95_ms", "cpu_utilization")  # missing: never down
QUERIES_PER_TICK = 6  # those, the cost and the budget's two; ready replicas come from the Deployment
PROM_TIMEOUT_S = 0.3
KUBE_TIMEOUT = "1s"
KUBE_TIMEOUT_S = 1.0
WATCH_TIMEOUT = "2s"              # watches end and restart often, so watch faults meet them
WATCH_PROGRESS_TIMEOUT = "1500ms" # a silent watch is given up after this
BOOKMARK_INTERVAL_S = 0.5         # the fake's bookmarks: a healthy watch always makes progress
WATCH_GONE_S = 6.0                # a persistent-410 episode lasts at least this
WATCH_GONE_MAX_LISTS = 10         # LISTs per controller in one (backoff 1, 2, 4 s...; the storm sent thousands)
SILENT_S = 4.0                    # a silent-watch episode lasts at least this
SLOW_PATCH_DELAY_S = 0.8          # answered late, inside KUBE_TIMEOUT
HUGE_RETRY_AFTER = 1000000000     # seconds: 31 years
BACKOFF_CEILING_S = 300.0         # the controller's backoff ceiling (Retry-After clamped to it)
SLOW_CLIENTS = 64
SLOW_CLIENT_BYTE_S = 2.0          # each slow client sends one byte this often
SLOW_PROBES_S = 6.0               # a slow-probe episode lasts at least this
PROBE_TIMEOUT_S = 1.0             # a kubelet probe's default timeoutSeconds
PROBE_EVERY_S = 0.5
SETTLE_S = 1.0                    # a break this soon after an episode is charged to it
LEASE = {"lease_duration": "3s", "renew_deadline": "2s", "retry_period": "500ms"}
LEASE_DURATION_S = 3.0
RETRY_PERIOD_S = 0.5
RENEW_DEADLINE_S = 2.0
SHUTDOWN_GRACE_S = 2.0
PATCH_TRANSIT_S = 0.25           # lease checked when a write is sent; it arrives this late at most
# a forced takeover is seen at the next renew: one retry period, plus a
# renew that may be waiting out the API timeout, plus transit
NOTICE_S = RETRY_PERIOD_S + KUBE_TIMEOUT_S + PATCH_TRANSIT_S
LEASE_INVARIANT = "no PATCH or Event without the lease"
RETRY_WINDOW_S = 0.05            # libcurl's resend after a dropped reused connection
RELOAD_GRACE_S = 1.0              # a tick that began this soon after a swap may run the old config
RSS_SLACK_KB = 2048
RSS_SAMPLE_S = 2.0
WARMUP_FRACTION = 0.1
ADMIN_TOKEN = "soak-admin-token-0123456789"
B_TOKEN = "soak-b-token-0123456789"
USERS = {"cpscale": "soak-a", "cpscale-b": "soak-b"}
LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/cpscale/leases/cpscale-leader"
EPISODE_S = (0.5, 3.0)
GAP_S = (0.0, 1.0)
# how often each class comes in one round (rounds repeat in a new random
# order, so even a short soak meets every class)
EPISODES_PER_ROUND = {
    "prom_down": 1, "prom_slow_timeout": 1, "prom_slow_ok": 1, "prom_5xx": 1,
    "prom_garbage": 2, "prom_stale": 1,
    "api_401": 1, "api_403": 1, "api_409": 1, "api_429": 1, "api_5xx": 1,
    "api_timeout": 1, "api_slow": 1, "watch_break": 1,
    "someone_scales": 3, "lease_lost": 1, "lease_stolen": 1,
    "two_controllers": 1, "sigterm": 1,
    "config_invalid": 2, "config_valid": 1, "healthy": 2,
    "watch_silent": 1, "watch_gone": 1, "slow_patches": 1, "retry_after_huge": 1,
    "slow_probes": 1,
}
# classes whose API hits are counted from the fake's fault rules
API_FAULT_CLASSES = ("watch_break", "lease_lost", "watch_silent", "watch_gone", "slow_patches",
                     "retry_after_huge")


# ---- world -------------------------------------------------------------------

def write_demand(path, seconds, rng, low, high):
    """A trace (timestamp,qps) that steps to a new random level every
    4-15 s: the controller has a reason to scale up and down all the time."""
    rows, t = [], 0
    while t <= seconds:
        level = rng.uniform(low, high)
        hold = rng.randint(4, 15)
        for _ in range(hold):
            rows.append("%d,%.1f" % (1700000000 + t, level))
            t += 1
    with open(path, "w") as handle:
        handle.write("timestamp,qps\n" + "\n".join(rows) + "\n")


def variant_queries(variant):
    """The test queries (5 s rate windows) with the variant's no-op suffix."""
    suffix = QUERY_SUFFIX["invalid" if variant.startswith("invalid") else variant]
    queries = tc.test_queries_with_window("5s")
    return {name: "(%s)%s" % (q, suffix) for name, q in queries.items()}


def config_text(variant, prometheus_url, interval):
    """The YAML of one config variant ("good-1", "good-2", "invalid-KIND")."""
    invalid = variant.startswith("invalid")
    kind = variant.split("-", 1)[1] if invalid else None
    if kind == "empty":
        return ""
    bounds = GOOD_BOUNDS.get(variant) or {t: INVALID_BOUNDS for t in TARGETS}
    lines = ["interval: %s" % ("fast" if kind == "wrong_type" else interval),
             "listen: \"127.0.0.1:0\"", "prometheus:", "  url: %s" % prometheus_url,
             "  timeout: %dms" % (PROM_TIMEOUT_S * 1000), "  max_staleness: 30s", "queries:"]
    for name, promql in sorted(variant_queries(variant).items()):
        lines.append("  %s: %s" % (name, json.dumps(promql)))
    lines += ["leader_election:", "  enabled: true", "  namespace: cpscale",
              "  name: cpscale-leader"] + ["  %s: %s" % kv for kv in sorted(LEASE.items())]
    lines += ["defaults:", "  slo:",
              "    latency_p95_ms: %g" % (-5 if kind == "negative_slo" else tc.SLO_MS),
              "  capacity:", "    rps_per_pod: %g" % tc.RPS_PER_POD,
              "  policy:", "    startup: %ds" % tc.STARTUP_S, "    metrics_lag: 2s",
              "  behavior:", "    scaleDown:", "      stabilizationWindowSeconds: 1",
              "targets:"]
    for name in ALL_TARGETS:
        lo, hi = bounds.get(name, INVALID_BOUNDS)
        if kind == "min_above_max" and name == "web":
            lo, hi = 9, 3
        lines += ["  - namespace: shop", "    deployment: %s" % name,
                  "    min_replicas: %d" % lo, "    max_replicas: %d" % hi]
        if name == "web":  # missing data: up to at least this many, never down
            lines += ["    on_missing_metrics:", "      fallback: %d" % WEB_FALLBACK]
    if kind == "unknown_key":
        lines.append("    max_replicaz: 7")
    text = "\n".join(lines) + "\n"
    if kind == "syntax":
        text = text.replace("targets:\n", "targets:\n  - namespace: [shop\n", 1)
    return text


class ConfigDir:
    """A config path that is a symlink swapped atomically, as a ConfigMap
    volume does, for one controller (its own Prometheus proxy URL)."""

    def __init__(self, directory, prometheus_url, interval):
        self.dir = directory
        self.url = prometheus_url
        self.interval = interval
        self.path = os.path.join(directory, "config.yaml")
        self.serial = 0
        os.makedirs(directory, exist_ok=True)

    def swap(self, variant):
        self.serial += 1
        target = os.path.join(self.dir, "v%06d-%s.yaml" % (self.serial, variant))
        with open(target, "w") as handle:
            handle.write(config_text(variant, self.url, self.interval))
        link = self.path + ".new"
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(os.path.basename(target), link)
        os.replace(link, self.path)


class Proxy:
    """One fault proxy in front of Prometheus."""

    def __init__(self, workdir, name, upstream):
        port_file = os.path.join(workdir, name + ".port")
        self.log = os.path.join(workdir, name + ".jsonl")
        self.process = harness.Process(
            [sys.executable, tc.FAULT_PROXY, "--upstream", upstream, "--port-file", port_file,
             "--log", self.log, "--log-query-digest"], name=name, log_dir=workdir)
        self.process.start()
        harness.wait_until(lambda: os.path.exists(port_file), 20, name + " port")
        with open(port_file) as handle:
            self.url = "http://127.0.0.1:%d" % int(handle.read())

    def set(self, **fault):
        request = urllib.request.Request(self.url + "/_fault", data=json.dumps(fault).encode(),
                                         method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()


def garbage_bodies(now):
    """Bodies that are 200 but no usable vector, for every target."""
    def vector(value, stamp):
        return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"namespace": "shop", "deployment": t}, "value": [stamp, value]}
            for t in TARGETS]}})
    return [None,  # the proxy's default: HTML with NUL and 0xFF bytes
            '{"status":"success","data":{"resultType":"vector","result":[{"metric":{}',
            '{"status":"success","data":{"resultType":"matrix","result":[]}}',
            '{"status":"success","data":{"resultType":"vector","result":[]}}',
            vector("NaN", now), vector("-3", now), vector("+Inf", now),
            '{"status":"error","errorType":"timeout","error":"query timed out"}']


# ---- the soak ------------------------------------------------------------------

class Soak:
    """The parts, the two controllers and the episode schedule; what it
    did (episodes, config swaps, SIGTERMs, A's RSS) is kept for the
    Checker."""

    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.rng = random.Random(args.seed)
        self.episodes = []            # (class, start, end, detail, API requests hit)
        self.config_history = []      # (t, variant)
        self.sigterms = []            # dicts: t, exit code, held lease, seconds to exit
        self.rss = []                 # (t, kB) of A
        self.b = None
        self.b_runs = 0
        self.rounds_done = 0
        self.api_hits = 0             # requests the current episode's API faults hit
        self.probes = []              # (t, seconds or None) of /healthz under slow clients
        self.probe_controls = []      # seconds or None of /healthz just before them
        self.frozen = []              # (bulk target, end of its huge Retry-After episode)
        self.good = "good-1"

    # -- setup --

    def start(self):
        """Demand traces, the fake API server with four users (A, B, the
        emulator, admin), the emulator, Prometheus, a proxy and a config
        symlink per controller, then controller A once Prometheus has a
        full rate window."""
        seconds = int(self.args.max_minutes * 60) + 600
        for name, (low, high) in (("api", (40, 650)), ("web", (20, 500))):
            write_demand(os.path.join(self.workdir, name + ".csv"), seconds, self.rng, low, high)
        self.kube = kubefake.FakeApiserver(
            manual_status=True, extra_args=["--bookmark-interval", str(BOOKMARK_INTERVAL_S)])
        self.kube.start()
        self.kube.set_tokens({self.kube.token: "cpscale", B_TOKEN: "cpscale-b",
                              tc.EMULATOR_TOKEN: "emulator", ADMIN_TOKEN: "admin"})
        for ns in ("cpscale", "shop"):
            self.kube.seed(tc.namespace_object(ns))
        self.initial = dict({"api": 3, "web": 2, "idle": 6}, **{b: 1 for b in BULK})
        for name, replicas in self.initial.items():
            self.kube.seed(tc.deployment("shop", name, replicas))
        self.kubeconfig_a = self.kube.write_kubeconfig(os.path.join(self.workdir, "kubeconfig-a"))
        with open(self.kubeconfig_a) as handle:
            text = handle.read()
        self.kubeconfig_b = os.path.join(self.workdir, "kubeconfig-b")
        with open(self.kubeconfig_b, "w") as handle:
            handle.write(text.replace(json.dumps(self.kube.token), json.dumps(B_TOKEN)))
        os.chmod(self.kubeconfig_b, 0o600)
        token_file = os.path.join(self.workdir, "emulator-token")
        with open(token_file, "w") as handle:
            handle.write(tc.EMULATOR_TOKEN)
        port_file = os.path.join(self.workdir, "emulator.port")
        self.emulator = harness.Process(
            [sys.executable, tc.EMULATOR,
             "--target", "shop/api=" + os.path.join(self.workdir, "api.csv"),
             "--target", "shop/web=" + os.path.join(self.workdir, "web.csv"),
             "--target", "shop/idle=const:20"] + [
                 arg for b in BULK for arg in ("--target", "shop/%s=const:%d" % (b, BULK_QPS))] + [
             "--service-rate", str(tc.SERVICE_RATE), "--base-latency-ms", str(tc.BASE_MS),
             "--startup-s", "2", "--slo-ms", str(tc.SLO_MS),
             # stable pod series names: with a new series per pod, Prometheus'
             # index (and each query's cost) would grow all through the run
             "--pods-per-target-cap", str(POD_SERIES_CAP),
             "--apiserver", self.kube.url, "--ca", self.kube.ca_file,
             "--token-file", token_file, "--port-file", port_file,
             "--duration", str(seconds)], name="emulator", log_dir=self.workdir)
        self.emulator.start()
        harness.wait_until(lambda: os.path.exists(port_file), 20, "emulator port")
        with open(port_file) as handle:
            emulator_target = "127.0.0.1:%d" % int(handle.read())
        self.prom = harness.Prometheus(scrape_targets=[emulator_target], scrape_interval="1s")
        self.prom.start()
        self.proxy_a = Proxy(self.workdir, "proxy-a", self.prom.url)
        self.proxy_b = Proxy(self.workdir, "proxy-b", self.prom.url)
        self.config_a = ConfigDir(os.path.join(self.workdir, "config-a"), self.proxy_a.url,
                                  self.args.interval)
        self.config_b = ConfigDir(os.path.join(self.workdir, "config-b"), self.proxy_b.url,
                                  self.args.interval)
        self.swap_config("good-1")
        self.prom.wait_for_series('sum(rate(http_requests_total{namespace="shop"}[5s]))', 60)
        time.sleep(6)  # a full 5 s rate window
        self.a = tc.Controller(self.args.cpscale, self.workdir, "controller-a", self.config_a.path,
                               ["--kubeconfig", self.kubeconfig_a, "--identity", "soak-a",
                                "--kube-timeout", KUBE_TIMEOUT, "--watch-timeout", WATCH_TIMEOUT,
                                "--watch-progress-timeout", WATCH_PROGRESS_TIMEOUT,
                                "--shutdown-grace", "%ds" % SHUTDOWN_GRACE_S])
        self.a_port = self.a.port()  # A's log grows to hundreds of MB: read it once

    def stop(self):
        for proc in (self.b, self.a):
            if proc and proc.process.poll() is None:
                proc.stop()
        for part in (getattr(self, "proxy_a", None), getattr(self, "proxy_b", None)):
            if part:
                part.process.stop()
        if getattr(self, "emulator", None):
            self.emulator.stop()
        if getattr(self, "prom", None):
            self.prom.stop()
        if getattr(self, "kube", None):
            self.kube.stop()

    def swap_config(self, variant):
        """Both controllers' configs become `variant` at once. The time is
        taken before the swap: a tick may pick the new file up at once."""
        swapped = time.time()
        self.config_a.swap(variant)
        self.config_b.swap(variant)
        self.config_history.append((swapped, variant))
        if not variant.startswith("invalid"):
            self.good = variant

    # -- episodes --

    def set_proxies(self, **fault):
        self.proxy_a.set(**fault)
        self.proxy_b.set(**fault)

    def start_b(self):
        if self.b and self.b.process.poll() is None:
            return
        self.b_runs += 1
        self.b = tc.Controller(self.args.cpscale, self.workdir, "controller-b-%d" % self.b_runs,
                               self.config_b.path,
                               ["--kubeconfig", self.kubeconfig_b, "--identity", "soak-b",
                                "--kube-timeout", KUBE_TIMEOUT, "--watch-timeout", WATCH_TIMEOUT,
                                "--watch-progress-timeout", WATCH_PROGRESS_TIMEOUT,
                                "--shutdown-grace", "%ds" % SHUTDOWN_GRACE_S])

    def lease_holder(self):
        lease = self.kube.get(LEASE_PATH)
        return ((lease or {}).get("spec") or {}).get("holderIdentity")

    def admin(self, method, path, body, content_type="application/merge-patch+json"):
        return self.kube.request(method, path, body=body, auth=ADMIN_TOKEN,
                                 content_type=content_type)

    def run_episode(self, kind, seconds):
        """Apply one fault for `seconds`, then undo it; returns a detail."""
        rng = self.rng
        controllers = ["cpscale", "cpscale-b"]
        scale = {"verb": "patch", "resource": "deployments", "subresource": "scale",
                 "user": controllers}
        detail = ""
        if kind.startswith("prom_"):
            # someone scales idle up first: with the data missing the
            # controller must hold it there, however much it wants down
            self.admin("PATCH", "/apis/apps/v1/namespaces/shop/deployments/idle/scale",
                       {"spec": {"replicas": ADMIN_RANGE["idle"][1]}})
            fault = {"prom_down": {"mode": "reset"},
                     "prom_slow_timeout": {"mode": "slow", "delay_s": PROM_TIMEOUT_S * 2},
                     "prom_slow_ok": {"mode": "slow", "delay_s": PROM_TIMEOUT_S / 6},
                     "prom_5xx": {"mode": "status", "status": rng.choice((500, 503))}}.get(kind)
            if kind == "prom_garbage":
                body = rng.choice(garbage_bodies(time.time()))
                fault = {"mode": "garbage"} if body is None else {"mode": "garbage", "body": body}
            elif kind == "prom_stale":
                old = time.time() - 600
                fault = {"mode": "garbage", "body": json.dumps({
                    "status": "success", "data": {"resultType": "vector", "result": [
                        {"metric": {"namespace": "shop", "deployment": t}, "value": [old, "50"]}
                        for t in TARGETS]}})}
            self.set_proxies(**fault)
            detail = fault.get("mode")
            time.sleep(seconds)
            self.set_proxies(mode="pass")
        elif kind.startswith("api_"):
            # someone scales idle up: the controller has a PATCH to send into the fault
            self.admin("PATCH", "/apis/apps/v1/namespaces/shop/deployments/idle/scale",
                       {"spec": {"replicas": ADMIN_RANGE["idle"][1]}})
            rule = dict(scale)
            if kind == "api_401":
                rule = {"user": controllers, "status": 401}
            elif kind == "api_403":
                rule["status"] = 403
            elif kind == "api_409":
                rule["status"] = 409
            elif kind == "api_429":
                rule.update(status=429, retry_after=rng.choice((1, 2)))
            elif kind == "api_5xx":
                rule["status"] = rng.choice((500, 502, 503))
                rule["verb"] = ["patch", "create"]  # the Events too
                rule.pop("subresource")
            elif kind == "api_timeout":
                rule["delay_s"] = KUBE_TIMEOUT_S * 1.5
            elif kind == "api_slow":
                rule["delay_s"] = KUBE_TIMEOUT_S / 5
            stored = self.kube.add_fault(**rule)
            time.sleep(seconds)
            self.clear_fault(stored)
        elif kind == "watch_break":
            stored = self.kube.add_fault(verb=["list", "watch"], resource="deployments",
                                         user=controllers, status=rng.choice((500, 503)))
            self.kube.compact()
            time.sleep(seconds)
            self.clear_fault(stored)
        elif kind in ("watch_silent", "watch_gone"):
            rule = ({"silent": True} if kind == "watch_silent" else {"status": 410})
            stored = self.kube.add_fault(verb="watch", resource="deployments", user=controllers,
                                         **rule)
            if kind == "watch_silent":  # a change the silent watch does not bring
                name = rng.choice(TARGETS)
                self.admin("PATCH", "/apis/apps/v1/namespaces/shop/deployments/%s/scale" % name,
                           {"spec": {"replicas": ADMIN_RANGE[name][1]}})
                detail = name
            time.sleep(max(seconds, SILENT_S if kind == "watch_silent" else WATCH_GONE_S))
            self.clear_fault(stored)
        elif kind == "slow_patches":
            for name in BULK:
                self.admin("PATCH", "/apis/apps/v1/namespaces/shop/deployments/%s/scale" % name,
                           {"spec": {"replicas": BULK_BOUNDS[1]}})
            stored = [self.kube.add_fault(delay_s=SLOW_PATCH_DELAY_S, **scale)]
            lose = rng.random() < 0.5
            if lose:  # the leader's Lease requests fail while its PATCHes are slow
                holder = self.lease_holder()
                user = {v: k for k, v in USERS.items()}.get(holder, "cpscale")
                time.sleep(rng.uniform(0, 1.0))
                stored.append(self.kube.add_fault(resource="leases", user=user, status=503))
                seconds = max(seconds, RENEW_DEADLINE_S + 1.0)
            detail = "%d targets, lease %s" % (len(BULK), "lost" if lose else "kept")
            time.sleep(seconds)
            for rule in stored:
                self.clear_fault(rule)
        elif kind == "retry_after_huge":
            name = rng.choice(BULK)
            self.admin("PATCH", "/apis/apps/v1/namespaces/shop/deployments/%s/scale" % name,
                       {"spec": {"replicas": BULK_BOUNDS[1]}})
            stored = self.kube.add_fault(status=429, retry_after=HUGE_RETRY_AFTER,
                                         **dict(scale, name=name))
            time.sleep(seconds)
            self.clear_fault(stored)
            self.frozen.append((name, time.time()))
            detail = name
        elif kind == "slow_probes":
            detail = self.slow_probes(max(seconds, SLOW_PROBES_S))
        elif kind == "someone_scales":
            name = rng.choice(TARGETS)
            lo, hi = ADMIN_RANGE[name]
            value = hi if rng.random() < 0.6 else rng.randint(lo, hi)
            code = self.admin("PATCH", "/apis/apps/v1/namespaces/shop/deployments/%s/scale" % name,
                              {"spec": {"replicas": value}})[0]
            detail = "%s=%d (%d)" % (name, value, code)
            time.sleep(seconds)
        elif kind == "lease_lost":
            holder = self.lease_holder()
            user = {v: k for k, v in USERS.items()}.get(holder, "cpscale")
            stored = self.kube.add_fault(resource="leases", user=user,
                                         status=rng.choice((500, 503)),
                                         delay_s=rng.choice((0, KUBE_TIMEOUT_S * 1.5)))
            seconds = max(seconds, RENEW_DEADLINE_S + 1.0)
            detail = "holder %s" % holder
            time.sleep(seconds)
            self.clear_fault(stored)
        elif kind == "lease_stolen":
            code, _, lease = self.kube.request("GET", LEASE_PATH, auth=ADMIN_TOKEN)
            if code == 200:
                now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
                lease["spec"].update(holderIdentity="intruder", leaseDurationSeconds=2,
                                     acquireTime=now, renewTime=now)
                code = self.admin("PUT", LEASE_PATH, lease, "application/json")[0]
            detail = "PUT %s" % code
            time.sleep(seconds)
        elif kind == "two_controllers":
            self.start_b()
            time.sleep(seconds)
        elif kind == "sigterm":
            detail = self.sigterm_b()
        elif kind == "config_invalid":
            variant = "invalid-" + rng.choice(INVALID_KINDS)
            self.swap_config(variant)
            detail = variant
            time.sleep(seconds)
            self.swap_config(self.good)
        elif kind == "config_valid":
            self.swap_config("good-2" if self.good == "good-1" else "good-1")
            detail = self.good
            time.sleep(seconds)
        else:
            time.sleep(seconds)
        return detail

    def slow_probes(self, seconds):
        """SLOW_CLIENTS connections to A's port, each sending one byte of a
        request every SLOW_CLIENT_BYTE_S, while /healthz is probed every
        PROBE_EVERY_S (kubelet's timeout); returns the slowest answer."""
        import socket
        port = self.a_port
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        self.probe_controls.append(self.probe(port))  # before the slow clients: the probe works
        clients = []
        for _ in range(SLOW_CLIENTS):
            try:
                clients.append([socket.create_connection(("127.0.0.1", port), timeout=1), 0])
            except OSError:
                break
        end = time.time() + seconds
        next_byte = time.time()
        answered = []
        while time.time() < end:
            if time.time() >= next_byte:
                for client in clients:
                    try:
                        client[0].send(request[client[1] % (len(request) - 1):][:1])
                        client[1] += 1
                    except OSError:
                        pass
                next_byte += SLOW_CLIENT_BYTE_S
            began = time.time()
            took = self.probe(port)
            self.probes.append((began, took))
            answered.append(took)
            time.sleep(PROBE_EVERY_S)
        for client in clients:
            client[0].close()
        worst = max((t for t in answered if t is not None), default=None)
        return "%d clients, %d probes, %d unanswered, slowest %s s" % (
            len(clients), len(answered), sum(1 for t in answered if t is None),
            "%.3f" % worst if worst is not None else "-")

    @staticmethod
    def probe(port):
        """Seconds /healthz took to answer 200, None past PROBE_TIMEOUT_S."""
        began = time.time()
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                        timeout=PROBE_TIMEOUT_S) as answer:
                answer.read()
                return time.time() - began if answer.status == 200 else None
        except Exception:
            return None

    def clear_fault(self, stored):
        """Remove an injected API fault; adds the requests it hit to the
        episode's count."""
        hits = [r["hits"] for r in self.kube.faults() if r["id"] == stored["id"]]
        self.kube._control("DELETE", "/faults/%d" % stored["id"])
        self.api_hits += hits[0] if hits else stored.get("count") or 0

    def sigterm_b(self):
        """Make B the leader (A's Lease requests fail until it takes over),
        then SIGTERM it at a random moment: it must exit 0 within the grace
        and release the Lease."""
        self.start_b()
        stored = self.kube.add_fault(resource="leases", user="cpscale", status=503)
        deadline = time.time() + LEASE_DURATION_S * 3 + 5
        while time.time() < deadline and self.lease_holder() != "soak-b":
            time.sleep(0.1)
        held = self.lease_holder() == "soak-b"
        time.sleep(self.rng.uniform(0, 0.5))
        sent = time.time()
        self.b.process.send_signal(signal.SIGTERM)
        code = self.b.wait(SHUTDOWN_GRACE_S + 5)
        took = time.time() - sent
        if code is None:
            code = self.b.stop(signal.SIGKILL)
            code = "killed(%s)" % code
        else:
            self.b.stderr.close()
        self.clear_fault(stored)
        self.sigterms.append({"t": sent, "code": code, "held": held, "seconds": took,
                              "log": self.b.log_path})
        return "held %s, exit %s in %.2f s" % (held, code, took)

    # -- the run --

    def ticks_so_far(self, counter):
        """Queries in proxy A's log / queries per tick (cheap, incremental;
        the checker counts ticks exactly afterwards)."""
        try:
            with open(self.proxy_a.log, "rb") as handle:
                handle.seek(counter["offset"])
                chunk = handle.read()
        except FileNotFoundError:  # written from the first query on
            return 0
        counter["offset"] += len(chunk)
        counter["lines"] += chunk.count(b"\n")
        return counter["lines"] // QUERIES_PER_TICK

    def sample_rss(self):
        try:
            with open("/proc/%d/status" % self.a.process.pid) as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        self.rss.append((time.time(), int(line.split()[1])))
        except OSError:
            pass

    def run(self):
        """Episodes, round after round, until A has run the ticks asked for
        and every class has come in at least --min-rounds rounds (or
        --max-minutes is over);
        A's RSS is sampled between episodes."""
        want = int(self.args.days * TICKS_PER_DAY)
        counter = {"offset": 0, "lines": 0}
        started = time.time()
        deadline = started + self.args.max_minutes * 60
        last_sample = 0
        last_print = started
        schedule = []
        while time.time() < deadline:
            ticks = self.ticks_so_far(counter)
            # the estimate counts libcurl's resends as queries too: once it
            # is there, count exactly (as the checker will)
            if ticks >= want and self.rounds_done >= self.args.min_rounds and \
                    len(group_ticks(read_jsonl(self.proxy_a.log), query_index())) >= want:
                break
            if self.a.process.poll() is not None:
                raise RuntimeError("controller A exited: %s" % self.a.text()[-2000:])
            if time.time() - last_sample >= RSS_SAMPLE_S:
                self.sample_rss()
                last_sample = time.time()
            if time.time() - last_print >= 60:
                print("     %d of %d ticks, %d episodes, %.0f s" % (
                    ticks, want, len(self.episodes), time.time() - started))
                sys.stdout.flush()
                last_print = time.time()
            if not schedule:  # a round: every class, in a random order
                schedule = [c for c in sorted(EPISODES_PER_ROUND)
                            for _ in range(EPISODES_PER_ROUND[c])]
                self.rng.shuffle(schedule)
            kind = schedule.pop()
            begin = time.time()
            self.api_hits = 0
            detail = self.run_episode(kind, self.rng.uniform(*EPISODE_S))
            self.episodes.append((kind, begin, time.time(), detail, self.api_hits))
            if not schedule:
                self.rounds_done += 1
            self.sample_rss()
            time.sleep(self.rng.uniform(*GAP_S))
        self.sample_rss()
        self.elapsed = time.time() - started
        self.reached = self.ticks_so_far(counter) >= want
        self.swap_config(self.good)
        time.sleep(1)


# ---- checking ----------------------------------------------------------------------

def read_jsonl(path):
    """The records of a JSON-lines file, one at a time (the soak's logs run
    to hundreds of MB)."""
    if not os.path.exists(path):
        return
    with open(path, errors="replace") as handle:
        for raw in handle:
            raw = raw.strip()
            if raw:
                try:
                    yield json.loads(raw)
                except ValueError:
                    yield {"msg": "<not json>", "text": raw}


def query_digest(promql):
    """What the proxy logs for a query (--log-query-digest)."""
    return hashlib.sha1(promql.encode("utf-8")).hexdigest()[:12]


def query_index():
    """Logged query digest -> (variant, metric) for every config variant."""
    index = {}
    for variant in ("good-1", "good-2", "invalid"):
        for metric, promql in variant_queries(variant).items():
            index[query_digest(promql)] = (variant, metric)
    return index


def makes_missing(record):
    """True when the proxy's answer to this query leaves its metric missing."""
    mode = record.get("mode", "pass")
    if mode == "pass":
        return False
    if mode == "slow":
        return float(record.get("delay_s", 0)) > PROM_TIMEOUT_S
    return True  # reset, an error status, or a body that is no usable vector


def group_ticks(records, index):
    """Proxy records -> ticks. A tick sends each of its queries once, and
    the next tick starts only after the previous one ended, so a tick ends
    where a query text repeats or the config variant changes. One repeat is
    not a new tick: libcurl sends a request again, at once, when a reused
    connection closes without an answer (a `reset`); the retry's fate is
    the query's. Range queries (the policy-state backfill on start, on
    taking the Lease and on a reload) belong to no tick."""
    ticks, current, last = [], None, {}
    for record in records:
        if record.get("path", "").endswith("/query_range"):
            continue  # the backfill's history, not a tick's query
        variant, metric = index.get(record.get("query_sha1"),
                                    ("unknown", record.get("query_sha1")))
        previous = last.get(metric)
        retry = (previous is not None and previous.get("mode") == "reset"
                 and record["t"] - previous["t"] < RETRY_WINDOW_S
                 and current is not None and variant == current["variant"])
        if current is None or variant != current["variant"] or (metric in last and not retry):
            current = {"t": record["t"], "variant": variant, "metrics": {}, "records": {}}
            ticks.append(current)
            last = {}
        last[metric] = record
        current["metrics"][metric] = record.get("mode")
        current["records"][metric] = record
    for tick in ticks:
        tick["missing"] = any(m in DECISION_METRICS and makes_missing(r)
                              for m, r in tick.pop("records").items())
    return ticks


def parse_time(stamp):
    """The controller's log time (2026-12-03T09:10:11.123Z) -> epoch seconds."""
    import calendar
    base, millis = stamp.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000.0


def bounds_of(variant, target):
    if variant in GOOD_BOUNDS:
        return GOOD_BOUNDS[variant][target]
    return INVALID_BOUNDS


class Checker:
    """The invariants, from what the fakes recorded; each break is kept
    with a line saying where."""

    def __init__(self, soak):
        self.soak = soak
        self.index = query_index()
        self.api = list(read_jsonl(soak.kube.log_file))
        self.replicas_after = self.replicas_by_rv()
        self.leases = self.lease_writes()
        self.lease_times = [w[0] for w in self.leases]
        self.own_leases = {}  # user -> ([t], [write]) of that user's writes
        for w in self.leases:
            times, writes = self.own_leases.setdefault(w[3], ([], []))
            times.append(w[0])
            writes.append(w)
        self.breaks = {}
        self.breaks_by_class = {}
        self.writes_after_takeover = []  # s from a forced takeover to a PATCH or Event write

    def broke(self, invariant, detail, t=None):
        """One break; `t` charges it to the episode it fell in."""
        self.breaks.setdefault(invariant, []).append(detail)
        kind = self.class_at(t) if t is not None else "unplaced"
        self.breaks_by_class[kind] = self.breaks_by_class.get(kind, 0) + 1

    def class_at(self, t):
        """The fault class of the episode at t, else of the one whose
        settling second t falls in."""
        settling = None
        for kind, begin, end, _, _ in self.soak.episodes:
            if begin <= t <= end:
                return kind
            if end < t <= end + SETTLE_S:
                settling = kind
        return settling or "between episodes"

    def replicas_by_rv(self):
        """resourceVersion -> spec.replicas after each successful Deployment
        write (status writes included: they carry the spec too)."""
        by_rv = {}
        for r in self.api:
            result = r.get("result") or {}
            if r.get("resource") == "deployments" and "replicas" in result:
                by_rv[str(result["resourceVersion"])] = result["replicas"]
        return by_rv

    def lease_writes(self):
        """(arrival t, holder, duration s, user) of every successful Lease write."""
        writes = []
        for r in self.api:
            if r.get("resource") == "leases" and r.get("verb") in ("create", "update") \
                    and r.get("status") in (200, 201):
                spec = (r.get("body") or {}).get("spec") or {}
                writes.append((r["t"], spec.get("holderIdentity"),
                               float(spec.get("leaseDurationSeconds") or 0), r.get("user")))
        writes.sort()
        return writes

    def good_variant_at(self, t):
        """The newest valid config written at or before t, and the one before."""
        newest, before = None, None
        for when, variant in self.soak.config_history:
            if when > t:
                break
            if not variant.startswith("invalid"):
                if variant != newest:
                    before = newest
                newest = variant
        return newest, before

    def last_swap_before(self, t):
        last = None
        for when, _ in self.soak.config_history:
            if when > t:
                break
            last = when
        return last

    def check_controller(self, user, proxy_log, log_paths):
        """Every tick of one controller; returns the number of ticks."""
        ticks = group_ticks(read_jsonl(proxy_log), self.index)
        starts = [t["t"] for t in ticks]
        by_rv = self.replicas_after
        leases, lease_times = self.leases, self.lease_times
        own_times, own_writes = self.own_leases.get(user, ([], []))
        identity = USERS[user]

        def tick_at(t):
            i = bisect.bisect_right(starts, t) - 1
            return ticks[i] if i >= 0 else None

        def held_lease(r, where):
            """3. a write (PATCH or Event) arriving at r["t"]: this
            controller held the Lease then."""
            n_own = bisect.bisect_left(own_times, r["t"])
            if n_own == 0 or own_writes[n_own - 1][1] != identity:
                self.broke(LEASE_INVARIANT, where + ": its last Lease write %s"
                           % ("released it" if n_own else "does not exist"), r["t"])
                return
            renewed = own_times[n_own - 1]
            if r["t"] - renewed > RENEW_DEADLINE_S + PATCH_TRANSIT_S:
                self.broke(LEASE_INVARIANT, "%s: last renewed %.3f s before, past "
                           "the %g s renew deadline" % (where, r["t"] - renewed, RENEW_DEADLINE_S),
                           r["t"])
            # someone else's write since: only a forced takeover (no protocol
            # lets anyone take an unexpired Lease), seen at the next renew
            since = leases[bisect.bisect_right(lease_times, renewed):
                           bisect.bisect_left(lease_times, r["t"])]
            foreign = [w for w in since if w[1] != identity]
            if foreign:
                late = r["t"] - foreign[0][0]
                self.writes_after_takeover.append(late)
                if late > NOTICE_S:
                    self.broke(LEASE_INVARIANT,
                               "%s: %.3f s after %r took the Lease" % (where, late, foreign[0][1]),
                               r["t"])

        # 4. the config each tick ran with
        for tick in ticks:
            newest, before = self.good_variant_at(tick["t"])
            swap = self.last_swap_before(tick["t"])
            allowed = {newest}
            if swap is not None and tick["t"] - swap < RELOAD_GRACE_S:
                allowed.add(before)
                allowed.update(v for w, v in self.soak.config_history
                               if tick["t"] - RELOAD_GRACE_S <= w <= tick["t"]
                               and not v.startswith("invalid"))
            if tick["variant"] not in allowed:
                self.broke("last good config in force",
                           "%s tick at %.3f ran %s, want %s" % (user, tick["t"], tick["variant"],
                                                                sorted(a for a in allowed if a)),
                           tick["t"])
        # 1-3 on every PATCH
        patches = [r for r in self.api if r.get("verb") == "patch"
                   and r.get("subresource") == "scale" and r.get("user") == user]
        downs_checked = scale_downs = 0
        for r in patches:
            replicas = ((r.get("body") or {}).get("spec") or {}).get("replicas")
            rv = str(((r.get("body") or {}).get("metadata") or {}).get("resourceVersion"))
            seen = by_rv.get(rv)  # what the controller had read
            if r.get("status") == 200 and seen is not None and replicas < seen:
                scale_downs += 1
            tick = tick_at(r["t"])
            where = "%s PATCH %s=%s at %.3f" % (user, r.get("name"), replicas, r["t"])
            if tick is None:
                self.broke("PATCH inside a tick", where + " before any query", r["t"])
                continue
            lo, hi = bounds_of(tick["variant"], r.get("name"))
            if not isinstance(replicas, int) or not lo <= replicas <= hi:
                self.broke("within min/max", "%s outside %d..%d (%s)" % (where, lo, hi,
                                                                     tick["variant"]), r["t"])
            if tick["missing"] and seen is not None:
                downs_checked += 1
                if replicas < seen:
                    self.broke("no scale-down on missing data", "%s from %d, tick faults %s"
                               % (where, seen, tick["metrics"]), r["t"])
            held_lease(r, where)
        # 3 on every Event write too: an Event is a write like a PATCH
        event_writes = [r for r in self.api if r.get("resource") == "events"
                        and r.get("verb") in ("create", "patch", "update")
                        and r.get("user") == user]
        for r in event_writes:
            held_lease(r, "%s Event %s %s at %.3f" % (user, r.get("verb"), r.get("name") or
                                                       r.get("namespace"), r["t"]))
        # the controller's own tick lines: bounds, and held on missing data
        lines = ambiguous = 0
        for path in log_paths:
            for rec in read_jsonl(path):
                if rec.get("msg") != "tick" or "desired" not in rec:
                    continue
                lines += 1
                # the line's time is truncated to the millisecond: when a
                # tick began within that millisecond the line may be either
                # tick's, and the checks take the one that lets it pass
                logged = parse_time(rec["time"])
                earlier, later = tick_at(logged), tick_at(logged + 0.001)
                candidates = [t for t in (earlier, later if later is not earlier else None)
                              if t is not None]
                if not candidates:
                    continue
                if len(candidates) > 1:
                    ambiguous += 1
                name = rec["target"].split("/", 1)[1]
                if not any(bounds_of(t["variant"], name)[0] <= rec["desired"]
                           <= bounds_of(t["variant"], name)[1] for t in candidates):
                    self.broke("within min/max", "%s decided %s=%d outside %s"
                               % (user, name, rec["desired"],
                                  [bounds_of(t["variant"], name) for t in candidates]), logged)
                if all(t["missing"] for t in candidates) and rec["desired"] < rec["current"]:
                    self.broke("no scale-down on missing data", "%s decided %s %d -> %d"
                               % (user, name, rec["current"], rec["desired"]), logged)
        missing = sum(1 for t in ticks if t["missing"])
        return {"ticks": len(ticks), "missing_ticks": missing, "patches": len(patches),
                "event_writes": len(event_writes),
                "patches_in_missing_ticks": downs_checked, "tick_lines": lines,
                "tick_lines_ambiguous": ambiguous, "scale_downs": scale_downs}

    def run(self):
        """Check both controllers, the SIGTERMs and the memory; returns the
        figures (ticks, faults per class, RSS, breaks per invariant)."""
        soak = self.soak
        figures = {}
        b_logs = sorted(os.path.join(soak.workdir, f) for f in os.listdir(soak.workdir)
                        if f.startswith("controller-b-") and f.endswith(".log"))
        figures["a"] = self.check_controller("cpscale", soak.proxy_a.log, [soak.a.log_path])
        figures["b"] = self.check_controller("cpscale-b", soak.proxy_b.log, b_logs)
        # SIGTERM: exit 0 within the grace, and the Lease released
        for s in soak.sigterms:
            if s["code"] != 0 or s["seconds"] > SHUTDOWN_GRACE_S + 1.5:
                self.broke("SIGTERM: exit 0 within the grace",
                           "exit %s after %.2f s" % (s["code"], s["seconds"]), s["t"])
            if s["held"]:
                released = [r for r in self.api if r.get("resource") == "leases"
                            and r.get("user") == "cpscale-b" and r.get("status") == 200
                            and r["t"] >= s["t"]
                            and not ((r.get("body") or {}).get("spec") or {}).get("holderIdentity")]
                if not released:
                    self.broke("SIGTERM: lease released", "B held it at %.3f" % s["t"], s["t"])
        # 5. memory
        rss = soak.rss
        if len(rss) >= 8:
            warm = rss[int(len(rss) * WARMUP_FRACTION)][1]
            tail = [kb for _, kb in rss[int(len(rss) * 0.75):]]
            figures["rss_kb"] = {"start": warm, "end": rss[-1][1], "max_last_quarter": max(tail),
                                 "first": rss[0][1]}
            if max(tail) > warm + RSS_SLACK_KB:
                self.broke("flat memory", "RSS %d kB after warm-up, %d kB in the last quarter"
                           % (warm, max(tail)))
        else:
            self.broke("flat memory", "only %d RSS samples" % len(rss))
        # faults per class: episodes, and the requests or events they hit
        proxied = sorted((r["t"], r.get("mode")) for path in (soak.proxy_a.log, soak.proxy_b.log)
                         for r in read_jsonl(path))
        proxied_t = [t for t, _ in proxied]
        counts, hits = {}, {}
        for kind, begin, end, detail, api_hits in soak.episodes:
            counts[kind] = counts.get(kind, 0) + 1
            if kind.startswith("prom_"):
                lo, hi = bisect.bisect_left(proxied_t, begin), bisect.bisect_right(proxied_t, end)
                n = sum(1 for _, mode in proxied[lo:hi] if mode != "pass")
            elif kind.startswith("api_") or kind in API_FAULT_CLASSES:
                n = api_hits
            elif kind == "slow_probes":
                n = SLOW_CLIENTS
            elif kind == "healthy":
                n = 0
            else:
                n = 1  # one write, swap, start or signal
            hits[kind] = hits.get(kind, 0) + n
        figures["episodes"] = counts
        figures["faulted_requests"] = hits
        figures["rounds"] = soak.rounds_done
        figures["sigterms"] = len(soak.sigterms)
        figures["sigterms_while_leading"] = sum(1 for s in soak.sigterms if s["held"])
        figures["b_runs"] = soak.b_runs
        figures["api_requests"] = len(self.api)
        figures["api_faults_hit"] = sum(1 for r in self.api if r.get("fault"))
        figures["elapsed_s"] = round(soak.elapsed, 1)
        figures["writes_after_forced_takeover"] = {
            "count": len(self.writes_after_takeover),
            "latest_s": round(max(self.writes_after_takeover, default=0), 3)}
        figures.update(self.new_class_figures())
        figures["breaks"] = {k: len(v) for k, v in self.breaks.items()}
        figures["breaks_by_class"] = {k: self.breaks_by_class.get(k, 0)
                                      for k in sorted(set(EPISODES_PER_ROUND) | set(self.breaks_by_class))}
        return figures

    def new_class_figures(self):
        """What the watch, PATCH-queue, Retry-After and probe classes did:
        LISTs per persistent-410 episode, /healthz answer times under slow
        clients, and when a target frozen by a huge Retry-After acted again."""
        soak = self.soak
        out = {}
        lists = sorted(r["t"] for r in self.api if r.get("verb") == "list"
                       and r.get("resource") == "deployments" and r.get("user") == "cpscale")
        per_episode = []
        for kind, begin, end, _, _ in soak.episodes:
            if kind == "watch_gone":
                n = bisect.bisect_right(lists, end) - bisect.bisect_left(lists, begin)
                per_episode.append(n)
                if n > WATCH_GONE_MAX_LISTS:
                    self.broke("re-lists backed off", "%d LISTs in one persistent-410 episode of "
                               "%.1f s" % (n, end - begin), begin)
        out["watch_gone_lists_per_episode"] = per_episode
        log_a = list(read_jsonl(soak.a.log_path))
        silent = [r for r in log_a if r.get("reason") == "no_progress"
                  and r.get("msg") == "listing again after a wait"]
        out["watch_silent_relists_a"] = len(silent)
        times = [took for _, took in soak.probes]
        out["probes"] = {"count": len(times), "unanswered": sum(1 for t in times if t is None),
                         "slowest_s": round(max((t for t in times if t is not None), default=0), 3),
                         "before_slow_clients_s": [None if t is None else round(t, 3)
                                                   for t in soak.probe_controls]}
        for began, took in soak.probes:
            if took is None:
                self.broke("probes answer under slow clients",
                           "/healthz unanswered within %g s at %.3f" % (PROBE_TIMEOUT_S, began), began)
        run_end = soak.episodes[-1][2] if soak.episodes else 0
        ticks = {}  # A's tick lines per target: (time, action)
        for r in log_a:
            if r.get("msg") == "tick" and r.get("target"):
                ticks.setdefault(r["target"], []).append((parse_time(r["time"]), r.get("action")))
        acted = []
        for name, ended in soak.frozen:
            later = [r["t"] for r in self.api if r.get("verb") == "patch" and r.get("name") == name
                     and r.get("user") == "cpscale" and r["t"] > ended]
            again = round(later[0] - ended, 1) if later else None
            if run_end - ended < BACKOFF_CEILING_S + 10:
                acted.append({"target": name, "acted_again_s": again, "checked": False})
                continue
            # The freeze is over when A decides on the target again: its first
            # tick after the fault that is not backing off. Measured from A's
            # own log, not from its next PATCH, which waits for a reason to
            # scale (and for the other faults of the soak, one every few
            # seconds). A later 429 for the target starts a backoff of its
            # own: the freeze is measured up to it.
            refault = min((r["t"] for r in self.api if r.get("name") == name and r.get("fault")
                           and r.get("status") == 429 and r["t"] > ended), default=None)
            resumed = next((t for t, action in ticks.get("shop/" + name, [])
                            if t > ended and action != "backing_off"), None)
            if refault is not None and (resumed is None or resumed > refault):
                resumed = refault
            frozen = round(resumed - ended, 1) if resumed is not None else None
            acted.append({"target": name, "acted_again_s": again, "decided_again_s": frozen,
                          "checked": True})
            if frozen is None or frozen > BACKOFF_CEILING_S + 10:
                self.broke("decides again within the backoff ceiling after a huge Retry-After",
                           "%s: %s s after the fault ended" % (name, frozen), ended - SETTLE_S / 2)
        out["retry_after_huge"] = acted
        return out


def shard_phase(checks, cpscale, workdir, episodes, rng):
    """Fault class shard_holder_killed (see the module docstring)."""
    fleet = ts.Fleet(cpscale, os.path.join(workdir, "shards"), ts.target_names())
    os.makedirs(fleet.workdir, exist_ok=True)
    fleet.start()
    handovers, restarted = [], 0
    try:
        for i in range(ts.N_REPLICAS):
            fleet.start_replica(i)
        fleet.start_resets()
        for episode in range(episodes):
            if not ts.wait_spread(fleet, 60 * tc.TIME_FACTOR):
                checks.check("shard_holder_killed: the fleet spreads before episode %d" % episode,
                             False, str(fleet.holders()))
                break
            victim = rng.randrange(ts.N_REPLICAS)
            held = sorted(s for s, (h, _) in fleet.holders().items() if h == "replica-%d" % victim)
            seq = fleet.kube.log()[-1]["seq"]
            harness.wait_until(lambda: [r for r in fleet.kube.log(since=seq)
                                        if r.get("verb") == "patch"
                                        and r.get("user") == "user-%d" % victim],
                               20 * tc.TIME_FACTOR, "a PATCH of the victim", interval=0.02)
            killed_at = time.time()
            os.killpg(fleet.replicas[victim].process.pid, signal.SIGKILL)
            fleet.replicas[victim].process.wait()
            fleet.replicas[victim].stderr.close()
            time.sleep(ts.HANDOVER_BOUND_S + 2 * tc.TIME_FACTOR)
            writes = ts.lease_writes(fleet.kube.log())
            for s in held:
                taken = [w for w in writes[s] if w[0] > killed_at and w[1]
                         and w[1] != "replica-%d" % victim]
                handovers.append(taken[0][0] - killed_at if taken else None)
            fleet.start_replica(victim)
            restarted += 1
        ts.wait_spread(fleet, 30 * tc.TIME_FACTOR)  # the last one restarted is up
        end = time.time()
        records = fleet.kube.log()
    finally:
        codes = fleet.stop()
    bound = ts.LEASE_DURATION_S + 1.2 * ts.RETRY_PERIOD_S + ts.TRANSIT_S
    checks.check("shard_holder_killed: %d episodes injected" % episodes,
                 restarted == episodes and handovers, "%d shards moved" % len(handovers))
    checks.check("shard_holder_killed: every hand-over within lease_duration + 1.2 x "
                 "retry_period", all(h is not None and h <= bound for h in handovers),
                 "hand-overs %s s (bound %.1f s)"
                 % ([round(h, 2) if h is not None else None for h in handovers], bound))
    bad, judged = ts.holder_violations(records)
    checks.check("shard_holder_killed: every PATCH from its shard's Lease holder",
                 judged > 0 and not bad, "%d judged; %s" % (judged, "; ".join(bad[:3]) or "0 breaks"))
    first_held = min((w[0] for ws in ts.lease_writes(records).values() for w in ws if w[1]),
                     default=end)
    gaps = ts.unowned_gaps(records, first_held + ts.RENEW_DEADLINE_S + 10 * tc.TIME_FACTOR, end)
    checks.check("shard_holder_killed: no shard unowned longer than the bound",
                 gaps and max(gaps.values()) <= ts.HANDOVER_BOUND_S + ts.TRANSIT_S,
                 "longest %.2f s (bound %.1f s)" % (max(gaps.values() or [0]), ts.HANDOVER_BOUND_S))
    checks.check("shard_holder_killed: the replicas exit 0 on SIGTERM",
                 all(c == 0 for c in codes.values()), str(codes))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpscale", required=True)
    parser.add_argument("--days", type=float, default=1.0,
                        help="simulated days of 15 s ticks (5,760 ticks a day)")
    parser.add_argument("--interval", default="10ms", help="the controller's interval")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop by then even if short of the ticks (default: 3 x days x "
                             "5,760 x interval, at least 12)")
    parser.add_argument("--min-rounds", type=int, default=1,
                        help="run on past the ticks until every fault class has come this "
                             "many times (rounds of EPISODES_PER_ROUND; default 1)")
    parser.add_argument("--report", help="write the figures as JSON here")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--shard-episodes", type=int, default=3,
                        help="episodes of shard_holder_killed after the main run (0: none)")
    args = parser.parse_args()
    args.cpscale = os.path.abspath(args.cpscale)
    if args.max_minutes is None:
        interval_s = float(re.match(r"([\d.]+)", args.interval).group(1)) / (
            1000.0 if args.interval.endswith("ms") else 1.0)
        args.max_minutes = max(12.0, 3 * args.days * TICKS_PER_DAY * interval_s / 60)
    harness.install_signal_handlers()
    checks = tc.Checks()
    workdir = tempfile.mkdtemp(prefix="cps-soak-")
    soak = Soak(args, workdir)
    figures = None
    try:
        soak.start()
        print("# soak: %g days = %d ticks at %s, seed %d" % (
            args.days, int(args.days * TICKS_PER_DAY), args.interval, args.seed))
        sys.stdout.flush()
        soak.run()
        code = soak.a.stop()
        checks.check("controller A ran to the end and exits 0 on SIGTERM", code == 0,
                     "exit %s" % code)
        if soak.b and soak.b.process.poll() is None:
            soak.b.stop()
        checker = Checker(soak)
        figures = checker.run()
        figures["reached_ticks"] = soak.reached
        a = figures["a"]
        checks.check("ran the equivalent of %g days of ticks" % args.days,
                     soak.reached and a["ticks"] >= args.days * TICKS_PER_DAY,
                     "%d ticks of A (%d of B) in %.0f s" % (a["ticks"], figures["b"]["ticks"],
                                                           soak.elapsed))
        for kind in sorted(EPISODES_PER_ROUND):
            n = figures["episodes"].get(kind, 0)
            if soak.rounds_done >= 1:
                want_n = EPISODES_PER_ROUND[kind] * args.min_rounds
                checks.check("fault class %s injected %d times or more" % (kind, want_n),
                             n >= want_n, "%d episodes" % n)
        checks.check("the invariants were exercised",
                     a["missing_ticks"] > 0 and a["patches"] > 0 and a["scale_downs"] > 0,
                     "%d ticks with missing data, %d PATCHes, %d scale-downs"
                     % (a["missing_ticks"], a["patches"], a["scale_downs"]))
        for invariant in ("within min/max", "no scale-down on missing data",
                          LEASE_INVARIANT, "last good config in force",
                          "flat memory", "PATCH inside a tick", "SIGTERM: exit 0 within the grace",
                          "SIGTERM: lease released", "re-lists backed off",
                          "probes answer under slow clients",
                          "decides again within the backoff ceiling after a huge Retry-After"):
            found = checker.breaks.get(invariant, [])
            checks.check("invariant: %s" % invariant, not found,
                         "%d breaks: %s" % (len(found), "; ".join(found[:3])) if found else "0 breaks")
        for kind in ("watch_silent", "watch_gone", "slow_patches", "retry_after_huge",
                     "slow_probes"):
            n = figures["breaks_by_class"].get(kind, 0)
            checks.check("fault class %s: 0 invariant breaks" % kind, n == 0, "%d breaks" % n)
        print("breaks by class: " + json.dumps(figures["breaks_by_class"], sort_keys=True))
        print("new classes: " + json.dumps({k: figures[k] for k in (
            "watch_gone_lists_per_episode", "watch_silent_relists_a", "probes",
            "retry_after_huge")}, sort_keys=True))
        print("figures: " + json.dumps(figures, sort_keys=True))
        if args.report:
            with open(args.report, "w") as handle:
                json.dump(figures, handle, indent=1, sort_keys=True)
    except Exception as error:  # a broken run is a failure, with the reason
        import traceback
        traceback.print_exc()
        checks.check("soak ran to the end", False, repr(error))
    finally:
        soak.stop()
    if args.shard_episodes > 0:
        print("# shard_holder_killed: %d episodes" % args.shard_episodes)
        sys.stdout.flush()
        try:
            shard_phase(checks, args.cpscale, workdir, args.shard_episodes,
                        random.Random(args.seed))
        except Exception as error:  # noqa: BLE001
            checks.check("shard_holder_killed ran to the end", False, repr(error))
    return checks.finish(workdir, args.keep)


if __name__ == "__main__":
    sys.exit(main())
