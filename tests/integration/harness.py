"""Shared plumbing for cpscale's integration suites (standard library only).

The suites under tests/integration start real components on 127.0.0.1 -- the
Debian `prometheus` binary, the workload emulator (tests/fakes), the fake
kube-apiserver, the cpscale controller itself -- and check what they do
together. This module gives them:

  free_port()          a free TCP port on 127.0.0.1;
  Process              any subprocess, output captured to files, stopped with
                       SIGTERM then SIGKILL after a bound;
  Prometheus           a real Prometheus on a free port with a generated config
                       and a throwaway TSDB, optionally backfilled with
                       OpenMetrics text through `promtool` before it starts;
  http_get_json()      a bounded GET that ignores any proxy settings;
  wait_until()         poll a predicate with a deadline;
  install_signal_handlers()  turn SIGTERM/SIGHUP into SystemExit so that
                       `with` blocks still stop what they started.

Every wait takes a timeout, everything binds 127.0.0.1 only, and every
process started here is also stopped by an atexit hook if a suite forgets.

Quirks met with Prometheus 2.42 (Debian), checked here and written down once:
  * First scrape: about 5 s after start (service discovery hands targets to
    the scrape manager at most every 5 s), so wait for `up == 1` with
    wait_for_series() before timing anything from "now".
  * Backfill: `promtool tsdb create-blocks-from openmetrics` wants every
    sample to carry a timestamp in *seconds*, the text to end in `# EOF`
    (added here when missing), and counters declared `# TYPE foo counter`
    with samples named `foo_total`. A sample without a timestamp fails
    with "expected timestamp for series got none". Blocks are cut at 2 h
    boundaries.
  * Blocks are only picked up when Prometheus opens the TSDB, so the
    backfill runs before the process starts. Keep backfilled samples in the
    past (older than the first live scrape); live scraping then works as
    usual (checked: an hour backfilled up to 15 s ago, then live scrapes).
  * Live series get job="emulator" and instance="127.0.0.1:PORT" labels
    (honor_labels only keeps the target's own labels on a clash). Backfilled
    series without those two labels are *different* series: a query that
    sums by (namespace, deployment) adds both while both are visible. For a
    seamless history, give the backfill the same job and instance labels
    (pick the emulator's port up front with free_port()).
  * Lookback: an instant query takes a series' latest sample up to 5 min
    old. A series that stops being scraped while its target is still up
    gets a staleness marker and vanishes at once (deleted pods do this);
    backfilled series just end, so a backfilled *gauge* stays visible for
    5 min after its last sample. extra_args=["--query.lookback-delta=30s"]
    shortens that.
  * Retention: time retention is measured from the newest block's end, and
    compaction deletes blocks beyond it; backfilled history older than the
    default 15 d would go, hence retention="100y" here.
  * With a 1 s scrape interval the scrape timeout must not exceed it; the
    generated config sets scrape_timeout explicitly.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

PROMETHEUS_BIN = os.environ.get("CPS_PROMETHEUS", "/usr/bin/prometheus")
PROMTOOL_BIN = os.environ.get("CPS_PROMTOOL", "/usr/bin/promtool")
LOOPBACK = "127.0.0.1"
# Seconds a stopping process gets between SIGTERM and SIGKILL.
DEFAULT_STOP_TIMEOUT_S = 10.0
# Bound on one HTTP request to a local component.
DEFAULT_HTTP_TIMEOUT_S = 5.0
# How many bytes of a log file to print when something failed.
LOG_TAIL_BYTES = 8000

# Opener that never goes through a proxy: the components all live on
# loopback, and an http_proxy in the environment must not reroute them.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Every Process still running, so that the atexit hook can stop it.
_LIVE_PROCESSES = []


# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
# The socket is closed before returning, so there is a small race with other
# programs; suites on one machine are fine in practice, and a process that
# loses the race fails its readiness wait loudly rather than silently.
def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# wait_until: call predicate() until it returns something truthy, and return
# that; raise TimeoutError naming `what` when `timeout` seconds pass first.
# Exceptions from the predicate count as "not yet" (the thing being waited
# for is typically not up), and the last one is put in the error message.
def wait_until(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last_error = exc
        if time.monotonic() >= deadline:
            detail = " (last error: %r)" % (last_error,) if last_error else ""
            raise TimeoutError("timed out after %.1fs waiting for %s%s" % (timeout, what, detail))
        time.sleep(interval)


# http_get_json: GET url (with optional query parameters), decode the JSON
# body. Raises urllib.error.HTTPError / URLError / ValueError as urllib does.
# Bounded by `timeout` and never proxied.
def http_get_json(url, params=None, timeout=DEFAULT_HTTP_TIMEOUT_S):
    if params:
        url = url + "?" + urllib.parse.urlencode(params)
    with _DIRECT.open(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


# http_get_text: GET url and return (status, body text); HTTP errors are
# returned as their status rather than raised, connection errors raise.
def http_get_text(url, timeout=DEFAULT_HTTP_TIMEOUT_S):
    try:
        with _DIRECT.open(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


def _tail(path, limit=LOG_TAIL_BYTES):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            text = fh.read().decode("utf-8", "replace")
        return ("...\n" if size > limit else "") + text
    except OSError as exc:
        return "(cannot read %s: %s)" % (path, exc)


class Process:
    """A subprocess with its output in files and a bounded stop.

    Process(args, name=None, log_dir=None, env=None, cwd=None,
            stop_timeout=10, stdin_data=None)
    .start() -> self; also a context manager (start on enter, stop on exit,
    logs printed to stderr when the block raised).
    .stop(timeout=None) -> exit code: SIGTERM, wait up to the bound, then
    SIGKILL and wait again; safe to call twice.
    .poll(), .pid, .returncode, .running
    .stdout_path / .stderr_path, .stdout_text() / .stderr_text(), .dump_logs()
    .wait(timeout) -> exit code, raising subprocess.TimeoutExpired.

    The child runs in its own session (process group), so a terminal's ^C
    reaches the suite first and the suite decides how to stop it; stop()
    signals that group, which only ever holds what this child started.
    When log_dir is None a temp dir is made and removed by cleanup() unless
    keep_logs is set (CPS_KEEP_LOGS=1 keeps everything for post-mortems).
    """

    def __init__(self, args, name=None, log_dir=None, env=None, cwd=None,
                 stop_timeout=DEFAULT_STOP_TIMEOUT_S, stdin_data=None):
        self.args = [str(a) for a in args]
        self.name = name or os.path.basename(self.args[0])
        self._own_dir = log_dir is None
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="cps-%s-" % self.name)
        self.env = env
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self.stdin_data = stdin_data
        self.stdout_path = os.path.join(self.log_dir, self.name + ".stdout")
        self.stderr_path = os.path.join(self.log_dir, self.name + ".stderr")
        self.proc = None
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # start: launch the child with stdout/stderr going to files; raises
    # OSError when the binary cannot be run. Registers the process for the
    # atexit hook.
    def start(self):
        if self.proc is not None:
            raise RuntimeError("%s already started" % self.name)
        os.makedirs(self.log_dir, exist_ok=True)
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.args, stdout=out, stderr=err,
                stdin=subprocess.PIPE if self.stdin_data is not None else subprocess.DEVNULL,
                env=self.env, cwd=self.cwd, start_new_session=True)
        finally:
            out.close()
            err.close()
        if self.stdin_data is not None:
            data = self.stdin_data.encode() if isinstance(self.stdin_data, str) else self.stdin_data
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        _LIVE_PROCESSES.append(self)
        return self

    def poll(self):
        if self.proc is None:
            return None
        self.returncode = self.proc.poll()
        return self.returncode

    def wait(self, timeout):
        self.returncode = self.proc.wait(timeout=timeout)
        return self.returncode

    def _signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            # The group is gone and its id reused; fall back to the child.
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    # stop: SIGTERM, up to `timeout` seconds (default stop_timeout) for a
    # clean exit, then SIGKILL. Returns the exit code (negative = signal).
    # Never raises for an already dead child; never waits unboundedly.
    def stop(self, timeout=None):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                sys.stderr.write("%s (pid %d) ignored SIGTERM; killing\n" % (self.name, self.proc.pid))
                self._signal_group(signal.SIGKILL)
                try:
                    self.proc.wait(timeout=DEFAULT_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    sys.stderr.write("%s (pid %d) survived SIGKILL\n" % (self.name, self.proc.pid))
        else:
            # The child is gone; still sweep anything it left in its group.
            self._signal_group(signal.SIGKILL)
        self.returncode = self.proc.poll()
        if self in _LIVE_PROCESSES:
            _LIVE_PROCESSES.remove(self)
        return self.returncode

    def stdout_text(self):
        return _read_text(self.stdout_path)

    def stderr_text(self):
        return _read_text(self.stderr_path)

    # dump_logs: print the tail of both output files to stderr (for a failing
    # suite, so CI logs show why a component misbehaved).
    def dump_logs(self, stream=None):
        stream = stream or sys.stderr
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            text = _tail(path)
            if text.strip():
                stream.write("----- %s %s (%s) -----\n%s\n" % (self.name, label, path, text))

    def cleanup(self):
        if self._own_dir and not os.environ.get("CPS_KEEP_LOGS"):
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        if exc_type is not None:
            self.dump_logs()
        self.cleanup()
        return False


def _read_text(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


@atexit.register
def _stop_leftovers():
    for proc in list(_LIVE_PROCESSES):
        proc.stop(timeout=3)


# install_signal_handlers: make SIGTERM and SIGHUP raise SystemExit in the
# main thread, so a suite killed by ctest's timeout unwinds its `with` blocks
# and stops Prometheus, the emulator and the controller instead of leaving
# them behind. Call once at the top of main().
def install_signal_handlers():
    def _raise(signum, _frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)


def _prometheus_config(scrape_targets, scrape_interval):
    # Prometheus reads YAML, and JSON is YAML: no YAML writer needed.
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "scrape_configs": [],
    }
    if scrape_targets:
        config["scrape_configs"].append({
            "job_name": "emulator",
            "honor_labels": True,
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "static_configs": [{"targets": list(scrape_targets)}],
        })
    return json.dumps(config, indent=2) + "\n"


class PrometheusError(RuntimeError):
    """A Prometheus API call answered with status != success."""


class Prometheus:
    """A real Prometheus server for one suite.

    Prometheus(scrape_targets=None, scrape_interval="1s",
               blocks_from_openmetrics=None, extra_args=(), retention="100y",
               enable_lifecycle=False, start_timeout=30)

    As a context manager it backfills (when blocks_from_openmetrics is
    given), starts Prometheus on 127.0.0.1:<free port>, waits for /-/ready,
    and on exit stops it (SIGTERM, SIGKILL after a bound) and removes its
    temp dir; when the block raised, the log is printed first.
    start()/stop() do the same by hand.

    scrape_targets: ["127.0.0.1:PORT", ...], scraped as job "emulator" with
        honor_labels: true (so the emulator's namespace/pod labels win).
    blocks_from_openmetrics: OpenMetrics text (str or bytes, timestamps in
        seconds, ending in "# EOF") written to the TSDB directory by
        `promtool tsdb create-blocks-from openmetrics` before start.

    Attributes: .url ("http://127.0.0.1:PORT"), .port, .tmpdir, .data_dir,
    .config_path, .log_path.
    Methods: query(promql, time=None) and query_range(promql, start, end,
    step) return the decoded JSON response, with data's "resultType" and
    "result" also at the top level (raising PrometheusError on an API
    error); vector(promql, time=None) returns the instant result
    as {frozenset(labels.items()): float}; wait_ready(timeout);
    wait_for_series(promql, timeout, min_series=1) returns the result list;
    reload() (needs enable_lifecycle); dump_logs().
    """

    def __init__(self, scrape_targets=None, scrape_interval="1s",
                 blocks_from_openmetrics=None, extra_args=(), retention="100y",
                 enable_lifecycle=False, start_timeout=30.0):
        self.scrape_targets = list(scrape_targets or [])
        self.scrape_interval = scrape_interval
        self.blocks_from_openmetrics = blocks_from_openmetrics
        self.extra_args = list(extra_args)
        self.retention = retention
        self.enable_lifecycle = enable_lifecycle
        self.start_timeout = start_timeout
        self.port = None
        self.url = None
        self.tmpdir = None
        self.data_dir = None
        self.config_path = None
        self.log_path = None
        self._process = None

    # start: write the config, backfill, launch, wait for readiness. On any
    # failure the process is stopped, the log printed, and the error raised.
    def start(self):
        self.tmpdir = tempfile.mkdtemp(prefix="cps-prom-")
        self.data_dir = os.path.join(self.tmpdir, "data")
        os.makedirs(self.data_dir)
        self.config_path = os.path.join(self.tmpdir, "prometheus.yml")
        with open(self.config_path, "w") as fh:
            fh.write(_prometheus_config(self.scrape_targets, self.scrape_interval))
        try:
            if self.blocks_from_openmetrics is not None:
                self._backfill(self.blocks_from_openmetrics)
            self.port = free_port()
            self.url = "http://%s:%d" % (LOOPBACK, self.port)
            args = [
                PROMETHEUS_BIN,
                "--config.file=" + self.config_path,
                "--storage.tsdb.path=" + self.data_dir,
                "--storage.tsdb.retention.time=" + self.retention,
                "--web.listen-address=%s:%d" % (LOOPBACK, self.port),
                "--log.level=info",
            ]
            if self.enable_lifecycle:
                args.append("--web.enable-lifecycle")
            args += self.extra_args
            self._process = Process(args, name="prometheus", log_dir=self.tmpdir,
                                    stop_timeout=DEFAULT_STOP_TIMEOUT_S)
            # Prometheus logs to stderr; give the merged view one name.
            self.log_path = self._process.stderr_path
            self._process.start()
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.dump_logs()
            self.stop()
            raise
        return self

    # _backfill: turn OpenMetrics text into TSDB blocks in data_dir with
    # promtool. Raises RuntimeError with promtool's output when it fails
    # (bad text, no timestamps, no "# EOF").
    def _backfill(self, text):
        if isinstance(text, str):
            text = text.encode("utf-8")
        if not text.rstrip().endswith(b"# EOF"):
            text = text.rstrip(b"\n") + b"\n# EOF\n"
        src = os.path.join(self.tmpdir, "backfill.om")
        with open(src, "wb") as fh:
            fh.write(text)
        out = subprocess.run([PROMTOOL_BIN, "tsdb", "create-blocks-from", "openmetrics",
                              src, self.data_dir],
                             capture_output=True, text=True, timeout=120)
        with open(os.path.join(self.tmpdir, "promtool.log"), "w") as fh:
            fh.write(out.stdout + out.stderr)
        if out.returncode != 0:
            raise RuntimeError("promtool backfill failed (%d):\n%s%s"
                               % (out.returncode, out.stdout, out.stderr))

    def stop(self):
        if self._process is not None:
            self._process.stop()
            self._process = None
        if self.tmpdir and not os.environ.get("CPS_KEEP_LOGS"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    @property
    def running(self):
        return self._process is not None and self._process.running

    def dump_logs(self, stream=None):
        stream = stream or sys.stderr
        if self.log_path and os.path.exists(self.log_path):
            stream.write("----- prometheus log (%s) -----\n%s\n" % (self.log_path, _tail(self.log_path)))
        if self.tmpdir:
            promtool_log = os.path.join(self.tmpdir, "promtool.log")
            if os.path.exists(promtool_log):
                stream.write("----- promtool -----\n%s\n" % _tail(promtool_log))

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.dump_logs()
        self.stop()
        return False

    # wait_ready: poll /-/ready until it answers 200; raises TimeoutError
    # (and RuntimeError at once if the process died, e.g. on a bad flag).
    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        last_error = None
        while True:
            if self._process is not None and not self._process.running:
                raise RuntimeError("prometheus exited with status %s" % self._process.poll())
            try:
                status, _ = http_get_text(self.url + "/-/ready", timeout=2)
                if status == 200:
                    return
                last_error = "HTTP %d" % status
            except OSError as exc:
                last_error = repr(exc)
            if time.monotonic() >= deadline:
                raise TimeoutError("prometheus not ready after %.1fs (%s)" % (timeout, last_error))
            time.sleep(0.1)

    # _api: GET an API endpoint; returns the decoded response, with the
    # "data" member's "resultType" and "result" also copied to the top level
    # (so both resp["data"]["result"] and resp["result"] work). Raises
    # PrometheusError when status is not "success".
    def _api(self, path, params, timeout):
        try:
            body = http_get_json(self.url + path, params, timeout=timeout)
        except urllib.error.HTTPError as err:
            # Prometheus puts the reason of a 400/422 in a JSON body.
            try:
                body = json.loads(err.read().decode("utf-8"))
            except ValueError:
                raise PrometheusError("%s: HTTP %d" % (path, err.code)) from None
        if body.get("status") != "success":
            raise PrometheusError("%s %s: %s: %s" % (path, params.get("query"),
                                                     body.get("errorType"), body.get("error")))
        for key in ("resultType", "result"):
            body[key] = body["data"][key]
        return body

    # query: instant query; returns the decoded response ({"status",
    # "data": {"resultType", "result"}} plus top-level "resultType" and
    # "result" copies). time: Unix seconds or None (now).
    def query(self, promql, time=None, timeout=DEFAULT_HTTP_TIMEOUT_S):
        params = {"query": promql}
        if time is not None:
            params["time"] = "%.3f" % time
        return self._api("/api/v1/query", params, timeout)

    # query_range: range query over [start, end] every `step` seconds; same
    # shape as query() (resultType "matrix").
    def query_range(self, promql, start, end, step, timeout=DEFAULT_HTTP_TIMEOUT_S):
        params = {"query": promql, "start": "%.3f" % start, "end": "%.3f" % end,
                  "step": str(step)}
        return self._api("/api/v1/query_range", params, timeout)

    # vector: instant query as {frozenset of (label, value) pairs: float}.
    # A scalar result is returned under the empty label set.
    def vector(self, promql, time=None):
        data = self.query(promql, time)
        if data["resultType"] == "scalar":
            return {frozenset(): float(data["result"][1])}
        return {frozenset(s["metric"].items()): float(s["value"][1]) for s in data["result"]}

    # wait_for_series: poll an instant query until it returns at least
    # min_series series; returns the result list or raises TimeoutError.
    def wait_for_series(self, promql, timeout=30.0, min_series=1):
        def enough():
            result = self.query(promql)["result"]
            return result if len(result) >= min_series else None
        return wait_until(enough, timeout, "series of %s" % promql, interval=0.5)

    # reload: ask Prometheus to reread its config (POST /-/reload).
    def reload(self, timeout=DEFAULT_HTTP_TIMEOUT_S):
        req = urllib.request.Request(self.url + "/-/reload", data=b"", method="POST")
        with _DIRECT.open(req, timeout=timeout) as resp:
            return resp.status

    def set_scrape_targets(self, scrape_targets):
        """Rewrite the config with new targets and reload (needs enable_lifecycle)."""
        self.scrape_targets = list(scrape_targets)
        with open(self.config_path, "w") as fh:
            fh.write(_prometheus_config(self.scrape_targets, self.scrape_interval))
        return self.reload()


def bench_arg_parser(doc):
    """The argument parser every bench/ script starts from: its description
    is the docstring's first line, and --cpscale defaults to the build's
    binary in this checkout."""
    import argparse
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--cpscale", default=os.path.join(repo, "build", "cpscale"))
    return parser
