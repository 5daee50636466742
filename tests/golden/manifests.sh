#!/usr/bin/env bash
#
# Checks of what cpscale deploys, run from the repository root (ctest does):
#     bash tests/golden/manifests.sh path/to/cpscale
#
#   manifests/   rendered with `kubectl kustomize` (offline), then turned into
#                JSON by `kubectl label --local -o json`, which needs no API
#                server, so the checks below parse JSON with Python's standard
#                library instead of guessing at YAML. Checked: the security
#                context, probes, resources, replicas, the config mount, the
#                ConfigMap (byte-identical to config/config.yaml, and accepted
#                by `cpscale check-config`), the exact RBAC, the Service, the
#                disruption budget and the optional components; the SLO
#                alert rules pass `promtool check rules` and, on synthetic
#                series, `promtool test rules` (skipped without promtool).
#   Dockerfile   read statically: its stages, the final stage's packages and
#                user, the entrypoint (no container engine is assumed).
#   manifests/grafana/cpscale-dashboard.json
#                valid JSON whose queries use only metrics cpscale exports.
#
# Every check prints one line; the last line is "N passed, N failed, N
# skipped". Without kubectl the checks that need it are skipped, not failed.
# CPS_MANIFESTS_ROOT=DIR checks another tree (a deliberately broken copy, to
# see the checks fail).
set -u

bin=${1:?usage: manifests.sh path/to/cpscale}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
root=${CPS_MANIFESTS_ROOT:-.}
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v python3 >/dev/null 2>&1; then
    echo "manifests: python3 not found: skipped"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi

cd "$root" || exit 2
exec python3 - "$bin" "$here" <<'PYTHON'
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

BIN, HERE = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakes"))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import rbac_rules  # noqa: E402  (tests/fakes/rbac_rules.py)

NAMESPACE = "cpscale"
CONFIG_DIR = "/etc/cpscale"
CONFIG_PATH = CONFIG_DIR + "/config.yaml"
METRICS_PORT = 8080
USER_ID = 65532

# The API requests cpscale makes, as (apiGroup, resource, verb). The RBAC must
# grant exactly these: one more is a privilege nobody asked for, one less a
# 403 in production.
EXPECTED_RBAC = {
    ("apps", "deployments", "get"),
    ("apps", "deployments", "list"),
    ("apps", "deployments", "watch"),
    ("apps", "deployments/scale", "get"),
    ("apps", "deployments/scale", "patch"),
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),
}

# `cpscale run`'s flags; anything else in the Deployment's args is a typo.
RUN_FLAGS = {"--config", "--kubeconfig", "--dry-run", "--once", "--leader-elect",
             "--log-format", "--log-level", "--listen", "--identity",
             "--serviceaccount-dir"}
RUN_FLAGS_WITH_VALUE = RUN_FLAGS - {"--dry-run", "--once", "--leader-elect"}

# What /metrics exports (README "Metrics"). Histograms add _bucket, _sum and
# _count series.
GAUGES = {
    "cpscale_target_desired_replicas", "cpscale_target_current_replicas",
    "cpscale_target_ready_replicas", "cpscale_target_min_replicas",
    "cpscale_target_max_replicas", "cpscale_target_qps",
    "cpscale_target_p95_latency_ms", "cpscale_target_slo_latency_p95_ms",
    "cpscale_target_cost_per_million_requests_usd",
    "cpscale_target_cost_target_per_million_requests_usd",
    "cpscale_target_cost_per_hour_usd", "cpscale_target_cost_max_per_hour_usd",
    "cpscale_leader", "cpscale_config_generation", "cpscale_build_info",
    "cpscale_prometheus_queries_per_tick", "cpscale_process_cpu_seconds",
    "cpscale_slo_violation_budget_ratio", "cpscale_slo_budget_spent_ratio",
    "cpscale_slo_burn_rate", "cpscale_policy_headroom_adjust",
    "cpscale_policy_forecast_tail", "cpscale_policy_minute_spread_factor",
    "cpscale_policy_latency_shape",
    "cpscale_policy_pod_safe_rps", "cpscale_policy_startup_seconds",
    "cpscale_policy_startup_learned_seconds",
}
COUNTERS = {
    "cpscale_decisions_total", "cpscale_scale_events_total",
    "cpscale_scale_failures_total", "cpscale_query_errors_total",
    "cpscale_kube_requests_total", "cpscale_ticks_total",
    "cpscale_ticks_skipped_total", "cpscale_config_reloads_total",
    "cpscale_slo_requests_total", "cpscale_slo_violating_requests_total",
}
HISTOGRAMS = {"cpscale_tick_duration_seconds"}
EXPORTED = GAUGES | COUNTERS | {h + s for h in HISTOGRAMS
                                for s in ("_bucket", "_sum", "_count")}

RUNTIME_PACKAGES = {"libjansson4", "libyaml-0-2", "libev4", "libcurl3-gnutls",
                    "libmicrohttpd12", "ca-certificates"}
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|cmake|make|"
                         r"pkg-config|[a-z0-9.+-]+-dev)\b")

passed = failed = skipped = 0


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(name, fn, *args):
    """Run one check; it raises Fail or Skip, or returns an optional note."""
    global passed, failed, skipped
    try:
        note = fn(*args)
        passed += 1
        print("ok - %s%s" % (name, ": " + note if note else ""))
    except Skip as e:
        skipped += 1
        print("skip - %s: %s" % (name, e))
    except Fail as e:
        failed += 1
        print("not ok - %s: %s" % (name, e))
    except Exception as e:  # a check that crashes is a failed check
        failed += 1
        print("not ok - %s: %s: %s" % (name, type(e).__name__, e))


def want(cond, message):
    if not cond:
        raise Fail(message)


# ---- rendering ---------------------------------------------------------------

KUBECTL = shutil.which("kubectl")
TMP = tempfile.mkdtemp(prefix="cps-manifests-")


def run(argv, stdin=None):
    return subprocess.run(argv, input=stdin, capture_output=True, text=True,
                          timeout=120)


def to_objects(yaml_text):
    """YAML manifests -> list of dicts, offline: `kubectl label --local`
    parses them and, removing a label nobody has, prints them as JSON."""
    p = run([KUBECTL, "label", "--local", "-f", "-", "-o", "json",
             "cps-render-check-"], stdin=yaml_text)
    if p.returncode != 0:
        raise Fail("kubectl could not parse the render: " + p.stderr.strip()[:300])
    objects, decoder, i, s = [], json.JSONDecoder(), 0, p.stdout
    while True:
        while i < len(s) and s[i].isspace():
            i += 1
        if i >= len(s):
            break
        obj, i = decoder.raw_decode(s, i)
        objects.extend(obj["items"] if obj.get("kind") == "List" else [obj])
    return objects


renders = {}


def render(path):
    if not KUBECTL:
        raise Skip("kubectl not found")
    if path not in renders:
        p = run([KUBECTL, "kustomize", path])
        if p.returncode != 0:
            renders[path] = Fail("kubectl kustomize %s: %s" % (path, p.stderr.strip()[:400]))
        else:
            try:
                renders[path] = (p.stdout, to_objects(p.stdout))
            except Fail as e:
                renders[path] = e
    if isinstance(renders[path], Exception):
        raise renders[path]
    return renders[path]


def objects(path="manifests"):
    return render(path)[1]


def find(kind, name=None, path="manifests"):
    found = [o for o in objects(path) if o.get("kind") == kind
             and (name is None or o["metadata"].get("name") == name)]
    want(found, "no %s%s in the render of %s" % (kind, " " + name if name else "", path))
    want(len(found) == 1, "%d %s objects named %s" % (len(found), kind, name))
    return found[0]


def deployment():
    return find("Deployment", "cpscale")


def pod_spec():
    return deployment()["spec"]["template"]["spec"]


def container():
    cs = pod_spec()["containers"]
    want(len(cs) == 1, "expected one container, found %d" % len(cs))
    return cs[0]


# ---- the render ----------------------------------------------------------------

def c_renders():
    return "%d objects" % len(objects())


def c_top_is_example():
    top = render("manifests")[0]
    example = render("manifests/overlays/example")[0]
    want(top == example, "kubectl kustomize manifests/ differs from manifests/overlays/example")


def c_base_renders():
    kinds = sorted(o["kind"] for o in objects("manifests/base"))
    want("ServiceMonitor" not in kinds, "the base must not need the Prometheus Operator")
    return ", ".join(kinds)


def c_kinds():
    need = [("Namespace", NAMESPACE), ("ServiceAccount", "cpscale"), ("ClusterRole", None),
            ("Role", None), ("RoleBinding", "cpscale-leader-election"),
            ("ConfigMap", "cpscale-config"), ("Deployment", "cpscale"),
            ("Service", "cpscale"), ("PodDisruptionBudget", "cpscale"),
            ("NetworkPolicy", "cpscale"), ("ServiceMonitor", "cpscale")]
    for kind, name in need:
        find(kind, name)
    want(not any(o["kind"] == "ClusterRoleBinding" for o in objects()),
         "a ClusterRoleBinding: the example binds cpscale's role per target namespace")


def c_network_policy():
    """The base's NetworkPolicy selects the controller pods and lets in only
    selected peers, only on the metrics port (slow clients must not reach the probes)."""
    policy = find("NetworkPolicy", "cpscale", "manifests/base")
    spec = policy["spec"]
    pod = next(o for o in objects("manifests/base") if o["kind"] == "Deployment")
    labels = pod["spec"]["template"]["metadata"]["labels"]
    selector = spec["podSelector"].get("matchLabels", {})
    want(selector and all(labels.get(k) == v for k, v in selector.items()),
         "podSelector %s does not select the controller pods" % selector)
    want("Ingress" in spec.get("policyTypes", []), "policyTypes has no Ingress")
    rules = spec.get("ingress", [])
    want(rules, "no ingress rule: nothing could scrape /metrics")
    for rule in rules:
        peers = rule.get("from", [])
        want(peers and all(p.get("namespaceSelector", {}).get("matchLabels") or
                           p.get("podSelector", {}).get("matchLabels") for p in peers),
             "an ingress rule admits every peer: %s" % rule)
        ports = [p.get("port") for p in rule.get("ports", [])]
        want(ports and all(p in ("metrics", METRICS_PORT) for p in ports),
             "an ingress rule opens ports %s, not only metrics" % ports)
    return "from %d peer selector(s), port metrics" % sum(len(r["from"]) for r in rules)


CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def c_namespaces():
    """Everything namespaced is in cpscale, but the RoleBindings that give
    cpscale its targets' namespaces."""
    for o in objects():
        ns = o["metadata"].get("namespace")
        if o["kind"] in CLUSTER_SCOPED:
            want(ns is None, "%s %s is cluster-scoped but has a namespace" % (o["kind"], o["metadata"]["name"]))
        elif o["kind"] == "RoleBinding" and o["roleRef"].get("kind") == "ClusterRole":
            want(ns in target_namespaces(config_targets()),
                 "RoleBinding %s/%s: no target in that namespace" % (ns, o["metadata"]["name"]))
        else:
            want(ns == NAMESPACE, "%s %s is in namespace %r" % (o["kind"], o["metadata"]["name"], ns))


def c_psa():
    labels = find("Namespace", NAMESPACE)["metadata"].get("labels", {})
    want(labels.get("pod-security.kubernetes.io/enforce") == "restricted",
         "namespace %s does not enforce the restricted Pod Security Standard" % NAMESPACE)


# ---- the Deployment --------------------------------------------------------------

def c_replicas():
    n = deployment()["spec"].get("replicas")
    want(n == 2, "replicas is %r, expected 2 (a leader and a standby)" % n)


def c_pod_security():
    sc = pod_spec().get("securityContext", {})
    want(sc.get("runAsNonRoot") is True, "pod runAsNonRoot is not true")
    want(sc.get("runAsUser") == USER_ID, "pod runAsUser is %r" % sc.get("runAsUser"))
    want(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod seccompProfile is not RuntimeDefault")


def c_container_security():
    sc = container().get("securityContext", {})
    pod = pod_spec().get("securityContext", {})
    eff = lambda k: sc.get(k, pod.get(k))
    want(eff("runAsNonRoot") is True, "runAsNonRoot is not true")
    want(eff("runAsUser") == USER_ID, "runAsUser is %r, expected %d" % (eff("runAsUser"), USER_ID))
    want(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    want(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
    want(sc.get("privileged") in (None, False), "privileged")
    caps = sc.get("capabilities", {})
    want(caps.get("drop") == ["ALL"], "capabilities.drop is %r, expected [ALL]" % caps.get("drop"))
    want(not caps.get("add"), "capabilities.add is %r" % caps.get("add"))
    want(eff("seccompProfile") == {"type": "RuntimeDefault"}, "seccompProfile is not RuntimeDefault")


def c_service_account():
    spec = pod_spec()
    want(spec.get("serviceAccountName") == "cpscale", "serviceAccountName is %r" % spec.get("serviceAccountName"))
    want(spec.get("automountServiceAccountToken") is True, "automountServiceAccountToken is not true")
    sa = find("ServiceAccount", "cpscale")
    want(sa.get("automountServiceAccountToken") in (None, True), "the ServiceAccount turns the token off")


def probe_target(probe, what):
    want(probe, "no %s probe" % what)
    get = probe.get("httpGet")
    want(get, "the %s probe is not an httpGet" % what)
    port = get.get("port")
    named = {p.get("name"): p.get("containerPort") for p in container().get("ports", [])}
    return get.get("path"), named.get(port, port)


def c_probes():
    c = container()
    path, port = probe_target(c.get("livenessProbe"), "liveness")
    want((path, port) == ("/healthz", METRICS_PORT), "liveness probes %s on %s" % (path, port))
    path, port = probe_target(c.get("readinessProbe"), "readiness")
    want((path, port) == ("/readyz", METRICS_PORT), "readiness probes %s on %s" % (path, port))


UNITS = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
         "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40}


def quantity(q):
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q))
    want(m and m.group(2) in UNITS, "unreadable quantity %r" % q)
    return float(m.group(1)) * UNITS[m.group(2)]


def c_resources():
    r = container().get("resources", {})
    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            want(res in r.get(kind, {}), "no %s.%s" % (kind, res))
    for res in ("cpu", "memory"):
        want(quantity(r["requests"][res]) <= quantity(r["limits"][res]),
             "%s request above its limit" % res)
    return "requests %s, limits %s" % (r["requests"], r["limits"])


def c_downward_api():
    """POD_NAME (the Lease holder identity) from the downward API, and no
    variable the controller does not read."""
    env = {e["name"]: e for e in container().get("env", [])}
    ref = env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {})
    want(ref.get("fieldPath") == "metadata.name", "POD_NAME does not come from metadata.name")
    # read: a getenv("NAME"), a name in a table of variables the code
    # getenv()s in a loop (prom.c's proxy variables), or one libcurl reads
    # itself (its proxy variables)
    read = {"http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
            "no_proxy"}
    for directory, _, files in os.walk("controller"):
        for name in files:
            if name.endswith(".c"):
                with open(os.path.join(directory, name)) as f:
                    text = f.read()
                read |= set(re.findall(r'getenv\("([A-Za-z_][A-Za-z0-9_]*)"\)', text))
                if "getenv(" in text:
                    for table in re.findall(r'\[\]\s*=\s*\{([^}]*)\}', text):
                        read |= set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', table))
    want("POD_NAME" in read, "the controller no longer reads POD_NAME")
    unread = sorted(set(env) - read)
    want(not unread, "environment the controller never reads: %s" % unread)


def c_spread():
    spec = pod_spec()
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    def selects(sel):
        return sel and all(labels.get(k) == v for k, v in sel.get("matchLabels", {}).items())
    for t in spec.get("topologySpreadConstraints", []):
        if t.get("topologyKey") == "kubernetes.io/hostname" and selects(t.get("labelSelector")):
            return "topologySpreadConstraints (%s)" % t.get("whenUnsatisfiable")
    anti = spec.get("affinity", {}).get("podAntiAffinity", {})
    terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution", []) + [
        t.get("podAffinityTerm", {}) for t in
        anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
    for t in terms:
        if t.get("topologyKey") == "kubernetes.io/hostname" and selects(t.get("labelSelector")):
            return "podAntiAffinity"
    raise Fail("no topology spread or anti-affinity over kubernetes.io/hostname for the pods")


def run_args():
    c = container()
    args = list(c.get("command", [])) + list(c.get("args", []))
    if args and args[0].endswith("cpscale"):
        args = args[1:]
    return args


def flag_value(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def c_args():
    args = run_args()
    want(args[:1] == ["run"], "the container does not run `cpscale run`: %r" % args)
    i = 1
    while i < len(args):
        a = args[i]
        flag = a.split("=", 1)[0]
        want(flag in RUN_FLAGS, "unknown flag %r for cpscale run" % a)
        if flag in RUN_FLAGS_WITH_VALUE and "=" not in a:
            i += 1
        i += 1
    want(flag_value(args, "--config") == CONFIG_PATH, "--config is %r" % flag_value(args, "--config"))
    want(flag_value(args, "--leader-elect") == "true",
         "two replicas need --leader-elect=true, got %r" % flag_value(args, "--leader-elect"))
    return " ".join(args)


def c_dry_run_component():
    base = [c for o in objects("manifests/base") if o["kind"] == "Deployment"
            for c in o["spec"]["template"]["spec"]["containers"]]
    want(base and "--dry-run" not in base[0].get("args", []), "the base itself runs with --dry-run")
    want("--dry-run" in run_args(), "the example overlay does not start in --dry-run")
    sharded = find("Deployment", "cpscale", SHARDED)["spec"]["template"]["spec"]["containers"][0]
    want("--dry-run" in sharded.get("args", []), "the sharded overlay does not start in --dry-run")


def c_config_mount():
    spec, c = pod_spec(), container()
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = [m for m in c.get("volumeMounts", [])
              if volumes.get(m["name"], {}).get("configMap", {}).get("name") == "cpscale-config"]
    want(len(mounts) == 1, "the cpscale-config ConfigMap is mounted %d times" % len(mounts))
    m = mounts[0]
    want(not m.get("subPath") and not m.get("subPathExpr"),
         "the config is mounted with subPath: the kubelet never updates such a mount")
    want(m.get("mountPath") == CONFIG_DIR, "the config is mounted at %r, expected %s" % (m.get("mountPath"), CONFIG_DIR))
    want(m.get("readOnly") is True, "the config mount is not readOnly")
    items = volumes[m["name"]]["configMap"].get("items")
    want(not items or any(i.get("path") == "config.yaml" for i in items), "config.yaml is not projected")
    cm = find("ConfigMap", "cpscale-config")
    want("config.yaml" in cm.get("data", {}), "the ConfigMap has no config.yaml key")


def c_ports():
    ports = container().get("ports", [])
    want(any(p.get("name") == "metrics" and p.get("containerPort") == METRICS_PORT for p in ports),
         "no containerPort %d named metrics" % METRICS_PORT)


# ---- the ConfigMap -------------------------------------------------------------

def configmap_text():
    return find("ConfigMap", "cpscale-config")["data"]["config.yaml"]


def c_configmap_identical():
    with open("config/config.yaml", encoding="utf-8") as f:
        source = f.read()
    got = configmap_text()
    if got != source:
        a, b = got.splitlines(), source.splitlines()
        line = next((i + 1 for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)) + 1)
        raise Fail("the rendered ConfigMap differs from config/config.yaml (first at line %d); "
                   "run `make manifests` to refresh manifests/base/config.yaml" % line)
    want(find("ConfigMap", "cpscale-config")["metadata"]["name"] == "cpscale-config",
         "the ConfigMap name carries a hash")


def c_config_copy():
    """Needs no kubectl: the file the ConfigMap is generated from."""
    with open("config/config.yaml", "rb") as a, open("manifests/base/config.yaml", "rb") as b:
        want(a.read() == b.read(), "manifests/base/config.yaml differs from config/config.yaml; "
             "run `make manifests` to refresh it")


effective = {}


def effective_config():
    """`cpscale check-config` on the rendered ConfigMap's content."""
    if "text" not in effective:
        if not os.access(BIN, os.X_OK) or run([BIN, "check-config", "--help"]).returncode != 0:
            effective["text"] = Skip("%s has no check-config command" % BIN)
        else:
            path = os.path.join(TMP, "config.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(configmap_text())
            p = run([BIN, "check-config", path])
            effective["text"] = (p.stdout if p.returncode == 0 else
                                 Fail("check-config exit %d: %s" % (p.returncode, p.stderr.strip()[:300])))
    if isinstance(effective["text"], Exception):
        raise effective["text"]
    return effective["text"]


def c_check_config():
    effective_config()


def yaml_section(text, section):
    """key: value pairs one level under a top-level `section:` of the
    effective config (which check-config prints in a fixed, simple form)."""
    out, inside = {}, False
    for line in text.splitlines():
        if not line.startswith(" "):
            inside = line.rstrip() == section + ":"
            continue
        m = re.match(r"^  ([A-Za-z_]+): (.*)$", line)
        if inside and m:
            out[m.group(1)] = m.group(2).strip().strip("'\"")
    return out


def top_value(text, key):
    m = re.search(r"^%s: (.*)$" % key, text, re.M)
    return m.group(1).strip().strip("'\"") if m else None


def c_listen():
    listen = top_value(effective_config(), "listen")
    want(listen and listen.rsplit(":", 1)[1] == str(METRICS_PORT),
         "the config listens on %r, the pod exposes %d" % (listen, METRICS_PORT))


def c_lease_matches_config():
    le = yaml_section(effective_config(), "leader_election")
    want(le.get("enabled") == "true", "leader election is off in the config")
    want(le.get("namespace") == NAMESPACE,
         "the config's Lease is in %r; the Lease Role is in %s" % (le.get("namespace"), NAMESPACE))
    names = {g.resource_name for g in grants() if g.resource == "leases" and g.verb in ("get", "update")}
    want(names == {le.get("name")},
         "the Lease Role names %s; the config's leader_election.name is %r" % (sorted(names), le.get("name")))


def config_targets():
    return targets_of(effective_config())


def targets_of(text):
    """The `targets:` entries of an effective config (check-config's output)."""
    targets, current = [], None
    inside = False
    for line in text.splitlines():
        if not line.startswith(" "):
            inside = line.rstrip() == "targets:"
            continue
        if not inside:
            continue
        m = re.match(r"^  (- |  )(namespace|kind|name|api_version): (.*)$", line)
        if line.startswith("  - "):
            current = {}
            targets.append(current)
        if m and current is not None:
            current[m.group(2)] = m.group(3).strip().strip("'\"")
    return targets


KIND_RESOURCES = {"Deployment": "deployments", "StatefulSet": "statefulsets",
                  "ReplicaSet": "replicasets"}


def target_requests(t):
    group = t.get("api_version", "apps/v1").rsplit("/", 1)[0] if "/" in t.get("api_version", "") else ""
    resource = KIND_RESOURCES.get(t.get("kind"), (t.get("kind") or "").lower() + "s")
    base = {"api_group": group, "resource": resource, "namespace": t.get("namespace"), "name": t.get("name")}
    return [dict(base, verb="get", subresource="scale"),
            dict(base, verb="patch", subresource="scale"),
            dict(base, verb="get", subresource="")]


def c_targets_granted():
    """Every Deployment target can be read and scaled; a target of another kind
    that the RBAC does not cover is reported, not failed (the RBAC covers
    Deployments only, by design)."""
    missing_deploy, missing_other = [], []
    for t in config_targets():
        for req in target_requests(t):
            if not rbac_rules.granted(grants(), req):
                where = "%s/%s %s" % (t.get("namespace"), t.get("kind"), t.get("name"))
                (missing_deploy if t.get("kind") == "Deployment" else missing_other).append(
                    "%s: %s %s%s" % (where, req["verb"], req["resource"],
                                     "/" + req["subresource"] if req["subresource"] else ""))
    want(not missing_deploy, "not granted: " + "; ".join(missing_deploy))
    if missing_other:
        raise Skip("the config has targets the RBAC does not cover (they would get 403): "
                   + "; ".join(missing_other))
    return "%d targets" % len(config_targets())


# ---- RBAC ------------------------------------------------------------------------

def grants():
    return rbac_rules.rules_from_objects(objects(), service_account=(NAMESPACE, "cpscale"))


def c_rbac_exact():
    got = {t[:3] for t in rbac_rules.as_tuples(grants())}
    extra, missing = got - EXPECTED_RBAC, EXPECTED_RBAC - got
    want(not extra and not missing,
         "extra %s, missing %s" % (sorted(extra), sorted(missing)))
    every = {t[:3] for t in rbac_rules.as_tuples(rbac_rules.rules_from_objects(objects()))}
    want(every == got, "roles that are not bound to the cpscale ServiceAccount: %s" % sorted(every - got))
    return "%d (group, resource, verb)" % len(got)


def c_rbac_no_wildcards():
    for o in objects():
        for rule in o.get("rules", []) if o["kind"] in ("Role", "ClusterRole") else []:
            for key in ("apiGroups", "resources", "verbs"):
                want("*" not in rule.get(key, []), "%s %s has %s: *" % (o["kind"], o["metadata"]["name"], key))
            want(not rule.get("nonResourceURLs"), "nonResourceURLs granted")
        want(not o.get("aggregationRule"), "an aggregated ClusterRole")


def target_namespaces(targets):
    """The namespaces the config's targets live in."""
    return {t.get("namespace") for t in targets}


def check_target_scopes(g, targets, where):
    """The grants on targets reach exactly the namespaces of `targets`, each
    with the same rules: no other namespace, not the cluster scope."""
    on_targets = [x for x in g if isinstance(x, rbac_rules.Grant) and x.resource != "leases"]
    reached = {x.namespace for x in on_targets}
    want(reached == target_namespaces(targets),
         "%s: the target rules reach %s; the config's targets are in %s"
         % (where, sorted(reached), sorted(target_namespaces(targets))))
    per_namespace = {ns: {tuple(x)[:4] for x in on_targets if x.namespace == ns} for ns in reached}
    want(len({frozenset(v) for v in per_namespace.values()}) == 1,
         "%s: the namespaces get different rules: %s" % (where, per_namespace))
    return "%d namespaces: %s" % (len(reached), ", ".join(sorted(reached)))


def c_rbac_scopes():
    for g in grants():
        if g.resource == "leases":
            want(g.namespace == NAMESPACE, "Lease access %s reaches namespace %r" % (tuple(g)[:4], g.namespace))
            if g.verb in ("get", "update"):
                want(g.resource_name != "*", "lease %s is not restricted to the leader Lease" % g.verb)
            if g.verb == "create":
                want(g.resource_name == "*", "lease create has resourceNames (RBAC cannot match them on create)")
        else:
            want(g.resource_name == "*", "%s is restricted to one name" % (tuple(g)[:4],))
    return check_target_scopes(grants(), config_targets(), "example overlay")


def c_rbac_requests():
    le_name = next(g.resource_name for g in grants() if g.resource == "leases" and g.verb == "get")
    table = [
        # verb, group, resource, subresource, namespace, name, allowed
        ("get", "apps", "deployments", "", "shop", "checkout-api", True),
        ("list", "apps", "deployments", "", "shop", "", True),
        ("watch", "apps", "deployments", "", "shop", "", True),
        ("list", "apps", "deployments", "", "", "", False),
        ("watch", "apps", "deployments", "", "", "", False),
        ("get", "apps", "deployments", "", "kube-system", "coredns", False),
        ("patch", "apps", "deployments", "scale", "default", "web", False),
        ("patch", "apps", "deployments", "scale", "batch", "web", True),
        ("create", "events.k8s.io", "events", "", NAMESPACE, "", False),
        ("get", "apps", "deployments", "scale", "shop", "checkout-api", True),
        ("patch", "apps", "deployments", "scale", "shop", "checkout-api", True),
        ("PATCH", "apps", "deployments", "scale", "shop", "checkout-api", True),
        ("update", "apps", "deployments", "scale", "shop", "checkout-api", False),
        ("patch", "apps", "deployments", "", "shop", "checkout-api", False),
        ("delete", "apps", "deployments", "", "shop", "checkout-api", False),
        ("get", "apps", "statefulsets", "scale", "batch", "report-worker", False),
        ("create", "events.k8s.io", "events", "", "shop", "", True),
        ("patch", "events.k8s.io", "events", "", "shop", "web.1886caf244ffa780", True),
        ("create", "", "events", "", "shop", "", False),
        ("get", "coordination.k8s.io", "leases", "", NAMESPACE, le_name, True),
        ("update", "coordination.k8s.io", "leases", "", NAMESPACE, le_name, True),
        ("create", "coordination.k8s.io", "leases", "", NAMESPACE, "", True),
        ("get", "coordination.k8s.io", "leases", "", NAMESPACE, "other-lease", False),
        ("get", "coordination.k8s.io", "leases", "", "kube-system", le_name, False),
        ("list", "coordination.k8s.io", "leases", "", NAMESPACE, "", False),
        ("delete", "coordination.k8s.io", "leases", "", NAMESPACE, le_name, False),
        ("get", "", "secrets", "", NAMESPACE, "anything", False),
    ]
    for verb, group, res, sub, ns, name, allowed in table:
        rec = {"verb": verb, "api_group": group, "resource": res, "subresource": sub,
               "namespace": ns, "name": name}
        want(rbac_rules.granted(grants(), rec) == allowed,
             "%s %s/%s%s in %r: expected %s" % (verb, group or "core", res, "/" + sub if sub else "",
                                                ns, "allowed" if allowed else "denied"))
    return "%d requests" % len(table)


def c_rbac_rules_selftest():
    """rbac_rules itself, on synthetic roles (no kubectl needed): binding
    scopes, unbound roles, wildcards, resourceNames and HTTP methods."""
    sa = {"kind": "ServiceAccount", "name": "sa", "namespace": "home"}
    objs = [
        {"kind": "ClusterRole", "metadata": {"name": "scale-any"},
         "rules": [{"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]}]},
        {"kind": "RoleBinding", "metadata": {"name": "b1", "namespace": "team"},
         "roleRef": {"kind": "ClusterRole", "name": "scale-any"}, "subjects": [sa]},
        {"kind": "Role", "metadata": {"name": "one-cm", "namespace": "home"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["x"],
                    "verbs": ["get", "update"]}]},
        {"kind": "RoleBinding", "metadata": {"name": "b2", "namespace": "home"},
         "roleRef": {"kind": "Role", "name": "one-cm"}, "subjects": [sa]},
        {"kind": "ClusterRole", "metadata": {"name": "unbound"},
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]},
    ]
    g = rbac_rules.rules_from_objects(objs, service_account=("home", "sa"))
    want(("*", "*/scale", "get", "*") in rbac_rules.as_tuples(g), "the */scale rule is missing")
    want(not any(t[1] == "secrets" for t in rbac_rules.as_tuples(g)), "an unbound role counted")
    req = lambda **kw: dict({"verb": "get", "api_group": "apps", "resource": "deployments",
                             "subresource": "scale", "namespace": "team", "name": "web"}, **kw)
    table = [
        (req(), True),
        (req(namespace="other"), False),          # ClusterRole bound by a RoleBinding
        (req(subresource=""), False),             # */scale is not the object itself
        (req(verb="patch"), False),
        (req(api_group="", resource="configmaps", subresource="", namespace="home", name="x"), True),
        (req(api_group="", resource="configmaps", subresource="", namespace="home", name="y"), False),
        (req(verb="PUT", api_group="", resource="configmaps", subresource="", namespace="home", name="x"), True),
        (req(verb="GET", api_group="", resource="configmaps", subresource="", namespace="home", name=""), False),
    ]
    for record, allowed in table:
        want(rbac_rules.granted(g, record) == allowed, "%s: expected %s" % (record, allowed))
    every = rbac_rules.rules_from_objects(objs)
    want(any(getattr(t, "resource", None) == "secrets" and t.namespace == "*" for t in every),
         "without a service account every role should count")
    # subjects by user and by group; a Role is looked up in the binding's
    # own namespace only; a literal "*" resourceName names the object "*"
    objs2 = [
        {"kind": "ClusterRole", "metadata": {"name": "reader"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        {"kind": "RoleBinding", "metadata": {"name": "u", "namespace": "a"},
         "roleRef": {"kind": "ClusterRole", "name": "reader"},
         "subjects": [{"kind": "User", "name": "alice"}]},
        {"kind": "RoleBinding", "metadata": {"name": "g", "namespace": "b"},
         "roleRef": {"kind": "ClusterRole", "name": "reader"},
         "subjects": [{"kind": "Group", "name": "ops"}]},
        {"kind": "Role", "metadata": {"name": "cm", "namespace": "a"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        {"kind": "RoleBinding", "metadata": {"name": "elsewhere", "namespace": "c"},
         "roleRef": {"kind": "Role", "name": "cm"},
         "subjects": [{"kind": "User", "name": "alice"}]},
        {"kind": "ClusterRole", "metadata": {"name": "star"},
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["*"],
                    "verbs": ["get"]}]},
        {"kind": "ClusterRoleBinding", "metadata": {"name": "star"},
         "roleRef": {"kind": "ClusterRole", "name": "star"},
         "subjects": [{"kind": "User", "name": "alice"}]},
    ]
    pod = lambda ns: {"verb": "get", "api_group": "", "resource": "pods", "namespace": ns,
                      "name": "p"}
    alice = rbac_rules.rules_for_user(objs2, "alice", [])
    bob = rbac_rules.rules_for_user(objs2, "bob", ["ops"])
    carol = rbac_rules.rules_for_user(objs2, "carol", ["devs"])
    secret = lambda name: {"verb": "get", "api_group": "", "resource": "secrets",
                           "namespace": "a", "name": name}
    table2 = [
        (alice, pod("a"), True), (alice, pod("b"), False),      # User subject
        (bob, pod("b"), True), (bob, pod("a"), False),          # Group subject
        (carol, pod("a"), False), (carol, pod("b"), False),
        (alice, {"verb": "get", "api_group": "", "resource": "configmaps", "namespace": "c",
                 "name": "x"}, False),                          # Role "cm" is namespace a's
        (alice, {"verb": "get", "api_group": "", "resource": "configmaps", "namespace": "a",
                 "name": "x"}, False),
        (alice, secret("*"), True), (alice, secret("token"), False),  # literal "*"
    ]
    for g2, record, allowed in table2:
        want(rbac_rules.granted(g2, record) == allowed, "%s: expected %s" % (record, allowed))
    # nonResourceURLs: through a ClusterRoleBinding only; "/x/*" is a prefix
    paths_role = {"kind": "ClusterRole", "metadata": {"name": "paths"},
                  "rules": [{"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]}]}
    bind = lambda kind, ns: dict({"kind": kind, "roleRef": {"kind": "ClusterRole", "name": "paths"},
                                  "subjects": [{"kind": "User", "name": "dave"}]},
                                 metadata=dict({"name": "p"}, **({"namespace": ns} if ns else {})))
    by_rb = rbac_rules.rules_for_user([paths_role, bind("RoleBinding", "a")], "dave", [])
    by_crb = rbac_rules.rules_for_user([paths_role, bind("ClusterRoleBinding", None)], "dave", [])
    table3 = [
        (by_rb, "get", "/metrics", False), (by_crb, "get", "/metrics", True),
        (by_crb, "post", "/metrics", False), (by_crb, "get", "/debug/pprof", True),
        (by_crb, "get", "/debugger", False), (by_crb, "get", "/metrics/x", False),
    ]
    every_path = rbac_rules.rules_for_user([
        {"kind": "ClusterRole", "metadata": {"name": "all"},
         "rules": [{"nonResourceURLs": ["*"], "verbs": ["*"]},
                   {"nonResourceURLs": ["/logs/**"], "verbs": ["get"]}]},
        dict(bind("ClusterRoleBinding", None), roleRef={"kind": "ClusterRole", "name": "all"})],
        "dave", [])
    logs_only = {g for g in every_path if g.url != "*"}
    table3 += [(every_path, "delete", "/anything", True), (logs_only, "get", "/logs/x", True),
               (logs_only, "get", "/log", False)]
    for g3, verb, path, allowed in table3:
        want(rbac_rules.granted_path(g3, verb, path) == allowed,
             "%s %s: expected %s" % (verb, path, allowed))
    want(not rbac_rules.as_tuples(by_crb), "a non-resource grant listed among resource grants")


# ---- Service, PDB, ServiceMonitor ----------------------------------------------------

def pod_labels():
    return deployment()["spec"]["template"]["metadata"]["labels"]


def c_service():
    svc = find("Service", "cpscale")
    sel = svc["spec"].get("selector", {})
    want(sel and all(pod_labels().get(k) == v for k, v in sel.items()), "the Service does not select the pods")
    ports = [p for p in svc["spec"].get("ports", []) if p.get("name") == "metrics"]
    want(ports and ports[0].get("port") == METRICS_PORT, "no Service port %d named metrics" % METRICS_PORT)
    want(ports[0].get("targetPort") in ("metrics", METRICS_PORT), "targetPort is %r" % ports[0].get("targetPort"))


def c_pdb():
    pdb = find("PodDisruptionBudget", "cpscale")
    want(pdb["spec"].get("minAvailable") == 1, "minAvailable is %r" % pdb["spec"].get("minAvailable"))
    sel = pdb["spec"].get("selector", {}).get("matchLabels", {})
    want(sel and all(pod_labels().get(k) == v for k, v in sel.items()), "the PDB does not select the pods")


def c_servicemonitor():
    with open("manifests/components/servicemonitor/kustomization.yaml", encoding="utf-8") as f:
        want(re.search(r"^kind:\s*Component\s*$", f.read(), re.M), "components/servicemonitor is not a kustomize Component")
    sm = find("ServiceMonitor", "cpscale")
    svc = find("Service", "cpscale")
    sel = sm["spec"].get("selector", {}).get("matchLabels", {})
    want(sel and all(svc["metadata"].get("labels", {}).get(k) == v for k, v in sel.items()),
         "the ServiceMonitor does not select the Service")
    want(NAMESPACE in sm["spec"].get("namespaceSelector", {}).get("matchNames", []),
         "the ServiceMonitor does not look in namespace %s" % NAMESPACE)
    eps = sm["spec"].get("endpoints", [])
    want(any(e.get("port") == "metrics" and e.get("path", "/metrics") == "/metrics" for e in eps),
         "no endpoint on port metrics, path /metrics")
    want(all(e.get("honorLabels") is True for e in eps),
         "honorLabels is not true: the targets' namespace label would become exported_namespace")


# ---- the SLO budget alerts (components/slo-alerts) ----------------------------

PROMTOOL = shutil.which("promtool")
BURN_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
BURN_RECORD = "namespace_name:cpscale_slo_burn_rate:rate%s"


def slo_rule():
    return find("PrometheusRule", "cpscale-slo-alerts")


def slo_rule_file():
    """The rule's groups as a Prometheus rule file (JSON is YAML)."""
    path = os.path.join(TMP, "slo-rules.yaml")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"groups": slo_rule()["spec"]["groups"]}, f, indent=1)
    return path


def slo_rules():
    return [r for g in slo_rule()["spec"]["groups"] for r in g.get("rules", [])]


def c_slo_alerts_component():
    with open("manifests/components/slo-alerts/kustomization.yaml", encoding="utf-8") as f:
        want(re.search(r"^kind:\s*Component\s*$", f.read(), re.M),
             "components/slo-alerts is not a kustomize Component")
    want(not any(o["kind"] == "PrometheusRule" for o in objects("manifests/base")),
         "the base must not need the Prometheus Operator")
    rule = slo_rule()
    want(rule["apiVersion"] == "monitoring.coreos.com/v1", "apiVersion %r" % rule["apiVersion"])
    records = {r["record"] for r in slo_rules() if "record" in r}
    missing = [w for w in BURN_WINDOWS if BURN_RECORD % w not in records]
    want(not missing, "no recorded burn rate over %s" % ", ".join(missing))
    alerts = {r["alert"]: r for r in slo_rules() if "alert" in r}
    severities = sorted(r.get("labels", {}).get("severity", "") for r in alerts.values())
    want(severities == ["page", "ticket"], "alert severities %s, expected a page and a ticket" % severities)
    for r in slo_rules():
        unknown = metric_names(r["expr"]) - EXPORTED - records
        want(not unknown, "%s reads %s, neither exported nor recorded"
             % (r.get("record") or r.get("alert"), sorted(unknown)))
    # a recording is read as the latest sample within Prometheus' 5-minute
    # lookback: a group evaluated that seldom leaves its readers gaps
    units = {"s": 1, "m": 60, "h": 3600}
    for group in rule["spec"]["groups"]:
        m = re.fullmatch(r"(\d+)([smh])", str(group.get("interval", "30s")))
        want(m and int(m.group(1)) * units[m.group(2)] <= 150,
             "group %s is evaluated every %s; at most 2m30s, half the 5m lookback"
             % (group["name"], group.get("interval")))
    return "%d recording rules, alerts %s" % (len(records), ", ".join(sorted(alerts)))


def c_slo_alerts_promtool():
    if not PROMTOOL:
        raise Skip("promtool not found")
    p = run([PROMTOOL, "check", "rules", slo_rule_file()])
    want(p.returncode == 0, "promtool check rules: " + (p.stdout + p.stderr).strip()[-600:])
    return p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""


def series(name, target, values):
    return {"series": '%s{namespace="shop",name="%s"}' % (name, target), "values": values}


def slo_series(target, violating_values):
    """A target served 100 req/s for 7 hours (6000 a minute), with a 1 %
    budget; its violating requests follow `violating_values`. (Seven hours
    fill every window but the day and three days; rate() over those takes
    what there is, the same share.)"""
    return [series("cpscale_slo_requests_total", target, "0+6000x420"),
            series("cpscale_slo_violating_requests_total", target, violating_values),
            series("cpscale_slo_violation_budget_ratio", target, "0.01x420")]


def c_slo_alerts_fire():
    """The alerts on synthetic counters whose burn rates are known by hand
    (violating share / 1 %), each page condition met alone once:
      fast     a third violating: burn 33 over every window (page, ticket)
      hour     a fifth violating in the last hour only: burn 20 over 1h and
               5m, 3.3 over 6h (page by 1h and 5m alone; ticket by 2h 10, 1d 3.3)
      six      a tenth violating: burn 10 (page by 6h and 30m alone, ticket)
      slow     2 % violating: burn 2 (ticket by 3d and 6h alone)
      fine     0.5 % violating: burn 0.5 (nothing)
      stopped  fast until 40 minutes ago, then clean: 5m and 30m burn 0 (no
               page), 2h burn 22 (ticket)"""
    if not PROMTOOL:
        raise Skip("promtool not found")
    alerts = {r["alert"]: r for r in slo_rules() if "alert" in r}
    page = [a for a, r in alerts.items() if r.get("labels", {}).get("severity") == "page"][0]
    ticket = [a for a, r in alerts.items() if r.get("labels", {}).get("severity") == "ticket"][0]

    def expected(alert, target):
        r = alerts[alert]
        annotations = {k: v.replace("{{ $labels.namespace }}", "shop").replace("{{ $labels.name }}", target)
                       for k, v in r.get("annotations", {}).items()}
        return {"exp_labels": dict(r.get("labels", {}), namespace="shop", name=target),
                "exp_annotations": annotations}

    # violating requests a minute, of 6000
    inputs = (slo_series("fast", "0+2000x420")
              + slo_series("hour", "0+0x359 0+1200x60")
              + slo_series("six", "0+600x420")
              + slo_series("slow", "0+120x420")
              + slo_series("fine", "0+30x420")
              + slo_series("stopped", "0+2000x380 760000+0x40"))
    tests = [{"interval": "1m", "input_series": inputs, "alert_rule_test": [
        {"eval_time": "7h", "alertname": page,
         "exp_alerts": [expected(page, t) for t in ("fast", "hour", "six")]},
        {"eval_time": "7h", "alertname": ticket,
         "exp_alerts": [expected(ticket, t) for t in ("fast", "hour", "six", "slow", "stopped")]},
    ], "promql_expr_test": [
        {"expr": 'round(%s{name="fast"}, 0.01)' % (BURN_RECORD % "1h"), "eval_time": "7h",
         "exp_samples": [{"labels": '{namespace="shop",name="fast"}', "value": 33.33}]},
        {"expr": 'round(%s{name="hour"}, 0.01)' % (BURN_RECORD % "6h"), "eval_time": "7h",
         "exp_samples": [{"labels": '{namespace="shop",name="hour"}', "value": 3.33}]},
        {"expr": 'round(%s{name="slow"}, 0.01)' % (BURN_RECORD % "3d"), "eval_time": "7h",
         "exp_samples": [{"labels": '{namespace="shop",name="slow"}', "value": 2}]},
    ]}]
    test_path = os.path.join(TMP, "slo-rules-test.yaml")
    with open(test_path, "w", encoding="utf-8") as f:
        json.dump({"rule_files": [slo_rule_file()], "evaluation_interval": "1m",
                   "tests": tests}, f, indent=1)
    p = run([PROMTOOL, "test", "rules", test_path])
    want(p.returncode == 0, "promtool test rules: " + (p.stdout + p.stderr).strip()[-1500:])
    return "6 targets: 3 pages, 5 tickets as computed by hand"


def c_tune_job():
    path = "manifests/tune-job.yaml"
    if not os.path.exists(path):
        raise Skip("%s is not there yet" % path)
    if not KUBECTL:
        raise Skip("kubectl not found")
    with open(path, encoding="utf-8") as f:
        jobs = [o for o in to_objects(f.read()) if o.get("kind") == "Job"]
    want(len(jobs) == 1, "%s holds %d Jobs" % (path, len(jobs)))
    spec = jobs[0]["spec"]
    want(spec.get("completionMode") == "Indexed", "the tune Job is not an Indexed Job")
    pod = spec["template"]["spec"]
    cs = pod.get("containers", [])
    want(cs and re.search(r"(^|/)cpscale(:|@|$)", cs[0].get("image", "")), "the tune Job does not run the cpscale image")
    argv = [a for a in cs[0].get("command", []) + cs[0].get("args", []) if not a.endswith("cpscale")]
    want("tune" in argv, "the tune Job does not run `cpscale tune`")
    if jobs[0]["metadata"].get("namespace", NAMESPACE) == NAMESPACE:
        # The namespace enforces the restricted Pod Security Standard.
        psc, sc = pod.get("securityContext", {}), cs[0].get("securityContext", {})
        eff = lambda k: sc.get(k, psc.get(k))
        want(eff("runAsNonRoot") is True, "the tune Job lacks runAsNonRoot (namespace %s enforces restricted)" % NAMESPACE)
        want(sc.get("allowPrivilegeEscalation") is False, "the tune Job allows privilege escalation")
        want(sc.get("capabilities", {}).get("drop") == ["ALL"], "the tune Job does not drop ALL capabilities")
        want(eff("seccompProfile") == {"type": "RuntimeDefault"}, "the tune Job has no RuntimeDefault seccompProfile")


# ---- Dockerfile -------------------------------------------------------------------

def dockerfile():
    """[(stage name or None, base image, [(INSTRUCTION, args)])]; continuation
    lines joined, comments dropped, ARG defaults before FROM substituted."""
    with open("Dockerfile", encoding="utf-8") as f:
        text = f.read()
    instructions, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if s.startswith("#") or (not s and not cur):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, rest = cur.partition(" ")
        instructions.append((word.upper(), rest.strip()))
        cur = ""
    args, stages = {}, []
    for word, rest in instructions:
        if word == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip()
        elif word == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            image = re.sub(r"\$\{?(\w+)\}?", lambda x: args.get(x.group(1), x.group(0)), m.group(1))
            stages.append((m.group(2), image, []))
        elif stages:
            stages[-1][2].append((word, rest))
    return stages


def apt_packages(run_args):
    pkgs = set()
    for m in re.finditer(r"apt-get\s+install\s+(.*?)(?:;|&&|$)", run_args):
        pkgs |= {t for t in m.group(1).split() if not t.startswith("-")}
    return pkgs


def c_docker_stages():
    stages = dockerfile()
    want(len(stages) >= 2, "not a multi-stage build")
    names = {s[0] for s in stages if s[0]}
    for name, image, _ in stages:
        want(image == "debian:bookworm-slim" or image in names, "stage %s starts from %s" % (name, image))
    build = " ".join(a for s in stages[:-1] for w, a in s[2] if w == "RUN")
    want("-DCPS_WERROR=ON" in build, "the build does not use -DCPS_WERROR=ON")
    want(re.search(r"\bctest\b", build), "the build stage runs no tests")
    return " -> ".join("%s (%s)" % (n or "final", i) for n, i, _ in stages)


def c_docker_final():
    name, image, body = dockerfile()[-1]
    runs = " ".join(a for w, a in body if w == "RUN")
    pkgs = apt_packages(runs)
    want(pkgs == RUNTIME_PACKAGES, "the final stage installs %s, expected %s" % (sorted(pkgs), sorted(RUNTIME_PACKAGES)))
    tools = BUILD_TOOLS.findall(" ".join(pkgs))
    want(not tools, "build tools in the final stage: %s" % tools)
    copies = [a for w, a in body if w in ("COPY", "ADD")]
    want(copies and all(a.startswith("--from=") for a in copies), "the final stage copies from the context: %s" % copies)
    want(any("/usr/local/bin/cpscale" in a for a in copies), "the binary is not copied to /usr/local/bin/cpscale")


def c_docker_user():
    users = [a for w, a in dockerfile()[-1][2] if w == "USER"]
    want(users, "the final stage sets no USER (it would run as root)")
    uid, _, gid = users[-1].partition(":")
    want(uid.isdigit() and int(uid) != 0, "USER %s is not a numeric non-root uid (runAsNonRoot cannot verify a name)" % users[-1])
    want(users[-1] == "%d:%d" % (USER_ID, USER_ID), "USER is %s, the pods run as %d" % (users[-1], USER_ID))


def c_docker_entrypoint():
    body = dockerfile()[-1][2]
    last = lambda word: json.loads([a for w, a in body if w == word][-1])
    want(last("ENTRYPOINT") == ["/usr/local/bin/cpscale"], "ENTRYPOINT is %r" % last("ENTRYPOINT"))
    want(last("CMD") == ["run", "--config", CONFIG_PATH], "CMD is %r" % last("CMD"))


def c_dockerignore():
    with open(".dockerignore", encoding="utf-8") as f:
        lines = {l.strip() for l in f if l.strip() and not l.startswith("#")}
    for need in (".git", "build", "build-*"):
        want(need in lines, ".dockerignore does not exclude %s" % need)


# ---- Grafana ---------------------------------------------------------------------

DASHBOARD = "manifests/grafana/cpscale-dashboard.json"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "and", "or", "unless", "offset", "inf", "nan", "atan2"}


def dashboard():
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def metric_names(expr):
    """The metric names a PromQL expression reads: identifiers that are not
    functions (followed by "("), keywords, label names (inside {} or after
    by/without/on/ignoring/group_*), durations or Grafana $variables."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "0", e)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word, after = m.group(0), e[m.end():].lstrip()
        if after.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # the exponent of 1e3, the unit of a duration
        names.add(word)
    return names


def c_dashboard_json():
    d = dashboard()
    want(d.get("schemaVersion", 0) >= 36, "schemaVersion %r < 36" % d.get("schemaVersion"))
    want(d.get("title"), "no title")
    return "%d panels" % sum(1 for _ in all_panels(d.get("panels", [])))


def c_dashboard_variables():
    vs = {v.get("name"): v for v in dashboard().get("templating", {}).get("list", [])}
    ds = vs.get("datasource", {})
    want(ds.get("type") == "datasource" and ds.get("query") == "prometheus", "no $datasource variable of type prometheus")
    for name in ("namespace", "name"):
        q = vs.get(name, {}).get("query")
        q = q.get("query") if isinstance(q, dict) else q
        want(q and re.fullmatch(r"label_values\(cpscale_target_min_replicas(\{[^}]*\})?,\s*%s\)" % name, q),
             "$%s does not come from label_values(cpscale_target_min_replicas, %s): %r" % (name, name, q))


def dashboard_exprs():
    exprs = []
    for p in all_panels(dashboard().get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                exprs.append((p.get("title"), t["expr"]))
    return exprs


def c_dashboard_metrics():
    exprs = dashboard_exprs()
    want(exprs, "no queries")
    for title, expr in exprs:
        names = metric_names(expr)
        want(names, "panel %r reads no metric: %s" % (title, expr))
        unknown = names - EXPORTED
        want(not unknown, "panel %r reads %s, which cpscale does not export" % (title, sorted(unknown)))
    return "%d queries" % len(exprs)


def c_dashboard_two_replicas():
    """Every dashboard query, evaluated by promtool on the series two
    replicas export (leader and standby both export every gauge, each with
    its own pod and instance labels), runs without error and returns
    something: a join of two per-replica series by (namespace, name) alone
    is a many-to-many match, which Prometheus refuses, and the panel shows
    nothing. Template variables are filled in; a counter grows, a gauge
    holds, a histogram has two buckets; other labels a query reads are
    given one value each."""
    if not PROMTOOL:
        raise Skip("promtool not found")
    exprs = dashboard_exprs()
    names = set()
    for _, expr in exprs:
        names |= metric_names(expr)
    extra = {"cpscale_decisions_total": 'reason="scale_up"', "cpscale_build_info": 'version="0.1.0"',
             "cpscale_query_errors_total": 'metric="qps",error="timeout"',
             "cpscale_kube_requests_total": 'verb="get",resource="deployments/scale",code="200"',
             "cpscale_shard_held": 'shard="0"'}
    inputs = []
    for name in sorted(names):
        for pod in ("cpscale-a", "cpscale-b"):
            labels = 'namespace="shop",name="web",pod="%s",instance="%s:8080",job="cpscale"' % (pod, pod)
            if name in extra:
                labels += "," + extra[name]
            values = "0+10x120" if name.endswith(("_total", "_count", "_sum")) else "1x120"
            if name.endswith("_bucket"):
                for le in ("0.1", "+Inf"):
                    inputs.append({"series": '%s{%s,le="%s"}' % (name, labels, le), "values": "0+10x120"})
                continue
            inputs.append({"series": "%s{%s}" % (name, labels), "values": values})
    fill = {"$__rate_interval": "2m", "$__interval": "1m", "$__range": "1h",
            "$namespace": "shop", "$name": "web"}
    tests = []
    for title, expr in exprs:
        filled = expr
        for var, value in fill.items():
            filled = filled.replace(var, value)
        tests.append({"expr": "sgn(count(%s))" % filled, "eval_time": "90m",
                      "exp_samples": [{"labels": "{}", "value": 1}]})
    test_path = os.path.join(TMP, "dashboard-test.yaml")
    with open(test_path, "w", encoding="utf-8") as f:
        json.dump({"evaluation_interval": "1m",
                   "tests": [{"interval": "1m", "input_series": inputs,
                              "promql_expr_test": tests}]}, f, indent=1)
    p = run([PROMTOOL, "test", "rules", test_path])
    want(p.returncode == 0, "promtool test rules: " + (p.stdout + p.stderr).strip()[-1500:])
    return "%d queries on two replicas' series" % len(tests)


def c_dashboard_panels():
    used = set()
    for _, expr in dashboard_exprs():
        used |= metric_names(expr)
    need = {"cost per million": "cpscale_target_cost_per_million_requests_usd",
            "cost target": "cpscale_target_cost_target_per_million_requests_usd",
            "current replicas": "cpscale_target_current_replicas",
            "ready replicas": "cpscale_target_ready_replicas",
            "desired replicas": "cpscale_target_desired_replicas",
            "min replicas": "cpscale_target_min_replicas",
            "max replicas": "cpscale_target_max_replicas",
            "p95": "cpscale_target_p95_latency_ms", "SLO": "cpscale_target_slo_latency_p95_ms",
            "qps": "cpscale_target_qps", "cost per hour": "cpscale_target_cost_per_hour_usd",
            "budget": "cpscale_target_cost_max_per_hour_usd",
            "decisions": "cpscale_decisions_total", "scale events": "cpscale_scale_events_total",
            "query errors": "cpscale_query_errors_total",
            "tick duration": "cpscale_tick_duration_seconds_bucket", "leader": "cpscale_leader",
            "violation budget spent": "cpscale_slo_budget_spent_ratio",
            "burn rate (the policy's)": "cpscale_slo_burn_rate",
            "burn rate (requests)": "cpscale_slo_requests_total",
            "burn rate (violating requests)": "cpscale_slo_violating_requests_total",
            "violation budget": "cpscale_slo_violation_budget_ratio",
            "headroom adjust": "cpscale_policy_headroom_adjust",
            "forecast tail": "cpscale_policy_forecast_tail",
            "minute spread": "cpscale_policy_minute_spread_factor",
            "queue shape": "cpscale_policy_latency_shape",
            "capacity within the SLO": "cpscale_policy_pod_safe_rps",
            "start-up": "cpscale_policy_startup_seconds"}
    missing = [k for k, m in need.items() if m not in used]
    want(not missing, "no panel shows: %s" % ", ".join(missing))


def c_dashboard_datasource():
    for p in all_panels(dashboard().get("panels", [])):
        if p.get("type") == "row":
            continue
        for obj in [p] + p.get("targets", []):
            ds = obj.get("datasource")
            uid = ds.get("uid") if isinstance(ds, dict) else ds
            want(uid == "${datasource}", "panel %r does not use ${datasource}: %r" % (p.get("title"), ds))


def c_metric_parser():
    """The metric-name reader itself, on cases where a naive one goes wrong."""
    cases = [
        ('sum by (reason) (rate(cpscale_decisions_total{namespace="$namespace"}[$__rate_interval]))',
         {"cpscale_decisions_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(cpscale_tick_duration_seconds_bucket[5m])))",
         {"cpscale_tick_duration_seconds_bucket"}),
        ("cpscale_leader * on (pod) group_left(version) cpscale_build_info", {"cpscale_leader", "cpscale_build_info"}),
        ("up or absent(cpscale_ticks_total)", {"up", "cpscale_ticks_total"}),
    ]
    for expr, names in cases:
        got = metric_names(expr)
        want(got == names, "%s -> %s, expected %s" % (expr, sorted(got), sorted(names)))


# ---- the sharded overlay ------------------------------------------------------

SHARDED = "manifests/overlays/sharded"


def sharded_config():
    """The sharded overlay's ConfigMap text, its effective config (check-config)
    and its shard count."""
    text = find("ConfigMap", "cpscale-config", SHARDED)["data"]["config.yaml"]
    if not os.access(BIN, os.X_OK):
        raise Skip("%s is not executable" % BIN)
    path = os.path.join(TMP, "sharded.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    p = run([BIN, "check-config", path])
    want(p.returncode == 0, "check-config exit %d: %s" % (p.returncode, p.stderr.strip()[:300]))
    sharding = yaml_section(p.stdout, "sharding")
    return text, p.stdout, int(sharding.get("shards", "0"))


def c_sharded_replicas():
    n = find("Deployment", "cpscale", SHARDED)["spec"].get("replicas")
    want(n == 3, "replicas is %r, expected 3" % n)


def c_sharded_config():
    """config/config.yaml plus one `sharding:` block (comments included)
    right after leader_election, nothing else; 6 shards."""
    text, effective_text, shards = sharded_config()
    with open("config/config.yaml", encoding="utf-8") as f:
        source = f.read()
    lines = text.split("\n")
    want("sharding:" in lines, "no sharding: block in the sharded overlay's config")
    top = lines.index("sharding:")
    first = top
    while first > 0 and lines[first - 1].startswith("#"):
        first -= 1  # its comment
    last = top + 1
    while last < len(lines) and lines[last].startswith("  "):
        last += 1  # its keys and their comments
    if first > 0 and lines[first - 1] == "":
        first -= 1  # the blank line before it
    rest = "\n".join(lines[:first] + lines[last:])
    want(rest == source,
         "the sharded overlay's config differs from config/config.yaml outside its sharding: block")
    want(shards == 6, "sharding.shards is %d, expected 6" % shards)
    le = yaml_section(effective_text, "leader_election")
    want(le.get("enabled") == "true" and le.get("namespace") == NAMESPACE,
         "leader election must be on, its Leases in %s: %s" % (NAMESPACE, le))
    return "%d shards" % shards


def c_sharded_rbac():
    """The same (group, resource, verb) as the base; get/update exactly on
    the shard Leases, create without names, all in cpscale only."""
    _, _, shards = sharded_config()
    g = rbac_rules.rules_from_objects(objects(SHARDED), service_account=(NAMESPACE, "cpscale"))
    got = {t[:3] for t in rbac_rules.as_tuples(g)}
    want(got == EXPECTED_RBAC, "extra %s, missing %s" % (sorted(got - EXPECTED_RBAC),
                                                         sorted(EXPECTED_RBAC - got)))
    shard_names = {"cpscale-shard-%d" % i for i in range(shards)}
    for verb in ("get", "update"):
        names = {x.resource_name for x in g if x.resource == "leases" and x.verb == verb}
        want(names == shard_names, "lease %s on %s, expected %s" % (verb, sorted(names),
                                                                    sorted(shard_names)))
    for x in g:
        if x.resource == "leases":
            want(x.namespace == NAMESPACE, "Lease access %s reaches %r" % (tuple(x)[:4], x.namespace))
            if x.verb == "create":
                want(x.resource_name == "*", "lease create has resourceNames")
    lease = {"api_group": "coordination.k8s.io", "resource": "leases", "subresource": "",
             "namespace": NAMESPACE}
    for name in sorted(shard_names):
        for verb in ("get", "update"):
            want(rbac_rules.granted(g, dict(lease, verb=verb, name=name)), "%s %s denied" % (verb, name))
    for name in ("cpscale-leader", "cpscale-shard-%d" % shards):
        want(not rbac_rules.granted(g, dict(lease, verb="update", name=name)),
             "update %s granted" % name)
    want(not rbac_rules.granted(g, dict(lease, verb="get", name="cpscale-shard-0",
                                        namespace="default")), "a shard Lease outside cpscale")
    _, effective_text, _ = sharded_config()
    check_target_scopes(g, targets_of(effective_text), "sharded overlay")
    return "get/update on %d shard Leases" % len(shard_names)


def c_cluster_scope():
    """The example overlay plus components/cluster-scope (rendered from a copy
    of manifests/, as kustomize refuses a base outside the overlay's tree):
    list and watch of Deployments in every namespace, through one
    ClusterRoleBinding to a ClusterRole with just those, and nothing else
    widened: reads, scales and Events stay in the targets' namespaces."""
    if not KUBECTL:
        raise Skip("kubectl not found")
    copy = os.path.join(TMP, "manifests-copy")
    if not os.path.isdir(copy):
        shutil.copytree("manifests", copy)
    overlay = os.path.join(copy, "overlays", "cluster-scope")
    os.makedirs(overlay, exist_ok=True)
    with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
        f.write("resources:\n  - ../example\ncomponents:\n  - ../../components/cluster-scope\n")
    objs = objects(overlay)
    bindings = [o for o in objs if o["kind"] == "ClusterRoleBinding"]
    want(len(bindings) == 1, "expected one ClusterRoleBinding: %s" % bindings)
    role_name = bindings[0]["roleRef"].get("name")
    role = [o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == role_name]
    want(role and role[0].get("rules") == [{"apiGroups": ["apps"], "resources": ["deployments"],
                                             "verbs": ["list", "watch"]}],
         "the cluster-wide role is not exactly list and watch of Deployments: %s" % role)
    g = rbac_rules.rules_from_objects(objs, service_account=(NAMESPACE, "cpscale"))
    want({t[:3] for t in rbac_rules.as_tuples(g)} == EXPECTED_RBAC, "not the expected rules")
    wide = {tuple(x)[:3] for x in g if x.namespace == "*"}
    want(wide == {("apps", "deployments", "list"), ("apps", "deployments", "watch")},
         "granted in every namespace: %s" % sorted(wide))
    check_target_scopes([x for x in g if x.namespace != "*"], config_targets(), "cluster-scope")
    req = {"api_group": "apps", "resource": "deployments", "namespace": ""}
    want(rbac_rules.granted(g, dict(req, verb="list")), "the cluster-wide LIST is denied")
    want(rbac_rules.granted(g, dict(req, verb="watch")), "the cluster-wide WATCH is denied")
    for verb, sub, name in (("patch", "scale", "coredns"), ("get", "scale", "coredns"),
                            ("get", "", "coredns")):
        want(not rbac_rules.granted(g, dict(req, verb=verb, subresource=sub, name=name,
                                            namespace="kube-system")),
             "%s deployments%s in kube-system granted" % (verb, "/" + sub if sub else ""))
    want(not rbac_rules.granted(g, {"verb": "create", "api_group": "events.k8s.io",
                                    "resource": "events", "namespace": "kube-system"}),
         "Events in kube-system granted")
    return "list, watch everywhere; the rest in %d namespaces" % len(target_namespaces(config_targets()))


CHECKS = [
    ("render: kubectl kustomize manifests/", c_renders),
    ("render: manifests/ is the example overlay", c_top_is_example),
    ("render: the base alone", c_base_renders),
    ("objects: every kind is there", c_kinds),
    ("objects: namespaced objects are in cpscale", c_namespaces),
    ("namespace: restricted Pod Security Standard", c_psa),
    ("network policy: only Prometheus, only the metrics port", c_network_policy),
    ("deployment: 2 replicas", c_replicas),
    ("deployment: pod securityContext", c_pod_security),
    ("deployment: container securityContext", c_container_security),
    ("deployment: service account token", c_service_account),
    ("deployment: /healthz liveness and /readyz readiness probes", c_probes),
    ("deployment: resources", c_resources),
    ("deployment: POD_NAME from the downward API, no unread variable", c_downward_api),
    ("deployment: spread over nodes", c_spread),
    ("deployment: cpscale run flags", c_args),
    ("deployment: dry-run component (example and sharded overlays)", c_dry_run_component),
    ("deployment: config is a directory mount (no subPath)", c_config_mount),
    ("deployment: metrics port", c_ports),
    ("configmap: manifests/base/config.yaml is a copy of config/config.yaml", c_config_copy),
    ("configmap: byte-identical to config/config.yaml", c_configmap_identical),
    ("configmap: cpscale check-config accepts it", c_check_config),
    ("configmap: listen port is the metrics port", c_listen),
    ("configmap: leader_election matches the Lease Role", c_lease_matches_config),
    ("configmap: its targets are granted", c_targets_granted),
    ("rbac: exactly the expected (group, resource, verb)", c_rbac_exact),
    ("rbac: no wildcards", c_rbac_no_wildcards),
    ("rbac: scopes (lease in cpscale by name, the rest in the targets' namespaces)", c_rbac_scopes),
    ("rbac: cluster-scope component adds list and watch everywhere, nothing else", c_cluster_scope),
    ("rbac: granted() on sample requests", c_rbac_requests),
    ("rbac: rbac_rules.py on synthetic roles", c_rbac_rules_selftest),
    ("service: metrics port 8080", c_service),
    ("pdb: minAvailable 1", c_pdb),
    ("sharded overlay: 3 replicas", c_sharded_replicas),
    ("sharded overlay: config/config.yaml plus sharding (6 shards)", c_sharded_config),
    ("sharded overlay: RBAC on exactly the shard Leases", c_sharded_rbac),
    ("servicemonitor: optional component, selects the Service", c_servicemonitor),
    ("slo alerts: optional component, burn rates recorded per window", c_slo_alerts_component),
    ("slo alerts: promtool check rules", c_slo_alerts_promtool),
    ("slo alerts: promtool test rules on known burn rates", c_slo_alerts_fire),
    ("tune job: manifests/tune-job.yaml", c_tune_job),
    ("dockerfile: stages", c_docker_stages),
    ("dockerfile: final stage has runtime libraries only", c_docker_final),
    ("dockerfile: non-root USER", c_docker_user),
    ("dockerfile: ENTRYPOINT and CMD", c_docker_entrypoint),
    ("dockerfile: .dockerignore", c_dockerignore),
    ("grafana: valid dashboard JSON", c_dashboard_json),
    ("grafana: $datasource, $namespace, $name variables", c_dashboard_variables),
    ("grafana: metric-name reader", c_metric_parser),
    ("grafana: queries use only exported metrics", c_dashboard_metrics),
    ("grafana: every required panel", c_dashboard_panels),
    ("grafana: panels use $datasource", c_dashboard_datasource),
    ("grafana: every query runs on two replicas' series", c_dashboard_two_replicas),
]

try:
    for name, fn in CHECKS:
        check(name, fn)
finally:
    shutil.rmtree(TMP, ignore_errors=True)
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
PYTHON
