#!/usr/bin/env python3
"""`cpscale run` against real parts: Debian's Prometheus scraping the
workload emulator, and the fake kube-apiserver (HTTPS, bearer tokens,
faults, a log of every request).

Scenarios (each prints one line per check; the run ends with
"N passed, N failed"):
  closed loop      a demand ramp: the controller scales up on it and back
                   down after it, within min/max, obeying the behavior's
                   scale-up limits, with fewer events than ticks; the
                   exported SLO violating share against the emulator's
  prometheus       down, slow, 500, garbage JSON: never a scale-down
  apiserver        401, 403, 409, 429 + Retry-After, 500 and timeouts
  watch            LIST+WATCH: one LIST, no GETs, changes arrive, one 410
                   gives exactly one re-list, a broken watch falls back to GETs
  watch-storm      every watch 410 (then every watch ending at once): re-lists
                   back off, are logged and counted
  watch-silent     a watch held open without a byte: given up after
                   --watch-progress-timeout, the true count read
  watch-bookmarks  real-shaped bookmarks (no name, replicas 0) change nothing
  leases           two controllers at once (one patches); a lease lost
                   mid-run (no PATCH after the renew deadline)
  reload           an invalid config is refused while the old one works;
                   a valid one is taken; SIGHUP reloads
  first-decision   a controller started on a target over its need holds the
                   count for the scale-down window before it scales down
  shutdown         SIGTERM in the middle of a tick: exit 0, lease released
  sigterm-renewal  SIGTERM while a renewal the server applied is unanswered:
                   the Lease is still released (but not when another holder
                   wrote it meanwhile); a 409 on the release is read past
  credentials      client-certificate kubeconfig, in-cluster service account;
                   no token ever appears in a log or in /metrics
  listen           [::]:PORT serves IPv4 and IPv6, [::1]:PORT IPv6 only
  rbac-live        as its ServiceAccount against the fake enforcing the
                   rendered RBAC: a cluster-wide LIST refused (403, logged
                   with its fix), targets still read and scaled, an unbound
                   namespace refused; the cluster-scope binding applied
                   with kubectl lets the cluster-wide watch through
  rbac             every request of the run granted by the rendered RBAC

Each scenario decides from the fake apiserver's request log (what the
controller really sent), the emulator's world, or the controller's JSON
log lines, never from the controller's own claims alone.

With CPS_VALGRIND=1 in the environment every controller runs under
valgrind (memcheck, leaks counted as errors) and each run must end clean.
"""

import argparse
import calendar
import json
import os
import re
import shutil
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

REPO = os.path.dirname(os.path.dirname(HERE))
EMULATOR = os.path.join(REPO, "tests", "fakes", "workload_emulator.py")
FAULT_PROXY = os.path.join(REPO, "tests", "fakes", "fault_proxy.py")
DEFAULT_CONFIG = os.path.join(REPO, "config", "default.yaml")

# The world: μ 100 req/s per pod, 20 ms base. p95 ≤ 100 ms holds up to
# 62.5 req/s per pod, so the tests configure 60 req/s per pod explicitly
# (capacity learning is the simulator suite's subject).
SERVICE_RATE = 100.0
BASE_MS = 20.0
SLO_MS = 100.0
RPS_PER_POD = 60.0
STARTUP_S = 4.0
SHORT_WINDOW = "10s"      # rate windows of the test queries (the default is 1m)
IDLE_QPS = 20.0           # the "idle" Deployment: 8 replicas for 20 req/s
IDLE_START_REPLICAS = 8
RAMP = (60, 600, 8, 16, 30, 8)  # low, high, hold low s, ramp s, hold high s, ramp down s
RAMP_MAX_REPLICAS = 20
# qps, p95_ms, cpu_utilization, cost_per_pod_hour, budget_qps, budget_p95_ms
# (ready replicas come from the Deployment)
QUERIES_PER_TICK = 6
AFTER_RAMP_S = 75         # watched after the ramp has come down
LOOP_INTERVAL_S = 2       # the closed loop's tick
VALGRIND = os.environ.get("CPS_VALGRIND") == "1"
EMULATOR_TOKEN = "emulator-token-0123456789"
ADMIN_TOKEN = "admin-token-0123456789"
CONTROLLER_USERS = ("cpscale", "cpscale-b")  # the tokens the controllers use
VALGRIND_ERROR_EXIT = 99
# valgrind slows the controller ~20x: give it more time per tick
TIME_FACTOR = 3.0 if VALGRIND else 1.0
# the API timeout of the fault cases: short, but a TLS handshake under
# valgrind takes more than a second
KUBE_TIMEOUT_S = 1.0 * TIME_FACTOR
PROM_TIMEOUT_S = 1.0 * TIME_FACTOR


class Checks:
    """Named pass/fail results with one printed line each. Safe to call from
    several threads (CompanionThread's scenarios run next to the others): a
    lock keeps the counts exact and each line whole."""

    def __init__(self):
        import threading
        self.passed = 0
        self.failed = 0
        self.lock = threading.Lock()

    def check(self, name, ok, detail=""):
        with self.lock:
            if ok:
                self.passed += 1
                print("ok   %s%s" % (name, (" (" + detail + ")") if detail else ""))
            else:
                self.failed += 1
                print("FAIL %s%s" % (name, (": " + detail) if detail else ""))
            sys.stdout.flush()
        return ok

    def finish(self, workdir, keep):
        """Keep the work directory when asked or when a check failed (else
        remove it), print the summary line; returns the exit code."""
        if keep or self.failed:
            print("work directory kept: %s" % workdir)
        else:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0


# ---- configs ----------------------------------------------------------------

def test_queries_with_window(window):
    """The default queries from config/default.yaml with rate windows of
    `window` instead of 1m."""
    import test_emulator  # its reader of the folded `queries:` block
    queries = test_emulator.load_queries(DEFAULT_CONFIG)
    return {name: q.replace("[1m]", "[%s]" % window) for name, q in queries.items()}


def test_queries():
    """The default queries with short rate windows (tests run in seconds)."""
    return test_queries_with_window(SHORT_WINDOW)


def yaml_string(text):
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


# Every namespace a config of this run has targets in: the rbac scenario
# binds cpscale's role there, as an overlay's target-namespaces.yaml does.
TARGET_NAMESPACES = set()


def write_config(path, prometheus_url, targets, interval="1s", leader=None,
                 prom_timeout=None, queries=None, extra=""):
    """A controller config. targets: list of dicts (namespace, deployment,
    min, max, extra lines); leader: None (disabled) or a dict of durations."""
    lines = ["interval: %s" % interval, "listen: \"127.0.0.1:0\"", "prometheus:",
             "  url: %s" % prometheus_url,
             "  timeout: %s" % (prom_timeout or "%gs" % PROM_TIMEOUT_S), "queries:"]
    for name, promql in sorted((queries or test_queries()).items()):
        lines.append("  %s: %s" % (name, yaml_string(promql)))
    if leader:
        lines += ["leader_election:", "  enabled: true", "  namespace: cpscale",
                  "  name: cpscale-leader",
                  "  lease_duration: %s" % leader.get("lease_duration", "4s"),
                  "  renew_deadline: %s" % leader.get("renew_deadline", "3s"),
                  "  retry_period: %s" % leader.get("retry_period", "1s")]
    else:
        lines += ["leader_election:", "  enabled: false"]
    lines += ["defaults:", "  slo:", "    latency_p95_ms: %g" % SLO_MS,
              "  capacity:", "    rps_per_pod: %g" % RPS_PER_POD,
              "  policy:", "    startup: %ds" % STARTUP_S, "    metrics_lag: 2s",
              "  behavior:", "    scaleDown:", "      stabilizationWindowSeconds: 6",
              "targets:"]
    for t in targets:
        TARGET_NAMESPACES.add(t["namespace"])
        lines += ["  - namespace: %s" % t["namespace"], "    deployment: %s" % t["deployment"],
                  "    min_replicas: %d" % t.get("min", 1),
                  "    max_replicas: %d" % t.get("max", RAMP_MAX_REPLICAS)]
        lines += ["    " + extra_line for extra_line in t.get("extra", [])]
    text = "\n".join(lines) + "\n" + extra
    with open(path, "w") as handle:
        handle.write(text)
    return path


def deployment(namespace, name, replicas):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "app:1"}]}}},
            "status": {"replicas": replicas, "readyReplicas": replicas,
                       "availableReplicas": replicas, "updatedReplicas": replicas}}


def namespace_object(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


# ---- the controller process ---------------------------------------------------

class Controller:
    """One `cpscale run` with JSON logs on stderr, optionally under valgrind."""

    def __init__(self, cpscale, workdir, name, config, args=(), env=None):
        self.name = name
        self.log_path = os.path.join(workdir, name + ".log")
        command = [cpscale, "run", "--config", config, "--log-format", "json",
                   "--listen", "127.0.0.1:0"] + list(args)
        if VALGRIND:
            command = ["valgrind", "--quiet", "--error-exitcode=%d" % VALGRIND_ERROR_EXIT,
                       "--leak-check=full", "--show-leak-kinds=definite,indirect",
                       "--errors-for-leak-kinds=definite,indirect",
                       "--log-file=" + os.path.join(workdir, name + ".valgrind")] + command
        self.valgrind_log = os.path.join(workdir, name + ".valgrind")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.stderr = open(self.log_path, "wb")
        import subprocess
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.stderr,
                                        env=full_env, start_new_session=True)

    def lines(self):
        """The JSON log lines so far (a line that is not JSON is kept as text)."""
        records = []
        with open(self.log_path, errors="replace") as handle:
            for raw in handle:
                raw = raw.strip()
                if not raw:
                    continue
                try:
                    records.append(json.loads(raw))
                except ValueError:
                    records.append({"msg": "<not json>", "text": raw})
        return records

    def text(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def wait_for(self, predicate, timeout, what):
        deadline = time.time() + timeout * TIME_FACTOR
        while time.time() < deadline:
            found = [r for r in self.lines() if predicate(r)]
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("%s: no log line for %s; log tail:\n%s"
                             % (self.name, what, self.text()[-3000:]))

    def port(self):
        started = self.wait_for(lambda r: r.get("msg") == "started", 20, "start")
        return int(started[0]["listen_port"])

    def http(self, path):
        """(status, body) of GET path on the controller's own endpoint."""
        url = "http://127.0.0.1:%d%s" % (self.port(), path)
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait(self, timeout):
        """Exit code, or None if it is still running after timeout."""
        try:
            return self.process.wait(timeout=timeout * TIME_FACTOR)
        except Exception:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.wait(timeout)
        if code is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait()
        self.stderr.close()
        return code

    def valgrind_clean(self):
        if not VALGRIND:
            return True, "valgrind off"
        with open(self.valgrind_log, errors="replace") as handle:
            report = handle.read().strip()
        return report == "", report[-2000:]


def poll(probe, timeout, interval=0.1):
    """Call probe() until it returns something truthy or `timeout` seconds
    (times TIME_FACTOR) have passed; return its last value either way.

    It stands in for a fixed sleep before a check of a condition that,
    once true, stays true (a count reached, a line logged, a metric
    exported): the check that follows still looks at the same thing, and
    still fails when the condition did not come within the same time.
    Waiting out the rest of the sleep proved nothing more. (Sleeps that
    are observation windows -- "at most N in 10 s", "none after the
    deadline" -- stay sleeps.)"""
    deadline = time.time() + timeout * TIME_FACTOR
    while True:
        value = probe()
        if value or time.time() >= deadline:
            return value
        time.sleep(interval)


def run_once(env, name, config, args=(), timeout=30, extra_env=None):
    """Run one `--once` tick to its end; returns (exit code, controller)."""
    controller = Controller(env.cpscale, env.workdir, name, config,
                            ["--once", "--kubeconfig", env.kubeconfig] + list(args),
                            env=extra_env)
    code = controller.wait(timeout)
    if code is None:
        code = controller.stop(signal.SIGKILL)
        code = "timeout(%s)" % code
    else:
        controller.stderr.close()
    return code, controller


def last_seq(env):
    """The sequence number of the newest request in the apiserver's log."""
    records = env.kube.log()
    return records[-1]["seq"] if records else 0


LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/cpscale/leases/cpscale-leader"


def delete_lease(env):
    """Start a scenario with no Lease (it may not exist yet)."""
    if env.kube.get(LEASE_PATH) is not None:
        env.kube.delete(LEASE_PATH)


# What can bind a decision's count (README, `--log-format`): the policy's mechanisms,
# a rail, or what a decision without a forecast was based on.
BOUNDS = {"forecast", "budget_feedback", "burst_memory", "peak_cap", "cost_target", "rail",
          "learning", "slo_unreachable", "given", "missing_metrics", "paused"}


def tick_lines(controller, target):
    return [r for r in controller.lines() if r.get("msg") == "tick" and r.get("target") == target]


def patches(records, name=None, user=None):
    """PATCH requests of the scale subresource in the apiserver log."""
    return [r for r in records
            if r.get("verb") == "patch" and r.get("subresource") == "scale"
            and (name is None or r.get("name") == name)
            and (user is None or r.get("user") == user)]


def patched_replicas(record):
    body = record.get("body") or {}
    return (body.get("spec") or {}).get("replicas")


# ---- the shared environment -------------------------------------------------

class Environment:
    """Fake apiserver, emulator, Prometheus and a fault proxy, shared by the
    scenarios (starting Prometheus once saves a minute).

    `companions`: other environments of the same run (CompanionThread's),
    whose apiserver logs the rbac scenario judges too, so that it still
    sees every request of the run."""

    def __init__(self, cpscale, workdir):
        self.cpscale = cpscale
        self.workdir = workdir
        self.kube = None
        self.prom = None
        self.emulator = None
        self.proxy = None
        self.companions = []

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        self.kube = kubefake.FakeApiserver(manual_status=True)
        self.kube.start()
        for ns in ("cpscale", "shop"):
            self.kube.seed(namespace_object(ns))
        self.kube.seed(deployment("shop", "api", 1))
        self.kube.seed(deployment("shop", "idle", IDLE_START_REPLICAS))
        self.kubeconfig = self.kube.write_kubeconfig(os.path.join(self.workdir, "kubeconfig"))
        self.set_users({})
        token_file = os.path.join(self.workdir, "emulator-token")
        with open(token_file, "w") as handle:
            handle.write(EMULATOR_TOKEN)
        port_file = os.path.join(self.workdir, "emulator.port")
        self.state_file = os.path.join(self.workdir, "emulator.state")
        self.emulator = harness.Process(
            [sys.executable, EMULATOR, "--target", "shop/idle=const:%g" % IDLE_QPS,
             "--service-rate", str(SERVICE_RATE), "--base-latency-ms", str(BASE_MS),
             "--startup-s", str(STARTUP_S), "--slo-ms", str(SLO_MS),
             "--apiserver", self.kube.url, "--ca", self.kube.ca_file,
             "--token-file", token_file, "--port-file", port_file,
             "--state-file", self.state_file, "--duration", "1500"],
            name="emulator", log_dir=self.workdir)
        self.emulator.start()
        harness.wait_until(lambda: os.path.exists(port_file), 20, "emulator port")
        with open(port_file) as handle:
            self.emulator_target = "127.0.0.1:%d" % int(handle.read())
        self.prom = harness.Prometheus(scrape_targets=[self.emulator_target],
                                       scrape_interval="1s", enable_lifecycle=True)
        self.prom.start()
        proxy_port_file = os.path.join(self.workdir, "proxy.port")
        self.proxy_log = os.path.join(self.workdir, "proxy.log")
        self.proxy = harness.Process(
            [sys.executable, FAULT_PROXY, "--upstream", self.prom.url, "--port-file",
             proxy_port_file, "--log", self.proxy_log], name="fault-proxy", log_dir=self.workdir)
        self.proxy.start()
        harness.wait_until(lambda: os.path.exists(proxy_port_file), 20, "proxy port")
        with open(proxy_port_file) as handle:
            self.proxy_url = "http://127.0.0.1:%d" % int(handle.read())
        # wait until the idle target's series exist with a full rate window
        self.prom.wait_for_series(
            'sum(rate(http_requests_total{namespace="shop"}[%s]))' % SHORT_WINDOW, 60)
        time.sleep(11)

    def start_ramp_emulator(self):
        """A second emulator replaying the ramp for shop/api from now on,
        added to Prometheus' scrape targets."""
        token_file = os.path.join(self.workdir, "emulator-token")
        port_file = os.path.join(self.workdir, "ramp-emulator.port")
        self.ramp_state_file = os.path.join(self.workdir, "ramp-emulator.state")
        emulator = harness.Process(
            [sys.executable, EMULATOR, "--target", "shop/api=ramp:%d,%d,%d,%d,%d,%d" % RAMP,
             "--service-rate", str(SERVICE_RATE), "--base-latency-ms", str(BASE_MS),
             "--startup-s", str(STARTUP_S), "--slo-ms", str(SLO_MS),
             "--apiserver", self.kube.url, "--ca", self.kube.ca_file,
             "--token-file", token_file, "--port-file", port_file,
             "--state-file", self.ramp_state_file, "--duration", "600"],
            name="ramp-emulator", log_dir=self.workdir)
        emulator.start()
        harness.wait_until(lambda: os.path.exists(port_file), 20, "ramp emulator port")
        with open(port_file) as handle:
            target = "127.0.0.1:%d" % int(handle.read())
        self.prom.set_scrape_targets([self.emulator_target, target])
        self.prom.wait_for_series('http_requests_total{namespace="shop",pod=~"api-.*"}', 30)
        return emulator

    def set_users(self, extra):
        """The tokens the fake accepts: the controller's, the emulator's
        (its own user, so the RBAC check sees only controller requests),
        plus `extra` {token: user}."""
        tokens = {self.kube.token: "cpscale", EMULATOR_TOKEN: "emulator"}
        tokens.update(extra)
        self.kube.set_tokens(tokens)

    def set_proxy_fault(self, **fault):
        request = urllib.request.Request(self.proxy_url + "/_fault",
                                         data=json.dumps(fault).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()

    def set_replicas(self, name, replicas):
        """Put a Deployment back to `replicas` (control port: not in the log)."""
        current = self.kube.get("/apis/apps/v1/namespaces/shop/deployments/%s" % name)
        current["spec"]["replicas"] = replicas
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation",
                    "managedFields"):
            current["metadata"].pop(key, None)
        self.kube.seed(current)

    def replicas(self, name):
        return self.kube.get("/apis/apps/v1/namespaces/shop/deployments/%s" % name)["spec"]["replicas"]

    def stop(self):
        for part in (self.proxy, self.emulator):
            if part:
                part.stop()
        if self.prom:
            self.prom.stop()
        if self.kube:
            self.kube.stop()


# ---- scenarios ----------------------------------------------------------------

def scenario_closed_loop(checks, env):
    """Demand ramps from 60 to 600 req/s and back; the controller follows."""
    config = write_config(os.path.join(env.workdir, "loop.yaml"), env.prom.url,
                          [{"namespace": "shop", "deployment": "api", "min": 1,
                            "max": RAMP_MAX_REPLICAS}],
                          interval="%ds" % LOOP_INTERVAL_S,
                          leader={"lease_duration": "6s", "renew_deadline": "4s"})
    seq = last_seq(env)
    ramp_low, ramp_high, hold_low, ramp_up, hold_high, ramp_down = RAMP
    delete_lease(env)
    emulator = env.start_ramp_emulator()
    started = time.time()  # the ramp's clock starts with its emulator
    controller = Controller(env.cpscale, env.workdir, "closed-loop", config,
                            ["--kubeconfig", env.kubeconfig, "--identity", "loop"])
    peak = 1
    timeline = []
    total_s = hold_low + ramp_up + hold_high + ramp_down + AFTER_RAMP_S
    while time.time() - started < total_s:
        try:
            with open(env.ramp_state_file) as handle:
                state = json.load(handle)
        except (OSError, ValueError):
            state = None
        replicas = env.replicas("api")
        peak = max(peak, replicas)
        timeline.append((time.time() - started, replicas, state))
        time.sleep(1)
    # the exported SLO budget counters and the world's figures, both now
    status, metrics = controller.http("/metrics")
    try:
        with open(env.ramp_state_file) as handle:
            world_end = json.load(handle)
    except (OSError, ValueError):
        world_end = None
    code = controller.stop()
    emulator.stop()
    records = env.kube.log(since=seq)
    api_patches = patches(records, "api")
    values = [patched_replicas(r) for r in api_patches]
    checks.check("closed loop: controller exits 0 on SIGTERM", code == 0, "exit %s" % code)
    needed_at_peak = int(-(-ramp_high // RPS_PER_POD))
    checks.check("closed loop: scaled up on the ramp", peak >= needed_at_peak,
                 "peak %d replicas, %d needed for %d req/s" % (peak, needed_at_peak, ramp_high))
    final = env.replicas("api")
    # How far it comes down within AFTER_RAMP_S is the policy's business: it
    # has just learned that this load level can jump 10x within its
    # horizon, and keeps headroom for that (the demand level also decays
    # with a 2-minute time constant). It must come down, not stay at peak.
    downs = [v for v, prev in zip(values[1:], values) if v < prev]
    checks.check("closed loop: scaled back down after it", downs and final < peak,
                 "final %d after peak %d, %d scale-downs" % (final, peak, len(downs)))
    checks.check("closed loop: every PATCH within min/max",
                 values and all(v is not None and 1 <= v <= RAMP_MAX_REPLICAS for v in values),
                 "patched %s" % values)
    ticks = len(tick_lines(controller, "shop/api"))
    checks.check("closed loop: fewer scale events than ticks", 0 < len(values) < ticks,
                 "%d events in %d ticks" % (len(values), ticks))
    # HPA's default scale-up rule (kept by the config): within any 15 s the
    # count may at most grow to max(start + 4, 2 x start).
    ok, worst = True, ""
    # the scale events are the PATCHes the API server applied that changed
    # the count: one answered 409 (the deployment controller's status write
    # in between) and sent again within the tick, or sent again to the same
    # count, is one event, not a turn down and up again (under valgrind the
    # PATCHes read [.., 12, 14, 14, 16, ..], and "14 -> 14" counted as down)
    events = [(r["t"], patched_replicas(r)) for r in api_patches
              if 200 <= (r.get("status") or 0) < 300]
    previous = 1
    history = []
    for t, value in events:
        if value != previous:
            history.append((t, previous, value))
        previous = value
    for t, _, value in history:
        window = [h for h in history if t - 15 < h[0] <= t]
        start = window[0][1]
        if value > start and value > max(start + 4, 2 * start):
            ok, worst = False, "%d -> %d within 15 s" % (start, value)
    checks.check("closed loop: scale-ups within the behavior's limits", ok, worst or
                 "%d events checked" % len(history))
    # No flapping: up the ramp, then down, and no re-raise. As the demand
    # level decays after the ramp it crosses from an octave of levels the
    # policy has learned (128-256 req/s) into one that had a sample or two
    # of its own, whose figures pooled from its neighbours asked for more
    # than the level above did, and the pods went [.., 8, 7, 12, 11] on
    # flat demand (the forecast is now bounded by the octave above's:
    # test_policy_memory's test_forecast_never_falls_as_the_level_rises).
    directions = [1 if b > a else -1 for _, a, b in history]
    runs = [d for i, d in enumerate(directions) if i == 0 or d != directions[i - 1]]
    checks.check("closed loop: no flapping (up the ramp, then down, no re-raise)",
                 runs[:1] == [1] and runs.count(1) == 1,
                 "%d direction changes: %s; counts %s"
                 % (len(runs) - 1, runs, [1] + [b for _, _, b in history]))
    ups = [t for t, a, b in history if b > a and t > started + hold_low]
    if ups:
        print("     first scale-up PATCH %.1f s after the ramp began"
              % (ups[0] - started - hold_low))
    violating = [s for _, _, s in timeline if s]
    if violating:
        last = violating[-1]
        world = (last.get("targets") or {}).get("shop/api") or last
        print("     world (emulator): %s" % json.dumps(
            {k: world.get(k) for k in ("violating_seconds", "violating_requests",
                                       "requests_total", "cost_usd_total")}))
    slo_budget_against_world(checks, controller, metrics if status == 200 else "",
                             started, timeline, world_end)
    clean, report = controller.valgrind_clean()
    checks.check("closed loop: valgrind clean", clean, report)


def metric_sample(text, name, labels):
    """The value of `name{labels}` in a /metrics text, or None."""
    match = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(match.group(1)) if match else None


def world_figures(state):
    world = ((state or {}).get("targets") or {}).get("shop/api") or state or {}
    return world.get("requests_total"), world.get("violating_requests")


def slo_budget_against_world(checks, controller, metrics, started, timeline, world_end):
    """The violating share the controller exported against the one the
    emulator's world measured over the same span: from the controller's
    first tick to the scrape of /metrics at the end. The controller counts
    per tick, by the rate and p95 of the last scrape interval (queries
    budget_qps and budget_p95_ms), while its decisions see 10 s windows;
    the world counts per step of its model, exactly."""
    labels = 'namespace="shop",name="api"'
    requests = metric_sample(metrics, "cpscale_slo_requests_total", labels)
    violating = metric_sample(metrics, "cpscale_slo_violating_requests_total", labels)
    budget = metric_sample(metrics, "cpscale_slo_violation_budget_ratio", labels)
    checks.check("closed loop: /metrics exports the SLO budget counters and the budget",
                 requests is not None and violating is not None and budget == 0.01,
                 "requests %s, violating %s, budget %s" % (requests, violating, budget))
    first = controller.wait_for(lambda r: r.get("msg") == "tick" and r.get("target") == "shop/api",
                                5, "a shop/api tick")[0]
    first_tick = calendar.timegm(time.strptime(first["time"][:19], "%Y-%m-%dT%H:%M:%S"))
    # the world's state when the first tick's requests began (it accounts
    # one interval back), to the emulator's second
    begin = first_tick + float(first["time"][19:-1] or 0) - started - LOOP_INTERVAL_S
    states = [(t, state) for t, _, state in timeline if state]
    start = max((x for x in states if x[0] <= begin), key=lambda x: x[0],
                default=(None, states[0][1] if states else None))[1]
    w0_requests, w0_violating = world_figures(start)
    w1_requests, w1_violating = world_figures(world_end)
    if None in (requests, violating, w0_requests, w1_requests, w0_violating, w1_violating):
        checks.check("closed loop: exported violating share matches the world's", False,
                     "figures missing: world %s..%s" % (start and w0_requests, w1_requests))
        return
    world_violating = w1_violating - w0_violating
    world_share = world_violating / max(w1_requests - w0_requests, 1e-9)
    exported_share = violating / max(requests, 1e-9)
    detail = ("exported %.4f of %.0f requests, world %.4f of %.0f (%+.1f %%); violating "
              "requests exported %.0f, world %.0f"
              % (exported_share, requests, world_share, w1_requests - w0_requests,
                 100.0 * (exported_share / max(world_share, 1e-9) - 1.0), violating,
                 world_violating))
    checks.check("closed loop: the world violated the SLO (the comparison means something)",
                 world_share > 0.05, detail)
    checks.check("closed loop: exported violating share within 10 % of the world's (relative)",
                 abs(exported_share / max(world_share, 1e-9) - 1.0) <= 0.10, detail)


def scenario_prometheus_faults(checks, env):
    """Prometheus down, slow, 500 or garbage: the idle target is never
    scaled down; with Prometheus healthy it is (the control case)."""
    targets = [{"namespace": "shop", "deployment": "idle", "min": 1, "max": 20},
               {"namespace": "shop", "deployment": "ghost", "min": 1, "max": 20}]
    env.kube.seed(deployment("shop", "ghost", 5))
    config = write_config(os.path.join(env.workdir, "faults.yaml"), env.proxy_url, targets)
    cases = [
        ("healthy (control)", {"mode": "pass"}, True),
        ("reset connection", {"mode": "reset"}, False),
        ("slow beyond the timeout", {"mode": "slow", "delay_s": PROM_TIMEOUT_S + 2}, False),
        ("HTTP 500", {"mode": "status", "status": 500}, False),
        ("HTTP 503", {"mode": "status", "status": 503}, False),
        ("garbage body", {"mode": "garbage"}, False),
        ("truncated JSON", {"mode": "garbage", "body": '{"status":"success","data":{"resultType":"vector","result":[{"metric":{}'}, False),
        ("wrong result type", {"mode": "garbage", "body": '{"status":"success","data":{"resultType":"matrix","result":[]}}'}, False),
        ("NaN values", {"mode": "garbage", "body": '{"status":"success","data":{"resultType":"vector","result":[{"metric":{"namespace":"shop","deployment":"idle"},"value":[%d,"NaN"]}]}}' % time.time()}, False),
    ]
    for name, fault, expect_down in cases:
        env.set_replicas("idle", IDLE_START_REPLICAS)
        env.set_proxy_fault(**fault)
        seq = last_seq(env)
        code, controller = run_once(env, "prom-" + name.split()[0], config)
        env.set_proxy_fault(mode="pass")
        idle = patches(env.kube.log(since=seq), "idle")
        ghost = patches(env.kube.log(since=seq), "ghost")
        ticks = tick_lines(controller, "shop/idle")
        reason = ticks[0].get("reason") if ticks else None
        checks.check("prometheus %s: exit 0" % name, code == 0, "exit %s" % code)
        if expect_down:
            checks.check("prometheus %s: scales the idle target down" % name,
                         len(idle) == 1 and patched_replicas(idle[0]) < IDLE_START_REPLICAS,
                         "patches %s" % [patched_replicas(p) for p in idle])
        else:
            checks.check("prometheus %s: no PATCH at all" % name, not idle,
                         "patches %s, reason %s" % ([patched_replicas(p) for p in idle], reason))
            checks.check("prometheus %s: reason names missing metrics" % name,
                         reason in ("missing_metrics_hold", "missing_metrics_fallback"),
                         "reason %s" % reason)
        checks.check("prometheus %s: a target without series is held" % name, not ghost,
                     "ghost patches %s" % [patched_replicas(p) for p in ghost])
        clean, report = controller.valgrind_clean()
        checks.check("prometheus %s: valgrind clean" % name, clean, report)
    # Prometheus really down: nothing listens on the port
    env.set_replicas("idle", IDLE_START_REPLICAS)
    closed = harness.free_port()
    config_down = write_config(os.path.join(env.workdir, "down.yaml"),
                               "http://127.0.0.1:%d" % closed, targets)
    seq = last_seq(env)
    code, controller = run_once(env, "prom-down", config_down)
    checks.check("prometheus down: exit 0 and no PATCH",
                 code == 0 and not patches(env.kube.log(since=seq)), "exit %s" % code)
    errors = [r for r in controller.lines() if r.get("msg") == "query failed"]
    checks.check("prometheus down: every query failure logged",
                 len(errors) == QUERIES_PER_TICK,
                 "%d failures logged" % len(errors))


def scenario_staleness(checks, env):
    """max_staleness is deprecated: loading it warns at
    its file:line:col. Stale data is still never decided on: when the real
    Prometheus stops scraping, the series leave the instant queries (the
    staleness markers, the rate window) and the metrics go missing."""
    targets = [{"namespace": "shop", "deployment": "idle", "min": 1, "max": 20}]
    path = write_config(os.path.join(env.workdir, "staleness.yaml"), env.prom.url, targets)
    with open(path) as handle:
        text = handle.read()
    text = text.replace("prometheus:\n", "prometheus:\n  max_staleness: 30s\n", 1)
    with open(path, "w") as handle:
        handle.write(text)
    scraped = list(env.prom.scrape_targets)
    controller = Controller(env.cpscale, env.workdir, "staleness", path,
                            ["--kubeconfig", env.kubeconfig, "--dry-run"])
    try:
        warned = controller.wait_for(lambda r: r.get("msg") == "deprecated config key", 20,
                                     "the deprecation warning")
        checks.check("staleness: max_staleness warns at file:line:col",
                     "%s:4:18: prometheus.max_staleness is deprecated" % path
                     in str(warned[0].get("error")), str(warned[0].get("error")))
        fresh = controller.wait_for(
            lambda r: r.get("msg") == "tick" and r.get("target") == "shop/idle"
            and not str(r.get("reason", "")).startswith("missing"), 30, "a tick on fresh data")
        checks.check("staleness: fresh data is decided on", fresh,
                     "reason %s" % fresh[0].get("reason"))
        stopped = time.time()
        env.prom.set_scrape_targets([])
        seen = len(controller.lines())

        def missing(r):
            return (r.get("msg") == "tick" and r.get("target") == "shop/idle"
                    and str(r.get("reason", "")).startswith("missing_metrics"))
        deadline = stopped + 60 * TIME_FACTOR
        while time.time() < deadline and not any(missing(r) for r in controller.lines()[seen:]):
            time.sleep(0.2)
        elapsed = time.time() - stopped
        limit = 30 * TIME_FACTOR  # the 10 s rate window, a scrape, a tick, load
        checks.check("staleness: scrape stopped -> metrics missing within %gs" % limit,
                     any(missing(r) for r in controller.lines()[seen:]) and elapsed <= limit,
                     "after %.1fs" % elapsed)
    finally:
        env.prom.set_scrape_targets(scraped)
        controller.stop()
    env.prom.wait_for_series(
        'sum(rate(http_requests_total{namespace="shop"}[%s]))' % SHORT_WINDOW, 60)
    time.sleep(11)


def scenario_queries_per_tick(checks, env):
    """Queries per tick do not grow with targets: one per metric."""
    targets = [{"namespace": "shop", "deployment": "idle"}] + \
              [{"namespace": "shop", "deployment": "extra-%d" % i} for i in range(20)]
    for i in range(20):
        env.kube.seed(deployment("shop", "extra-%d" % i, 1))
    config = write_config(os.path.join(env.workdir, "many.yaml"), env.proxy_url, targets)
    before = 0  # the proxy writes its log from the first query on
    if os.path.exists(env.proxy_log):
        with open(env.proxy_log) as handle:
            before = sum(1 for _ in handle)
    code, _ = run_once(env, "many-targets", config)
    with open(env.proxy_log) as handle:
        after = sum(1 for _ in handle)
    checks.check("21 targets: exit 0", code == 0, "exit %s" % code)
    checks.check("21 targets: %d Prometheus queries in the tick" % QUERIES_PER_TICK,
                 after - before == QUERIES_PER_TICK,
                 "%d queries" % (after - before))


def scenario_apiserver_faults(checks, env):
    """401, 403, 409, 429, 500 and a timeout from the API server."""
    # no scale-down window: a long-running controller's first tick already
    # tries to scale down, as a --once one does
    targets = [{"namespace": "shop", "deployment": "idle", "min": 1, "max": 20,
                "extra": ["behavior: {scaleDown: {stabilizationWindowSeconds: 0}}"]}]
    config = write_config(os.path.join(env.workdir, "kube-faults.yaml"), env.prom.url, targets)
    cases = [
        # (name, fault, expect: "no_patch" | "one_patch_failed" | "one_patch")
        ("401 on GET scale", {"verb": "get", "subresource": "scale", "status": 401}, "no_patch"),
        ("403 on GET scale", {"verb": "get", "subresource": "scale", "status": 403}, "no_patch"),
        ("500 on GET scale", {"verb": "get", "subresource": "scale", "status": 500}, "no_patch"),
        ("timeout on GET scale", {"verb": "get", "subresource": "scale",
                                  "delay_s": KUBE_TIMEOUT_S + 3}, "no_patch"),
        ("403 on PATCH", {"verb": "patch", "subresource": "scale", "status": 403}, "one_patch_failed"),
        ("409 on PATCH", {"verb": "patch", "subresource": "scale", "status": 409}, "two_patches_conflict"),
        ("500 on GET deployment", {"verb": "get", "resource": "deployments", "subresource": "",
                                   "status": 500}, "one_patch_ready_missing"),
    ]
    for name, fault, expect in cases:
        env.set_replicas("idle", IDLE_START_REPLICAS)
        env.kube.clear_faults()
        env.kube.add_fault(namespace="shop", name="idle", **fault)
        seq = last_seq(env)
        # --once ticks before the watch cache is filled, so reads are GETs;
        # --watch=false makes that explicit
        code, controller = run_once(env, "kube-" + name.replace(" ", "-"), config,
                                    ["--kube-timeout", "%gs" % KUBE_TIMEOUT_S, "--watch=false"])
        env.kube.clear_faults()
        sent = patches(env.kube.log(since=seq), "idle")
        ticks = tick_lines(controller, "shop/idle")
        action = ticks[0].get("action") if ticks else None
        checks.check("apiserver %s: exit 0" % name, code == 0, "exit %s" % code)
        if expect == "no_patch":
            checks.check("apiserver %s: no PATCH without a read" % name,
                         not sent and action == "no_read", "%d patches, action %s"
                         % (len(sent), action))
        elif expect == "two_patches_conflict":
            # a 409 is re-read and retried once within the tick, never more
            checks.check("apiserver %s: retried once in the tick, then waits" % name,
                         len(sent) == 2 and env.replicas("idle") == IDLE_START_REPLICAS
                         and action == "conflict",
                         "%d patches, action %s" % (len(sent), action))
        elif expect == "one_patch_failed":
            checks.check("apiserver %s: one PATCH, not retried in the tick" % name,
                         len(sent) == 1 and env.replicas("idle") == IDLE_START_REPLICAS
                         and action in ("failed", "conflict"),
                         "%d patches, action %s" % (len(sent), action))
        else:
            # the ready count is missing: never a scale-down
            checks.check("apiserver %s: no scale-down without the ready count" % name,
                         not sent and ticks and ticks[0].get("reason", "").startswith("missing"),
                         "%d patches, reason %s" % (len(sent), ticks and ticks[0].get("reason")))
        clean, report = controller.valgrind_clean()
        checks.check("apiserver %s: valgrind clean" % name, clean, report)

    # 429 with Retry-After: the target is left alone for that long
    env.set_replicas("idle", IDLE_START_REPLICAS)
    env.kube.add_fault(namespace="shop", name="idle", verb="get", subresource="scale",
                       status=429, retry_after=4, count=1)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "kube-429", config,
                            ["--kubeconfig", env.kubeconfig, "--watch=false"])

    def scale_reads():
        return [r for r in env.kube.log(since=seq) if r.get("verb") == "get"
                and r.get("subresource") == "scale" and r.get("name") == "idle"]

    def read_again_and_patched():
        """A read after the 429 (its gap is then settled) and a PATCH."""
        reads = scale_reads()
        first = next((r for r in reads if r.get("status") == 429), None)
        return (first is not None and any(r["t"] > first["t"] for r in reads)
                and len(patches(env.kube.log(since=seq), "idle")) >= 1)
    poll(read_again_and_patched, 8)
    code = controller.stop()
    env.kube.clear_faults()
    reads = scale_reads()
    first_429 = next((r for r in reads if r.get("status") == 429), None)
    after = [r for r in reads if first_429 and r["t"] > first_429["t"]]
    gap = after[0]["t"] - first_429["t"] if after else None
    checks.check("apiserver 429: Retry-After honoured before the next read",
                 first_429 is not None and gap is not None and gap >= 3.9,
                 "next read %.2f s later" % gap if gap is not None else "no later read")
    checks.check("apiserver 429: the controller carries on", code == 0 and
                 len(patches(env.kube.log(since=seq), "idle")) >= 1, "exit %s" % code)

    # 500 on every PATCH: backoff with jitter, fewer attempts than ticks
    env.set_replicas("idle", IDLE_START_REPLICAS)
    env.kube.add_fault(namespace="shop", name="idle", verb="patch", subresource="scale",
                       status=500)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "kube-500-backoff", config,
                            ["--kubeconfig", env.kubeconfig])
    time.sleep(10 * TIME_FACTOR)
    code = controller.stop()
    env.kube.clear_faults()
    attempts = patches(env.kube.log(since=seq), "idle")
    ticks = len(tick_lines(controller, "shop/idle"))
    gaps = [b["t"] - a["t"] for a, b in zip(attempts, attempts[1:])]
    growing = len(gaps) >= 2 and gaps[-1] > gaps[0]
    checks.check("apiserver 500 on PATCH: backs off (fewer attempts than ticks, growing gaps)",
                 code == 0 and 1 <= len(attempts) < ticks and growing,
                 "%d attempts in %d ticks, gaps %s" % (len(attempts), ticks,
                                                      ["%.1f" % g for g in gaps]))
    events = [r for r in env.kube.log(since=seq)
              if r.get("resource") == "events" and r.get("verb") == "create"]
    failed_events = [e for e in events if (e.get("body") or {}).get("reason") == "FailedRescale"]
    checks.check("apiserver 500 on PATCH: FailedRescale events posted", len(failed_events) >= 1,
                 "%d events" % len(failed_events))


def scenario_events_and_patch_shape(checks, env):
    """A successful rescale: the PATCH is a merge patch with the read
    resourceVersion, and a SuccessfulRescale event follows."""
    env.set_replicas("idle", IDLE_START_REPLICAS)
    targets = [{"namespace": "shop", "deployment": "idle", "min": 1, "max": 20}]
    config = write_config(os.path.join(env.workdir, "shape.yaml"), env.prom.url, targets)
    seq = last_seq(env)
    code, controller = run_once(env, "patch-shape", config)
    records = env.kube.log(since=seq)
    reads = [r for r in records if r.get("verb") == "get" and r.get("subresource") == "scale"]
    sent = patches(records, "idle")
    ok = (code == 0 and len(sent) == 1 and
          sent[0].get("content_type", "").startswith("application/merge-patch+json"))
    body = sent[0].get("body") if sent else {}
    checks.check("PATCH is a merge patch of spec.replicas", ok and "spec" in (body or {}),
                 json.dumps(body))
    # the resourceVersion sent is the one the fake had when it was read
    rv_sent = ((body or {}).get("metadata") or {}).get("resourceVersion")
    # the fake refuses a stale resourceVersion with 409, so a 200 means the
    # controller sent the object's current one
    checks.check("PATCH carries the current resourceVersion as a precondition",
                 bool(rv_sent) and sent and sent[0].get("status") == 200,
                 "resourceVersion %s, answer %s" % (rv_sent, sent and sent[0].get("status")))
    events = [r for r in records if r.get("resource") == "events" and r.get("verb") == "create"]
    event = events[0].get("body") if events else {}
    note = (event or {}).get("note", "")
    checks.check("SuccessfulRescale event on the Deployment",
                 event and event.get("reason") == "SuccessfulRescale"
                 and (event.get("regarding") or {}).get("name") == "idle"
                 and note.startswith("%d\u2192%d" % (IDLE_START_REPLICAS, patched_replicas(sent[0])))
                 if sent else False, note)
    # the note names the reason and the mechanism that bound the count, as
    # the tick's log line does
    ticks = tick_lines(controller, "shop/idle")
    bound = ticks[0].get("bound") if ticks else None
    checks.check("the tick's log line names the mechanism that bound the count",
                 bound in BOUNDS, "bound %r" % bound)
    checks.check("the Event's note names the reason and that mechanism",
                 bool(ticks) and note.endswith(": %s, bound by %s" % (ticks[0].get("reason"), bound)),
                 note)
    uid = env.kube.get("/apis/apps/v1/namespaces/shop/deployments/idle")["metadata"]["uid"]
    checks.check("the Event's regarding.uid is the Deployment's",
                 ((event or {}).get("regarding") or {}).get("uid") == uid,
                 "regarding %s, uid %s" % (json.dumps((event or {}).get("regarding")), uid))
    described = kubectl_describe(env, "idle")
    if described is None:
        print("skip kubectl describe: kubectl not found")
    else:
        # kubectl describe selects Events by involvedObject.uid: without
        # regarding.uid it shows "Events: <none>"
        events_part = described.split("\nEvents:", 1)[-1]
        checks.check("kubectl describe deployment shows the controller's Event",
                     "SuccessfulRescale" in events_part and "cpscale.io/controller" in events_part,
                     events_part.strip()[-600:])


def kubectl_describe(env, name):
    """`kubectl describe deployment NAME` against the fake, as an
    administrator (its requests are not the controller's): stdout and
    stderr, or None without kubectl."""
    import subprocess
    if not shutil.which("kubectl"):
        return None
    env.set_users({ADMIN_TOKEN: "admin"})
    admin_kubeconfig = os.path.join(env.workdir, "kubeconfig-describe")
    with open(env.kubeconfig) as handle:
        text = handle.read()
    with open(admin_kubeconfig, "w") as handle:
        handle.write(text.replace(json.dumps(env.kube.token), json.dumps(ADMIN_TOKEN)))
    try:
        done = subprocess.run(["kubectl", "--kubeconfig", admin_kubeconfig, "describe",
                               "deployment", "-n", "shop", name],
                              capture_output=True, text=True, timeout=60)
    finally:
        env.set_users({})
    return done.stdout + done.stderr


def scenario_conflict_retry(checks, env):
    """A write to the Deployment between the read and the PATCH (the
    deployment controller's status update): the PATCH meets 409, the
    controller re-reads within the tick and PATCHes once more with the
    fresh resourceVersion; a second 409 waits for the next tick."""
    env.set_replicas("idle", IDLE_START_REPLICAS)
    targets = [{"namespace": "shop", "deployment": "idle", "min": 1, "max": 20}]
    config = write_config(os.path.join(env.workdir, "conflict.yaml"), env.prom.url, targets)
    env.kube.add_fault(namespace="shop", name="idle", verb="patch", subresource="scale",
                       status_write=True, count=1)
    seq = last_seq(env)
    code, controller = run_once(env, "conflict-retry", config, ["--watch=false"])
    env.kube.clear_faults()
    records = env.kube.log(since=seq)
    sent = patches(records, "idle")
    statuses = [r.get("status") for r in sent]
    rvs = [((r.get("body") or {}).get("metadata") or {}).get("resourceVersion") for r in sent]
    rereads = [r for r in records if r.get("verb") == "get" and r.get("subresource") == "scale"
               and r.get("name") == "idle" and sent and r["t"] > sent[0]["t"]]
    ticks = tick_lines(controller, "shop/idle")
    checks.check("conflict: 409, a re-read, then a successful PATCH in the same tick",
                 code == 0 and statuses == [409, 200] and len(rereads) == 1 and len(ticks) == 1
                 and ticks[0].get("action") == "patched",
                 "exit %s, PATCH answers %s, %d re-reads, %d ticks, action %s"
                 % (code, statuses, len(rereads), len(ticks), ticks and ticks[0].get("action")))
    current_rv = env.kube.get("/apis/apps/v1/namespaces/shop/deployments/idle")["metadata"][
        "resourceVersion"]
    checks.check("conflict: the retry carries the fresh resourceVersion",
                 len(rvs) == 2 and rvs[0] != rvs[1] and rvs[1] is not None
                 and int(rvs[1]) < int(current_rv) and env.replicas("idle") != IDLE_START_REPLICAS,
                 "resourceVersions sent %s, now %s" % (rvs, current_rv))
    clean, report = controller.valgrind_clean()
    checks.check("conflict: valgrind clean", clean, report)

    # with the watch cache: the status write reaches the cache too, and the
    # retry reads the fresh count from it (or GETs it when the watch event
    # has not arrived before the 409), still within the tick
    env.set_replicas("idle", IDLE_START_REPLICAS)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "conflict-watch", config,
                            ["--kubeconfig", env.kubeconfig])
    env.kube.add_fault(namespace="shop", name="idle", verb="patch", subresource="scale",
                       status_write=True, count=1)
    try:
        controller.wait_for(lambda r: r.get("msg") == "tick" and r.get("target") == "shop/idle"
                            and r.get("action") == "patched", 20, "a patched tick")
    except AssertionError:
        pass
    code = controller.stop()
    env.kube.clear_faults()
    sent = patches(env.kube.log(since=seq), "idle")
    statuses = [r.get("status") for r in sent]
    gap = sent[1]["t"] - sent[0]["t"] if len(sent) >= 2 else None
    checks.check("conflict (watch cache): 409 then a successful PATCH within the interval",
                 code == 0 and statuses[:2] == [409, 200] and gap is not None
                 and gap < 1.0 * TIME_FACTOR,
                 "PATCH answers %s, %s s apart" % (statuses, gap))
    clean, report = controller.valgrind_clean()
    checks.check("conflict (watch cache): valgrind clean", clean, report)

    # the fake can also act as the deployment controller does on a real
    # cluster: rewrite status right after every scale (a new resourceVersion)
    with kubefake.FakeApiserver(extra_args=["--status-after-scale"]) as kube:
        kube.seed(namespace_object("shop"))
        kube.seed(deployment("shop", "web", 2))
        path = "/apis/apps/v1/namespaces/shop/deployments/web"
        rv = kube.get(path)["metadata"]["resourceVersion"]
        code1, _, scale = kube.request("PATCH", path + "/scale",
                                       {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 3}},
                                       content_type="application/merge-patch+json")
        scaled_rv = (scale or {}).get("metadata", {}).get("resourceVersion")
        time.sleep(0.5)
        after = kube.get(path)
        code2, _, _ = kube.request("PATCH", path + "/scale",
                                   {"metadata": {"resourceVersion": scaled_rv},
                                    "spec": {"replicas": 4}},
                                   content_type="application/merge-patch+json")
        checks.check("fake --status-after-scale: a status write follows each scale",
                     code1 == 200 and int(after["metadata"]["resourceVersion"]) > int(scaled_rv)
                     and after["status"].get("observedGeneration") == after["metadata"]["generation"]
                     and code2 == 409,
                     "scale %s at rv %s, now rv %s, PATCH with the scale's rv: %s"
                     % (code1, scaled_rv, after["metadata"]["resourceVersion"], code2))


def scenario_event_spam(checks, env):
    """A PATCH that keeps failing (403) for 10 s: one Event whose series
    counts the repeats, not one Event per tick. No scale-down window, so
    that the first tick already tries to scale down."""
    env.set_replicas("idle", IDLE_START_REPLICAS)
    targets = [{"namespace": "shop", "deployment": "idle", "min": 1, "max": 20,
                "extra": ["behavior: {scaleDown: {stabilizationWindowSeconds: 0}}"]}]
    config = write_config(os.path.join(env.workdir, "event-spam.yaml"), env.prom.url, targets)
    env.kube.add_fault(namespace="shop", name="idle", verb="patch", subresource="scale",
                       status=403)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "event-spam", config,
                            ["--kubeconfig", env.kubeconfig])
    time.sleep(10 * TIME_FACTOR)
    code = controller.stop()
    env.kube.clear_faults()
    records = env.kube.log(since=seq)
    attempts = patches(records, "idle")
    writes = [r for r in records if r.get("resource") == "events"
              and r.get("verb") in ("create", "patch", "update")]
    created = [r for r in writes if r.get("verb") == "create" and r.get("status") == 201]
    name = ((created[0].get("body") or {}).get("metadata") or {}).get("name") if created else None
    stored = env.kube.get("/apis/events.k8s.io/v1/namespaces/shop/events/%s" % name) if name else None
    series = (stored or {}).get("series") or {}
    checks.check("event spam: persistent 403 gives at most 2 Event writes",
                 code == 0 and len(attempts) >= 5 and 1 <= len(writes) <= 2,
                 "%d failed PATCHes, %d Event writes (%s)"
                 % (len(attempts), len(writes), [r.get("verb") for r in writes]))
    checks.check("event spam: the Event's series records the repeats",
                 len(created) == 1 and series.get("count", 0) >= 2
                 and bool(series.get("lastObservedTime")),
                 "series %s" % json.dumps(series))
    clean, report = controller.valgrind_clean()
    checks.check("event spam: valgrind clean", clean, report)


def scenario_watch(checks, env):
    """LIST+WATCH: after the first LIST no per-tick GETs; a change made
    behind the controller's back shows up in the next tick; a compacted
    history (410 Gone) leads to a new LIST; a broken watch falls back to
    GETs instead of trusting an old cache."""
    env.set_replicas("idle", IDLE_START_REPLICAS)
    targets = [{"namespace": "shop", "deployment": "idle", "max": 20}]
    config = write_config(os.path.join(env.workdir, "watch.yaml"), env.prom.url, targets)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "watch", config,
                            ["--kubeconfig", env.kubeconfig, "--dry-run", "--watch-timeout", "2s"])
    time.sleep(4 * TIME_FACTOR)
    records = env.kube.log(since=seq)
    lists = [r for r in records if r.get("verb") == "list" and r.get("resource") == "deployments"]
    watches = [r for r in records if r.get("verb") == "watch" and r.get("resource") == "deployments"]
    # (the emulator GETs the Deployment itself; the controller's reads of
    # the scale subresource are what a cache replaces)
    later_gets = [r for r in records if r.get("verb") == "get" and r.get("name") == "idle"
                  and r.get("subresource") == "scale" and lists and r["t"] > lists[0]["t"] + 1.0]
    checks.check("watch: one LIST then a WATCH of the namespace",
                 len(lists) == 1 and len(watches) >= 1 and lists[0].get("namespace") == "shop",
                 "%d lists, %d watches" % (len(lists), len(watches)))
    checks.check("watch: no per-target GETs once the cache is filled", not later_gets,
                 "%d GETs after the list" % len(later_gets))
    env.set_replicas("idle", 13)
    poll(lambda: [r.get("current") for r in tick_lines(controller, "shop/idle")][-1:] == [13],
         2.5)
    current = [r.get("current") for r in tick_lines(controller, "shop/idle")][-1:]
    checks.check("watch: a change made elsewhere reaches the next tick", current == [13],
                 "current %s" % current)
    # the next watch (they are reopened every 2 s) is answered 410 Gone, as
    # a server answers a resourceVersion it has compacted away: exactly one
    # re-list (after a short backoff), then watching goes on (a storm of
    # re-lists, or none, fails)
    seq = last_seq(env)
    env.kube.add_fault(verb="watch", resource="deployments", count=1, status=410)
    time.sleep(5 * TIME_FACTOR)
    relists = [r for r in env.kube.log(since=seq) if r.get("verb") == "list"]
    status, metrics = controller.http("/metrics")
    checks.check("watch: one 410 Gone leads to exactly one new LIST",
                 len(relists) == 1 and 'cpscale_watch_relists_total{reason="gone"} 1' in metrics,
                 "%d re-lists" % len(relists))
    # a broken watch: every watch and list fails; ticks go back to GETs
    env.kube.add_fault(verb=["watch", "list"], resource="deployments", status=500)
    seq = last_seq(env)

    def scale_gets():
        return [r for r in env.kube.log(since=seq) if r.get("verb") == "get"
                and r.get("subresource") == "scale" and r.get("name") == "idle"]
    poll(lambda: len(scale_gets()) >= 2, 9)
    gets = scale_gets()
    checks.check("watch: a broken watch falls back to GETs", len(gets) >= 2,
                 "%d GETs of the scale" % len(gets))
    env.kube.clear_faults()
    code = controller.stop()
    checks.check("watch: exit 0", code == 0, "exit %s" % code)
    clean, report = controller.valgrind_clean()
    checks.check("watch: valgrind clean", clean, report)


def lists_per_minute(records, begin, end):
    """LISTs of Deployments per minute in the request log between two times."""
    lists = [r for r in records if r.get("verb") == "list" and r.get("resource") == "deployments"
             and begin <= r["t"] <= end]
    return len(lists) * 60.0 / max(end - begin, 1e-3), len(lists)


def scenario_watch_storm(checks, env):
    """every watch answers 410 Gone (and, in a second phase, every
    watch ends at once with 200). The controller re-lists with a backoff
    (client-go's reflector: 1 s doubling to 30 s), logs each re-list with
    its reason and counts it; it used to send ~2,500 LIST+WATCH pairs a
    second."""
    env.set_replicas("idle", IDLE_START_REPLICAS)
    targets = [{"namespace": "shop", "deployment": "idle", "max": 20}]
    config = write_config(os.path.join(env.workdir, "watch-storm.yaml"), env.prom.url, targets)

    def start_controller(name):
        # watches end every 2 s, so the next one meets the fault at once
        started = Controller(env.cpscale, env.workdir, name, config,
                             ["--kubeconfig", env.kubeconfig, "--dry-run", "--watch-timeout", "2s"])
        started.wait_for(lambda r: r.get("msg") == "tick", 15, "a first tick")
        return started

    controller = start_controller("watch-storm")
    seq = last_seq(env)
    begin = time.time()
    env.kube.add_fault(verb="watch", resource="deployments", status=410)
    time.sleep(30)
    end = time.time()
    env.kube.clear_faults()
    per_minute, n = lists_per_minute(env.kube.log(since=seq), begin, end)
    # backoff 1+2+4+8+16 s (x jitter up to 1.5): at most ~6 in 30 s; allow 12
    checks.check("watch-storm: a persistent 410 gets re-lists with a backoff",
                 2 <= n <= 12, "%d LISTs in %.0f s (%.1f per minute)" % (n, end - begin, per_minute))
    logged = [r for r in controller.lines() if r.get("msg") == "listing again after a wait"
              and r.get("reason") == "gone"]
    status, metrics = controller.http("/metrics")
    counted = [line for line in metrics.splitlines()
               if line.startswith('cpscale_watch_relists_total{reason="gone"}')]
    checks.check("watch-storm: each re-list is logged with its reason and counted",
                 len(logged) >= max(n - 1, 1) and counted
                 and int(float(counted[0].split()[-1])) >= max(n - 1, 1),
                 "%d log lines, %s" % (len(logged), counted))
    code = controller.stop()
    checks.check("watch-storm: exit 0", code == 0, "exit %s" % code)
    clean, report = controller.valgrind_clean()
    checks.check("watch-storm: valgrind clean", clean, report)
    # every watch now ends at once with 200 (a proxy that closes it); a
    # fresh controller, so that the backoff the 410s left (up to 45 s)
    # cannot hide the reopening from this window
    controller = start_controller("watch-storm-200")
    seq = last_seq(env)
    begin = time.time()
    env.kube.add_fault(verb="watch", resource="deployments", status=200)
    time.sleep(15)
    end = time.time()
    env.kube.clear_faults()
    watches = [r for r in env.kube.log(since=seq) if r.get("verb") == "watch"
               and begin <= r["t"] <= end]
    # backoff 1+2+4+8 s (x jitter up to 1.5): about 4 in 15 s; the old code
    # reopened them 100 a second
    checks.check("watch-storm: watches that end at once are reopened with a backoff",
                 1 <= len(watches) <= 12, "%d WATCHes in %.0f s" % (len(watches), end - begin))
    code = controller.stop()
    checks.check("watch-storm: exit 0 (second controller)", code == 0, "exit %s" % code)
    clean, report = controller.valgrind_clean()
    checks.check("watch-storm: valgrind clean (second controller)", clean, report)


def scenario_watch_silent(checks, env):
    """a watch held open without a byte while the real replicas
    change. After --watch-progress-timeout the controller closes it, reads
    the target with GETs and re-lists: a tick reads the true count (it used
    to read the old one until --watch-timeout + 30 s)."""
    env.set_replicas("idle", IDLE_START_REPLICAS)
    env.kube.watch_settings(bookmarks="none")
    targets = [{"namespace": "shop", "deployment": "idle", "max": 20}]
    config = write_config(os.path.join(env.workdir, "watch-silent.yaml"), env.prom.url, targets)
    # the first watch is silent from its first byte on (the LIST is not)
    env.kube.add_fault(verb="watch", resource="deployments", silent=True, count=1)
    controller = Controller(env.cpscale, env.workdir, "watch-silent", config,
                            ["--kubeconfig", env.kubeconfig, "--dry-run", "--watch-timeout", "60s",
                             "--watch-progress-timeout", "3s"])
    try:
        controller.wait_for(lambda r: r.get("msg") == "tick" and r.get("current") == IDLE_START_REPLICAS,
                            15, "a tick reading the listed count")
        env.set_replicas("idle", 13)
        changed = time.time()
        found = None
        while time.time() < changed + 15 * TIME_FACTOR and not found:
            found = [r for r in tick_lines(controller, "shop/idle") if r.get("current") == 13]
            time.sleep(0.2)
        checks.check("watch-silent: a silent watch is given up; the true count is read",
                     bool(found), "current %s after %.0f s" % (
                         [r.get("current") for r in tick_lines(controller, "shop/idle")][-1:],
                         time.time() - changed))
        logged = [r for r in controller.lines() if r.get("msg") == "listing again after a wait"
                  and r.get("reason") == "no_progress"]
        checks.check("watch-silent: the re-list is logged as no_progress", bool(logged),
                     "%d lines" % len(logged))
    finally:
        env.kube.watch_settings(bookmarks="real")
        code = controller.stop()
    checks.check("watch-silent: exit 0", code == 0, "exit %s" % code)
    clean, report = controller.valgrind_clean()
    checks.check("watch-silent: valgrind clean", clean, report)


def scenario_watch_bookmarks(checks, env):
    """Real-shaped bookmarks (no name, spec.replicas 0) every 0.3 s: only
    their resourceVersion counts. No target reads 0 or "not found", no
    bookmark is taken for a bad event (no re-list), and the cache stays in
    use."""
    env.set_replicas("idle", IDLE_START_REPLICAS)
    env.kube.watch_settings(bookmarks="real", bookmark_interval_s=0.3)
    targets = [{"namespace": "shop", "deployment": "idle", "max": 20}]
    config = write_config(os.path.join(env.workdir, "watch-bookmarks.yaml"), env.prom.url, targets)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "watch-bookmarks", config,
                            ["--kubeconfig", env.kubeconfig, "--dry-run", "--watch-timeout", "60s",
                             "--watch-progress-timeout", "2s"])
    try:
        time.sleep(8 * TIME_FACTOR)
        ticks = tick_lines(controller, "shop/idle")
        currents = sorted(set(r["current"] for r in ticks if "current" in r))
        lists = [r for r in env.kube.log(since=seq) if r.get("verb") == "list"]
        status, metrics = controller.http("/metrics")
        checks.check("watch-bookmarks: bookmarks never change a target's count",
                     len(ticks) >= 3 and currents == [IDLE_START_REPLICAS]
                     and not [r for r in ticks if r.get("error")],
                     "%d ticks, currents %s" % (len(ticks), currents))
        checks.check("watch-bookmarks: bookmarks keep the watch alive (one LIST, cache in use)",
                     len(lists) == 1 and "cpscale_targets_read_from_watch 1" in metrics,
                     "%d LISTs" % len(lists))
    finally:
        env.kube.watch_settings(bookmarks="real", bookmark_interval_s=5.0)
        code = controller.stop()
    checks.check("watch-bookmarks: exit 0", code == 0, "exit %s" % code)
    clean, report = controller.valgrind_clean()
    checks.check("watch-bookmarks: valgrind clean", clean, report)


def scenario_leases(checks, env):
    """Two controllers at once: one patches. The leader loses the lease
    (its updates fail): no PATCH after its renew deadline."""
    env.set_users({"token-b": "cpscale-b"})
    kubeconfig_b = os.path.join(env.workdir, "kubeconfig-b")
    with open(env.kubeconfig) as handle:
        text = handle.read()
    with open(kubeconfig_b, "w") as handle:
        handle.write(text.replace(json.dumps(env.kube.token), json.dumps("token-b")))
    targets = [{"namespace": "shop", "deployment": "idle", "min": 1, "max": 20}]
    leader = {"lease_duration": "4s", "renew_deadline": "3s", "retry_period": "1s"}
    config = write_config(os.path.join(env.workdir, "lease.yaml"), env.prom.url, targets,
                          leader=leader)
    delete_lease(env)
    seq = last_seq(env)
    a = Controller(env.cpscale, env.workdir, "lease-a", config,
                   ["--kubeconfig", env.kubeconfig, "--identity", "replica-a"])
    b = Controller(env.cpscale, env.workdir, "lease-b", config,
                   ["--kubeconfig", kubeconfig_b, "--identity", "replica-b"])
    for _ in range(8):
        env.set_replicas("idle", IDLE_START_REPLICAS)  # give both a reason to act
        time.sleep(1 * TIME_FACTOR)
    records = env.kube.log(since=seq)
    users = {r["user"] for r in patches(records, "idle")}
    lease = env.kube.get(LEASE_PATH)
    holder = (lease or {}).get("spec", {}).get("holderIdentity")
    checks.check("two controllers: exactly one of them patches", len(users) == 1,
                 "patching users %s, holder %s" % (sorted(users), holder))
    leader_user = next(iter(users)) if users else "cpscale"
    # Whichever replica won, stop the other one and cut the winner off its
    # Lease (the check used to stop B even when B was the leader, so the
    # fault then hit nobody and the scenario passed without testing).
    leader_proc, standby = (a, b) if leader_user == "cpscale" else (b, a)
    standby_code = standby.stop()
    # Now the leader's lease writes and reads fail from here on.
    env.kube.add_fault(resource="leases", user=leader_user, status=500)
    cut = time.time()
    for _ in range(8):
        env.set_replicas("idle", IDLE_START_REPLICAS)
        time.sleep(1 * TIME_FACTOR)
    records = env.kube.log(since=seq)
    renewals = [r for r in records if r.get("resource") == "leases" and r.get("verb") == "update"
                and r.get("user") == leader_user and r.get("status") == 200]
    last_renew = max((r["t"] for r in renewals if r["t"] <= cut + 0.5), default=cut)
    leader_patches = patches(records, "idle", leader_user)
    before_cut = [r for r in leader_patches if cut - 4 < r["t"] <= cut]
    checks.check("lease lost: the leader was patching right before the cut", bool(before_cut),
                 "%d patches in the 4 s before" % len(before_cut))
    late = [r for r in leader_patches if r["t"] > last_renew + 3.0]
    checks.check("lease lost: no PATCH after the renew deadline", not late,
                 "%d late patches; %d renewals, the last %.1f s before the cut"
                 % (len(late), len(renewals), cut - last_renew))
    failed_attempts = [r for r in records if r.get("resource") == "leases"
                       and r.get("user") == leader_user and r["t"] > cut and r.get("fault")]
    checks.check("lease lost: the fault hit the leader's Lease requests", bool(failed_attempts),
                 "%d faulted Lease requests from %s" % (len(failed_attempts), leader_user))
    # read before stop: shutting down also logs "stopped leading"
    stepped_down = [r for r in leader_proc.lines() if r.get("msg") == "stopped leading"
                    and "renew deadline" in r.get("why", "")]
    warned = [r for r in leader_proc.lines() if r.get("msg") == "lease attempt failed"
              and r.get("level") in ("warn", "WARN", "warning")]
    env.kube.clear_faults()
    leader_code = leader_proc.stop()
    checks.check("two controllers: both exit 0", leader_code == 0 and standby_code == 0,
                 "exit %s and %s" % (leader_code, standby_code))
    for proc in (a, b):
        clean, report = proc.valgrind_clean()
        checks.check("%s: valgrind clean" % proc.name, clean, report)
    checks.check("lease lost: the leader logs that it stopped leading (renew deadline)",
                 bool(stepped_down), "leader %s" % leader_proc.name)
    checks.check("lease lost: failed Lease attempts are logged at WARN", bool(warned))
    env.set_users({})


def scenario_first_decision(checks, env):
    """A controller that starts on a target with more pods than it needs
    (a start, or a restart: the history is gone) holds the count for the
    scale-down window before it scales down, as Kubernetes' HPA does with
    its initial recommendation, where the first decision used to drop the
    count at once. The test config's window is 6 s, the interval 1 s."""
    config = write_config(os.path.join(env.workdir, "first-decision.yaml"), env.prom.url,
                          [{"namespace": "shop", "deployment": "idle", "max": 20}])
    env.set_replicas("idle", IDLE_START_REPLICAS)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "first-decision", config,
                            ["--kubeconfig", env.kubeconfig])
    first = None
    try:
        controller.wait_for(lambda r: r.get("msg") == "tick" and r.get("target") == "shop/idle",
                            15, "a first tick")
        first = time.time()
        controller.wait_for(lambda r: r.get("msg") == "tick" and r.get("target") == "shop/idle"
                            and r.get("action") == "patched", 20, "a patched tick")
    except AssertionError:
        pass
    code = controller.stop()
    sent = patches(env.kube.log(since=seq), "idle")
    ticks = tick_lines(controller, "shop/idle")
    before = []
    for tick in ticks:
        if tick.get("action") == "patched":
            break
        before.append(tick)
    held = [t for t in before if t.get("desired") == IDLE_START_REPLICAS
            and t.get("reason") == "stabilized"]
    waited = sent[0]["t"] - first if sent and first else None
    checks.check("first decision: the count is held for the scale-down window, then lowered",
                 code == 0 and len(before) >= 3 and len(held) == len(before) and waited is not None
                 and waited >= 6.0 - 1.5 and patched_replicas(sent[0]) < IDLE_START_REPLICAS,
                 "exit %s; %d ticks before the PATCH, %d held at %d (reasons %s); PATCH to %s "
                 "%s s after the first tick" % (
                     code, len(before), len(held), IDLE_START_REPLICAS,
                     sorted({t.get("reason") for t in before}),
                     patched_replicas(sent[0]) if sent else None,
                     None if waited is None else round(waited, 2)))
    clean, report = controller.valgrind_clean()
    checks.check("first decision: valgrind clean", clean, report)


def scenario_reload(checks, env):
    """ConfigMap-style symlink swaps: invalid refused, valid taken; SIGHUP."""
    root = os.path.join(env.workdir, "configmap")
    os.makedirs(root, exist_ok=True)

    def publish(version, text):
        directory = os.path.join(root, "..%d" % version)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "config.yaml"), "w") as handle:
            handle.write(text)
        tmp = os.path.join(root, "..data_tmp")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink("..%d" % version, tmp)
        os.replace(tmp, os.path.join(root, "..data"))

    good = os.path.join(env.workdir, "reload-good.yaml")
    write_config(good, env.prom.url, [{"namespace": "shop", "deployment": "idle", "max": 20}])
    with open(good) as handle:
        good_text = handle.read()
    publish(1, good_text)
    link = os.path.join(root, "config.yaml")
    if not os.path.lexists(link):
        os.symlink("..data/config.yaml", link)
    env.set_replicas("idle", IDLE_START_REPLICAS)
    controller = Controller(env.cpscale, env.workdir, "reload", link,
                            ["--kubeconfig", env.kubeconfig, "--dry-run"])
    controller.wait_for(lambda r: r.get("msg") == "tick", 15, "a first tick")
    bad_text = good_text.replace("max_replicas: 20", "max_replicas: lots")
    publish(2, bad_text)
    refused = controller.wait_for(lambda r: r.get("msg", "").startswith("config refused"), 10,
                                  "the refusal")
    error = refused[0].get("error", "")
    checks.check("reload: an invalid config is refused with file:line:col",
                 "config.yaml:" in error and "max_replicas" in error, error)
    ticks_before = len(tick_lines(controller, "shop/idle"))
    poll(lambda: len(tick_lines(controller, "shop/idle")) > ticks_before, 3)
    ticks_after = len(tick_lines(controller, "shop/idle"))
    checks.check("reload: the old config keeps working", ticks_after > ticks_before,
                 "%d ticks before, %d after" % (ticks_before, ticks_after))
    status, metrics = controller.http("/metrics")
    checks.check("reload: the refusal is counted",
                 status == 200 and 'cpscale_config_reloads_total{result="refused"} 1' in metrics
                 and "cpscale_config_generation 1" in metrics, "status %d" % status)
    publish(3, good_text.replace("max_replicas: 20", "max_replicas: 7"))
    controller.wait_for(lambda r: r.get("msg") == "config loaded", 10, "the valid reload")
    poll(lambda: all(line in controller.http("/metrics")[1] for line in (
        'cpscale_target_max_replicas{namespace="shop",name="idle"} 7',
        "cpscale_config_generation 2")), 2.5)
    status, metrics = controller.http("/metrics")
    checks.check("reload: a valid config is taken",
                 'cpscale_target_max_replicas{namespace="shop",name="idle"} 7' in metrics
                 and "cpscale_config_generation 2" in metrics, "generation line present: %s"
                 % ("cpscale_config_generation 2" in metrics))
    controller.process.send_signal(signal.SIGHUP)
    poll(lambda: "cpscale_config_generation 3" in controller.http("/metrics")[1], 1.5)
    status, metrics = controller.http("/metrics")
    checks.check("reload: SIGHUP reloads", "cpscale_config_generation 3" in metrics)
    health, _ = controller.http("/healthz")
    ready, _ = controller.http("/readyz")
    checks.check("/healthz and /readyz answer 200", health == 200 and ready == 200,
                 "%d %d" % (health, ready))
    for family in ("cpscale_target_desired_replicas", "cpscale_target_current_replicas",
                   "cpscale_target_ready_replicas", "cpscale_target_qps",
                   "cpscale_target_p95_latency_ms", "cpscale_target_cost_per_million_requests_usd",
                   "cpscale_decisions_total", "cpscale_scale_events_total",
                   "cpscale_query_errors_total", "cpscale_tick_duration_seconds_bucket",
                   "cpscale_leader", "cpscale_config_generation"):
        checks.check("/metrics has %s" % family, ("\n" + family) in metrics)
    code = controller.stop()
    checks.check("reload: exit 0", code == 0, "exit %s" % code)
    clean, report = controller.valgrind_clean()
    checks.check("reload: valgrind clean", clean, report)


def start_leader_to_stop(env, name, identity, retry_period="1s"):
    """A controller (NAME, --identity IDENTITY) that has become leader of a
    fresh Lease renewed every `retry_period`, with a 1 s shutdown grace, for
    the SIGTERM scenarios. Its Lease requests time out after the retry
    period (at most --kube-timeout, 20 s)."""
    delete_lease(env)
    targets = [{"namespace": "shop", "deployment": "idle", "max": 20}]
    config = write_config(os.path.join(env.workdir, name + ".yaml"), env.prom.url, targets,
                          interval="2s", leader={"lease_duration": "20s", "renew_deadline": "15s",
                                                 "retry_period": retry_period})
    controller = Controller(env.cpscale, env.workdir, name, config,
                            ["--kubeconfig", env.kubeconfig, "--identity", identity,
                             "--shutdown-grace", "1s", "--kube-timeout", "20s"])
    controller.wait_for(lambda r: r.get("msg") == "became leader", 15, "leadership")
    return controller


def sigterm_releases(checks, env, controller, label, holder_after=""):
    """SIGTERM `controller`; check that it exits 0 within 5 s (x TIME_FACTOR),
    that the Lease is left with `holder_after` (none: released), and
    valgrind."""
    sent = time.time()
    controller.process.send_signal(signal.SIGTERM)
    code = controller.wait(10 * TIME_FACTOR)
    elapsed = time.time() - sent
    env.kube.clear_faults()
    if code is None:
        code = controller.stop(signal.SIGKILL)
    else:
        controller.stderr.close()
    checks.check("%s: exit 0 within 5 s" % label, code == 0 and elapsed < 5 * TIME_FACTOR,
                 "exit %s after %.1f s" % (code, elapsed))
    lease = env.kube.get(LEASE_PATH)
    holder = (lease or {}).get("spec", {}).get("holderIdentity") or ""
    checks.check("%s: %s" % (label, "the Lease is released" if not holder_after
                              else "the Lease is left to %s" % holder_after),
                 lease is not None and holder == holder_after, "holder %r" % holder)
    clean, report = controller.valgrind_clean()
    checks.check("%s: valgrind clean" % label, clean, report)


def scenario_sigterm_mid_tick(checks, env):
    """SIGTERM while a read hangs: the tick is cut after the grace, the
    Lease is released, exit 0."""
    controller = start_leader_to_stop(env, "sigterm", "terminator")
    controller.wait_for(lambda r: r.get("msg") == "tick", 15, "a first tick")
    env.kube.add_fault(namespace="shop", name="idle", verb="get", subresource="scale",
                       delay_s=15)
    time.sleep(2.5 * TIME_FACTOR)  # the next tick is now waiting on the slow read
    sigterm_releases(checks, env, controller, "SIGTERM mid-tick")


def lease_version(env):
    return (env.kube.get(LEASE_PATH) or {}).get("metadata", {}).get("resourceVersion")


def wait_for_renewal(env, seen, until_fault_taken=False):
    """Wait (up to 10 s x TIME_FACTOR) until the Lease's resourceVersion is
    no longer `seen` and, with until_fault_taken, no injected fault is
    left (its count spent on the renewal). True when it happened."""
    deadline = time.time() + 10 * TIME_FACTOR
    while time.time() < deadline:
        if lease_version(env) not in (None, seen) and \
                (not until_fault_taken or not env.kube.faults()):
            return True
        time.sleep(0.02)
    return False


def wait_for_held_answers(env, seq, timeout_s):
    """Wait until the Lease writes held back by an answer_delay_s fault
    since `seq` have been answered (the fake logs a request when its status
    line goes out): a held answer must not land in a later scenario's log."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        held = [r for r in env.kube.log(since=seq) if r.get("fault") and
                r.get("resource") == "leases" and r.get("method") == "PUT"]
        if held:
            return
        time.sleep(0.1)


def scenario_sigterm_mid_renewal(checks, env):
    """The release when the Lease record the controller last saw is not the
    server's. (1) SIGTERM while a renewal the server has applied is still
    unanswered (the fake holds its answer back): the release cannot carry
    the resourceVersion it last saw, yet the Lease is released. (2) The
    same, with the Lease written to another holder meanwhile: that holder
    keeps it. (3) Nothing in flight, and the release PUT meets 409: read
    again, released."""
    renewal_s = 3  # the Lease requests' timeout too: the held renewal stays in flight
    held_s = 5     # longer than that timeout
    seq = last_seq(env)
    controller = start_leader_to_stop(env, "sigterm-renewal", "renewer", "%ds" % renewal_s)
    seen = lease_version(env)
    env.kube.add_fault(resource="leases", verb="update", answer_delay_s=held_s, count=1)
    held = wait_for_renewal(env, seen, until_fault_taken=True)
    checks.check("SIGTERM mid-renewal: a renewal applied, its answer held back", held,
                 "resourceVersion %s, then %s; faults %r"
                 % (seen, lease_version(env), env.kube.faults()))
    sigterm_releases(checks, env, controller, "SIGTERM mid-renewal")
    wait_for_held_answers(env, seq, held_s + 5 * TIME_FACTOR)

    seq = last_seq(env)
    controller = start_leader_to_stop(env, "sigterm-usurped", "renewer", "%ds" % renewal_s)
    seen = lease_version(env)
    env.kube.add_fault(resource="leases", verb="update", answer_delay_s=held_s, count=1)
    held = wait_for_renewal(env, seen, until_fault_taken=True)
    lease = env.kube.get(LEASE_PATH)
    lease["spec"]["holderIdentity"] = "usurper"
    env.kube.seed(lease)
    checks.check("SIGTERM mid-renewal, usurped: a renewal held, then another holder written",
                 held and (env.kube.get(LEASE_PATH) or {}).get("spec", {})
                 .get("holderIdentity") == "usurper", "held %s" % held)
    sigterm_releases(checks, env, controller, "SIGTERM mid-renewal, usurped", "usurper")
    wait_for_held_answers(env, seq, held_s + 5 * TIME_FACTOR)

    controller = start_leader_to_stop(env, "sigterm-conflict", "renewer", "%ds" % renewal_s)
    renewed = wait_for_renewal(env, lease_version(env))  # the next one is a period away
    seq = last_seq(env)
    env.kube.add_fault(resource="leases", verb="update", status=409, count=1)
    checks.check("SIGTERM with a 409 on the release: a renewal seen first", renewed)
    sigterm_releases(checks, env, controller, "SIGTERM with a 409 on the release")
    records = [r for r in env.kube.log(since=seq)
               if r.get("fault") and r.get("status") == 409 and r.get("resource") == "leases"]
    checks.check("SIGTERM with a 409 on the release: the release met it", len(records) == 1,
                 "%d faulted 409s" % len(records))


def env_secrets(env):
    """The environment's bearer token, the other controller's ("token-b")
    and the first lines of its client key."""
    with open(env.kube.client_key) as handle:
        key_lines = [l for l in handle.read().splitlines() if l and not l.startswith("-----")]
    return [env.kube.token, "token-b"] + key_lines[:3]


def leaked_secrets(env):
    """["TOKEN... in FILE"] for each of env_secrets(env) found in a
    controller log of the environment's work directory (empty: none)."""
    secrets = env_secrets(env)
    leaked = []
    for name in os.listdir(env.workdir):
        if name.endswith(".log") and not name.startswith(("emulator", "fault-proxy")):
            with open(os.path.join(env.workdir, name), errors="replace") as handle:
                text = handle.read()
            leaked += ["%s in %s" % (s[:6] + "...", name) for s in secrets if s and s in text]
    return leaked


def scenario_credentials(checks, env):
    """Client-certificate kubeconfig; in-cluster service account; no secret
    in any log or metric."""
    targets = [{"namespace": "shop", "deployment": "idle", "max": 20}]
    config = write_config(os.path.join(env.workdir, "creds.yaml"), env.prom.url, targets)
    cert_kubeconfig = env.kube.write_kubeconfig(os.path.join(env.workdir, "kubeconfig-cert"),
                                                auth="cert")
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "cert-auth", config,
                            ["--once", "--dry-run", "--kubeconfig", cert_kubeconfig])
    code = controller.wait(30)
    controller.stderr.close()
    reads = [r for r in env.kube.log(since=seq) if r.get("user") != "emulator"]
    checks.check("client certificate: reads as the certificate's user",
                 code == 0 and reads and all(r["status"] == 200 and r["user"] == env.kube.user
                                             for r in reads),
                 "exit %s, %s" % (code, [(r["status"], r["user"]) for r in reads]))
    sa_dir = env.kube.write_serviceaccount_dir(os.path.join(env.workdir, "sa"))
    host, port = env.kube.url[len("https://"):].rsplit(":", 1)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "in-cluster", config,
                            ["--once", "--dry-run", "--serviceaccount-dir", sa_dir],
                            env={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port})
    code = controller.wait(30)
    controller.stderr.close()
    reads = [r for r in env.kube.log(since=seq) if r.get("user") != "emulator"]
    checks.check("in-cluster: token and CA from the service-account directory",
                 code == 0 and reads and all(r["status"] == 200 for r in reads),
                 "exit %s, %s" % (code, [r["status"] for r in reads]))
    # a CA that did not sign the server: TLS is verified, so nothing is read
    other = tempfile.mkdtemp(dir=env.workdir)
    import subprocess
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=other-ca", "-keyout", os.path.join(other, "k"),
                    "-out", os.path.join(sa_dir, "ca.crt")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "wrong-ca", config,
                            ["--once", "--serviceaccount-dir", sa_dir],
                            env={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port})
    code = controller.wait(30)
    controller.stderr.close()
    reached = [r for r in env.kube.log(since=seq) if r.get("user") != "emulator"]
    ticks = tick_lines(controller, "shop/idle")
    checks.check("TLS verified: a server the CA did not sign is not trusted",
                 not reached and ticks and ticks[0].get("action") == "no_read",
                 "%d requests reached the server" % len(reached))
    # secrets: the bearer token and the client key never appear anywhere
    secrets = env_secrets(env)
    leaked = leaked_secrets(env)
    checks.check("no token or key in any controller log", not leaked, ", ".join(leaked))
    # nor in what the endpoint serves: a running controller with a bearer
    # token for the API server and one for Prometheus, after some ticks
    prom_token_file = os.path.join(env.workdir, "prom-token")
    prom_token = "prom-bearer-token-5f3a9c2e71"
    with open(prom_token_file, "w") as handle:
        handle.write(prom_token)
    with open(config) as handle:
        text = handle.read()
    served_config = os.path.join(env.workdir, "creds-served.yaml")
    with open(served_config, "w") as handle:
        handle.write(text.replace("prometheus:\n", "prometheus:\n  bearer_token_file: %s\n"
                                  % prom_token_file, 1))
    controller = Controller(env.cpscale, env.workdir, "served", served_config,
                            ["--dry-run", "--kubeconfig", env.kubeconfig])
    controller.wait_for(lambda r: r.get("msg") == "tick", 20, "a tick")
    time.sleep(2.5 * TIME_FACTOR)
    served = {path: controller.http(path) for path in ("/metrics", "/healthz", "/readyz")}
    controller.stop()
    leaked = ["%s in %s" % (s[:6] + "...", path) for path, (_, body) in served.items()
              for s in secrets + [prom_token] if s and s in body]
    leaked += ["%s in the log" % (s[:6] + "...") for s in secrets + [prom_token]
               if s in controller.text()]
    metrics = served["/metrics"][1]
    checks.check("no token or key in /metrics, /healthz, /readyz or the log",
                 not leaked and "cpscale_ticks_total" in metrics,
                 ", ".join(leaked) or "%d bytes of metrics searched" % len(metrics))


def kubectl_render_objects(overlay="manifests"):
    """`kubectl kustomize OVERLAY` (a directory under the repository) as
    (text, list of dicts) (offline: `kubectl label --local` parses the YAML
    and prints JSON). (None, None) without kubectl."""
    import shutil
    import subprocess
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return None, None
    rendered = subprocess.run([kubectl, "kustomize", os.path.join(REPO, overlay)],
                              capture_output=True, text=True, timeout=120, check=True).stdout
    parsed = subprocess.run([kubectl, "label", "--local", "-f", "-", "-o", "json",
                             "cps-render-check-"], input=rendered, capture_output=True,
                            text=True, timeout=120, check=True).stdout
    objects, decoder, i = [], json.JSONDecoder(), 0
    while True:
        while i < len(parsed) and parsed[i].isspace():
            i += 1
        if i >= len(parsed):
            break
        obj, i = decoder.raw_decode(parsed, i)
        objects.extend(obj["items"] if obj.get("kind") == "List" else [obj])
    return rendered, objects


def scenario_manifests(checks, env):
    """The rendered manifests go through `kubectl apply` against the fake,
    and the controller starts from the ConfigMap as the API server holds it."""
    import subprocess
    rendered, objects = kubectl_render_objects()
    if rendered is None:
        print("skip manifests: kubectl not found")
        return
    path = os.path.join(env.workdir, "rendered.yaml")
    with open(path, "w") as handle:
        handle.write(rendered)
    # the targets' namespaces exist, as in a cluster: the overlay binds
    # cpscale's role in them and creates none
    for obj in objects:
        if obj.get("kind") == "RoleBinding" and obj["metadata"].get("namespace") != "cpscale":
            env.kube.seed(namespace_object(obj["metadata"]["namespace"]))
    # an administrator applies them (its requests are not the controller's)
    env.set_users({ADMIN_TOKEN: "admin"})
    admin_kubeconfig = os.path.join(env.workdir, "kubeconfig-admin")
    with open(env.kubeconfig) as handle:
        text = handle.read()
    with open(admin_kubeconfig, "w") as handle:
        handle.write(text.replace(json.dumps(env.kube.token), json.dumps(ADMIN_TOKEN)))
    applied = subprocess.run(["kubectl", "--kubeconfig", admin_kubeconfig, "apply", "-f", path],
                             capture_output=True, text=True, timeout=120)
    checks.check("kubectl apply of the rendered manifests", applied.returncode == 0,
                 (applied.stdout + applied.stderr).strip()[-400:])
    configmaps = [o for o in objects if o.get("kind") == "ConfigMap"]
    name = configmaps[0]["metadata"]["name"] if configmaps else "cpscale-config"
    namespace = configmaps[0]["metadata"].get("namespace", "cpscale") if configmaps else "cpscale"
    stored = env.kube.get("/api/v1/namespaces/%s/configmaps/%s" % (namespace, name))
    data = (stored or {}).get("data", {}).get("config.yaml")
    checks.check("the API server holds the ConfigMap", bool(data), "%s/%s" % (namespace, name))
    if not data:
        return
    config = os.path.join(env.workdir, "from-configmap.yaml")
    with open(config, "w") as handle:
        handle.write(data)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "from-configmap", config,
                            ["--kubeconfig", env.kubeconfig, "--once", "--dry-run"])
    code = controller.wait(40)
    if code is None:
        code = controller.stop(signal.SIGKILL)
    else:
        controller.stderr.close()
    started = [r for r in controller.lines() if r.get("msg") == "started"]
    ticked = [r for r in controller.lines() if r.get("msg") == "tick"]
    checks.check("the controller starts from the rendered ConfigMap and ticks",
                 code == 0 and started and ticked,
                 "exit %s, %d targets, %d tick lines" % (code, started[0]["targets"] if started
                                                        else -1, len(ticked)))
    reads = [r for r in env.kube.log(since=seq) if r.get("user") == "cpscale"]
    checks.check("it reads the targets the ConfigMap names",
                 any(r.get("namespace") == "shop" for r in reads), "%d requests" % len(reads))


def scenario_rbac(checks, env):
    """Every request the controllers sent in this run is granted by the
    rendered RBAC, with cpscale's RoleBinding in each namespace that a config
    of the run had targets in (as an overlay binds it), and every rule the
    RBAC grants was used: nothing was sent in a namespace without targets,
    nor at the cluster scope."""
    sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))
    import rbac_rules
    rendered, objects = kubectl_render_objects()
    if rendered is None:
        print("skip rbac: kubectl not found")
        return
    objects = rbac_rules.with_binding_in(objects, "cpscale", TARGET_NAMESPACES)
    grants = rbac_rules.rules_from_objects(objects, service_account=("cpscale", "cpscale"))
    logs = [env.kube.log()] + [other.kube.log() for other in env.companions]
    sent = [r for log in logs for r in log if r.get("user") in CONTROLLER_USERS
            and r.get("resource")]
    denied = sorted({(r["verb"], r["api_group"], r["resource"], r.get("subresource", ""),
                      r.get("namespace", "")) for r in sent if not rbac_rules.granted(grants, r)})
    checks.check("RBAC grants every request the controller sent", not denied,
                 "%d requests; denied: %s" % (len(sent), denied[:8]))
    unused = []
    for grant in grants:   # a rule is used when it served a request in any namespace
        if isinstance(grant, rbac_rules.NonResourceGrant):   # the controller reads no path
            unused.append(tuple(grant))
        elif not any(rbac_rules.granted([tuple(grant)[:4]], r) for r in sent):
            unused.append(tuple(grant)[:4])
    checks.check("RBAC grants nothing the controller never used", not unused,
                 "unused: %s" % sorted(set(unused)))


def scenario_listen(checks, env):
    """`--listen [::]:PORT` answers over IPv4 and IPv6 (both families, as a
    Go server's ":PORT"); `[::1]:PORT` over IPv6 only."""
    import socket
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        print("skip listen: no IPv6 loopback")
        return
    config = write_config(os.path.join(env.workdir, "listen.yaml"), env.prom.url,
                          [{"namespace": "shop", "deployment": "idle"}])

    def answers(host, port):
        try:
            with urllib.request.urlopen("http://%s:%d/healthz" % (host, port), timeout=5) as a:
                return a.status
        except (OSError, urllib.error.URLError) as error:
            return str(error)

    for listen, want_v4 in (("[::]:0", True), ("[::1]:0", False)):
        controller = Controller(env.cpscale, env.workdir, "listen", config,
                                ["--kubeconfig", env.kubeconfig, "--dry-run", "--listen", listen])
        try:
            port = controller.port()
            v6, v4 = answers("[::1]", port), answers("127.0.0.1", port)
        finally:
            code = controller.stop()
        clean, report = controller.valgrind_clean()
        checks.check("listen %s: valgrind clean" % listen, clean, report)
        checks.check("listen %s: /healthz over IPv6" % listen, v6 == 200, "%s" % v6)
        checks.check("listen %s: /healthz over IPv4 %s" % (listen, "too" if want_v4 else "refused"),
                     (v4 == 200) == want_v4, "%s" % v4)
        checks.check("listen %s: exits 0" % listen, code == 0, "exit %s" % code)


RBAC_LIVE_BOUND = ["team%d" % i for i in range(9)]   # 9 + 1 namespaces: past the 8 watched one by one
RBAC_LIVE_UNBOUND = "unbound"


def rbac_live_controller(env, api, sa_token, name, deployment_name, namespaces):
    """A controller for `deployment_name` in each of `namespaces`, as the
    ServiceAccount `sa_token` authenticates, against `api`."""
    kubeconfig = api.write_kubeconfig(os.path.join(env.workdir, name + ".kubeconfig"),
                                      token=sa_token)
    targets = [{"namespace": ns, "deployment": deployment_name, "min": 2, "max": 4}
               for ns in namespaces]
    leader = {"lease_duration": "4s", "renew_deadline": "3s", "retry_period": "1s"}
    config = write_config(os.path.join(env.workdir, name + ".yaml"), env.prom.url, targets,
                          leader=leader)
    for namespace in namespaces:
        TARGET_NAMESPACES.discard(namespace)   # not the main apiserver's: not bound there
    return Controller(env.cpscale, env.workdir, name, config,
                      ["--kubeconfig", kubeconfig, "--identity", "replica-" + name])


def readme_can_i_command():
    """The `kubectl auth can-i ...` command line the README gives for checking
    a namespace's binding (NAMESPACE stands for the namespace)."""
    with open(os.path.join(REPO, "README.md")) as readme:
        found = re.findall(r"`(kubectl auth can-i [^`]*)`", readme.read())
    if len(found) != 1 or "NAMESPACE" not in found[0]:
        raise AssertionError("README: expected one `kubectl auth can-i ... NAMESPACE ...` "
                             "command, found %r" % found)
    return found[0]


def scenario_rbac_live(checks, env):
    """The controller as its ServiceAccount against an apiserver that
    enforces RBAC (--authorization-mode RBAC) with the example overlay's
    RBAC objects and its target RoleBinding copied to the namespaces a
    config names, but one (unbound).
    First 2 bound namespaces and the unbound one (one watch each): the
    unbound namespace's LIST is refused, logged with the server's message
    and, once, the hint to bind it; the bound targets are scaled.
    Then 9 bound and the unbound one (more than 8: the controller lists
    Deployments cluster-wide): that LIST is refused and logged with the fix,
    every target in a bound namespace is still read (GETs) and scaled, the
    unbound one gets 403 and is never PATCHed, the Lease and the Events are
    granted; then `kubectl apply` of the cluster-scope component lets the
    cluster-wide LIST and WATCH through, without a restart. The
    ServiceAccount's token is in no log."""
    import secrets
    import shutil
    import subprocess
    sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))
    import rbac_rules
    kubectl = shutil.which("kubectl")
    _, objects = kubectl_render_objects()
    if objects is None or not kubectl:
        print("skip rbac-live: kubectl not found")
        return
    rbac = [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role",
                                                "RoleBinding")]
    rbac = rbac_rules.with_binding_in(rbac, "cpscale", RBAC_LIVE_BOUND)
    sa_user, sa_groups = rbac_rules.service_account_user("cpscale", "cpscale")
    with kubefake.FakeApiserver(extra_args=["--authorization-mode", "RBAC"]) as api:
        for namespace in ["cpscale", RBAC_LIVE_UNBOUND] + RBAC_LIVE_BOUND:
            api.seed(namespace_object(namespace))
            api.seed(deployment(namespace, "app", 1))
            api.seed(deployment(namespace, "solo", 1))
        for obj in rbac:
            api.seed({k: v for k, v in obj.items() if k != "status"})
        sa_token = secrets.token_urlsafe(24)
        api.set_tokens({api.token: (api.user, [api.group]), sa_token: (sa_user, sa_groups)})
        admin = api.write_kubeconfig(os.path.join(env.workdir, "rbac-live-admin.kubeconfig"))

        def can_i(command):
            """kubectl's answer (yes/no) to an `auth can-i` command line."""
            proc = subprocess.run([kubectl, "--request-timeout=10s"] + command.split()[1:],
                                  env=dict(os.environ, KUBECONFIG=admin, HOME=env.workdir),
                                  capture_output=True, text=True, timeout=30)
            return proc.stdout.strip() or proc.stderr.strip()

        # the README's check of a namespace's binding, as it is written there
        readme_check = readme_can_i_command()
        answers = {ns: can_i(readme_check.replace("NAMESPACE", ns))
                   for ns in (RBAC_LIVE_BOUND[0], RBAC_LIVE_UNBOUND)}
        checks.check("rbac-live: the README's `kubectl auth can-i` says yes in a bound namespace, "
                     "no in an unbound one",
                     answers == {RBAC_LIVE_BOUND[0]: "yes", RBAC_LIVE_UNBOUND: "no"},
                     "%r: %s" % (readme_check, answers))

        def sa_records(since=0):
            return [r for r in api.log(since=since) if r.get("user") == sa_user]

        def cluster_lists(records, status):
            return [r for r in records if r.get("resource") == "deployments" and not r.get("namespace")
                    and r.get("verb") in ("list", "watch") and r.get("status") == status]

        def scaled(records, name):
            return {r["namespace"] for r in patches(records, name) if r.get("status") == 200}

        # -- one watch per namespace, one of them unbound
        few = RBAC_LIVE_BOUND[:2]
        solo = rbac_live_controller(env, api, sa_token, "rbac-live-ns", "solo",
                                    few + [RBAC_LIVE_UNBOUND])

        def refusals():
            return [l for l in solo.lines() if l.get("msg") == "list failed"
                    and l.get("watch") == RBAC_LIVE_UNBOUND and l.get("code") == 403]
        poll(lambda: len(refusals()) >= 2 and scaled(sa_records(), "solo") >= set(few), 20)
        refused = refusals()
        code = solo.stop()
        checks.check("rbac-live: an unbound namespace's LIST is refused, the bound ones' targets "
                     "scaled", len(refused) >= 2 and scaled(sa_records(), "solo") >= set(few),
                     "%d refusals, scaled in %s" % (len(refused), sorted(scaled(sa_records(), "solo"))))
        checks.check("rbac-live: the refusal logs the server's message",
                     all('cannot list resource "deployments"' in l.get("error", "")
                         and sa_user in l.get("error", "") for l in refused),
                     "errors: %s" % [l.get("error") for l in refused[:2]])
        hinted = [l for l in refused if "target-namespaces.yaml" in str(l.get("hint", ""))]
        checks.check("rbac-live: the hint to bind the namespace comes once, not with every retry",
                     len(hinted) == 1
                     and "may not list Deployments in this namespace" in hinted[0]["hint"],
                     "%d of %d refusals hinted: %s" % (len(hinted), len(refused),
                                                       [l.get("hint") for l in hinted]))
        checks.check("rbac-live: exits 0 (one watch per namespace)", code == 0, "exit %s" % code)
        clean, report = solo.valgrind_clean()
        checks.check("rbac-live: valgrind clean (one watch per namespace)", clean, report)

        # -- more than 8 namespaces: one cluster-wide watch
        mark = max((r.get("seq", 0) for r in api.log()), default=0)
        controller = rbac_live_controller(env, api, sa_token, "rbac-live", "app",
                                          RBAC_LIVE_BOUND + [RBAC_LIVE_UNBOUND])

        def hints():
            return [line for line in controller.lines() if line.get("code") == 403
                    and "components/cluster-scope" in str(line.get("hint", ""))]

        poll(lambda: hints() and scaled(sa_records(mark), "app") >= set(RBAC_LIVE_BOUND), 20)
        before = sa_records(mark)
        checks.check("rbac-live: the cluster-wide LIST of Deployments is refused (403)",
                     bool(cluster_lists(before, 403)), "%d requests" % len(before))
        checks.check("rbac-live: the 403 is logged with the binding that fixes it", bool(hints()),
                     "warnings: %s" % [l.get("msg") for l in controller.lines()
                                       if l.get("level") == "warn"][:5])
        checks.check("rbac-live: every target in a bound namespace is scaled (read with GETs)",
                     scaled(before, "app") >= set(RBAC_LIVE_BOUND),
                     "scaled in %s" % sorted(scaled(before, "app")))
        unbound = [r for r in before if r.get("namespace") == RBAC_LIVE_UNBOUND]
        checks.check("rbac-live: the unbound namespace's target gets 403 and no PATCH",
                     unbound and all(r.get("status") == 403 for r in unbound)
                     and not patches(unbound),
                     "%s" % sorted({(r.get("verb"), r.get("status")) for r in unbound}))
        other = sorted({(r.get("verb"), r.get("resource"), r.get("subresource", ""),
                         r.get("namespace", "")) for r in before if r.get("status") == 403
                        and r.get("namespace") != RBAC_LIVE_UNBOUND
                        and r not in cluster_lists(before, 403)})
        checks.check("rbac-live: nothing else is refused (Lease, Events, reads, PATCHes)",
                     not other, "403 on %s" % other[:6])
        granted_events = [r for r in before if r.get("resource") == "events"
                          and r.get("status") == 201]
        checks.check("rbac-live: Events are posted in the bound namespaces",
                     {r.get("namespace") for r in granted_events} >= set(RBAC_LIVE_BOUND),
                     "%d Events" % len(granted_events))
        component = os.path.join(REPO, "manifests", "components", "cluster-scope")
        applied = subprocess.run(
            [kubectl, "--request-timeout=10s", "apply",
             "-f", os.path.join(component, "clusterrole.yaml"),
             "-f", os.path.join(component, "clusterrolebinding.yaml")],
            env=dict(os.environ, KUBECONFIG=admin, HOME=env.workdir),
            capture_output=True, text=True, timeout=30)
        checks.check("rbac-live: kubectl apply of the cluster-scope component's RBAC",
                     applied.returncode == 0, applied.stderr.strip())
        everywhere = "kubectl auth can-i %s deployments --all-namespaces --as " + sa_user
        answers = {verb: can_i(everywhere % verb) for verb in ("list", "watch", "get", "patch")}
        checks.check("rbac-live: with the component, can-i list and watch everywhere, not get or "
                     "patch", answers == {"list": "yes", "watch": "yes", "get": "no", "patch": "no"},
                     "%s" % answers)
        mark = max((r.get("seq", 0) for r in api.log()), default=0)
        poll(lambda: {r.get("verb") for r in cluster_lists(api.log(since=mark), 200)}
             >= {"list", "watch"}, 60)
        after = sa_records(mark)
        checks.check("rbac-live: then the cluster-wide LIST and WATCH go through, no restart",
                     cluster_lists(after, 200) and any(r.get("verb") == "watch"
                                                       for r in cluster_lists(after, 200)),
                     "%s" % sorted({(r.get("verb"), r.get("status")) for r in after
                                    if r.get("resource") == "deployments"}))
        code = controller.stop()
        checks.check("rbac-live: exits 0", code == 0, "exit %s" % code)
        clean, report = controller.valgrind_clean()
        checks.check("rbac-live: valgrind clean", clean, report)
        leaked = [c.name for c in (solo, controller) if sa_token in c.text()]
        checks.check("rbac-live: the ServiceAccount token is in no log", not leaked,
                     "in %s" % leaked)


# ---- writes, the Lease, connections, Retry-After, User-Agent, HTTP/2 ----------

SLOW_PATCH_TARGETS = 60
SLOW_PATCH_DELAY_S = 1.5
RENEW_DEADLINE_S = 3.0
LOSS_MARGIN_S = 0.5        # the fake's clock vs the controller's, and transit
# PATCHes sent after the cut are answered this late: past the renew
# deadline and the margin after it, with 2.5 s to spare
IN_FLIGHT_DELAY_S = 6.0
WRITE_SLOTS = 6            # the write lane's transfers at once (PATCHes and Events)
SLOW_EVENT_TARGETS = 3 * WRITE_SLOTS
USER_AGENT_RE = re.compile(r"^cpscale/(\S+) \(linux/(amd64|arm64|386|arm|ppc64le|s390x|riscv64)\)$")


def seed_targets(env, namespace, names, replicas=1):
    """A namespace with one Deployment per name; targets whose min_replicas
    (2) is above `replicas`, so each wants one PATCH without any metric."""
    env.kube.seed(namespace_object(namespace))
    for name in names:
        env.kube.seed(deployment(namespace, name, replicas))
    return [{"namespace": namespace, "deployment": name, "min": 2, "max": 4} for name in names]


def unseed_targets(env, namespace, names):
    for name in names:
        env.kube.delete("/apis/apps/v1/namespaces/%s/deployments/%s" % (namespace, name))


def metric_value(text, name, labels=""):
    for line in text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def lease_loss_observable(records, cut):
    """When a controller whose Lease requests fail from `cut` on can know
    the Lease is lost: its last Lease write the fake took (the cut, when
    none is in `records`) plus the renew deadline and a margin. Returns
    (that time, the last write's time)."""
    renewals = [r for r in records if r.get("resource") == "leases" and r.get("status") in (200, 201)
                and r.get("method") in ("PUT", "POST")]
    last_renew = max((r["t"] for r in renewals), default=cut)
    return last_renew + RENEW_DEADLINE_S + LOSS_MARGIN_S, last_renew


def event_writes(records, namespace):
    """Event writes (POSTs, and PATCHes of a series) in the apiserver log."""
    return [r for r in records if r.get("resource") == "events"
            and r.get("verb") in ("create", "patch", "update")
            and r.get("namespace") == namespace]


def slow_patches_run(checks, env, kubeconfig, tag):
    """60 targets whose first PATCHes the fake answers 1.5 s late; when
    the first answer is logged (the fake logs a request once it has
    answered it), the Lease is cut and later PATCHes are answered
    IN_FLIGHT_DELAY_S late, so those the next tick sends before the loss
    is observable are answered after it. Neither a PATCH nor an Event
    write (each answered PATCH posts one) may reach the fake after that:
    not one queued before it, nor one for a PATCH answered after it.
    Returns the controller."""
    namespace = "bulk-" + tag
    names = ["w%02d" % i for i in range(SLOW_PATCH_TARGETS)]
    targets = seed_targets(env, namespace, names)
    leader = {"lease_duration": "4s", "renew_deadline": "%gs" % RENEW_DEADLINE_S,
              "retry_period": "1s"}
    config = write_config(os.path.join(env.workdir, "slow-%s.yaml" % tag), env.prom.url,
                          targets, leader=leader)
    delete_lease(env)
    env.kube.add_fault(verb="patch", namespace=namespace, delay_s=SLOW_PATCH_DELAY_S)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "slow-" + tag, config,
                            ["--kubeconfig", kubeconfig, "--identity", "replica-slow"])
    deadline = time.time() + 30 * TIME_FACTOR
    while time.time() < deadline:
        if [r for r in patches(env.kube.log(since=seq)) if r.get("namespace") == namespace]:
            break
        time.sleep(0.2)
    env.kube.clear_faults()
    env.kube.add_fault(verb="patch", namespace=namespace, delay_s=IN_FLIGHT_DELAY_S)
    env.kube.add_fault(resource="leases", status=500)
    cut = time.time()
    time.sleep(IN_FLIGHT_DELAY_S + 4)
    records = env.kube.log(since=seq)
    observable, last_renew = lease_loss_observable(records, cut)
    sent = [r for r in patches(records) if r.get("namespace") == namespace]
    late = [r for r in sent if r["t"] > observable]
    lateness = max((r["t"] - observable for r in late), default=0.0)
    events = event_writes(records, namespace)
    late_events = [r for r in events if r["t"] > observable]
    event_lateness = max((r["t"] - observable for r in late_events), default=0.0)
    metrics = controller.http("/metrics")[1] if controller.process.poll() is None else ""
    stepped_down = [r for r in controller.lines() if r.get("msg") == "stopped leading"]
    env.kube.clear_faults()
    code = controller.stop()
    unseed_targets(env, namespace, names)
    checks.check("%s: the leader was patching before the cut" % tag,
                 any(r["t"] <= cut for r in sent), "%d PATCHes in all" % len(sent))
    checks.check("%s: the leader stepped down" % tag, bool(stepped_down))
    checks.check("%s: no PATCH reaches the fake after the Lease loss is observable" % tag,
                 not late, "%d PATCHes after the loss (renewed last %.1f s before the cut), the "
                 "last %.1f s after" % (len(late), cut - last_renew, lateness))
    checks.check("%s: the leader was posting Events before the loss was observable" % tag,
                 any(r["t"] <= observable for r in events), "%d Event writes in all" % len(events))
    checks.check("%s: no Event write reaches the fake after the Lease loss is observable" % tag,
                 not late_events, "%d Event writes after the loss (%s), the last %.1f s after"
                 % (len(late_events), sorted({r.get("verb") for r in late_events}),
                    event_lateness))
    dropped = sum(metric_value(metrics, "cpscale_writes_dropped_total", '{reason="%s"}' % why) or 0
                  for why in ("stale", "not_leader"))
    checks.check("%s: queued PATCHes were dropped and counted" % tag, dropped > 0,
                 "cpscale_writes_dropped_total %g" % dropped)
    checks.check("%s: exits 0" % tag, code == 0, "exit %s" % code)
    print("#   %s: %d PATCHes sent, %d after the loss was observable (last %.1f s late); "
          "%d Event writes, %d after it (last %.1f s late)"
          % (tag, len(sent), len(late), lateness, len(events), len(late_events), event_lateness))
    return controller


def slow_events_run(checks, env):
    """SLOW_EVENT_TARGETS targets whose PATCHes are answered at once; the
    first WRITE_SLOTS Event POSTs are answered IN_FLIGHT_DELAY_S late, so
    they hold the write lane while the others wait in its queue (those
    would be answered at once: the fake logs a request when it answers),
    and the Lease is cut. No queued Event write may reach the fake after
    the loss is observable, and the tick that waited for them must end
    (a dropped write is answered)."""
    namespace = "bulk-slow-events"
    names = ["e%02d" % i for i in range(SLOW_EVENT_TARGETS)]
    targets = seed_targets(env, namespace, names)
    leader = {"lease_duration": "4s", "renew_deadline": "%gs" % RENEW_DEADLINE_S,
              "retry_period": "1s"}
    config = write_config(os.path.join(env.workdir, "slow-events.yaml"), env.prom.url,
                          targets, leader=leader)
    delete_lease(env)
    delayed = env.kube.add_fault(verb="create", resource="events", namespace=namespace,
                                 delay_s=IN_FLIGHT_DELAY_S, count=WRITE_SLOTS)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "slow-events", config,
                            ["--kubeconfig", env.kubeconfig, "--identity", "replica-slow"])
    deadline = time.time() + 30 * TIME_FACTOR
    while time.time() < deadline:  # every PATCH answered: its Event POST is out or queued
        if len([r for r in patches(env.kube.log(since=seq))
                if r.get("namespace") == namespace]) >= SLOW_EVENT_TARGETS:
            break
        time.sleep(0.2)
    # and the WRITE_SLOTS delayed POSTs have reached the fake (their rule is
    # used up), so they are in flight at the cut: under valgrind the POSTs
    # that follow the last PATCH answers could still be unsent
    poll(lambda: all(r.get("id") != delayed.get("id") for r in env.kube.faults()), 20)
    env.kube.add_fault(resource="leases", status=500)
    cut = time.time()
    time.sleep(IN_FLIGHT_DELAY_S + 3)
    records = env.kube.log(since=seq)
    observable = lease_loss_observable(records, cut)[0]
    events = event_writes(records, namespace)
    late = [r for r in events if r["t"] > observable]
    ticks = tick_lines(controller, "%s/%s" % (namespace, names[-1]))
    dropped_lines = [r for r in controller.lines() if r.get("msg") == "event dropped unsent"]
    status, metrics = controller.http("/metrics")
    dropped_counted = metric_value(metrics, "cpscale_writes_dropped_total",
                                   '{reason="not_leader"}') if status == 200 else None
    env.kube.clear_faults()
    code = controller.stop()
    unseed_targets(env, namespace, names)
    checks.check("slow events: each Event write dropped unsent is logged and counted in "
                 "cpscale_writes_dropped_total",
                 dropped_lines and dropped_counted is not None
                 and dropped_counted >= len(dropped_lines),
                 "%d logged, counter %s" % (len(dropped_lines), dropped_counted))
    checks.check("slow events: every target was patched before the cut",
                 len([r for r in patches(records) if r.get("namespace") == namespace
                      and r["t"] <= cut]) == SLOW_EVENT_TARGETS)
    checks.check("slow events: Event POSTs were in flight at the cut",
                 any(r["t"] <= cut for r in events), "%d Event writes in all" % len(events))
    checks.check("slow events: no queued Event write reaches the fake after the Lease loss is "
                 "observable", not late, "%d Event writes after the loss, the last %.1f s after"
                 % (len(late), max((r["t"] - observable for r in late), default=0.0)))
    checks.check("slow events: the tick waiting for the dropped writes ended, and ticks go on",
                 len(ticks) >= 2, "%d tick lines of %s" % (len(ticks), names[-1]))
    checks.check("slow events: exits 0", code == 0, "exit %s" % code)
    clean, report = controller.valgrind_clean()
    checks.check("slow events: valgrind clean", clean, report)


def scenario_slow_patches(checks, env):
    """the Lease is checked when each PATCH or Event write starts, not
    when it is queued; queued writes go on loss, and a PATCH answered after
    it posts no Event; the Lease never waits behind them."""
    slow_patches_run(checks, env, env.kubeconfig, "slow-patches")
    slow_events_run(checks, env)


def scenario_connections(checks, env):
    """8 namespaces = 8 watches over HTTP/1.1 (one connection
    each); the Lease, PATCHes and Events must still get connections."""
    namespaces = ["conn%d" % i for i in range(8)]
    targets = []
    for namespace in namespaces:
        targets += seed_targets(env, namespace, ["app"])
    leader = {"lease_duration": "4s", "renew_deadline": "3s", "retry_period": "1s"}
    config = write_config(os.path.join(env.workdir, "connections.yaml"), env.prom.url, targets,
                          leader=leader)
    delete_lease(env)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "connections", config,
                            ["--kubeconfig", env.kubeconfig, "--identity", "replica-conn"])

    def observed():
        """(namespaces watched, "became leader" lines, successful PATCHes
        of the 8 targets) so far."""
        records = env.kube.log(since=seq)
        return ({r.get("namespace") for r in records if r.get("verb") == "watch"},
                [r for r in controller.lines() if r.get("msg") == "became leader"],
                [r for r in patches(records) if r.get("namespace") in namespaces
                 and r.get("status") == 200])

    def all_seen():
        watches, leader_lines, sent = observed()
        return (len(watches & set(namespaces)) == 8 and leader_lines
                and len({r["namespace"] for r in sent}) == 8)
    poll(all_seen, 10)
    watches, leader_lines, sent = observed()
    code = controller.stop()
    for namespace in namespaces:
        unseed_targets(env, namespace, ["app"])
    checks.check("8 namespaces: one watch per namespace", len(watches & set(namespaces)) == 8,
                 "watched %s" % sorted(w for w in watches if w))
    checks.check("8 namespaces over HTTP/1.1: becomes leader", bool(leader_lines))
    checks.check("8 namespaces over HTTP/1.1: PATCHes every target",
                 len({r["namespace"] for r in sent}) == 8,
                 "%d PATCHes, namespaces %s" % (len(sent), sorted({r["namespace"] for r in sent})))
    checks.check("8 namespaces: exits 0", code == 0, "exit %s" % code)


def scenario_retry_after(checks, env):
    """Retry-After 1000000000 (31 years) and a 20-digit one are
    clamped to the 5-minute backoff ceiling (and crash nothing); a reload
    that changes the target clears its backoff."""
    names = ["app", "huge"]
    targets = seed_targets(env, "retry", names)
    path = os.path.join(env.workdir, "retry.yaml")
    write_config(path, env.prom.url, targets)
    env.kube.add_fault(verb="patch", namespace="retry", name="app", status=429,
                       retry_after=10 ** 9, count=1)
    env.kube.add_fault(verb="patch", namespace="retry", name="huge", status=503,
                       retry_after=10 ** 20, count=1)
    seq = last_seq(env)
    controller = Controller(env.cpscale, env.workdir, "retry", path,
                            ["--kubeconfig", env.kubeconfig])
    for name, value in (("app", "1000000000"), ("huge", "100000000000000000000")):
        try:
            lines = controller.wait_for(
                lambda r: r.get("msg") == "tick" and r.get("target") == "retry/" + name
                and r.get("action") == "backing_off", 20, "backing off")
            waits = [float(r.get("backoff_s", "nan")) for r in lines]
        except AssertionError:
            waits = []
        checks.check("Retry-After %s: the target backs off, at most 5 min" % value,
                     waits and max(waits) <= 300.0, "backoff_s %s" % waits[:3])
    answered = [r for r in patches(env.kube.log(since=seq)) if r.get("namespace") == "retry"]
    checks.check("Retry-After: the PATCHes got the 429 and 503",
                 {r.get("status") for r in answered} >= {429, 503})
    checks.check("Retry-After: the controller is still running",
                 controller.process.poll() is None, "exit %s" % controller.process.poll())
    targets[0]["max"] = 5   # the operator changes the target: its backoff goes
    write_config(path, env.prom.url, targets)
    controller.process.send_signal(signal.SIGHUP)
    reloaded = time.time()
    deadline = reloaded + 10 * TIME_FACTOR
    ok = []
    while time.time() < deadline and not ok:
        ok = [r for r in patches(env.kube.log(since=seq), "app") if r.get("namespace") == "retry"
              and r.get("status") == 200]
        time.sleep(0.2)
    time.sleep(1)
    unchanged = [r for r in patches(env.kube.log(since=seq), "huge")
                 if r.get("namespace") == "retry" and r.get("status") == 200]
    code = controller.stop()
    unseed_targets(env, "retry", names)
    checks.check("Retry-After: an unchanged target keeps its backoff across the reload",
                 not unchanged, "%d PATCHes of retry/huge" % len(unchanged))
    checks.check("Retry-After 1000000000: a reload that changes the target clears its backoff",
                 bool(ok), "PATCHed %.1f s after the reload" % (ok[0]["t"] - reloaded)
                 if ok else "no PATCH within 10 s of the reload")
    checks.check("Retry-After: exits 0", code == 0, "exit %s" % code)


def expected_user_agent(env):
    """The version `cpscale --version` prints ("cpscale 0.1.0")."""
    return subprocess.run([env.cpscale, "--version"], capture_output=True, text=True,
                          timeout=10).stdout.split()[-1]


def scenario_user_agent(checks, env):
    """every request to the API server and to Prometheus says
    `cpscale/VERSION (linux/ARCH)`: reads, the watch, the Lease, PATCHes,
    Events, queries."""
    version = expected_user_agent(env)
    targets = seed_targets(env, "agent", ["app"])
    leader = {"lease_duration": "4s", "renew_deadline": "3s", "retry_period": "1s"}
    config = write_config(os.path.join(env.workdir, "agent.yaml"), env.proxy_url, targets,
                          leader=leader)
    delete_lease(env)
    seq = last_seq(env)
    proxy_start = 0
    if os.path.exists(env.proxy_log):
        with open(env.proxy_log) as handle:
            proxy_start = len(handle.readlines())
    controller = Controller(env.cpscale, env.workdir, "agent", config,
                            ["--kubeconfig", env.kubeconfig, "--identity", "replica-agent"])
    time.sleep(6 * TIME_FACTOR)
    code = controller.stop()
    records = [r for r in env.kube.log(since=seq) if r.get("user") == "cpscale"]
    with open(env.proxy_log) as handle:
        queries = [json.loads(line) for line in handle.readlines()[proxy_start:]]
    unseed_targets(env, "agent", ["app"])
    kinds = {(r.get("verb"), r.get("resource")) for r in records}
    bad = [(r.get("verb"), r.get("resource"), r.get("user_agent")) for r in records
           if not USER_AGENT_RE.match(r.get("user_agent") or "")
           or USER_AGENT_RE.match(r["user_agent"]).group(1) != version]
    checks.check("User-Agent on every API request (%d requests: %s)"
                 % (len(records), ", ".join(sorted("%s %s" % k for k in kinds))),
                 records and not bad and {("patch", "deployments"), ("create", "events"),
                                          ("update", "leases"), ("watch", "deployments")} <= kinds,
                 "bad: %s" % bad[:5])
    bad_queries = [q.get("user_agent") for q in queries
                   if not USER_AGENT_RE.match(q.get("user_agent") or "")]
    checks.check("User-Agent on every Prometheus query (%d queries)" % len(queries),
                 queries and not bad_queries, "bad: %s" % bad_queries[:5])
    checks.check("User-Agent: exits 0", code == 0, "exit %s" % code)


def scenario_http2(checks, env):
    """A real API server speaks HTTP/2 over TLS: the same Lease and write
    discipline through nghttpx (h2 in front of the fake), proven with
    kubectl too."""
    if not kubefake.Http2Front.available():
        checks.check("HTTP/2: nghttpx is installed (.ci/install-deps test)", False)
        return
    front = kubefake.Http2Front(env.kube).start()
    try:
        kubeconfig = env.kube.write_kubeconfig(os.path.join(env.workdir, "kubeconfig-h2"),
                                               server=front.url)
        kubectl = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "deployments",
                                  "-n", "shop", "-o", "name"], capture_output=True, text=True,
                                 timeout=60)
        listed = kubectl.returncode == 0 and "deployment.apps/idle" in kubectl.stdout
        checks.check("HTTP/2: kubectl get deployments through the h2 front", listed,
                     "%d deployments listed" % len(kubectl.stdout.split()) if listed
                     else (kubectl.stdout + kubectl.stderr)[-500:])
        seq = last_seq(env)
        slow_patches_run(checks, env, kubeconfig, "http2")
        records = [r for r in env.kube.log(since=seq) if r.get("user") == "cpscale"]
        via_h2 = [r for r in records if (r.get("via") or "").startswith("2 ")]
        front_lines = front.requests()
        h2_paths = [p for alpn, _, p, _ in front_lines if alpn == "h2"]
        checks.check("HTTP/2: the controller's Lease and PATCH requests came over h2",
                     any("/leases" in p for p in h2_paths) and any("/scale" in p for p in h2_paths)
                     and len(via_h2) == len(records) and records,
                     "%d of %d requests via h2; front: %d h2 lines"
                     % (len(via_h2), len(records), len(h2_paths)))
    finally:
        front.stop()


SCENARIOS = [
    ("events", scenario_events_and_patch_shape),
    ("conflict", scenario_conflict_retry),
    ("event-spam", scenario_event_spam),
    ("prometheus", scenario_prometheus_faults),
    ("staleness", scenario_staleness),
    ("queries", scenario_queries_per_tick),
    ("apiserver", scenario_apiserver_faults),
    ("watch", scenario_watch),
    ("watch-storm", scenario_watch_storm),
    ("watch-silent", scenario_watch_silent),
    ("watch-bookmarks", scenario_watch_bookmarks),
    ("leases", scenario_leases),
    ("slow-patches", scenario_slow_patches),
    ("connections", scenario_connections),
    ("retry-after", scenario_retry_after),
    ("user-agent", scenario_user_agent),
    ("http2", scenario_http2),
    ("reload", scenario_reload),
    ("sigterm", scenario_sigterm_mid_tick),
    ("sigterm-renewal", scenario_sigterm_mid_renewal),
    ("credentials", scenario_credentials),
    ("closed-loop", scenario_closed_loop),
    ("first-decision", scenario_first_decision),
    ("manifests", scenario_manifests),
    ("listen", scenario_listen),
    ("rbac-live", scenario_rbac_live),
    ("rbac", scenario_rbac),   # last: it checks every request of the run
]


# Scenarios run by CompanionThreads, each group in an environment of its
# own, while the others run in the first. The first group: event spam and
# the Prometheus faults (short, but mostly sleeps of N x TIME_FACTOR), then
# the closed loop (a fixed 140 s ramp, its controller mostly waiting). The
# second: the API server faults, the watches, the leases and the first
# decision (about a third of the rest under valgrind). The controllers
# spend most of the suite waiting (under valgrind too: 45 % of one core
# when the groups ran two at a time), so three at a time end sooner without
# starving one another; the groups are sized so that the three threads take
# about as long under valgrind (the closed loop bounds the run without). Within a group one after the other, in
# SCENARIOS' order: their faults hit the group's whole apiserver or
# Prometheus proxy, so none may overlap another.
COMPANION_GROUPS = (("companion", ("event-spam", "prometheus", "closed-loop")),
                    ("companion-2", ("apiserver", "watch", "watch-storm", "leases",
                                     "first-decision")))
COMPANION_SCENARIOS = tuple(name for _, names in COMPANION_GROUPS for name in names)


class CompanionThread:
    """A group of COMPANION_GROUPS in a thread of its own, in an Environment
    of its own (under WORKDIR/NAME), while the other scenarios run in
    `env`: none of those scenarios' faults, Prometheus reloads or Leases
    can reach them, and they cannot reach those. The companion's apiserver
    log is judged by the rbac scenario too (env.companions), and its
    controllers' logs are searched for its secrets when it is done.
    start() returns at once; join() waits for the scenarios to end. A
    failure to start the environment is one failed check, as a scenario
    that raises is."""

    def __init__(self, checks, env, only, name, scenario_names):
        import threading
        self.checks = checks
        self.only = only
        self.name = name
        self.scenario_names = scenario_names
        self.env = Environment(env.cpscale, os.path.join(env.workdir, name))
        env.companions.append(self.env)
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)

    def run(self):
        try:
            self.env.start()
        except Exception as error:  # noqa: BLE001 - reported as a failed check
            self.checks.check("%s environment started" % self.name, False, repr(error))
            return
        run_scenarios(self.checks, self.env,
                      [s for s in SCENARIOS if s[0] in self.scenario_names], self.only,
                      after_each=self.env.kube.clear_faults)

    def start(self):
        self.thread.start()

    def join(self):
        self.thread.join()


def run_scenarios(checks, env, scenarios, only, after_each=None):
    """Run each (name, scenario) whose name is in `only` (all when None);
    a scenario that raises is one failed check, not the end of the suite."""
    for name, scenario in scenarios:
        if only and name not in only:
            continue
        print("# %s" % name)
        began = time.monotonic()
        try:
            scenario(checks, env)
        except Exception as error:  # a broken scenario is a failure, not a crash
            checks.check("%s: scenario ran to the end" % name, False, repr(error))
        print("# %s: %.1f s" % (name, time.monotonic() - began))
        if after_each:
            after_each()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpscale", required=True)
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    harness.install_signal_handlers()
    checks = Checks()
    workdir = tempfile.mkdtemp(prefix="cps-controller-")
    env = Environment(os.path.abspath(args.cpscale), workdir)
    only = set(args.only.split(",")) if args.only else None
    companions = []
    last = ("manifests", "rbac")  # after the companion: rbac judges every request
    try:
        env.start()
        for name, names in COMPANION_GROUPS:
            if not only or only & set(names):
                companions.append(CompanionThread(checks, env, only, name, names))
                companions[-1].start()
        run_scenarios(checks, env, [s for s in SCENARIOS if s[0] not in COMPANION_SCENARIOS
                                    and s[0] not in last], only, after_each=env.kube.clear_faults)
        for companion in companions:
            companion.join()
            if companion.env.kube:
                leaked = leaked_secrets(companion.env)
                checks.check("no token or key in any controller log (%s environment)"
                             % companion.name, not leaked, ", ".join(leaked))
        run_scenarios(checks, env, [s for s in SCENARIOS if s[0] in last], only,
                      after_each=env.kube.clear_faults)
    finally:
        # after a normal run the thread has ended; after a signal, stopping
        # its parts ends its scenarios (the thread is a daemon)
        for companion in companions:
            companion.env.stop()
        env.stop()
    return checks.finish(workdir, args.keep)


if __name__ == "__main__":
    sys.exit(main())
