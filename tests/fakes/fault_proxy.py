#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a real server (Prometheus).

Requests are forwarded unchanged to --upstream unless a fault is set. The
controller's tests use it to make a *real* Prometheus look down, slow,
failing or garbled without stopping it. Standard library only; binds
127.0.0.1.

Usage:
  fault_proxy.py --upstream http://127.0.0.1:PORT --port-file F [--log F]
                 [--log-query-digest]

Control (same port, path prefix /_fault):
  POST /_fault  {"mode": "pass" | "reset" | "slow" | "status" | "garbage",
                 "delay_s": 3.0, "status": 500, "body": "..."}
    reset    close the connection without an answer (a server that died)
    slow     wait delay_s, then forward (longer than the client's timeout)
    status   answer `status` with a Prometheus-style error body
    garbage  answer 200 with `body` (default: bytes that are not JSON)
  GET  /_fault  the current mode and the number of requests seen per mode
Every proxied request is appended to --log as a JSON line
{"t", "path", "query" (or "query_sha1"), "mode", "user_agent"[, "delay_s",
"status", "body"]}, written when
the request arrives, so tests can count queries per tick and tell which
ones a fault hit.
"""

import argparse
import hashlib
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

UPSTREAM_TIMEOUT_S = 30.0
MAX_DELAY_S = 120.0
DEFAULT_GARBAGE = b"<html><body>502 Bad Gateway</body></html>\x00\xff{"


class FaultState:
    """The current fault and counters, shared by handler threads."""

    def __init__(self, log_path, query_digest=False):
        self.lock = threading.Lock()
        self.fault = {"mode": "pass"}
        self.counts = {}
        self.log_path = log_path
        self.log = None
        self.query_digest = query_digest

    def set(self, fault):
        with self.lock:
            self.fault = dict(fault)

    def current(self):
        with self.lock:
            return dict(self.fault)

    def record(self, path, query, fault, user_agent=None):
        """Count the request under its mode and append it to the log, with
        the fault's delay or status when it has one."""
        mode = fault.get("mode", "pass")
        entry = {"t": time.time(), "path": path, "mode": mode, "user_agent": user_agent}
        if self.query_digest:  # long soaks: 12 hex digits instead of the text
            entry["query_sha1"] = hashlib.sha1(query.encode("utf-8")).hexdigest()[:12]
        else:
            entry["query"] = query
        for key in ("delay_s", "status", "body"):
            if mode != "pass" and key in fault:
                entry[key] = fault[key]
        with self.lock:
            self.counts[mode] = self.counts.get(mode, 0) + 1
            if self.log_path:
                if self.log is None:
                    self.log = open(self.log_path, "a", encoding="utf-8")
                self.log.write(json.dumps(entry) + "\n")
                self.log.flush()


def make_handler(upstream, state):
    """A request handler class bound to the upstream URL and fault state."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # head and body leave in one write: a head sent alone waits for the
        # client's delayed ACK (Nagle), 40 ms per answer
        wbufsize = 1 << 16

        def log_message(self, fmt, *args):  # quiet: the JSON log is the record
            pass

        def _reply(self, status, body, content_type="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _control(self):
            if self.command == "POST":
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    fault = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._reply(400, b'{"error":"not JSON"}')
                    return
                if fault.get("mode") not in ("pass", "reset", "slow", "status", "garbage"):
                    self._reply(400, b'{"error":"unknown mode"}')
                    return
                state.set(fault)
            body = json.dumps({"fault": state.current(), "counts": state.counts}).encode()
            self._reply(200, body)

        def _forward(self):
            """Pass the request to the upstream and copy its answer back."""
            request = urllib.request.Request(upstream + self.path, method=self.command)
            for name in ("Accept", "Authorization", "Content-Type", "X-Scope-OrgID"):
                if self.headers.get(name):
                    request.add_header(name, self.headers[name])
            data = None
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                data = self.rfile.read(length)
            try:
                with urllib.request.urlopen(request, data=data,
                                            timeout=UPSTREAM_TIMEOUT_S) as answer:
                    self._reply(answer.status, answer.read(),
                                answer.headers.get("Content-Type", "application/json"))
            except urllib.error.HTTPError as error:
                self._reply(error.code, error.read(),
                            error.headers.get("Content-Type", "application/json"))
            except OSError as error:
                self._reply(502, json.dumps({"status": "error", "errorType": "proxy",
                                             "error": str(error)}).encode())

        def _handle(self):
            split = urlsplit(self.path)
            if split.path.startswith("/_fault"):
                self._control()
                return
            fault = state.current()
            mode = fault.get("mode", "pass")
            query = parse_qs(split.query).get("query", [""])[0]
            state.record(split.path, query, fault, self.headers.get("User-Agent"))
            if mode == "reset":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if mode == "slow":
                time.sleep(min(float(fault.get("delay_s", 5.0)), MAX_DELAY_S))
            elif mode == "status":
                status = int(fault.get("status", 500))
                self._reply(status, json.dumps({"status": "error", "errorType": "internal",
                                                "error": "injected"}).encode())
                return
            elif mode == "garbage":
                body = fault.get("body")
                self._reply(200, body.encode() if body is not None else DEFAULT_GARBAGE)
                return
            self._forward()

        do_GET = _handle
        do_POST = _handle

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log")
    parser.add_argument("--log-query-digest", action="store_true",
                        help="log the query's SHA-1 (12 hex digits), not its text")
    args = parser.parse_args()
    state = FaultState(args.log, args.log_query_digest)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args.upstream.rstrip("/"), state))
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
