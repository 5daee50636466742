#!/usr/bin/env python3
"""`cpscale run` against hostile inputs:
a tiny HTTP server on 127.0.0.1 plays Prometheus and answers what an
attacker or a broken proxy would, the fake kube-apiserver plays the
cluster.

Scenarios (one printed line per check; "N passed, N failed" at the end):
  answers       a 30 MB answer of `[]` items and a well-formed answer with
                1,000,000 series: each is a counted, logged query error
                (never decided on) and the controller's peak RSS (VmHWM
                from /proc/PID/status) stays under PEAK_RSS_LIMIT_MB; a
                sane answer is decided on (the control case)
  slow-clients  SLOW_CLIENTS connections each sending one byte every
                SLOW_BYTE_EVERY_S: /healthz and /metrics still answer
                within PROBE_LIMIT_S
  proxy         with http_proxy / HTTPS_PROXY set, a recording proxy on
                127.0.0.1 never sees the Prometheus bearer token

Usage: test_hostile.py --cpscale build/cpscale [--only answers,...] [--keep]
"""

import argparse
import http.server
import os
import socket
import socketserver
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
import kubefake  # noqa: E402
import test_controller as tc  # noqa: E402  (its Controller, Checks, write_config)

PEAK_RSS_LIMIT_MB = 128        # the pod's limit is 256 MiB: half of it, with room
EMPTY_ARRAYS_BYTES = 30 << 20  # the reproduction's 30 MB of `[]` items
MILLION = 1000000
UNDER_BYTE_CAP = 2000000       # below the body cap for one target
SLOW_CLIENTS = 64
SLOW_BYTE_EVERY_S = 3.0
SLOW_PHASE_S = 15.0            # long enough for several probe periods
PROBE_LIMIT_S = 1.0
PROM_TOKEN = "prom-secret-token-0123456789"
ANSWER_WAIT_S = 60             # generous: the machine is shared


def envelope(items):
    return (b'{"status":"success","data":{"resultType":"vector","result":['
            + items + b']}}')


def empty_arrays_body():
    n = EMPTY_ARRAYS_BYTES // 3
    return envelope(b"[]," * (n - 1) + b"[]")


def small_empty_arrays_body():
    """`[]` items well under the body cap for one target (5,124,096 bytes:
    CPS_PROM_BYTES_PER_SERIES x (4 + 5000) series): only the decoded budget
    can refuse it."""
    n = (UNDER_BYTE_CAP - 100) // 3
    return envelope(b"[]," * (n - 1) + b"[]")


def million_series_body():
    # 30 bytes each: 30 MB, under the old 32 MiB body cap, as reproduced
    series = b'{"metric":{},"value":[1,"1"]},'
    return envelope(series * (MILLION - 1) + series[:-1])


def sane_body():
    series = ('{"metric":{"namespace":"shop","deployment":"idle"},"value":[%.3f,"5"]}'
              % time.time())
    return envelope(series.encode())


class FakePrometheus:
    """Answers every /api/v1/query with `self.body` (bytes or a callable),
    recording each request's headers."""

    def __init__(self):
        self.body = sane_body
        self.requests = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (the stdlib's name)
                owner.requests.append(dict(self.headers))
                body = owner.body() if callable(owner.body) else owner.body
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the controller hung up on a refused answer

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingTCPServer):
            def handle_error(self, request, client_address):
                pass  # a reset by the controller is the expected refusal

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def peak_rss_mb(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return -1.0


class Env:
    def __init__(self, cpscale, workdir):
        self.cpscale = cpscale
        self.workdir = workdir
        self.kube = kubefake.FakeApiserver(manual_status=True)
        self.kube.start()
        for ns in ("cpscale", "shop"):
            self.kube.seed(tc.namespace_object(ns))
        self.kube.seed(tc.deployment("shop", "idle", tc.IDLE_START_REPLICAS))
        self.kube.set_tokens({self.kube.token: "cpscale"})
        self.kubeconfig = self.kube.write_kubeconfig(os.path.join(workdir, "kubeconfig"))
        self.prom = FakePrometheus()

    def controller(self, name, prom_url=None, extra="", args=(), env=None, interval="2s",
                   prom_extra=()):
        """A running controller on one target; `args` may bring its own
        --kubeconfig, `prom_extra` adds lines to the prometheus section."""
        path = os.path.join(self.workdir, name + ".yaml")
        tc.write_config(path, prom_url or self.prom.url,
                        [{"namespace": "shop", "deployment": "idle", "min": 1, "max": 20}],
                        interval=interval, prom_timeout="20s", extra=extra)
        if prom_extra:
            with open(path) as handle:
                text = handle.read()
            text = text.replace("prometheus:\n", "prometheus:\n" + "\n".join(prom_extra)
                                + "\n", 1)
            with open(path, "w") as handle:
                handle.write(text)
        if "--kubeconfig" not in args:
            args = ["--kubeconfig", self.kubeconfig] + list(args)
        return tc.Controller(self.cpscale, self.workdir, name, path, list(args), env=env)

    def stop(self):
        self.prom.stop()
        self.kube.stop()


def query_failures(controller):
    return [r for r in controller.lines() if r.get("msg") == "query failed"]


def scenario_answers(checks, env):
    """Hostile Prometheus answers are refused within a memory bound."""
    env.prom.body = sane_body
    control = env.controller("control")
    try:
        ticks = control.wait_for(lambda r: r.get("msg") == "tick"
                                 and r.get("target") == "shop/idle", ANSWER_WAIT_S, "a tick")
        checks.check("answers sane (control): decided on the metrics",
                     not query_failures(control)
                     and not str(ticks[0].get("reason", "")).startswith("missing_metrics"),
                     "reason %s" % ticks[0].get("reason"))
    finally:
        control.stop()
    for name, make in (("30 MB of [] items", empty_arrays_body),
                       ("1,000,000 series", million_series_body),
                       ("2 MB of [] items", small_empty_arrays_body)):
        body = make()
        env.prom.body = body
        controller = env.controller("hostile-%d" % len(body))
        try:
            # every query of the first tick answered (refused) and the tick over
            controller.wait_for(lambda r: r.get("msg") == "tick"
                                and r.get("target") == "shop/idle", ANSWER_WAIT_S,
                                "a tick after the hostile answers")
            peak = peak_rss_mb(controller.process.pid)
            failures = query_failures(controller)
            ticks = tc.tick_lines(controller, "shop/idle")
            reason = ticks[0].get("reason") if ticks else None
            checks.check("answers %s: peak RSS under %d MB" % (name, PEAK_RSS_LIMIT_MB),
                         0 < peak < PEAK_RSS_LIMIT_MB, "VmHWM %.1f MB" % peak)
            checks.check("answers %s: every query a logged error" % name,
                         len(failures) >= 4, "%d query failures logged; first %s"
                         % (len(failures), failures[0].get("error") if failures else None))
            if make is small_empty_arrays_body:
                checks.check("answers %s: refused by the decoded budget, not decoded" % name,
                             failures and "budget" in str(failures[0].get("error")),
                             "first error %s" % (failures[0].get("error") if failures else None))
            checks.check("answers %s: never decided on" % name,
                         reason in ("missing_metrics_hold", "missing_metrics_fallback"),
                         "reason %s" % reason)
            status, text = controller.http("/metrics")
            counted = [line for line in text.splitlines()
                       if line.startswith("cpscale_query_errors_total")
                       and not line.rstrip().endswith(" 0")]
            checks.check("answers %s: counted in cpscale_query_errors_total" % name,
                         status == 200 and counted, "%d non-zero series" % len(counted))
        finally:
            controller.stop()
    env.prom.body = sane_body


class SlowClient(threading.Thread):
    """One connection that sends a request one byte every SLOW_BYTE_EVERY_S."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port = port
        self.stop_event = stop

    def run(self):
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            return
        try:
            for i in range(len(request)):
                if self.stop_event.wait(0 if i == 0 else SLOW_BYTE_EVERY_S):
                    break
                try:
                    sock.sendall(request[i:i + 1])
                except OSError:
                    # dropped by the server: come back, as an attacker would
                    sock.close()
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            pass
        finally:
            sock.close()


def timed_get(port, path):
    """(seconds, status) of one GET; status None when refused or timed out."""
    start = time.monotonic()
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=5) as answer:
            answer.read()
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError:
        status = None
    return time.monotonic() - start, status


def scenario_slow_clients(checks, env):
    """SLOW_CLIENTS slow clients do not take the probes down."""
    env.prom.body = sane_body
    controller = env.controller("slow-clients", interval="1s")
    stop = threading.Event()
    try:
        port = controller.port()
        controller.wait_for(lambda r: r.get("msg") == "tick", ANSWER_WAIT_S, "a tick")
        clients = [SlowClient(port, stop) for _ in range(SLOW_CLIENTS)]
        for client in clients:
            client.start()
        time.sleep(2.0)
        samples = []
        deadline = time.monotonic() + SLOW_PHASE_S
        while time.monotonic() < deadline:
            for path in ("/healthz", "/readyz"):
                samples.append((path,) + timed_get(port, path))
            time.sleep(0.5)
        worst = max(s[1] for s in samples)
        bad = [s for s in samples if s[2] != 200 or s[1] > PROBE_LIMIT_S]
        checks.check("slow clients: /healthz and /readyz answer 200 within %gs" % PROBE_LIMIT_S,
                     not bad, "%d probes, %d late or refused, worst %.3fs"
                     % (len(samples), len(bad), worst))
        seconds, status = timed_get(port, "/metrics")
        checks.check("slow clients: /metrics still answers", status == 200,
                     "status %s in %.3fs" % (status, seconds))
    finally:
        stop.set()
        controller.stop()


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that records every byte it can read: the
    head of each plain request (answered 502, never forwarded) and the
    CONNECT line of each tunnel, whose bytes it relays without reading."""

    def __init__(self):
        self.seen = []
        self.connects = []
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                owner.seen.append(head)
                line = head.split(b"\r\n", 1)[0].split()
                if len(line) >= 2 and line[0] == b"CONNECT":
                    owner.connects.append(line[1].decode())
                    host, port = line[1].decode().rsplit(":", 1)
                    upstream = socket.create_connection((host, int(port)), timeout=10)
                    self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    relay(self.request, upstream)
                else:
                    self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                                         b"Connection: close\r\n\r\n")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def relay(a, b):
    """Copy bytes both ways until either side closes."""
    import selectors
    selector = selectors.DefaultSelector()
    selector.register(a, selectors.EVENT_READ, b)
    selector.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            for key, _ in selector.select(timeout=30):
                data = key.fileobj.recv(65536)
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        return
    finally:
        b.close()


def scenario_proxy(checks, env):
    """The Prometheus token never reaches a proxy in clear text; the API
    server is reached through kubeconfig's proxy-url in a CONNECT tunnel."""
    proxy = RecordingProxy()
    token_file = os.path.join(env.workdir, "prom-token")
    with open(token_file, "w") as handle:
        handle.write(PROM_TOKEN + "\n")
    env.prom.body = sane_body
    env.prom.requests.clear()
    proxy_env = {"http_proxy": proxy.url, "https_proxy": proxy.url, "HTTPS_PROXY": proxy.url,
                 "ALL_PROXY": proxy.url, "no_proxy": "", "NO_PROXY": ""}
    controller = env.controller("proxy-prom", extra="", env=proxy_env,
                                prom_extra=["  bearer_token_file: %s" % token_file])
    try:
        controller.wait_for(lambda r: r.get("msg") == "tick" and r.get("target") == "shop/idle",
                            ANSWER_WAIT_S, "a tick")
        leaked = [h for h in proxy.seen if PROM_TOKEN.encode() in h]
        checks.check("proxy: the Prometheus token never reaches the proxy",
                     not leaked, "%d of %d proxied requests carried it"
                     % (len(leaked), len(proxy.seen)))
        direct = [r for r in env.prom.requests
                  if r.get("Authorization") == "Bearer " + PROM_TOKEN]
        checks.check("proxy: Prometheus got the token directly", direct,
                     "%d requests with the token" % len(direct))
        warned = [r for r in controller.lines() if "proxy is not used" in r.get("msg", "")]
        checks.check("proxy: a warning says the proxy is not used", warned,
                     "ignored %s" % (warned[0].get("ignored") if warned else None))
    finally:
        controller.stop()
    # the API server through kubeconfig's proxy-url
    kubeconfig = os.path.join(env.workdir, "kubeconfig-proxy")
    with open(env.kubeconfig) as handle:
        text = handle.read()
    text = text.replace("    server: %s\n" % env.kube.url,
                        "    server: %s\n    proxy-url: %s\n" % (env.kube.url, proxy.url))
    with open(kubeconfig, "w") as handle:
        handle.write(text)
    os.chmod(kubeconfig, 0o600)
    proxy.seen.clear()
    proxy.connects.clear()
    controller = env.controller("proxy-kube", args=["--kubeconfig", kubeconfig])
    try:
        ticks = controller.wait_for(lambda r: r.get("msg") in ("tick", "cannot start: Kubernetes "
                                                               "credentials"),
                                    ANSWER_WAIT_S, "a tick or a refusal")
        checks.check("proxy: kubeconfig proxy-url is accepted",
                     ticks[0].get("msg") == "tick", "%s %s" % (ticks[0].get("msg"),
                                                               ticks[0].get("error")))
        port = env.kube.url.rsplit(":", 1)[1]
        checks.check("proxy: the API server is reached through a CONNECT tunnel",
                     any(c.endswith(":" + port) for c in proxy.connects),
                     "CONNECTs %s" % proxy.connects[:3])
        leaked = [h for h in proxy.seen if env.kube.token.encode() in h]
        checks.check("proxy: the API token stays inside TLS", not leaked,
                     "%d of %d heads carried it" % (len(leaked), len(proxy.seen)))
    finally:
        controller.stop()
        proxy.stop()


SCENARIOS = [
    ("answers", scenario_answers),
    ("slow-clients", scenario_slow_clients),
    ("proxy", scenario_proxy),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpscale", required=True)
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    harness.install_signal_handlers()
    checks = tc.Checks()
    workdir = tempfile.mkdtemp(prefix="cps-hostile-")
    only = set(args.only.split(",")) if args.only else None
    env = Env(os.path.abspath(args.cpscale), workdir)
    try:
        tc.run_scenarios(checks, env, SCENARIOS, only)
    finally:
        env.stop()
    return checks.finish(workdir, args.keep)


if __name__ == "__main__":
    sys.exit(main())
