#!/usr/bin/env python3
"""The fake kube-apiserver (tests/fakes/kube_apiserver.py) against real clients.

kubectl (token and client-certificate kubeconfigs) gets, scales, patches,
creates and applies through it; direct HTTPS requests check authentication,
every injected fault, resourceVersion conflicts, validation, list and watch
semantics (410 after compaction), keep-alive and the request log. A second
instance runs with --manual-status and --legacy-discovery, and is stopped
with SIGTERM while a watch is open.

Usage: test_fake_apiserver.py [--cpscale PATH]   (the binary is not needed)
Prints one line per check and "N passed, N failed"; exits 1 on a failure.
kubectl checks are skipped (not failed) when kubectl is not installed.
"""

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kubefake import FakeApiserver, FakeApiserverError  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes"))
import rbac_rules  # noqa: E402  (tests/fakes/rbac_rules.py)

SUITE_TIMEOUT_S = 55        # the whole run, processes included, stays under a minute
KUBECTL_TIMEOUT_S = 20      # bound on one kubectl call
WATCH_READ_TIMEOUT_S = 5.0  # bound on waiting for one watch event
KEEPALIVE_REQUESTS = 300
PARALLEL_CLIENTS = 4
PARALLEL_REQUESTS = 50
NS = "shop"
DEPLOY_PATH = "/apis/apps/v1/namespaces/%s/deployments/web" % NS
SCALE_PATH = DEPLOY_PATH + "/scale"
MERGE = "application/merge-patch+json"


class Skip(Exception):
    pass


def check(condition, message, *values):
    if not condition:
        raise AssertionError(message % values if values else message)


def check_eq(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def deployment(name, namespace, replicas, labels=None):
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": name, "image": "example/%s:1" % name},
                                                          {"name": "sidecar", "image": "example/side:1"}]}}}}


def check_status_body(body, code, reason):
    check(isinstance(body, dict), "error body is not JSON: %r", body)
    check_eq(body.get("kind"), "Status", "Status kind")
    check_eq(body.get("apiVersion"), "v1", "Status apiVersion")
    check_eq(body.get("status"), "Failure", "Status status")
    check_eq(body.get("code"), code, "Status code")
    check_eq(body.get("reason"), reason, "Status reason")
    check(body.get("message"), "Status without a message")


class Suite:
    """Shared state of the checks: the main fake, kubeconfigs, a kubectl runner."""

    def __init__(self, api, workdir):
        self.api = api
        self.workdir = workdir
        self.home = os.path.join(workdir, "home")
        os.makedirs(self.home)
        self.kubeconfig_token = api.write_kubeconfig(os.path.join(workdir, "token.kubeconfig"), "token")
        self.kubeconfig_cert = api.write_kubeconfig(os.path.join(workdir, "cert.kubeconfig"), "cert")
        self.kubectl_path = shutil.which("kubectl")

    def kubectl(self, *args, kubeconfig=None, stdin=None, expect_ok=True):
        if not self.kubectl_path:
            raise Skip("kubectl not installed")
        env = dict(os.environ, HOME=self.home, KUBECONFIG=kubeconfig or self.kubeconfig_token)
        proc = subprocess.run([self.kubectl_path, "--request-timeout=10s"] + list(args), env=env,
                              input=stdin, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S)
        if expect_ok and proc.returncode != 0:
            raise AssertionError("kubectl %s failed (%d): %s" % (" ".join(args), proc.returncode,
                                                                 proc.stderr.strip()))
        return proc

    def manifest(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def rv(self, path=DEPLOY_PATH):
        return self.api.get(path)["metadata"]["resourceVersion"]


# ------------------------------------------------------------------ kubectl checks

def kubectl_version(s):
    out = json.loads(s.kubectl("version", "-o", "json").stdout)
    check_eq(out["serverVersion"]["minor"], "32", "server minor version")


def kubectl_get_table(s):
    out = s.kubectl("get", "deployment", "-n", NS).stdout
    lines = out.splitlines()
    check(lines and lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
          "unexpected header: %r", out)
    check(any(l.split()[:4] == ["web", "3/3", "3", "3"] for l in lines[1:]), "no web 3/3 row: %r", out)


def kubectl_get_json(s):
    obj = json.loads(s.kubectl("get", "deployment", "web", "-n", NS, "-o", "json").stdout)
    check_eq(obj["kind"], "Deployment", "kind")
    check_eq(obj["apiVersion"], "apps/v1", "apiVersion")
    check_eq(obj["spec"]["replicas"], 3, "spec.replicas")
    check_eq(obj["metadata"]["resourceVersion"], s.rv(), "resourceVersion")


def kubectl_scale(s):
    before = s.api.get(DEPLOY_PATH)
    mark = s.api.log()[-1]["seq"]
    out = s.kubectl("scale", "deployment", "web", "-n", NS, "--replicas=5").stdout
    check("scaled" in out, "kubectl said %r", out)
    after = s.api.get(DEPLOY_PATH)
    check_eq(after["spec"]["replicas"], 5, "spec.replicas after scale")
    check_eq(after["status"].get("readyReplicas"), 5, "status follows spec")
    check_eq(after["metadata"]["generation"], before["metadata"]["generation"] + 1, "generation")
    check(int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"]),
          "resourceVersion did not move")
    patches = [r for r in s.api.log(mark) if r["method"] == "PATCH"]
    check(len(patches) == 1 and patches[0]["subresource"] == "scale", "scale PATCH not logged: %r", patches)
    check_eq(patches[0]["content_type"], MERGE, "scale patch content type")
    check_eq(patches[0]["body"], {"spec": {"replicas": 5}}, "scale patch body")


def kubectl_scale_wrong_current(s):
    proc = s.kubectl("scale", "deployment", "web", "-n", NS, "--current-replicas=2", "--replicas=7",
                     expect_ok=False)
    check(proc.returncode != 0, "kubectl scale with a wrong --current-replicas succeeded")
    check("Expected replicas to be 2, was 5" in proc.stderr, "stderr: %r", proc.stderr)
    check_eq(s.api.get(DEPLOY_PATH)["spec"]["replicas"], 5, "spec.replicas unchanged")


def kubectl_scale_right_current(s):
    mark = s.api.log()[-1]["seq"]
    s.kubectl("scale", "deployment", "web", "-n", NS, "--current-replicas=5", "--replicas=4")
    check_eq(s.api.get(DEPLOY_PATH)["spec"]["replicas"], 4, "spec.replicas")
    verbs = [(r["verb"], r["subresource"]) for r in s.api.log(mark)]
    check(("update", "scale") in verbs, "no PUT of the scale subresource: %r", verbs)


def kubectl_patch_merge(s):
    s.kubectl("patch", "deployment", "web", "-n", NS, "--type", "merge",
              "-p", '{"metadata":{"labels":{"tier":"frontend"}}}')
    obj = s.api.get(DEPLOY_PATH)
    check_eq(obj["metadata"]["labels"].get("tier"), "frontend", "label after merge patch")


def kubectl_patch_strategic(s):
    s.kubectl("patch", "deployment", "web", "-n", NS,
              "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"example/web:2"}]}}}}')
    containers = s.api.get(DEPLOY_PATH)["spec"]["template"]["spec"]["containers"]
    images = {c["name"]: c["image"] for c in containers}
    check_eq(images, {"web": "example/web:2", "sidecar": "example/side:1"}, "containers merged by name")


def kubectl_patch_json(s):
    s.kubectl("patch", "deployment", "web", "-n", NS, "--type", "json",
              "-p", '[{"op":"replace","path":"/spec/replicas","value":3}]')
    check_eq(s.api.get(DEPLOY_PATH)["spec"]["replicas"], 3, "spec.replicas after json patch")


def kubectl_get_lease(s):
    out = s.kubectl("get", "lease", "-n", NS).stdout
    lines = [l.split() for l in out.splitlines()]
    check(lines and lines[0] == ["NAME", "HOLDER", "AGE"], "header: %r", out)
    check(any(l[:2] == ["cpscale-leader", "cpscale-0"] for l in lines[1:]), "lease row: %r", out)


def kubectl_get_events(s):
    out = s.kubectl("get", "events", "-n", NS).stdout
    check("ScalingReplicaSet" in out, "seeded core event missing: %r", out)
    check("SuccessfulRescale" in out, "events.k8s.io/v1 event missing from core view: %r", out)


LEASE_YAML = """apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: created-lease
  namespace: %s
spec:
  holderIdentity: replica-a
  leaseDurationSeconds: 15
  acquireTime: "2024-05-01T10:00:00.000000Z"
  renewTime: "2024-05-01T10:00:05.123456Z"
  leaseTransitions: 0
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: created-config
  namespace: %s
data:
  config.yaml: "interval: 15s"
""" % (NS, NS)


def kubectl_create(s):
    path = s.manifest("create.yaml", LEASE_YAML)
    out = s.kubectl("create", "-f", path).stdout
    check("lease.coordination.k8s.io/created-lease created" in out, "output: %r", out)
    check("configmap/created-config created" in out, "output: %r", out)
    lease = s.api.get("/apis/coordination.k8s.io/v1/namespaces/%s/leases/created-lease" % NS)
    check_eq(lease["spec"]["renewTime"], "2024-05-01T10:00:05.123456Z", "renewTime")
    again = s.kubectl("create", "-f", path, expect_ok=False)
    check(again.returncode != 0 and "AlreadyExists" in again.stderr, "second create: %r", again.stderr)


def kubectl_create_no_validate(s):
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unvalidated, namespace: %s}\ndata: {a: b}\n" % NS
    s.kubectl("create", "--validate=false", "-f", "-", stdin=text)
    check(s.api.get("/api/v1/namespaces/%s/configmaps/unvalidated" % NS), "configmap not created")


APPLY_YAML = """apiVersion: v1
kind: Namespace
metadata:
  name: applied
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: applied
data:
  level: "%s"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: applied
spec:
  replicas: %d
  selector:
    matchLabels: {app: worker}
  template:
    metadata:
      labels: {app: worker}
    spec:
      containers:
      - name: worker
        image: example/worker:%s
      - name: sidecar
        image: example/side:1
"""


def kubectl_apply(s):
    first = s.manifest("apply1.yaml", APPLY_YAML % ("low", 2, "1"))
    out = s.kubectl("apply", "-f", first).stdout
    for line in ("namespace/applied created", "configmap/settings created", "deployment.apps/worker created"):
        check(line in out, "apply output %r lacks %r", out, line)
    second = s.manifest("apply2.yaml", APPLY_YAML % ("high", 4, "2"))
    out = s.kubectl("apply", "-f", second).stdout
    check("namespace/applied unchanged" in out and "configmap/settings configured" in out
          and "deployment.apps/worker configured" in out, "second apply output: %r", out)
    worker = s.api.get("/apis/apps/v1/namespaces/applied/deployments/worker")
    check_eq(worker["spec"]["replicas"], 4, "applied replicas")
    check_eq([c["image"] for c in worker["spec"]["template"]["spec"]["containers"]],
             ["example/worker:2", "example/side:1"], "applied images")
    check_eq(worker["metadata"]["generation"], 2, "generation after one spec change")
    settings = s.api.get("/api/v1/namespaces/applied/configmaps/settings")
    check_eq(settings["data"], {"level": "high"}, "applied configmap data")
    out = s.kubectl("apply", "-f", second).stdout
    check(out.count("unchanged") == 3, "third apply not a no-op: %r", out)


def kubectl_client_cert(s):
    mark = s.api.log()[-1]["seq"]
    obj = json.loads(s.kubectl("get", "deployment", "web", "-n", NS, "-o", "json",
                               kubeconfig=s.kubeconfig_cert).stdout)
    check_eq(obj["metadata"]["name"], "web", "name")
    s.kubectl("scale", "deployment", "web", "-n", NS, "--replicas=6", kubeconfig=s.kubeconfig_cert)
    check_eq(s.api.get(DEPLOY_PATH)["spec"]["replicas"], 6, "spec.replicas via cert")
    users = {r["user"] for r in s.api.log(mark)}
    check_eq(users, {s.api.user}, "users in the log")


def kubectl_delete(s):
    out = s.kubectl("delete", "configmap", "unvalidated", "-n", NS).stdout
    check('configmap "unvalidated" deleted' in out, "output: %r", out)
    check(s.api.get("/api/v1/namespaces/%s/configmaps/unvalidated" % NS) is None, "still there")


# ------------------------------------------------------------------ direct HTTP checks

def auth_missing_and_wrong(s):
    for auth in (None, "not-a-token"):
        status, _, body = s.api.request("GET", DEPLOY_PATH, auth=auth)
        check_eq(status, 401, "status with auth %r" % auth)
        check_status_body(body, 401, "Unauthorized")


def auth_token_rotation(s):
    old = s.api.token
    new = s.api.rotate_token()
    status, _, _ = s.api.request("GET", DEPLOY_PATH, auth=old)
    check_eq(status, 401, "old token after rotation")
    status, _, _ = s.api.request("GET", DEPLOY_PATH, auth=new)
    check_eq(status, 200, "new token after rotation")
    s.kubeconfig_token = s.api.write_kubeconfig(s.kubeconfig_token, "token")


def kubectl_after_rotation(s):
    obj = json.loads(s.kubectl("get", "deployment", "web", "-n", NS, "-o", "json").stdout)
    check_eq(obj["metadata"]["resourceVersion"], s.rv(), "resourceVersion with the new token")


def auth_client_cert(s):
    status, _, body = s.api.request("GET", DEPLOY_PATH, auth="cert")
    check_eq(status, 200, "status with a client certificate")
    check_eq(s.api.log()[-1]["user"], s.api.user, "logged user")


def serviceaccount_dir(s):
    directory = s.api.write_serviceaccount_dir(os.path.join(s.workdir, "serviceaccount"), namespace=NS)
    with open(os.path.join(directory, "token")) as handle:
        token = handle.read()
    with open(os.path.join(directory, "namespace")) as handle:
        namespace = handle.read()
    context = ssl.create_default_context(cafile=os.path.join(directory, "ca.crt"))
    connection = http.client.HTTPSConnection("127.0.0.1", int(s.api.url.rsplit(":", 1)[1]),
                                             timeout=10, context=context)
    try:
        connection.request("GET", "/apis/apps/v1/namespaces/%s/deployments/web/scale" % namespace,
                           headers={"Authorization": "Bearer " + token})
        response = connection.getresponse()
        check_eq((response.status, json.loads(response.read())["kind"]), (200, "Scale"),
                 "in-cluster style request")
    finally:
        connection.close()


def log_has_no_tokens(s):
    with open(s.api.log_file) as handle:
        text = handle.read()
    check(s.api.token not in text, "the token appears in the request log")
    check('"user":"%s"' % s.api.user in text, "the user name is not logged")


def discovery(s):
    status, headers, version = s.api.request("GET", "/version")
    check_eq((status, version["gitVersion"]), (200, "v1.32.0"), "/version")
    status, _, apis = s.api.request("GET", "/apis")
    names = [g["name"] for g in apis["groups"]]
    for group in ("apps", "coordination.k8s.io", "events.k8s.io", "rbac.authorization.k8s.io",
                  "policy", "batch", "monitoring.coreos.com"):
        check(group in names, "/apis lacks %s", group)
    status, _, apps = s.api.request("GET", "/apis/apps/v1")
    by_name = {r["name"]: r for r in apps["resources"]}
    check_eq(by_name["deployments"]["shortNames"], ["deploy"], "deployments shortNames")
    check_eq((by_name["deployments/scale"]["group"], by_name["deployments/scale"]["kind"]),
             ("autoscaling", "Scale"), "scale subresource kind")
    check("patch" in by_name["deployments/status"]["verbs"], "status verbs")
    status, _, core = s.api.request("GET", "/api/v1")
    core_names = {r["name"] for r in core["resources"]}
    for resource in ("namespaces", "configmaps", "serviceaccounts", "services", "events", "secrets", "pods"):
        check(resource in core_names, "/api/v1 lacks %s", resource)
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    status, headers, aggregated = s.api.request("GET", "/apis", headers={"Accept": accept})
    check("as=APIGroupDiscoveryList" in headers.get("Content-Type", ""), "aggregated content type")
    check_eq(aggregated["kind"], "APIGroupDiscoveryList", "aggregated kind")
    status, _, body = s.api.request("GET", "/openapi/v2")
    check_eq(status, 404, "/openapi/v2")
    check_status_body(body, 404, "NotFound")


FAULT_CASES = [
    # (status, retry_after, expected reason)
    (401, None, "Unauthorized"),
    (403, None, "Forbidden"),
    (409, None, "Conflict"),
    (429, 2, "TooManyRequests"),
    (500, None, "InternalError"),
    (503, 1, "ServiceUnavailable"),
]


def faults_each_status(s):
    for code, retry_after, reason in FAULT_CASES:
        rule = {"verb": "get", "resource": "deployments", "subresource": "scale", "namespace": NS,
                "name": "web", "status": code, "count": 1}
        if retry_after is not None:
            rule["retry_after"] = retry_after
        s.api.add_fault(**rule)
        status, headers, body = s.api.request("GET", SCALE_PATH)
        check_eq(status, code, "injected status")
        check_status_body(body, code, reason)
        if retry_after is not None:
            check_eq(headers.get("Retry-After"), str(retry_after), "Retry-After for %d" % code)
        record = s.api.log()[-1]
        check(record["fault"] and record["status"] == code, "log record %r", record)
        status, _, _ = s.api.request("GET", SCALE_PATH)
        check_eq(status, 200, "after the count-1 fault for %d" % code)


def fault_delay(s):
    s.api.add_fault(verb="get", resource="deployments", name="web", delay_s=0.6, count=1)
    started = time.monotonic()
    status, _, body = s.api.request("GET", DEPLOY_PATH)
    elapsed = time.monotonic() - started
    check_eq(status, 200, "delayed answer status")
    check(elapsed >= 0.6, "answered after %.2fs, before the 0.6s delay", elapsed)
    check_eq(body["metadata"]["name"], "web", "delayed answer body")


def fault_answer_delay(s):
    """answer_delay_s: the write takes effect at once, its answer comes late."""
    import threading
    s.api.add_fault(verb="patch", resource="deployments", subresource="scale", name="web",
                    answer_delay_s=1.0, count=1)
    before = s.api.get(DEPLOY_PATH)["spec"]["replicas"]
    wanted = before + 2
    answer = {}

    def patch():
        started = time.monotonic()
        answer["status"], _, answer["body"] = s.api.request(
            "PATCH", SCALE_PATH, {"spec": {"replicas": wanted}}, content_type=MERGE)
        answer["elapsed"] = time.monotonic() - started

    writer = threading.Thread(target=patch)
    writer.start()
    applied = None
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline and applied != wanted:
        applied = s.api.get(DEPLOY_PATH)["spec"]["replicas"]
        time.sleep(0.05)
    still_waiting = writer.is_alive()
    writer.join(10)
    check_eq(applied, wanted, "replicas while the answer was held back")
    check(still_waiting, "the PATCH had answered before the write was seen")
    check_eq(answer.get("status"), 200, "held-back answer status")
    check(answer.get("elapsed", 0) >= 1.0, "answered after %.2fs, before the 1.0s delay",
          answer.get("elapsed", 0))
    check_eq(answer["body"]["spec"]["replicas"], wanted, "held-back answer body")
    s.api.request("PATCH", SCALE_PATH, {"spec": {"replicas": before}}, content_type=MERGE)
    try:
        s.api.add_fault(verb="get", answer_delay_s=1.0, status=500)
        refused = False
    except FakeApiserverError as error:
        refused = "HTTP 400" in str(error)
    check(refused, "answer_delay_s with a status was not refused")


def fault_matching(s):
    s.api.add_fault(verb="patch", resource="deployments", subresource="scale", status=500)
    s.api.add_fault(resource="leases", status=503, probability=0.0)
    status, _, _ = s.api.request("GET", SCALE_PATH)
    check_eq(status, 200, "GET not hit by a patch-only fault")
    status, _, _ = s.api.request("PATCH", SCALE_PATH, {"spec": {"replicas": 3}}, content_type=MERGE)
    check_eq(status, 500, "PATCH of the scale hit")
    status, _, _ = s.api.request("PATCH", DEPLOY_PATH, {"metadata": {"labels": {"x": "y"}}}, content_type=MERGE)
    check_eq(status, 200, "PATCH of the main resource not hit")
    status, _, _ = s.api.request("GET", "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS)
    check_eq(status, 200, "probability 0 never hits")
    listed = s.api.faults()
    check_eq(len(listed), 2, "GET /faults")
    check_eq(listed[0]["hits"], 1, "hits of the scale fault")
    s.api.clear_faults()
    check_eq(s.api.faults(), [], "faults after DELETE /faults")


def fault_reset(s):
    s.api.add_fault(resource="deployments", name="web", reset=True, count=1)
    try:
        status, _, _ = s.api.request("GET", DEPLOY_PATH)
    except (OSError, http.client.HTTPException):
        status = None
    check(status is None, "a reset fault answered %r", status)
    status, _, _ = s.api.request("GET", DEPLOY_PATH)
    check_eq(status, 200, "after the reset fault")


def not_found_and_unknown(s):
    status, _, body = s.api.request("GET", "/apis/apps/v1/namespaces/%s/deployments/nope" % NS)
    check_eq(status, 404, "missing object")
    check_status_body(body, 404, "NotFound")
    check_eq(body["message"], 'deployments.apps "nope" not found', "message")
    check_eq(body["details"], {"name": "nope", "group": "apps", "kind": "deployments"}, "details")
    for path in ("/apis/apps/v1/namespaces/%s/widgets" % NS, "/nonsense", "/apis/apps/v9/deployments",
                 DEPLOY_PATH + "/log"):
        status, _, body = s.api.request("GET", path)
        check_eq(status, 404, "unknown path %s" % path)
        check_status_body(body, 404, "NotFound")
    status, _, body = s.api.request("POST", DEPLOY_PATH, deployment("web", NS, 1))
    check_eq(status, 405, "POST on a named object")
    check_status_body(body, 405, "MethodNotAllowed")


def create_conflicts(s):
    status, _, body = s.api.request("POST", "/apis/apps/v1/namespaces/%s/deployments" % NS,
                                    deployment("web", NS, 1))
    check_eq(status, 409, "create of an existing object")
    check_status_body(body, 409, "AlreadyExists")
    status, _, body = s.api.request("POST", "/api/v1/namespaces/missing/configmaps",
                                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    check_eq(status, 404, "create in a missing namespace")
    check_eq(body["message"], 'namespaces "missing" not found', "message")


def scale_shape(s):
    status, headers, scale = s.api.request("GET", SCALE_PATH)
    check_eq(status, 200, "GET scale")
    check_eq(headers.get("Content-Type"), "application/json", "content type")
    check_eq((scale["apiVersion"], scale["kind"]), ("autoscaling/v1", "Scale"), "Scale type")
    deploy = s.api.get(DEPLOY_PATH)
    check_eq(scale["metadata"]["resourceVersion"], deploy["metadata"]["resourceVersion"], "Scale rv")
    check_eq(scale["metadata"]["uid"], deploy["metadata"]["uid"], "Scale uid")
    check_eq(scale["spec"]["replicas"], deploy["spec"]["replicas"], "Scale spec.replicas")
    check_eq(scale["status"]["selector"], "app=web", "Scale status.selector")


def resource_version_conflicts(s):
    rv = s.rv()
    stale = str(int(rv) - 1)
    cases = [
        ("PATCH scale", "PATCH", SCALE_PATH, {"metadata": {"resourceVersion": stale}, "spec": {"replicas": 2}}, MERGE),
        ("PATCH deployment", "PATCH", DEPLOY_PATH, {"metadata": {"resourceVersion": stale}, "spec": {"replicas": 2}}, MERGE),
        ("PUT scale", "PUT", SCALE_PATH, {"apiVersion": "autoscaling/v1", "kind": "Scale",
                                          "metadata": {"name": "web", "namespace": NS, "resourceVersion": stale},
                                          "spec": {"replicas": 2}}, None),
    ]
    current = s.api.get(DEPLOY_PATH)
    put_body = dict(current, metadata=dict(current["metadata"], resourceVersion=stale))
    cases.append(("PUT deployment", "PUT", DEPLOY_PATH, put_body, None))
    for label, method, path, body, content_type in cases:
        status, _, answer = s.api.request(method, path, body, content_type=content_type)
        check_eq(status, 409, label)
        check_status_body(answer, 409, "Conflict")
        check(answer["message"].startswith('Operation cannot be fulfilled on deployments.apps "web"'),
              "%s message: %r", label, answer["message"])
    check_eq(s.rv(), rv, "resourceVersion after the conflicts")
    status, _, scale = s.api.request("PATCH", SCALE_PATH, {"metadata": {"resourceVersion": rv},
                                                           "spec": {"replicas": 2}}, content_type=MERGE)
    check_eq(status, 200, "PATCH scale with the current resourceVersion")
    check(int(scale["metadata"]["resourceVersion"]) > int(rv), "new resourceVersion in the answer")
    check_eq(s.api.get(DEPLOY_PATH)["spec"]["replicas"], 2, "spec.replicas")
    status, _, answer = s.api.request("PATCH", DEPLOY_PATH, [{"op": "test", "path": "/spec/replicas", "value": 9}],
                                      content_type="application/json-patch+json")
    check_eq(status, 422, "failed json-patch test")
    check_status_body(answer, 422, "Invalid")


def noop_and_generation(s):
    rv = s.rv()
    status, _, _ = s.api.request("PATCH", SCALE_PATH, {"spec": {"replicas": 2}}, content_type=MERGE)
    check_eq((status, s.rv()), (200, rv), "a no-op patch keeps the resourceVersion")
    generation = s.api.get(DEPLOY_PATH)["metadata"]["generation"]
    s.api.request("PATCH", DEPLOY_PATH, {"metadata": {"annotations": {"note": "x"}}}, content_type=MERGE)
    after = s.api.get(DEPLOY_PATH)
    check_eq(after["metadata"]["generation"], generation, "generation after a metadata change")
    check(after["metadata"]["resourceVersion"] != rv, "resourceVersion after a metadata change")
    s.api.request("PATCH", DEPLOY_PATH, {"spec": {"minReadySeconds": 5}}, content_type=MERGE)
    after = s.api.get(DEPLOY_PATH)
    check_eq(after["metadata"]["generation"], generation + 1, "generation after a spec change")
    check_eq(after["status"]["observedGeneration"], generation + 1, "observedGeneration")


def validation(s):
    cases = [
        ("negative replicas", "PATCH", SCALE_PATH, {"spec": {"replicas": -1}}, MERGE, 422, "Invalid"),
        ("string replicas", "PATCH", SCALE_PATH, {"spec": {"replicas": "3"}}, MERGE, 400, "BadRequest"),
        ("float replicas", "PATCH", DEPLOY_PATH, {"spec": {"replicas": 2.5}}, MERGE, 400, "BadRequest"),
        ("numeric resourceVersion", "PATCH", SCALE_PATH, {"metadata": {"resourceVersion": 5}}, MERGE, 400, "BadRequest"),
        ("unknown patch type", "PATCH", SCALE_PATH, {"spec": {"replicas": 2}}, "application/json", 415,
         "UnsupportedMediaType"),
        ("lease renewTime without microseconds", "POST", "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS,
         {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "bad-time"},
          "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": "2024-01-01T00:00:00Z"}},
         None, 400, "BadRequest"),
        ("lease zero duration", "POST", "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS,
         {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "zero"},
          "spec": {"holderIdentity": "a", "leaseDurationSeconds": 0}}, None, 422, "Invalid"),
        ("events.k8s.io event without eventTime", "POST", "/apis/events.k8s.io/v1/namespaces/%s/events" % NS,
         {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "bad-event"},
          "reason": "SuccessfulRescale", "type": "Normal"}, None, 422, "Invalid"),
        ("bad name", "POST", "/api/v1/namespaces/%s/configmaps" % NS,
         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}, None, 422, "Invalid"),
        ("wrong kind", "POST", "/api/v1/namespaces/%s/configmaps" % NS,
         {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}, None, 400, "BadRequest"),
    ]
    rv = s.rv()
    for label, method, path, body, content_type, code, reason in cases:
        status, _, answer = s.api.request(method, path, body, content_type=content_type)
        check_eq(status, code, label)
        check_status_body(answer, code, reason)
    check_eq(s.rv(), rv, "deployment untouched by rejected writes")


def events_v1_roundtrip(s):
    body = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.rescale.1", "namespace": NS},
            "eventTime": "2024-05-01T10:00:00.000000Z", "reportingController": "cpscale.io/controller",
            "reportingInstance": "cpscale-0", "action": "Scale", "reason": "SuccessfulRescale",
            "regarding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": NS},
            "note": "3→5: slo", "type": "Normal"}
    status, _, created = s.api.request("POST", "/apis/events.k8s.io/v1/namespaces/%s/events" % NS, body)
    check_eq(status, 201, "create events.k8s.io/v1 Event")
    check_eq(created["note"], "3→5: slo", "note")
    status, _, core = s.api.request("GET", "/api/v1/namespaces/%s/events/web.rescale.1" % NS)
    check_eq(status, 200, "same Event through core v1")
    check_eq((core["message"], core["involvedObject"]["name"], core["reportingComponent"]),
             ("3→5: slo", "web", "cpscale.io/controller"), "core view of the Event")


def list_semantics(s):
    for n in range(3):
        s.api.seed(deployment("batch-%d" % n, NS, 1, labels={"app": "batch", "n": str(n)}))
    status, _, listing = s.api.request("GET", "/apis/apps/v1/namespaces/%s/deployments" % NS)
    check_eq((status, listing["kind"], listing["apiVersion"]), (200, "DeploymentList", "apps/v1"), "list type")
    check(listing["metadata"]["resourceVersion"].isdigit(), "list resourceVersion")
    check("kind" not in listing["items"][0], "list items carry kind (the real server omits it)")
    status, _, selected = s.api.request("GET", "/apis/apps/v1/namespaces/%s/deployments?labelSelector=app%%3Dbatch,n%%20in%%20(0,2)" % NS)
    check_eq(sorted(i["metadata"]["name"] for i in selected["items"]), ["batch-0", "batch-2"], "labelSelector")
    status, _, everywhere = s.api.request("GET", "/apis/apps/v1/deployments")
    check(len(everywhere["items"]) >= 4, "cluster-wide list")
    names, token = [], None
    for _ in range(5):
        query = "?limit=2" + ("&continue=" + token if token else "")
        status, _, page = s.api.request("GET", "/apis/apps/v1/namespaces/%s/deployments%s" % (NS, query))
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    check_eq(names, sorted(i["metadata"]["name"] for i in listing["items"]), "paginated names")


def open_watch(s, query):
    connection = http.client.HTTPSConnection("127.0.0.1", int(s.api.url.rsplit(":", 1)[1]),
                                             timeout=WATCH_READ_TIMEOUT_S, context=s.api.tls_context())
    connection.request("GET", "/apis/apps/v1/namespaces/%s/deployments?watch=true&%s" % (NS, query),
                       headers={"Authorization": "Bearer " + s.api.token})
    response = connection.getresponse()
    return connection, response


def next_event(response, wanted=None):
    """The next watch event (of a type in `wanted`, skipping others), or None at the end."""
    while True:
        line = response.readline()
        if not line:
            return None
        event = json.loads(line)
        if wanted is None or event["type"] in wanted:
            return event


def watch_events(s):
    status, _, listing = s.api.request("GET", "/apis/apps/v1/namespaces/%s/deployments" % NS)
    start = listing["metadata"]["resourceVersion"]
    connection, response = open_watch(s, "resourceVersion=%s&timeoutSeconds=10&allowWatchBookmarks=true" % start)
    try:
        check_eq(response.status, 200, "watch status")
        check_eq(response.getheader("Transfer-Encoding"), "chunked", "watch transfer encoding")
        s.api.request("PATCH", SCALE_PATH, {"spec": {"replicas": 7}}, content_type=MERGE)
        event = next_event(response, {"MODIFIED"})
        check(event is not None, "no MODIFIED event")
        check_eq((event["object"]["metadata"]["name"], event["object"]["spec"]["replicas"]), ("web", 7),
                 "MODIFIED object")
        check_eq(event["object"]["kind"], "Deployment", "watch object kind")
        check_eq(event["object"]["metadata"]["resourceVersion"], s.rv(), "event resourceVersion")
        s.api.request("POST", "/apis/apps/v1/namespaces/%s/deployments" % NS, deployment("temp", NS, 1))
        event = next_event(response, {"ADDED"})
        check_eq(event and event["object"]["metadata"]["name"], "temp", "ADDED event")
        s.api.request("DELETE", "/apis/apps/v1/namespaces/%s/deployments/temp" % NS)
        event = next_event(response, {"DELETED"})
        check_eq(event and event["object"]["metadata"]["name"], "temp", "DELETED event")
    finally:
        connection.close()


def watch_bookmark_and_timeout(s):
    connection, response = open_watch(s, "resourceVersion=%s&timeoutSeconds=2&allowWatchBookmarks=true"
                                      "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan" % s.rv())
    try:
        started = time.monotonic()
        types = []
        while True:
            event = next_event(response)
            if event is None:
                break
            types.append(event["type"])
            if event["type"] == "BOOKMARK":
                check_eq(event["object"]["metadata"]["annotations"], {"k8s.io/initial-events-end": "true"},
                         "initial-events-end bookmark")
        elapsed = time.monotonic() - started
        check(types and set(types[:-1]) == {"ADDED"} and types[-1] == "BOOKMARK",
              "initial events then a bookmark: %r", types)
        check(1.5 <= elapsed <= 4.0, "watch ended after %.1fs, not at timeoutSeconds=2", elapsed)
    finally:
        connection.close()


def watch_expired_after_compaction(s):
    old = s.rv()
    s.api.request("PATCH", SCALE_PATH, {"spec": {"replicas": 3}}, content_type=MERGE)
    s.api.compact()
    connection, response = open_watch(s, "resourceVersion=%s&timeoutSeconds=5" % old)
    try:
        check_eq(response.status, 200, "watch status")
        event = next_event(response)
        check(event is not None, "no event")
        check_eq(event["type"], "ERROR", "event type")
        check_status_body(event["object"], 410, "Expired")
        check(next_event(response) is None, "the stream goes on after the ERROR event")
    finally:
        connection.close()
    status, _, body = s.api.request("GET", "/apis/apps/v1/namespaces/%s/deployments?resourceVersion=%s"
                                    "&resourceVersionMatch=Exact" % (NS, old))
    check_eq(status, 410, "Exact list of a compacted resourceVersion")
    check_status_body(body, 410, "Expired")
    connection, response = open_watch(s, "resourceVersion=%s&timeoutSeconds=5" % s.rv())
    try:
        s.api.request("PATCH", SCALE_PATH, {"spec": {"replicas": 4}}, content_type=MERGE)
        event = next_event(response)
        check_eq(event and event["type"], "MODIFIED", "a watch from after the compaction works")
    finally:
        connection.close()


def keepalive_and_concurrency(s):
    port = int(s.api.url.rsplit(":", 1)[1])
    headers = {"Authorization": "Bearer " + s.api.token, "Accept": "application/json"}
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=s.api.tls_context())
    try:
        connection.request("GET", SCALE_PATH, headers=headers)
        connection.getresponse().read()
        first_socket = connection.sock
        for _ in range(KEEPALIVE_REQUESTS):
            connection.request("GET", SCALE_PATH, headers=headers)
            response = connection.getresponse()
            response.read()
            check_eq(response.status, 200, "keep-alive request")
        check(connection.sock is first_socket, "the connection was not kept alive")
    finally:
        connection.close()
    failures = []

    def client(index):
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=s.api.tls_context())
        try:
            for n in range(PARALLEL_REQUESTS):
                body = json.dumps({"spec": {"replicas": 1 + (index + n) % 5}})
                conn.request("PATCH", SCALE_PATH, body=body, headers=dict(headers, **{"Content-Type": MERGE}))
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(response.status)
        except Exception as exc:   # reported below as a failure of this check
            failures.append(repr(exc))
        finally:
            conn.close()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(PARALLEL_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    check(not failures, "parallel clients failed: %r", failures[:5])


def request_log_complete(s):
    s.api.reset_log()
    check_eq(s.api.log(), [], "log after reset")
    requests = [("GET", DEPLOY_PATH, None, None), ("GET", "/apis/apps/v1/namespaces/%s/deployments" % NS, None, None),
                ("PATCH", SCALE_PATH, {"spec": {"replicas": 2}}, None), ("GET", "/nonsense", None, None),
                ("GET", DEPLOY_PATH, None, "wrong-token")]
    for method, path, body, auth in requests:
        s.api.request(method, path, body, content_type=body and MERGE, auth=auth or "token")
    records = s.api.log()
    check_eq([(r["method"], r["path"]) for r in records], [(m, p) for m, p, _, _ in requests], "logged requests")
    check_eq([r["verb"] for r in records], ["get", "list", "patch", "get", "get"], "verbs")
    check_eq([r["status"] for r in records], [200, 200, 200, 404, 401], "statuses")
    patch = records[2]
    check_eq((patch["api_group"], patch["resource"], patch["subresource"], patch["namespace"], patch["name"]),
             ("apps", "deployments", "scale", NS, "web"), "patch record target")
    check_eq((patch["content_type"], patch["body"], patch["user"]), (MERGE, {"spec": {"replicas": 2}}, s.api.user),
             "patch record body")
    check_eq(records[4]["user"], None, "user of an unauthenticated request")
    for key in ("t", "query", "fault"):
        check(key in patch, "record lacks %s", key)


# ------------------------------------------------------------------ second instance

def second_instance(s):
    """Manual status and legacy discovery; SIGTERM with a watch open."""
    with FakeApiserver(manual_status=True, extra_args=["--legacy-discovery"]) as api:
        api.seed(deployment("web", NS, 2))
        path = DEPLOY_PATH
        before = api.get(path)
        check_eq(before["status"].get("readyReplicas"), None, "seeded status stays empty")
        status, _, _ = api.request("PATCH", SCALE_PATH, {"spec": {"replicas": 4}}, content_type=MERGE)
        check_eq(status, 200, "scale")
        after = api.get(path)
        check_eq((after["spec"]["replicas"], after["status"].get("replicas")), (4, None),
                 "manual status: spec moved, status did not")
        status, _, patched = api.request("PATCH", path + "/status",
                                         {"status": {"replicas": 4, "readyReplicas": 0, "updatedReplicas": 4,
                                                     "observedGeneration": after["metadata"]["generation"]}},
                                         content_type=MERGE)
        check_eq(status, 200, "PATCH status")
        check_eq(patched["status"], {"replicas": 4, "updatedReplicas": 4,
                                     "observedGeneration": after["metadata"]["generation"]},
                 "status (zero readyReplicas omitted, as Go's omitempty)")
        status, _, ignored = api.request("PATCH", path + "/status", {"spec": {"replicas": 9}}, content_type=MERGE)
        check_eq(ignored["spec"]["replicas"], 4, "a status patch does not change spec")
        if s.kubectl_path:
            kubeconfig = api.write_kubeconfig(os.path.join(s.workdir, "legacy.kubeconfig"))
            home = os.path.join(s.workdir, "home-legacy")
            os.makedirs(home, exist_ok=True)
            env = dict(os.environ, HOME=home, KUBECONFIG=kubeconfig)
            proc = subprocess.run([s.kubectl_path, "--request-timeout=10s", "scale", "deployment", "web",
                                   "-n", NS, "--replicas=3"], env=env, capture_output=True, text=True,
                                  timeout=KUBECTL_TIMEOUT_S)
            check(proc.returncode == 0, "kubectl scale with legacy discovery: %s", proc.stderr)
            check_eq(api.get(path)["spec"]["replicas"], 3, "replicas via legacy discovery")
            check("/apis/apps/v1" in [r["path"] for r in api.log()], "legacy group discovery not used")
        connection = http.client.HTTPSConnection("127.0.0.1", int(api.url.rsplit(":", 1)[1]),
                                                 timeout=WATCH_READ_TIMEOUT_S, context=api.tls_context())
        try:
            connection.request("GET", "/apis/apps/v1/deployments?watch=1&resourceVersion=%s"
                               % api.get(path)["metadata"]["resourceVersion"],
                               headers={"Authorization": "Bearer " + api.token})
            response = connection.getresponse()
            started = time.monotonic()
            code = api.stop()
            check_eq(code, 0, "exit status after SIGTERM")
            check(time.monotonic() - started < 3.0, "shutdown took %.1fs", time.monotonic() - started)
            try:
                rest = response.read()
            except (OSError, http.client.HTTPException):
                rest = b""
            check_eq(rest, b"", "events on a watch of an idle store")
        finally:
            connection.close()


RBAC_GRANTS = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: scaler
rules:
  - apiGroups: ["apps"]
    resources: ["deployments"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["apps"]
    resources: ["deployments/scale"]
    verbs: ["get", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: scaler
  namespace: %s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: scaler
subjects:
  - kind: ServiceAccount
    name: cpscale
    namespace: cpscale
""" % NS


RBAC_ONE_NAME = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: one-deployment
  namespace: team
rules:
  - apiGroups: ["apps"]
    resources: ["deployments"]
    resourceNames: ["web"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: one-deployment
  namespace: team
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: one-deployment
subjects:
  - kind: ServiceAccount
    name: cpscale
    namespace: cpscale
"""


RBAC_SA_NO_NAMESPACE = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: web-scaler
  namespace: team
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: scaler
subjects:
  - kind: ServiceAccount
    name: web-sa
"""


def service_account_kubectl(s, api, prefix):
    """Tokens on `api` for its admin (system:masters) and for the cpscale
    ServiceAccount; returns the ServiceAccount's user name and token, a
    kubeconfig for each, and run(kubeconfig, *kubectl args)."""
    sa_user, sa_groups = rbac_rules.service_account_user("cpscale", "cpscale")
    sa_token = secrets.token_urlsafe(24)
    api.set_tokens({api.token: (api.user, [api.group]), sa_token: (sa_user, sa_groups)})
    admin = api.write_kubeconfig(os.path.join(s.workdir, prefix + "-admin.kubeconfig"))
    robot = api.write_kubeconfig(os.path.join(s.workdir, prefix + "-sa.kubeconfig"), token=sa_token)

    def run(kubeconfig, *args):
        env = dict(os.environ, HOME=os.path.join(s.workdir, "home-" + prefix), KUBECONFIG=kubeconfig)
        return subprocess.run([s.kubectl_path, "--request-timeout=10s"] + list(args), env=env,
                              capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S)
    return sa_user, sa_token, admin, robot, run


def rbac_mode(s):
    """--authorization-mode RBAC, with kubectl as a service account: 403s
    worded as the real server words them until an admin applies a
    ClusterRole bound by a RoleBinding; then allowed in that namespace only,
    never at the cluster scope; forbidden again once the binding is deleted.
    Also: impersonation (--as) gets the impersonated rights and needs the
    impersonate verb; non-resource paths other than discovery, and kinds the
    server does not serve, are refused by name; resourceNames grant a list
    narrowed by fieldSelector to that name."""
    if not s.kubectl_path:
        raise Skip("kubectl not installed")
    with FakeApiserver(extra_args=["--authorization-mode", "RBAC"]) as api:
        for namespace in (NS, "team"):
            api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            api.seed(deployment("web", namespace, 2))
        sa_user, sa_token, admin, robot, run = service_account_kubectl(s, api, "rbac")

        def forbidden(proc, message):
            check(proc.returncode != 0, "allowed, expected Forbidden: %s", proc.stdout)
            want = "Error from server (Forbidden): " + message
            check(want in proc.stderr, "stderr %r lacks %r", proc.stderr.strip(), want)

        who = 'User "%s"' % sa_user
        forbidden(run(robot, "get", "deployment", "web", "-n", NS),
                  'deployments.apps "web" is forbidden: %s cannot get resource "deployments" in '
                  'API group "apps" in the namespace "%s"' % (who, NS))
        proc = run(robot, "version", "-o", "json")
        check(proc.returncode == 0, "discovery (/version) refused to a service account: %s", proc.stderr)
        path = s.manifest("rbac-grants.yaml", RBAC_GRANTS)
        proc = run(admin, "apply", "-f", path)
        check(proc.returncode == 0, "admin (system:masters) kubectl apply of RBAC: %s", proc.stderr)
        proc = run(robot, "get", "deployment", "web", "-n", NS, "-o", "jsonpath={.spec.replicas}")
        check(proc.returncode == 0 and proc.stdout == "2", "granted get: %r %s", proc.stdout, proc.stderr)
        proc = run(robot, "scale", "deployment", "web", "-n", NS, "--replicas=3")
        check(proc.returncode == 0, "granted scale: %s", proc.stderr)
        check_eq(api.get("/apis/apps/v1/namespaces/%s/deployments/web" % NS)["spec"]["replicas"], 3,
                 "replicas after a granted scale")
        forbidden(run(robot, "delete", "deployment", "web", "-n", NS),
                  'deployments.apps "web" is forbidden: %s cannot delete resource "deployments" in '
                  'API group "apps" in the namespace "%s"' % (who, NS))
        forbidden(run(robot, "get", "deployments", "-n", "team"),
                  'deployments.apps is forbidden: %s cannot list resource "deployments" in '
                  'API group "apps" in the namespace "team"' % who)
        forbidden(run(robot, "get", "deployments", "--all-namespaces"),
                  'deployments.apps is forbidden: %s cannot list resource "deployments" in '
                  'API group "apps" at the cluster scope' % who)
        # impersonation: the admin acting as the service account gets its rights
        proc = run(admin, "get", "deployment", "web", "-n", NS, "--as", sa_user,
                   "-o", "jsonpath={.spec.replicas}")
        check(proc.returncode == 0 and proc.stdout == "3", "admin --as the service account: %r %s",
              proc.stdout, proc.stderr)
        forbidden(run(admin, "get", "deployments", "-n", "team", "--as", sa_user),
                  'deployments.apps is forbidden: %s cannot list resource "deployments" in '
                  'API group "apps" in the namespace "team"' % who)
        forbidden(run(robot, "get", "deployments", "-n", NS, "--as", "someone"),
                  'users "someone" is forbidden: %s cannot impersonate resource "users" in '
                  'API group "" at the cluster scope' % who)
        # non-resource paths: discovery is public, the rest is not
        forbidden(run(robot, "get", "--raw", "/metrics"),
                  'forbidden: %s cannot get path "/metrics"' % who)
        # a resource this server does not serve is refused by RBAC first, by its name
        forbidden(run(robot, "get", "--raw", "/api/v1/nodes"),
                  'nodes is forbidden: %s cannot list resource "nodes" in API group "" at the '
                  'cluster scope' % who)
        # resourceNames grant a list or watch narrowed to that one name
        path = s.manifest("rbac-one-name.yaml", RBAC_ONE_NAME)
        proc = run(admin, "apply", "-f", path)
        check(proc.returncode == 0, "admin kubectl apply of a Role with resourceNames: %s", proc.stderr)
        proc = run(robot, "get", "deployments", "-n", "team", "--field-selector", "metadata.name=web",
                   "-o", "name")
        check(proc.returncode == 0 and proc.stdout.strip() == "deployment.apps/web",
              "list narrowed to metadata.name=web under resourceNames [web]: %r %s",
              proc.stdout, proc.stderr)
        proc = run(robot, "get", "deployments", "-n", "team", "--field-selector",
                   "metadata.namespace=team,metadata.name=web", "-o", "name")
        check(proc.returncode == 0 and proc.stdout.strip() == "deployment.apps/web",
              "the name as one term of an AND selector: %r %s", proc.stdout, proc.stderr)
        forbidden(run(robot, "get", "deployments", "-n", "team"),
                  'deployments.apps is forbidden: %s cannot list resource "deployments" in '
                  'API group "apps" in the namespace "team"' % who)
        forbidden(run(robot, "get", "--raw", "/healthz/etcd"),
                  'forbidden: %s cannot get path "/healthz/etcd"' % who)
        proc = run(admin, "delete", "rolebinding", "scaler", "-n", NS)
        check(proc.returncode == 0, "admin delete rolebinding: %s", proc.stderr)
        forbidden(run(robot, "get", "deployment", "web", "-n", NS),
                  'deployments.apps "web" is forbidden: %s cannot get resource "deployments"' % who)
        denied = [r for r in api.log() if r.get("user") == sa_user and r.get("status") == 403]
        check(denied and all(r.get("forbidden") for r in denied),
              "403s of the service account not marked as RBAC denials in the log")


RBAC_METRICS_PATH = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: metrics-reader
rules:
  - nonResourceURLs: ["/metrics", "/debug/*"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: %s
metadata:
  name: metrics-reader%s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: metrics-reader
subjects:
  - kind: ServiceAccount
    name: cpscale
    namespace: cpscale
"""


def access_reviews(s):
    """kubectl auth can-i (SelfSubjectAccessReview, sent as protobuf) and
    `can-i --list` (SelfSubjectRulesReview) under RBAC: the answers follow
    the stored bindings, for the caller and for an impersonated service
    account; non-resource URLs are granted by a ClusterRoleBinding, never by
    a RoleBinding; a review that is not one is refused (400, 422); under
    AlwaysAllow everything is allowed, and the rules list says so ("*")."""
    if not s.kubectl_path:
        raise Skip("kubectl not installed")
    with FakeApiserver(extra_args=["--authorization-mode", "RBAC"]) as api:
        for namespace in (NS, "team"):
            api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        sa_user, sa_token, admin, robot, run = service_account_kubectl(s, api, "review")

        def can_i(kubeconfig, want, *args):
            proc = run(kubeconfig, "auth", "can-i", *args)
            answer = proc.stdout.strip()
            check((answer, proc.returncode) == (want, 0 if want == "yes" else 1),
                  "kubectl auth can-i %s: %r (exit %d), expected %r; %s", " ".join(args), answer,
                  proc.returncode, want, proc.stderr.strip())

        scale = ("patch", "deployments", "--subresource=scale", "-n", NS)
        can_i(robot, "no", *scale)
        can_i(admin, "no", *(scale + ("--as", sa_user)))
        can_i(robot, "yes", "get", "/healthz")       # the bootstrap roles
        can_i(robot, "yes", "get", "/apis/apps/v1")
        can_i(robot, "no", "get", "/metrics")
        status, _, _ = api.request("GET", "/metrics", auth=sa_token)
        check_eq(status, 403, "GET /metrics by the service account before any grant")
        proc = run(admin, "apply", "-f", s.manifest("review-grants.yaml", RBAC_GRANTS))
        check(proc.returncode == 0, "admin kubectl apply of RBAC: %s", proc.stderr)
        can_i(robot, "yes", *scale)
        can_i(admin, "yes", *(scale + ("--as", sa_user)))
        can_i(robot, "no", "patch", "deployments", "--subresource=scale", "-n", "team")
        can_i(robot, "no", "patch", "deployments", "-n", NS)   # the object, not its scale
        can_i(robot, "no", "list", "deployments", "--all-namespaces")
        can_i(admin, "yes", "delete", "deployments", "-n", "team")   # system:masters
        # the status's reason, read back by kubectl create of a review (JSON)
        def review_status(kubeconfig, label, attributes, *extra):
            review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                      "spec": attributes}
            proc = run(kubeconfig, "create", "--validate=false", "-o", "json", "-f",
                       s.manifest("review-%s.json" % label, json.dumps(review)), *extra)
            check(proc.returncode == 0, "kubectl create of a review (%s): %s", label, proc.stderr)
            return json.loads(proc.stdout or "{}").get("status", {})
        scale_attributes = {"resourceAttributes": {"verb": "patch", "group": "apps",
                                                   "resource": "deployments",
                                                   "subresource": "scale", "namespace": NS}}
        check_eq(review_status(robot, "scale", scale_attributes),
                 {"allowed": True, "reason": 'RBAC: allowed by RoleBinding "scaler/%s" of '
                                             'ClusterRole "scaler" to ServiceAccount '
                                             '"cpscale/cpscale"' % NS},
                 "a review's reason names the binding, role and subject that allow it")
        healthz = review_status(robot, "healthz", {"nonResourceAttributes": {"verb": "get",
                                                                             "path": "/healthz"}})
        check(healthz.get("allowed") is True and re.match(
            r'RBAC: allowed by ClusterRoleBinding "(system:discovery|system:public-info-viewer)" '
            r'of ClusterRole "\1" to Group "system:authenticated"$', healthz.get("reason", "")),
              "/healthz is allowed by a bootstrap binding, and the reason says which: %s", healthz)
        denied = dict(scale_attributes["resourceAttributes"], namespace="team")
        check_eq(review_status(robot, "denied", {"resourceAttributes": denied}), {"allowed": False},
                 "a denied review has no reason (RBAC gives none)")
        own_review = {"resourceAttributes": {"verb": "create", "group": "authorization.k8s.io",
                                             "resource": "selfsubjectaccessreviews"}}
        check_eq(review_status(admin, "masters", own_review), {"allowed": True},
                 "system:masters is allowed with no reason, before RBAC is asked (RBAC's "
                 "bootstrap system:basic-user binding would allow it too)")
        # a service account named in a binding without its namespace: the
        # reason names it "name/namespace", the namespace the binding's
        proc = run(admin, "apply", "-f", s.manifest("review-web-sa.yaml", RBAC_SA_NO_NAMESPACE))
        check(proc.returncode == 0, "apply a RoleBinding to a service account: %s", proc.stderr)
        team_scale = {"resourceAttributes": denied}
        check_eq(review_status(admin, "web-sa", team_scale,
                               "--as", "system:serviceaccount:team:web-sa"),
                 {"allowed": True, "reason": 'RBAC: allowed by RoleBinding "web-scaler/team" of '
                                             'ClusterRole "scaler" to ServiceAccount "web-sa/team"'},
                 "the reason of a review by an impersonated service account")
        proc = run(admin, "auth", "can-i", "--list", "-n", "team")
        rows = {tuple(line.split()) for line in proc.stdout.splitlines()[1:]}
        check(("*.*", "[]", "[]", "[*]") in rows and
              ("selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]") in rows,
              "system:masters' rules list lacks cluster-admin's or the bootstrap rules:\n%s",
              proc.stdout)
        # the rules list: what reaches NS, as the roles wrote it
        proc = run(robot, "auth", "can-i", "--list", "-n", NS)
        check(proc.returncode == 0, "can-i --list: %s", proc.stderr)
        rows = {tuple(line.split()) for line in proc.stdout.splitlines()[1:]}
        for row in [("deployments.apps", "[]", "[]", "[get", "list", "watch]"),
                    ("deployments.apps/scale", "[]", "[]", "[get", "patch]"),
                    ("selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"),
                    ("[/healthz]", "[]", "[get]")]:
            check(row in rows, "can-i --list -n %s lacks %s:\n%s", NS, " ".join(row), proc.stdout)
        proc = run(robot, "auth", "can-i", "--list", "-n", "team")
        check(proc.returncode == 0 and "deployments.apps" not in proc.stdout,
              "can-i --list -n team shows NS's rules: %s %s", proc.stdout, proc.stderr)
        # non-resource URLs: a RoleBinding does not reach them, a ClusterRoleBinding does
        proc = run(admin, "apply", "-f", s.manifest("review-metrics-rb.yaml", RBAC_METRICS_PATH % (
            "RoleBinding", "\n  namespace: %s" % NS)))
        check(proc.returncode == 0, "apply RoleBinding to a nonResourceURLs role: %s", proc.stderr)
        can_i(robot, "no", "get", "/metrics")
        status, _, _ = api.request("GET", "/metrics", auth=sa_token)
        check_eq(status, 403, "GET /metrics through a RoleBinding only")
        proc = run(robot, "auth", "can-i", "--list", "-n", NS)
        check(("[/debug/*]", "[]", "[get]") in {
            tuple(line.split()) for line in proc.stdout.splitlines()[1:]},
              "the rules list leaves out the RoleBinding's path rule (the real one lists it):\n%s",
              proc.stdout)
        proc = run(admin, "apply", "-f", s.manifest("review-metrics-crb.yaml", RBAC_METRICS_PATH % (
            "ClusterRoleBinding", "")))
        check(proc.returncode == 0, "apply ClusterRoleBinding to it: %s", proc.stderr)
        can_i(robot, "yes", "get", "/metrics")
        can_i(robot, "yes", "get", "/debug/pprof/heap")
        can_i(robot, "no", "post", "/metrics")
        can_i(robot, "no", "get", "/debugger")
        status, _, _ = api.request("GET", "/metrics", auth=sa_token)
        check_eq(status, 404, "GET /metrics once granted (authorized; the fake serves no metrics)")
        # not a review: neither attributes (422), both (422), garbage protobuf (400)
        path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview"}
        status, _, body = api.request("POST", path, dict(review, spec={}), auth=sa_token)
        check_eq(status, 422, "a review with no attributes")
        check_status_body(body, 422, "Invalid")
        check_eq(body.get("message"), 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                 'spec.resourceAttributes: Invalid value: "null": exactly one of '
                 'nonResourceAttributes or resourceAttributes must be specified',
                 "422 message of a review with no attributes")
        status, _, body = api.request("POST", path, dict(review, spec={
            "resourceAttributes": {"verb": "get", "resource": "pods"},
            "nonResourceAttributes": {"verb": "get", "path": "/healthz"}}), auth=sa_token)
        check_eq(status, 422, "a review with both attributes")
        message = body.get("message", "")
        check(message.startswith('SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                                 "spec.nonResourceAttributes: Invalid value: ") and
              message.endswith("cannot be specified in combination with resourceAttributes"),
              "422 message of a review with both: %s", message)
        status, _, body = api.request("POST", path, b"k8s\x00\x0a\xff", auth=sa_token,
                                      content_type="application/vnd.kubernetes.protobuf")
        check_eq(status, 400, "a truncated protobuf review")
        status, _, body = api.request("POST", path, dict(review, spec={
            "resourceAttributes": {"verb": "get", "group": "apps", "resource": "deployments",
                                   "namespace": NS}}), auth=sa_token)
        check_eq((status, body.get("status")), (201, {
            "allowed": True, "reason": 'RBAC: allowed by RoleBinding "scaler/%s" of ClusterRole '
                                       '"scaler" to ServiceAccount "cpscale/cpscale"' % NS}),
                 "a JSON review")
        status, _, body = api.request("POST", path, dict(review, spec={
            "resourceAttributes": {"verb": "GET", "group": "apps", "resource": "deployments",
                                   "namespace": NS}}), auth=sa_token)
        check_eq((status, body.get("status")), (201, {"allowed": False}),
                 "a review of verb GET (verbs are compared as written)")
        rules_path = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
        status, _, body = api.request("POST", rules_path, {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
            "spec": {}}, auth=sa_token)
        check_eq((status, body.get("message")), (400, "no namespace on request"),
                 "a rules review without a namespace")
        # a protobuf body where the fake decodes JSON only: 415, never misread
        for target, want_message in (
                ("/api/v1/namespaces/%s/configmaps" % NS, "the fake API server decodes configmaps "
                 "only from JSON"),
                ("/apis/monitoring.coreos.com/v1/namespaces/%s/servicemonitors" % NS,
                 "the body of the request was in an unknown format - accepted media types "
                 "include: application/json, application/yaml")):
            status, _, body = api.request("POST", target, b"k8s\x00\x0a\x00", auth=api.token,
                                          content_type="application/vnd.kubernetes.protobuf")
            check(status == 415 and want_message in body.get("message", ""),
                  "protobuf POST to %s: %s %s", target, status, body)
        status, _, _ = api.request("GET", path, auth=sa_token)
        check_eq(status, 403, "a list of access reviews by one who may not list them")
        status, _, _ = api.request("GET", path)
        check_eq(status, 405, "a list of access reviews by system:masters")
    with FakeApiserver() as api:   # AlwaysAllow
        open_config = api.write_kubeconfig(os.path.join(s.workdir, "review-open.kubeconfig"))
        can_i(open_config, "yes", "delete", "deployments", "-n", NS)
        proc = run(open_config, "auth", "can-i", "--list")
        rows = {tuple(line.split()) for line in proc.stdout.splitlines()[1:]}
        check(proc.returncode == 0 and ("*.*", "[]", "[]", "[*]") in rows and
              ("[*]", "[]", "[*]") in rows and "incomplete" not in proc.stderr,
              "AlwaysAllow rules list is not everything: %s %s", proc.stdout, proc.stderr)


CHECKS = [
    ("kubectl version (server /version)", kubectl_version),
    ("kubectl get deployment (Table)", kubectl_get_table),
    ("kubectl get deployment NAME -o json", kubectl_get_json),
    ("kubectl scale --replicas, read back", kubectl_scale),
    ("kubectl scale --current-replicas=WRONG fails", kubectl_scale_wrong_current),
    ("kubectl scale --current-replicas=RIGHT (PUT scale)", kubectl_scale_right_current),
    ("kubectl patch --type merge", kubectl_patch_merge),
    ("kubectl patch (strategic, containers by name)", kubectl_patch_strategic),
    ("kubectl patch --type json", kubectl_patch_json),
    ("kubectl get lease -n NS", kubectl_get_lease),
    ("events.k8s.io/v1 Event, core v1 view", events_v1_roundtrip),
    ("kubectl get events", kubectl_get_events),
    ("kubectl create -f Lease+ConfigMap, again fails", kubectl_create),
    ("kubectl create --validate=false", kubectl_create_no_validate),
    ("kubectl apply -f Namespace+ConfigMap+Deployment", kubectl_apply),
    ("kubectl with a client-certificate kubeconfig", kubectl_client_cert),
    ("kubectl delete", kubectl_delete),
    ("401 without or with a wrong token", auth_missing_and_wrong),
    ("token file rotation", auth_token_rotation),
    ("kubectl after token rotation", kubectl_after_rotation),
    ("client certificate over HTTPS", auth_client_cert),
    ("service-account directory (token, ca.crt, namespace)", serviceaccount_dir),
    ("discovery documents", discovery),
    ("injected fault statuses (401 403 409 429 500 503)", faults_each_status),
    ("injected delay", fault_delay),
    ("injected answer delay", fault_answer_delay),
    ("fault matching, probability, list, clear", fault_matching),
    ("injected connection reset", fault_reset),
    ("404 NotFound and 405 MethodNotAllowed", not_found_and_unknown),
    ("409 AlreadyExists, 404 missing namespace", create_conflicts),
    ("scale subresource shape", scale_shape),
    ("stale resourceVersion on PATCH/PUT: 409 Conflict", resource_version_conflicts),
    ("no-op writes and generation", noop_and_generation),
    ("validation: 400 decode errors, 422 invalid, 415", validation),
    ("list: kind, resourceVersion, selectors, pagination", list_semantics),
    ("watch: MODIFIED, ADDED, DELETED after changes", watch_events),
    ("watch: initial events, bookmark, timeoutSeconds", watch_bookmark_and_timeout),
    ("watch and Exact list: 410 Expired after compaction", watch_expired_after_compaction),
    ("keep-alive and parallel clients", keepalive_and_concurrency),
    ("request log records every request", request_log_complete),
    ("the request log holds no token", log_has_no_tokens),
    ("--manual-status, --legacy-discovery, SIGTERM", second_instance),
    ("--authorization-mode RBAC: kubectl as a service account", rbac_mode),
    ("kubectl auth can-i, can-i --list (access reviews, protobuf)", access_reviews),
]


def seed_fixtures(api):
    api.seed(deployment("web", NS, 3))
    api.seed({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
              "metadata": {"name": "cpscale-leader", "namespace": NS},
              "spec": {"holderIdentity": "cpscale-0", "leaseDurationSeconds": 15,
                       "renewTime": "2024-05-01T10:00:00.000000Z", "leaseTransitions": 1}})
    api.seed({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.seeded", "namespace": NS},
              "involvedObject": {"kind": "Deployment", "name": "web", "namespace": NS},
              "reason": "ScalingReplicaSet", "message": "Scaled up replica set web-1 to 3",
              "type": "Normal", "firstTimestamp": "2024-05-01T10:00:00Z",
              "lastTimestamp": "2024-05-01T10:00:00Z", "count": 1})


class SuiteTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise SuiteTimeout("the suite ran longer than %ds" % SUITE_TIMEOUT_S)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpscale", help="path of the cpscale binary (unused)")
    parser.parse_args()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(SUITE_TIMEOUT_S)
    passed = failed = skipped = 0
    workdir = tempfile.mkdtemp(prefix="test-fake-apiserver-")
    try:
        with FakeApiserver() as api:
            seed_fixtures(api)
            suite = Suite(api, workdir)
            for name, function in CHECKS:
                try:
                    function(suite)
                    passed += 1
                    print("ok    %s" % name)
                except Skip as reason:
                    skipped += 1
                    print("skip  %s: %s" % (name, reason))
                except SuiteTimeout:
                    raise
                except Exception as exc:
                    failed += 1
                    print("FAIL  %s: %s: %s" % (name, type(exc).__name__, exc))
                sys.stdout.flush()
            if failed:
                stderr = api.stderr_text().strip()
                if stderr:
                    print("server stderr:\n" + stderr[-3000:])
    except SuiteTimeout as exc:
        failed += 1
        print("FAIL  %s" % exc)
    except Exception as exc:
        failed += 1
        print("FAIL  setup: %s: %s" % (type(exc).__name__, exc))
    finally:
        signal.alarm(0)
        shutil.rmtree(workdir, ignore_errors=True)
    if skipped:
        print("%d skipped" % skipped)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
