"""Start and drive the fake kube-apiserver (tests/fakes/kube_apiserver.py).

    with FakeApiserver() as api:
        api.seed({"apiVersion": "apps/v1", "kind": "Deployment", ...})
        api.write_kubeconfig(path, auth="token")
        ...
        api.log()        # every API request, as JSON records

`FakeApiserver` makes a throwaway PKI (tests/fakes/make_pki.sh) and a token
file in a temporary directory, starts the fake on free ports on 127.0.0.1,
waits until it answers, and on exit stops it (SIGTERM, then SIGKILL after
a bound) and removes the directory. Standard library only.
"""

import base64
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKES = os.path.join(os.path.dirname(HERE), "fakes")
SERVER = os.path.join(FAKES, "kube_apiserver.py")
MAKE_PKI = os.path.join(FAKES, "make_pki.sh")

START_TIMEOUT_S = 15.0    # bound on PKI + start-up until /healthz answers
STOP_TIMEOUT_S = 5.0      # SIGTERM grace before SIGKILL
HTTP_TIMEOUT_S = 10.0     # bound on one request to either port
PKI_TIMEOUT_S = 30.0
POLL_S = 0.05


class FakeApiserverError(RuntimeError):
    pass


class FakeApiserver:
    """One running fake kube-apiserver. Attributes once started: url
    (https://127.0.0.1:PORT), ca_file, token, user, client_cert, client_key,
    control_url, log_file, dir. `extra_args` go to the server's command line
    (e.g. ["--legacy-discovery"])."""

    def __init__(self, user="cpscale", group="system:masters", manual_status=False,
                 extra_args=(), keep_dir=False):
        self.user = user
        self.group = group
        self.manual_status = manual_status
        self.extra_args = list(extra_args)
        self.keep_dir = keep_dir
        self.proc = None
        self.dir = None
        self.url = self.control_url = None
        self.token = None

    # -- lifecycle --

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # start: PKI, tokens file, server process, then wait for both ports to
    # answer. On any failure the process is stopped and the directory
    # removed before raising.
    def start(self):
        self.dir = tempfile.mkdtemp(prefix="kubefake-")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        pki = os.path.join(self.dir, "pki")
        subprocess.run(["bash", MAKE_PKI, pki, self.user, self.group], check=True,
                       timeout=PKI_TIMEOUT_S, stdout=subprocess.DEVNULL)
        self.ca_file = os.path.join(pki, "ca.crt")
        self.client_cert = os.path.join(pki, "client.crt")
        self.client_key = os.path.join(pki, "client.key")
        self.tokens_file = os.path.join(self.dir, "tokens")
        self.token = secrets.token_urlsafe(24)
        self.set_tokens({self.token: (self.user, [self.group])})
        self.log_file = os.path.join(self.dir, "requests.jsonl")
        port_file = os.path.join(self.dir, "api.port")
        control_port_file = os.path.join(self.dir, "control.port")
        self.stderr_file = os.path.join(self.dir, "server.stderr")
        command = [sys.executable, SERVER, "--cert", os.path.join(pki, "server.crt"),
                   "--key", os.path.join(pki, "server.key"), "--client-ca", self.ca_file,
                   "--tokens", self.tokens_file, "--port-file", port_file,
                   "--control-port-file", control_port_file, "--log", self.log_file,
                   "--exit-with-parent"]
        if self.manual_status:
            command.append("--manual-status")
        command += self.extra_args
        with open(self.stderr_file, "wb") as stderr:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + START_TIMEOUT_S
        api_port = self._wait_for_file(port_file, deadline)
        control_port = self._wait_for_file(control_port_file, deadline)
        self.url = "https://127.0.0.1:%d" % api_port
        self.control_url = "http://127.0.0.1:%d" % control_port
        self._wait_healthy(deadline)

    def _wait_for_file(self, path, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise FakeApiserverError("fake apiserver exited with %d: %s"
                                         % (self.proc.returncode, self.stderr_text()))
            try:
                with open(path) as handle:
                    text = handle.read().strip()
                if text:
                    return int(text)
            except (OSError, ValueError):
                pass
            time.sleep(POLL_S)
        raise FakeApiserverError("fake apiserver did not write %s in time" % path)

    def _wait_healthy(self, deadline):
        while time.monotonic() < deadline:
            try:
                status, _, _ = self.request("GET", "/healthz", auth=None)
                if status == 200 and self._control("GET", "/healthz") is not None:
                    return
            except OSError:
                pass
            time.sleep(POLL_S)
        raise FakeApiserverError("fake apiserver did not answer in time")

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; remove the directory.
        Returns the exit status (None if it was never started)."""
        code = None
        if self.proc is not None:
            _terminate(self.proc)
            code = self.proc.returncode
        if self.dir and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        return code

    def stderr_text(self):
        try:
            with open(self.stderr_file, errors="replace") as handle:
                return handle.read()
        except (OSError, AttributeError):
            return ""

    # -- credentials --

    def set_tokens(self, tokens):
        """Replace the tokens file ({token: user} or {token: (user, [groups])});
        the server rereads it on change."""
        temporary = self.tokens_file + ".new"
        with open(temporary, "w") as handle:
            for token, user in tokens.items():
                user, groups = (user, []) if isinstance(user, str) else user
                handle.write("%s %s%s\n" % (token, user, " " + ",".join(groups) if groups else ""))
        os.replace(temporary, self.tokens_file)

    def rotate_token(self):
        """A new token for the same user; the old one stops working at once."""
        self.token = secrets.token_urlsafe(24)
        self.set_tokens({self.token: (self.user, [self.group])})
        return self.token

    def tls_context(self, client_cert=False):
        context = ssl.create_default_context(cafile=self.ca_file)
        if client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context

    # write_kubeconfig: a kubeconfig for this server (or `server`, e.g. an
    # Http2Front's url) with the CA inline and either the bearer token or
    # the client certificate and key inline.
    def write_kubeconfig(self, path, auth="token", namespace="default", server=None, token=None):
        def inline(file_name):
            with open(file_name, "rb") as handle:
                return base64.b64encode(handle.read()).decode()
        if auth == "token":
            user_lines = ["    token: %s" % json.dumps(token or self.token)]
        elif auth == "cert":
            user_lines = ["    client-certificate-data: %s" % inline(self.client_cert),
                          "    client-key-data: %s" % inline(self.client_key)]
        else:
            raise ValueError("auth must be 'token' or 'cert'")
        lines = ["apiVersion: v1", "kind: Config", "clusters:", "- name: fake", "  cluster:",
                 "    server: %s" % (server or self.url),
                 "    certificate-authority-data: %s" % inline(self.ca_file),
                 "contexts:", "- name: fake", "  context:", "    cluster: fake",
                 "    user: fake-user", "    namespace: %s" % namespace,
                 "current-context: fake", "preferences: {}", "users:", "- name: fake-user",
                 "  user:"] + user_lines
        with open(path, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
        return path

    def write_serviceaccount_dir(self, directory, namespace="default"):
        """token, ca.crt and namespace files, as mounted in a pod."""
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "token"), "w") as handle:
            handle.write(self.token)
        shutil.copyfile(self.ca_file, os.path.join(directory, "ca.crt"))
        with open(os.path.join(directory, "namespace"), "w") as handle:
            handle.write(namespace)
        return directory

    # -- the API port --

    # request: one HTTPS request to the API port; returns (status, headers,
    # body decoded as JSON when it is JSON, else bytes). auth: "token"
    # (default), "cert", None, or a literal token string. Never raises for
    # HTTP error statuses.
    def request(self, method, path, body=None, auth="token", content_type=None, headers=None,
                timeout=HTTP_TIMEOUT_S):
        data = None
        all_headers = {"Accept": "application/json"}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers["Content-Type"] = content_type or "application/json"
        if auth == "token":
            all_headers["Authorization"] = "Bearer " + self.token
        elif auth not in (None, "cert"):
            all_headers["Authorization"] = "Bearer " + auth
        all_headers.update(headers or {})
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        context = self.tls_context(client_cert=(auth == "cert"))
        try:
            with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
                return response.status, dict(response.headers), _decode(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), _decode(error.read())

    # -- the control port --

    def _control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.control_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                return _decode(response.read())
        except urllib.error.HTTPError as error:
            detail = _decode(error.read())
            message = detail.get("message") if isinstance(detail, dict) else detail
            raise FakeApiserverError("control %s %s: HTTP %d: %s" % (method, path, error.code, message))

    def seed(self, obj):
        """Create or replace an object as given (status included); returns it as stored."""
        return self._control("POST", "/objects", obj)

    def get(self, path):
        """The object (or list) at an API path, without auth or logging; None if missing."""
        try:
            return self._control("GET", "/objects?" + urllib.parse.urlencode({"path": path}))
        except FakeApiserverError as error:
            if "HTTP 404" in str(error):
                return None
            raise

    def delete(self, path):
        return self._control("DELETE", "/objects?" + urllib.parse.urlencode({"path": path}))

    def add_fault(self, **rule):
        """Inject a fault; see the server's FaultBook for the fields. Returns the stored rule."""
        return self._control("POST", "/faults", rule)

    def faults(self):
        return self._control("GET", "/faults")

    def clear_faults(self):
        return self._control("DELETE", "/faults")

    def log(self, since=0):
        """The request records (optionally only those with seq > since)."""
        return self._control("GET", "/log?since=%d" % since)

    def reset_log(self):
        return self._control("POST", "/log/reset")

    def compact(self):
        """Drop the watch history; returns {"resourceVersion": current}."""
        return self._control("POST", "/compact")

    def state(self):
        return self._control("GET", "/state")

    def watch_settings(self, **settings):
        """Bookmarks from now on: bookmarks="real" or "none", bookmark_interval_s."""
        return self._control("POST", "/watch-settings", settings)


def _decode(raw):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw


class Http2Front:
    """nghttpx (Debian's nghttp2-proxy) in front of a FakeApiserver: TLS
    with ALPN h2 and http/1.1 on its own port, HTTP/1.1 over TLS to the
    fake behind it, as a real kube-apiserver speaks HTTP/2 to curl and
    client-go. Bearer tokens pass through (client certificates do not).
    Its access log names each request's protocol: lines are
    `ALPN METHOD PATH STATUS`, ALPN "h2" for HTTP/2. The fake sees
    `Via: 2 nghttpx` on what came in over HTTP/2."""

    BINARY = "nghttpx"
    WATCH_READ_TIMEOUT = "10m"   # watches stay quiet between bookmarks

    def __init__(self, api):
        self.api = api
        self.proc = None
        self.url = None
        self.dir = tempfile.mkdtemp(prefix="h2front-", dir=api.dir)
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")

    @classmethod
    def available(cls):
        return shutil.which(cls.BINARY) is not None

    def start(self):
        pki = os.path.join(self.api.dir, "pki")
        backend_port = int(self.api.url.rsplit(":", 1)[1])
        port = _free_port()
        command = [self.BINARY, "--conf=/dev/null", "--workers=1",
                   "--frontend=127.0.0.1,%d" % port,
                   "--backend=127.0.0.1,%d;;tls;sni=localhost" % backend_port,
                   "--cacert=" + self.api.ca_file,
                   "--backend-connections-per-host=64",
                   "--backend-read-timeout=" + self.WATCH_READ_TIMEOUT,
                   "--frontend-read-timeout=" + self.WATCH_READ_TIMEOUT,
                   "--accesslog-file=" + self.access_log,
                   "--accesslog-format=$alpn $method $path $status",
                   "--errorlog-file=" + self.error_log, "--no-ocsp",
                   os.path.join(pki, "server.key"), os.path.join(pki, "server.crt")]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = "https://127.0.0.1:%d" % port
        deadline = time.monotonic() + START_TIMEOUT_S
        context = self.api.tls_context()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise FakeApiserverError("nghttpx exited with %d: %s"
                                         % (self.proc.returncode, _read(self.error_log)))
            try:
                with urllib.request.urlopen(self.url + "/healthz", context=context,
                                            timeout=HTTP_TIMEOUT_S) as answer:
                    if answer.status == 200:
                        return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(POLL_S)
        raise FakeApiserverError("nghttpx did not answer in time: %s" % _read(self.error_log))

    def requests(self):
        """The access log as (alpn, method, path, status) tuples."""
        out = []
        for line in _read(self.access_log).splitlines():
            parts = line.split(" ")
            if len(parts) >= 4:
                out.append((parts[0], parts[1], " ".join(parts[2:-1]), parts[-1]))
        return out

    def stop(self):
        if self.proc is not None:
            _terminate(self.proc)


def _terminate(proc):
    """SIGTERM a child still running, then SIGKILL after STOP_TIMEOUT_S."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""
