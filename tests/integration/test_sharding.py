#!/usr/bin/env python3
"""Shards on Leases: three `cpscale run` replicas, six shards, three dozen
targets, the fake kube-apiserver and a Prometheus with fixed answers.

Checks, all judged from the fake's request log and Lease objects, never
from what the controllers say about themselves:
  spread     one replica alone takes all six Leases; two more start and
             take theirs from it (they hold nothing, so only the takes
             from a holder over its share can give them any): in steady
             state each replica holds two;
  scheme     every shard Lease carries the scheme annotation "fnv1a64-v1/6";
  (a) handover  a replica killed with SIGKILL while its PATCHes are going
             out: each of its shards is taken by a survivor within
             lease_duration + 1.2 x retry_period (+ transit), and its
             targets are PATCHed again by the new holder;
  (b) holder  every PATCH was sent by the replica whose Lease write on the
             target's shard came last before it (the target's shard
             computed here, by FNV-1a 64 in Python), at most renew_deadline
             (+ transit) after that write; after a take from a live holder
             the taker waits renew_deadline before its first PATCH;
  (c) owned  no shard goes without an acting holder for longer than
             lease_duration + 1.2 x retry_period + one interval;
  rbac       the sharded overlay's rendered RBAC grants every request
             the replicas sent (tests/fakes/rbac_rules.py);
  conflict   a fourth replica started with shards: 4 (another scheme)
             takes no Lease and sends no PATCH while the fleet holds its
             Leases; a shard Lease written by "another version" (scheme
             fnv1a64-v2/6) stops every PATCH of the fleet from a retry
             period after it appears until it expires.
Bounded in time (about two minutes), loopback only. With CPS_VALGRIND=1
every replica runs under valgrind and must end clean.
"""

import argparse
import bisect
import json
import os
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import kubefake  # noqa: E402
from test_controller import REPO, Checks, Controller, TIME_FACTOR, kubectl_render_objects  # noqa: E402,E501

NAMESPACE = "fleet"
N_TARGETS = 36
N_SHARDS = 6
N_REPLICAS = 3
INTERVAL_S = 1.0
LEASE_DURATION_S = 4.0 * TIME_FACTOR
RENEW_DEADLINE_S = 3.0 * TIME_FACTOR
RETRY_PERIOD_S = 1.0 * TIME_FACTOR
TRANSIT_S = 0.5                 # a request's way to the fake and its queueing there
HANDOVER_BOUND_S = LEASE_DURATION_S + 1.2 * RETRY_PERIOD_S + INTERVAL_S
RESET_EVERY_S = 1.5             # every target is put back to 1 replica: a reason to PATCH
SAMPLE_STEP_S = 15
HISTORY_S = 600
QUERIES = {"qps": "shard_qps", "p95_ms": "shard_p95_ms", "cpu_utilization": "shard_cpu",
           "cost_per_pod_hour": "shard_cost"}
LEASE_PREFIX = "/apis/coordination.k8s.io/v1/namespaces/cpscale/leases/"
SCHEME = "fnv1a64-v1/%d" % N_SHARDS


def fnv1a64(text):
    """FNV-1a 64 by its definition, apart from the C code under test."""
    h = 0xcbf29ce484222325
    for byte in text.encode():
        h ^= byte
        h = (h * 0x100000001b3) % (1 << 64)
    return h


def shard_of(namespace, name, n=N_SHARDS, kind="Deployment"):
    return fnv1a64("%s/%s/%s" % (namespace, kind, name)) % n


def target_names(n=N_TARGETS):
    return ["app-%d" % i for i in range(n)]


def openmetrics(names, end, namespace=NAMESPACE):
    """One series per target and metric, every 15 s for 10 min up to `end`."""
    lines = []
    for metric, value in (("shard_qps", 120.0), ("shard_p95_ms", 60.0), ("shard_cpu", 0.5),
                          ("shard_cost", 0.05)):
        lines.append("# TYPE %s gauge" % metric)
        for name in names:
            labels = '{namespace="%s",deployment="%s"}' % (namespace, name)
            for t in range(int(end) - HISTORY_S, int(end), SAMPLE_STEP_S):
                lines.append("%s%s %g %d" % (metric, labels, value, t))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def deployment(name, replicas, namespace=NAMESPACE):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "a", "image": "a"}]}}},
            "status": {"replicas": replicas, "readyReplicas": replicas}}


def config_text(names, prometheus_url, shards=N_SHARDS, warm_standby=True, interval_s=INTERVAL_S,
                namespace=NAMESPACE, lease=None):
    lease = lease or (LEASE_DURATION_S, RENEW_DEADLINE_S, RETRY_PERIOD_S)
    lines = ["interval: %gs" % interval_s, "listen: \"127.0.0.1:0\"", "prometheus:",
             "  url: %s" % prometheus_url, "  timeout: 10s", "queries:"]
    lines += ["  %s: %s" % (k, v) for k, v in QUERIES.items()]
    lines += ["leader_election:", "  enabled: true", "  namespace: cpscale",
              "  lease_duration: %gs" % lease[0], "  renew_deadline: %gms" % (lease[1] * 1000),
              "  retry_period: %gms" % (lease[2] * 1000),
              "sharding:", "  shards: %d" % shards,
              "  warm_standby: %s" % ("true" if warm_standby else "false"),
              "defaults:", "  min_replicas: 1", "  max_replicas: 50",
              "  capacity:", "    rps_per_pod: 60",
              "  behavior:", "    scaleUp:", "      stabilizationWindowSeconds: 0",
              "      policies:", "        - {type: Pods, value: 100, periodSeconds: 1}",
              "targets:"]
    for name in names:
        lines += ["  - namespace: %s" % namespace, "    deployment: %s" % name]
    return "\n".join(lines) + "\n"


class Fleet:
    """The fake, Prometheus, the resetter and the replicas."""

    def __init__(self, cpscale, workdir, names, shards=N_SHARDS, warm_standby=True,
                 interval_s=INTERVAL_S, namespace=NAMESPACE, lease=None):
        self.cpscale = cpscale
        self.workdir = workdir
        self.names = names
        self.namespace = namespace
        self.shards = shards
        self.warm_standby = warm_standby
        self.interval_s = interval_s
        self.lease = lease
        self.replicas = {}
        self.stop_reset = threading.Event()
        self.reset_thread = None
        self.reset_rounds = 0

    def start(self, prom_args=()):
        self.kube = kubefake.FakeApiserver()
        self.kube.start()
        for ns in ("cpscale", self.namespace):
            self.kube.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.kube.seed({"apiVersion": "v1", "kind": "List",
                        "items": [deployment(n, 1, self.namespace) for n in self.names]})
        self.prom = harness.Prometheus(
            blocks_from_openmetrics=openmetrics(self.names, time.time() - 5, self.namespace),
            extra_args=["--query.lookback-delta=1h"] + list(prom_args))
        self.prom.start()
        self.kubeconfig = self.kube.write_kubeconfig(os.path.join(self.workdir, "kubeconfig"))
        self.tokens = {self.kube.token: "cpscale"}
        self.config = os.path.join(self.workdir, "config.yaml")
        with open(self.config, "w") as handle:
            handle.write(config_text(self.names, self.prom.url, self.shards, self.warm_standby,
                                     self.interval_s, self.namespace, self.lease))

    def kubeconfig_for(self, user):
        """A kubeconfig with a token of its own, so the log names the replica."""
        token = "token-%s-0123456789" % user
        self.tokens[token] = user
        self.kube.set_tokens(self.tokens)
        path = os.path.join(self.workdir, "kubeconfig-" + user)
        with open(self.kubeconfig) as handle:
            text = handle.read()
        with open(path, "w") as handle:
            handle.write(text.replace(json.dumps(self.kube.token), json.dumps(token)))
        return path

    def start_replica(self, index, config=None, args=()):
        user = "user-%d" % index
        kubeconfig = self.kubeconfig_for(user)
        proc = Controller(self.cpscale, self.workdir, "replica-%d" % index, config or self.config,
                          ["--kubeconfig", kubeconfig, "--identity", "replica-%d" % index,
                           "--log-level", "warn"] + list(args))
        self.replicas[index] = proc
        return proc

    def reset_loop(self):
        while not self.stop_reset.wait(RESET_EVERY_S):
            try:
                self.kube.seed({"apiVersion": "v1", "kind": "List",
                                "items": [deployment(n, 1, self.namespace) for n in self.names]})
                self.reset_rounds += 1
            except Exception:  # noqa: BLE001 - the fake is stopping
                return

    def start_resets(self):
        self.reset_thread = threading.Thread(target=self.reset_loop, daemon=True)
        self.reset_thread.start()

    def holders(self):
        """shard -> (holder, scheme annotation) of the Lease objects now."""
        out = {}
        for s in range(self.shards):
            lease = self.kube.get(LEASE_PREFIX + "cpscale-shard-%d" % s) or {}
            annotations = (lease.get("metadata") or {}).get("annotations") or {}
            out[s] = (((lease.get("spec") or {}).get("holderIdentity") or ""),
                      annotations.get("cpscale.io/shard-scheme", ""))
        return out

    def stop(self):
        self.stop_reset.set()
        if self.reset_thread:
            self.reset_thread.join(timeout=10)
        codes = {}
        for index, proc in self.replicas.items():
            codes[index] = proc.stop()
        self.prom.stop()
        self.kube.stop()
        return codes


# ---- judging from the request log ---------------------------------------------

def identity_of(user):
    return "replica-" + user.split("-", 1)[1] if user and user.startswith("user-") else user


def lease_writes(records, n_shards=N_SHARDS):
    """shard -> [(t, holder, user)] of every successful Lease write."""
    out = {s: [] for s in range(n_shards)}
    for r in records:
        name = r.get("name") or ((r.get("body") or {}).get("metadata") or {}).get("name") or ""
        if r.get("resource") != "leases" or r.get("verb") not in ("create", "update") \
                or r.get("status") not in (200, 201) or not name.startswith("cpscale-shard-"):
            continue
        shard = int(name[len("cpscale-shard-"):])
        if shard in out:
            spec = (r.get("body") or {}).get("spec") or {}
            out[shard].append((r["t"], spec.get("holderIdentity") or "", r.get("user")))
    for writes in out.values():
        writes.sort(key=lambda w: w[0])
    return out


def scale_patches(records, namespace=NAMESPACE):
    return sorted((r for r in records if r.get("verb") == "patch"
                   and r.get("subresource") == "scale" and r.get("namespace") == namespace),
                  key=lambda r: r["t"])


def holder_violations(records, n_shards=N_SHARDS, namespace=NAMESPACE,
                      renew_deadline_s=RENEW_DEADLINE_S, lease_duration_s=LEASE_DURATION_S):
    """(b): every PATCH inside its sender's tenure of the target's shard.
    Returns (violations, patches judged)."""
    writes = lease_writes(records, n_shards)
    times = {s: [w[0] for w in writes[s]] for s in writes}
    bad = []
    patches = scale_patches(records, namespace)
    for r in patches:
        shard = shard_of(namespace, r.get("name"), n_shards)
        me = identity_of(r.get("user"))
        i = bisect.bisect_left(times[shard], r["t"]) - 1
        where = "%s PATCH %s (shard %d) at %.3f" % (me, r.get("name"), shard, r["t"])
        if i < 0:
            bad.append(where + ": nobody ever wrote the Lease")
            continue
        # the sender's own last write, and whether anyone else wrote since
        own = [w for w in writes[shard][:i + 1] if w[1] == me]
        if not own:
            bad.append(where + ": its sender never held the shard")
            continue
        last_own = own[-1]
        if r["t"] - last_own[0] > renew_deadline_s + TRANSIT_S:
            bad.append(where + ": %.3f s after its last renewal (renew deadline %g s)"
                       % (r["t"] - last_own[0], renew_deadline_s))
        later = [w for w in writes[shard][:i + 1] if w[0] > last_own[0]]
        if any(w[1] == "" for w in later):
            bad.append(where + ": after it released the shard")
        # the tenure's start: a take from a live holder waits renew_deadline
        j = writes[shard].index(last_own)
        while j > 0 and writes[shard][j - 1][1] == me:
            j -= 1
        if j > 0:
            previous = writes[shard][j - 1]
            took = writes[shard][j][0]
            if previous[1] and took - previous[0] < lease_duration_s \
                    and r["t"] < took + renew_deadline_s - TRANSIT_S:
                bad.append(where + ": %.3f s after taking it from %s, who may still act"
                           % (r["t"] - took, previous[1]))
    return bad, len(patches)


def unowned_gaps(records, start, end, n_shards=N_SHARDS, renew_deadline_s=RENEW_DEADLINE_S,
                 lease_duration_s=LEASE_DURATION_S):
    """(c): shard -> longest stretch in [start, end] with no acting holder.
    A holder acts from its write (renew_deadline later after a take from a
    live holder) until renew_deadline after its last write."""
    writes = lease_writes(records, n_shards)
    longest = {}
    for shard, ws in writes.items():
        intervals = []
        for k, (t, holder, _) in enumerate(ws):
            if not holder:
                continue
            begin = t
            if k > 0 and ws[k - 1][1] and ws[k - 1][1] != holder \
                    and t - ws[k - 1][0] < lease_duration_s:
                begin = t + renew_deadline_s
            intervals.append((begin, t + renew_deadline_s))
        covered_to, gap = start, 0.0
        for begin, finish in sorted(intervals):
            if finish < start:
                continue
            if begin > covered_to:
                gap = max(gap, min(begin, end) - covered_to)
            covered_to = max(covered_to, finish)
            if covered_to >= end:
                break
        gap = max(gap, end - covered_to) if covered_to < end else gap
        longest[shard] = gap
    return longest


# ---- the scenario -----------------------------------------------------------------

def wait_spread(fleet, timeout):
    """Wait until every shard is held and each replica holds N/replicas."""
    want = N_SHARDS // len([p for p in fleet.replicas.values() if p.process.poll() is None])

    def spread():
        holders = fleet.holders()
        counts = {}
        for holder, _ in holders.values():
            counts[holder] = counts.get(holder, 0) + 1
        live = {"replica-%d" % i for i, p in fleet.replicas.items() if p.process.poll() is None}
        if set(counts) == live and all(c == want for c in counts.values()):
            return holders
        return None
    try:
        return harness.wait_until(spread, timeout, "shards spread", interval=0.5)
    except TimeoutError:
        return None


def rbac_denied(records, users):
    """The requests of `users` the sharded overlay's rendered RBAC would
    refuse (tests/fakes/rbac_rules.py); None without kubectl."""
    _, objects = kubectl_render_objects(os.path.join("manifests", "overlays", "sharded"))
    if objects is None:
        return None
    sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))
    import rbac_rules
    # the fleet's namespace bound as the overlay's target-namespaces.yaml binds its own
    objects = rbac_rules.with_binding_in(objects, "cpscale", {NAMESPACE})
    grants = rbac_rules.rules_from_objects(objects, service_account=("cpscale", "cpscale"))
    return sorted({(r["verb"], r["api_group"], r["resource"], r.get("subresource", ""),
                    r.get("namespace", ""), r.get("name", ""))
                   for r in records if r.get("user") in users and r.get("resource")
                   and not rbac_rules.granted(grants, r)})


def run(checks, cpscale, workdir):
    fleet = Fleet(cpscale, workdir, target_names())
    fleet.start()
    try:
        # one replica alone first: it takes all six; the two that come
        # later hold nothing (invisible on the Leases) and must take
        # theirs from it
        fleet.start_replica(0)
        fleet.start_resets()
        alone = wait_spread(fleet, 30 * TIME_FACTOR)
        checks.check("spread: a replica alone takes all 6 shards", alone is not None,
                     str(fleet.holders()))
        t0 = time.time()
        for i in range(1, N_REPLICAS):
            fleet.start_replica(i)
        holders = wait_spread(fleet, 60 * TIME_FACTOR)
        checks.check("spread: 3 replicas end with 2 of the 6 shards each", holders is not None,
                     "after %.1f s: %s" % (time.time() - t0, fleet.holders()))
        schemes = {scheme for _, scheme in fleet.holders().values()}
        checks.check("scheme: every shard Lease carries %s" % SCHEME, schemes == {SCHEME},
                     str(sorted(schemes)))
        time.sleep(5 * TIME_FACTOR)
        run_conflict(checks, fleet)
        run_intruder(checks, fleet)
        wait_spread(fleet, 30 * TIME_FACTOR)
        # (a) SIGKILL a shard holder in the middle of its tick: right after
        # one of its PATCHes reached the fake
        holders = fleet.holders()
        victim = 0
        victim_shards = sorted(s for s, (h, _) in holders.items() if h == "replica-%d" % victim)
        seq = fleet.kube.log()[-1]["seq"]
        harness.wait_until(lambda: [r for r in fleet.kube.log(since=seq)
                                    if r.get("verb") == "patch" and r.get("user") == "user-0"],
                           20 * TIME_FACTOR, "a PATCH of the victim", interval=0.02)
        killed_at = time.time()
        os.killpg(fleet.replicas[victim].process.pid, signal.SIGKILL)
        fleet.replicas[victim].process.wait()
        time.sleep(HANDOVER_BOUND_S + 6 * TIME_FACTOR)
        end = time.time()
        records = fleet.kube.log()
        with open(os.path.join(fleet.workdir, "requests.json"), "w") as handle:
            json.dump(records, handle)
        writes = lease_writes(records)
        took = {}
        for s in victim_shards:
            after = [w for w in writes[s] if w[0] > killed_at and w[1]
                     and w[1] != "replica-%d" % victim]
            took[s] = after[0][0] - killed_at if after else None
        bound = LEASE_DURATION_S + 1.2 * RETRY_PERIOD_S + TRANSIT_S
        print("# killed replica-0 at %.3f" % killed_at)
        checks.check("(a) the killed replica held shards", bool(victim_shards), str(victim_shards))
        checks.check("(a) each of its shards is taken within lease_duration + 1.2 x retry_period",
                     all(v is not None and v <= bound for v in took.values()),
                     "taken after %s s (bound %.1f s)"
                     % ({s: (round(v, 2) if v is not None else None) for s, v in took.items()},
                        bound))
        moved_targets = [n for n in fleet.names if shard_of(NAMESPACE, n) in victim_shards]
        repatched = {}
        for r in scale_patches(records):
            if r["t"] > killed_at and r.get("name") in moved_targets:
                repatched.setdefault(r.get("name"), r["t"] - killed_at)
        checks.check("(a) its targets are PATCHed again by the new holders within the bound "
                     "(+ one reset period)",
                     len(repatched) == len(moved_targets)
                     and max(repatched.values()) <= HANDOVER_BOUND_S + RESET_EVERY_S + TRANSIT_S,
                     "%d/%d targets, the last after %.2f s (bound %.1f s)"
                     % (len(repatched), len(moved_targets), max(repatched.values() or [0]),
                        HANDOVER_BOUND_S))
        bad, judged = holder_violations(records)
        checks.check("(b) every PATCH sent by its shard's Lease holder", judged > 0 and not bad,
                     "%d PATCHes judged; %s" % (judged, "; ".join(bad[:5]) or "none outside"))
        users = {r.get("user") for r in scale_patches(records)}
        checks.check("(b) all three replicas sent PATCHes",
                     {"user-0", "user-1", "user-2"} <= users, str(sorted(users)))
        first_held = min(w[0] for ws in writes.values() for w in ws if w[1])
        start = first_held + RENEW_DEADLINE_S + 15 * TIME_FACTOR  # after the spread settled
        gaps = unowned_gaps(records, start, end)
        checks.check("(c) no shard without an acting holder longer than lease_duration + "
                     "1.2 x retry_period + one interval",
                     all(g <= HANDOVER_BOUND_S + TRANSIT_S for g in gaps.values()),
                     "longest gaps %s s (bound %.1f s)"
                     % ({s: round(g, 2) for s, g in gaps.items()}, HANDOVER_BOUND_S))
        denied = rbac_denied(records, {"user-0", "user-1", "user-2"})
        if denied is None:
            print("skip rbac: kubectl not found")
        else:
            checks.check("rbac: the sharded overlay's RBAC grants every request of the replicas",
                         not denied, "denied: %s" % denied[:6])
        survivors = wait_spread(fleet, 20 * TIME_FACTOR)
        checks.check("after the kill: the two survivors hold 3 shards each", survivors is not None,
                     str(fleet.holders()))
    finally:
        codes = fleet.stop()
    checks.check("the survivors exit 0 on SIGTERM",
                 all(codes[i] == 0 for i in codes if i != 0), str(codes))
    for index, proc in fleet.replicas.items():
        if index == 0:
            continue
        clean, report = proc.valgrind_clean()
        checks.check("replica-%d: valgrind clean" % index, clean, report)


def run_conflict(checks, fleet):
    """A replica of another scheme (shards: 4) next to the fleet of 6: it
    must take no Lease and send no PATCH while the fleet holds its Leases."""
    config = os.path.join(fleet.workdir, "config-4.yaml")
    with open(config, "w") as handle:
        handle.write(config_text(fleet.names, fleet.prom.url, shards=4))
    seq = fleet.kube.log()[-1]["seq"]
    other = fleet.start_replica(9, config=config)
    time.sleep(6 * TIME_FACTOR)
    code = other.stop()
    records = fleet.kube.log(since=seq)
    wrote = [r for r in records if r.get("user") == "user-9" and r.get("resource") == "leases"
             and r.get("verb") in ("create", "update") and r.get("status") in (200, 201)
             and ((r.get("body") or {}).get("spec") or {}).get("holderIdentity")]
    patched = [r for r in records if r.get("user") == "user-9" and r.get("verb") == "patch"]
    checks.check("conflict: a replica with shards: 4 takes no Lease of the fleet of 6",
                 not wrote, "%d Lease writes" % len(wrote))
    checks.check("conflict: ... and sends no PATCH", not patched, "%d PATCHes" % len(patched))
    checks.check("conflict: it exits 0", code == 0, str(code))
    del fleet.replicas[9]


def run_intruder(checks, fleet):
    """Another version's replica (scheme fnv1a64-v2/6) holds shard 0 for
    one lease duration: every replica of the fleet must stop PATCHing once
    it has read that Lease (a retry period), until the Lease expires."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".000000Z"
    duration = int(LEASE_DURATION_S)
    fleet.kube.seed({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": "cpscale-shard-0", "namespace": "cpscale",
                                  "annotations": {"cpscale.io/shard-scheme": "fnv1a64-v2/6"}},
                     "spec": {"holderIdentity": "other-version", "leaseDurationSeconds": duration,
                              "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 9}})
    quiet_from, quiet_to = now + RETRY_PERIOD_S + TRANSIT_S, now + duration
    time.sleep(duration + RENEW_DEADLINE_S + 4 * TIME_FACTOR)
    records = fleet.kube.log()
    during = [r for r in scale_patches(records) if quiet_from <= r["t"] <= quiet_to]
    after = [r for r in scale_patches(records) if r["t"] > quiet_to]
    before = [r for r in scale_patches(records) if now - 3 <= r["t"] < now]
    checks.check("scheme: the fleet was PATCHing before another scheme showed up", bool(before),
                 "%d PATCHes in the 3 s before" % len(before))
    checks.check("scheme: no PATCH by any replica while another scheme holds a shard Lease",
                 not during, "%d PATCHes between %.1f s and %.1f s after it appeared: %s"
                 % (len(during), quiet_from - now, quiet_to - now,
                    sorted({r.get("user") for r in during})))
    checks.check("scheme: PATCHes resume once that Lease expired", bool(after),
                 "%d PATCHes after" % len(after))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpscale", required=True)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    harness.install_signal_handlers()
    checks = Checks()
    workdir = tempfile.mkdtemp(prefix="cps-sharding-")
    try:
        run(checks, os.path.abspath(args.cpscale), workdir)
    except Exception as error:  # a broken run is a failure, not a crash
        checks.check("sharding: scenario ran to the end", False, repr(error))
    return checks.finish(workdir, args.keep)


if __name__ == "__main__":
    sys.exit(main())
