#!/usr/bin/env python3
"""Workload emulator: the docs/model.md world in real time, as Prometheus sees it.

For each target Deployment it replays a demand profile (a docs/model.md §1 trace
CSV, a built-in ramp, or a constant) through the world of docs/model.md §3 with
`routing: random`: every ready pod is its own M/M/1 queue fed λ/c, so a
request's latency is base + Exp(μ − λ/c) and p95 = base + ln(20)/(μ − λ/c).
Pods become ready `--startup-s` seconds after they are created and cost
`--price` USD per pod-hour while they exist. The replica count comes from
the (fake) kube-apiserver's spec.replicas, or from a plain file, read once a
second; the emulator creates and deletes pods to match, and writes the
Deployment's status back to the apiserver.

It serves, on 127.0.0.1 only, what a cluster's Prometheus would scrape
(text format 0.0.4) on /metrics:

  http_requests_total{namespace,pod}                       counter, ready pods' λ/c
  http_request_duration_seconds_{bucket,sum,count}{namespace,pod[,le]}
                                                           histogram of the model
  container_cpu_usage_seconds_total{namespace,pod,container="app"}
                                                           busy share min(λ/(cμ),1)
  kube_pod_container_resource_requests{namespace,pod,container="app",
      node,resource="cpu",unit="core"}                     1 per pod
  container_cpu_allocation{namespace,pod,container="app",node}          1 core
  container_memory_allocation_bytes{namespace,pod,container="app",node} 1 GiB
  node_cpu_hourly_cost{node} = 0.75 × price,  node_ram_hourly_cost{node} = 0.25 × price
      so OpenCost's cpu×price + GiB×price gives exactly --price per pod-hour
  kube_deployment_status_replicas_ready{namespace,deployment} (and _replicas,
      kube_deployment_spec_replicas)
  emulator_demand_qps, emulator_model_p95_seconds, emulator_cost_usd_total
      {namespace,deployment}: the world's ground truth, for tests

Pods are named NAME-<10 hex>-<5 alnum> like a ReplicaSet's pods, so the
controller's label_replace(pod, "(.+)-[a-z0-9]+-[a-z0-9]+") maps them back;
a pod's series appear when it is created (zero counters while it starts)
and disappear when it is deleted. Counters integrate the model over real
elapsed (monotonic) time, up to the instant of each scrape, so rate() is
exact for a constant load.

Time: the demand profile runs on trace time = wall seconds since the
emulator started × --speed (so --speed 60 plays an hour-long trace in a
minute); after the last row the last rate holds. Everything else (startup,
counters, cost) runs on wall time.

Scale: at 1,000+ targets the per-pod series would make /metrics huge
(about 35 lines per pod). --pods-per-target-cap K exposes at most K series
"slots" per target: pods are spread evenly over K slots with stable names
(NAME-<10 hex>-s0000 ...), and each slot's counters carry the sum of its
pods' counters, its resource request is its pod count, and its cost
allocation stays one pod's (the cost query averages per pod). Every
default query still gives the right per-deployment value; only per-pod
churn is no longer visible. --api-workers sets how many HTTPS connections
poll the apiserver; with many targets a poll round may take longer than a
second and then simply runs back to back.

Not modelled: the trace's cost_per_pod_hour column (the price is global, as
node prices are shared), `routing: pooled`, failed requests (demand that
reaches no ready pod is counted in the world's figures, not on any pod).

Usage: workload_emulator.py --target NS/NAME=SPEC [...] [options]
SPEC is a trace CSV path, ramp:LOW,HIGH,HOLD_LOW_S,RAMP_S,HOLD_HIGH_S,RAMP_DOWN_S
(trace seconds), or const:RATE. Run with --help for every option.
Exit status: 0 after --duration or SIGTERM/SIGINT, 2 on a usage or input error.
"""

import argparse
import bisect
import collections
import csv
import datetime
import hashlib
import http.client
import http.server
import json
import math
import os
import random
import signal
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

LN20 = math.log(20.0)  # p95 of an exponential with rate r is ln(20)/r
# Histogram bucket bounds (seconds). Dense between 20 ms and 500 ms, where
# SLOs live: with linear interpolation inside a bucket, histogram_quantile's
# p95 stays within 2.5 % of the model for the default world (μ 100, base
# 20 ms) and within 6.5 % for μ 20..500, base 0..50 ms, p95 20..500 ms.
BUCKETS = (0.005, 0.01, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06, 0.07, 0.08,
           0.1, 0.12, 0.14, 0.17, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8, 1.0,
           2.5, 5.0, 10.0)
# Latency booked in _sum for requests of a saturated pod (λ/c ≥ μ): above
# every finite bucket, so histogram_quantile answers the largest bound.
SATURATED_LATENCY_S = 2 * BUCKETS[-1]
# OpenCost split of a pod's price: one core and one GiB.
CPU_SHARE_OF_PRICE = 0.75
RAM_SHARE_OF_PRICE = 0.25
GIB = 1024 ** 3
# Alphabet Kubernetes uses for generated name suffixes.
POD_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
POD_SUFFIX_LEN = 5
TEMPLATE_HASH_LEN = 10
TICK_S = 1.0           # world bookkeeping, replicas files, state file
API_TIMEOUT_S = 2.0    # bound on one apiserver request
CONTAINER = "app"
# Vector layout of a pod's integrals: requests (= histogram count), latency
# sum, CPU seconds, then one cumulative count per finite bucket.
V_REQ, V_SUM, V_CPU, V_BUCKET0 = 0, 1, 2, 3
VEC_LEN = V_BUCKET0 + len(BUCKETS)


class InputError(Exception):
    """Bad command line, trace or targets file: exit status 2."""


def log(msg):
    sys.stderr.write("workload_emulator: %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------- demand

# _parse_timestamp: Unix seconds (integer or decimal) or RFC 3339 with a
# zone ("Z" or an offset). Raises ValueError with a short reason.
def _parse_timestamp(text):
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None:
        if not math.isfinite(value):
            raise ValueError("timestamp is not finite")
        return value
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("timestamp %r is neither epoch seconds nor RFC 3339" % text) from None
    if stamp.tzinfo is None:
        raise ValueError("RFC 3339 timestamp %r has no zone" % text)
    return stamp.timestamp()


class TraceProfile:
    """Demand from a docs/model.md §1 CSV: the rate at trace second τ (counted
    from the first row) is the qps of the latest row at or before it; after
    the last row the last rate holds."""

    def __init__(self, path, scale):
        self.path = path
        self.offsets, self.rates = self._load(path, scale)

    # _load: parse and validate the CSV (columns by name, strictly increasing
    # time, finite non-negative rates). Raises InputError "file:line:col:
    # message" on the first problem: nothing is guessed.
    @staticmethod
    def _load(path, scale):
        try:
            fh = open(path, newline="")
        except OSError as exc:
            raise InputError("%s: %s" % (path, exc.strerror)) from None
        with fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError("%s:1:1: empty trace (no header)" % path) from None
            names = [h.strip() for h in header]
            for column in ("timestamp", "qps"):
                if column not in names:
                    raise InputError("%s:1:1: no %r column in header" % (path, column))
            ts_col, qps_col = names.index("timestamp"), names.index("qps")
            times, rates = [], []
            for row in reader:
                line = reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue
                for col in (ts_col, qps_col):
                    if col >= len(row):
                        raise InputError("%s:%d:%d: missing field" % (path, line, col + 1))
                try:
                    stamp = _parse_timestamp(row[ts_col])
                except ValueError as exc:
                    raise InputError("%s:%d:%d: %s" % (path, line, ts_col + 1, exc)) from None
                try:
                    qps = float(row[qps_col])
                except ValueError:
                    raise InputError("%s:%d:%d: qps %r is not a number"
                                     % (path, line, qps_col + 1, row[qps_col])) from None
                if not math.isfinite(qps) or qps < 0:
                    raise InputError("%s:%d:%d: qps must be finite and >= 0"
                                     % (path, line, qps_col + 1))
                if times and stamp <= times[-1]:
                    raise InputError("%s:%d:%d: timestamp not after the previous row"
                                     % (path, line, ts_col + 1))
                times.append(stamp)
                rates.append(qps * scale)
        if not times:
            raise InputError("%s:2:1: trace has no rows" % path)
        return [t - times[0] for t in times], rates

    def rate_at(self, tau):
        i = bisect.bisect_right(self.offsets, tau) - 1
        return self.rates[max(i, 0)]

    # next_change: the first trace time > tau where the rate may change
    # (math.inf after the last row); integration splits there.
    def next_change(self, tau):
        i = bisect.bisect_right(self.offsets, tau)
        return self.offsets[i] if i < len(self.offsets) else math.inf


class RampProfile:
    """low for HOLD_LOW_S, linear to high over RAMP_S, high for HOLD_HIGH_S,
    linear back over RAMP_DOWN_S, then low forever (trace seconds)."""

    def __init__(self, low, high, hold_low, ramp_up, hold_high, ramp_down):
        self.low, self.high = low, high
        self.corners = [hold_low, hold_low + ramp_up, hold_low + ramp_up + hold_high,
                        hold_low + ramp_up + hold_high + ramp_down]
        self.ramp_up, self.ramp_down = ramp_up, ramp_down

    def rate_at(self, tau):
        c0, c1, c2, c3 = self.corners
        if tau < c0 or tau >= c3:
            return self.low
        if tau < c1:
            return self.low + (self.high - self.low) * (tau - c0) / self.ramp_up
        if tau < c2:
            return self.high
        return self.high + (self.low - self.high) * (tau - c2) / self.ramp_down

    def next_change(self, tau):
        for corner in self.corners:
            if corner > tau:
                return corner
        return math.inf


class ConstProfile:
    """The same rate forever."""

    def __init__(self, rate):
        self.rate = rate

    def rate_at(self, _tau):
        return self.rate

    def next_change(self, _tau):
        return math.inf


# parse_profile: SPEC of a --target (trace path, ramp:..., const:R) to a
# profile object. Relative trace paths are tried against base_dir (the
# targets file's directory) first. Parsed traces are shared through cache.
def parse_profile(spec, scale, base_dir=None, cache=None):
    if spec.startswith("ramp:"):
        parts = spec[len("ramp:"):].split(",")
        if len(parts) != 6:
            raise InputError("ramp wants LOW,HIGH,HOLD_LOW_S,RAMP_S,HOLD_HIGH_S,RAMP_DOWN_S: %r" % spec)
        try:
            low, high, hold_low, ramp_up, hold_high, ramp_down = (float(p) for p in parts)
        except ValueError:
            raise InputError("ramp has a field that is not a number: %r" % spec) from None
        values = (low, high, hold_low, ramp_up, hold_high, ramp_down)
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise InputError("ramp fields must be finite and >= 0: %r" % spec)
        if ramp_up == 0 or ramp_down == 0:
            raise InputError("ramp durations must be > 0: %r" % spec)
        return RampProfile(low * scale, high * scale, hold_low, ramp_up, hold_high, ramp_down)
    if spec.startswith("const:"):
        try:
            rate = float(spec[len("const:"):])
        except ValueError:
            raise InputError("const wants a rate: %r" % spec) from None
        if not math.isfinite(rate) or rate < 0:
            raise InputError("const rate must be finite and >= 0: %r" % spec)
        return ConstProfile(rate * scale)
    path = spec
    if base_dir and not os.path.isabs(path) and os.path.exists(os.path.join(base_dir, path)):
        path = os.path.join(base_dir, path)
    key = (os.path.abspath(path), scale)
    if cache is not None and key in cache:
        return cache[key]
    profile = TraceProfile(path, scale)
    if cache is not None:
        cache[key] = profile
    return profile


# ---------------------------------------------------------------- model

class Model:
    """docs/model.md §3, routing random, plus the per-pod rates a scrape shows."""

    def __init__(self, service_rate, base_latency_s, slo_s):
        self.mu = service_rate
        self.base = base_latency_s
        self.slo = slo_s

    # p95: base + ln20/(μ − λ/c); infinite when c = 0 with load or λ ≥ cμ.
    def p95(self, lam, ready):
        if lam <= 0:
            return self.base + LN20 / self.mu
        if ready <= 0 or lam >= ready * self.mu:
            return math.inf
        return self.base + LN20 / (self.mu - lam / ready)

    # per_pod_rates: d/dt of one ready pod's integrals at total rate lam over
    # `ready` pods, in the V_* layout. The histogram's cumulative count at
    # bound le is λ/c × P(T ≤ le) with T = base + Exp(μ − λ/c); a saturated
    # pod puts every request above the largest finite bound.
    def per_pod_rates(self, lam, ready):
        out = [0.0] * VEC_LEN
        if ready <= 0 or lam <= 0:
            return out
        per_pod = lam / ready
        out[V_REQ] = per_pod
        out[V_CPU] = min(per_pod / self.mu, 1.0)
        slack = self.mu - per_pod
        if slack <= 0:
            out[V_SUM] = per_pod * SATURATED_LATENCY_S
            return out
        out[V_SUM] = per_pod * (self.base + 1.0 / slack)
        for i, le in enumerate(BUCKETS):
            if le > self.base:
                out[V_BUCKET0 + i] = per_pod * -math.expm1(-slack * (le - self.base))
        return out


# ---------------------------------------------------------------- world

class Slot:
    """One exposed pod's worth of series. Uncapped, a slot is one pod; with
    --pods-per-target-cap, several pods share a slot and it carries their sum.

    The target keeps `cum`, the integral of one ready pod's rates since the
    start; a slot holding n ready pods grows by n × (cum − mark) since its
    last change, so a scrape costs O(buckets) per slot and a tick O(buckets)
    per target whatever the pod count."""

    __slots__ = ("name", "node", "pods", "ready", "acc", "mark", "labels", "labels_node")

    def __init__(self, namespace, name, node, cum):
        self.name = name
        self.node = node
        self.pods = 0
        self.ready = 0
        self.acc = [0.0] * VEC_LEN
        self.mark = list(cum)
        self.labels = 'namespace="%s",pod="%s"' % (namespace, name)
        self.labels_node = '%s,container="%s",node="%s"' % (self.labels, CONTAINER, node)

    # settle: fold growth up to `cum` into acc before `ready` changes.
    def settle(self, cum):
        n = self.ready
        if n:
            self.acc = [a + n * (c - m) for a, c, m in zip(self.acc, cum, self.mark)]
        self.mark = list(cum)

    def values(self, cum):
        n = self.ready
        if not n:
            return self.acc
        return [a + n * (c - m) for a, c, m in zip(self.acc, cum, self.mark)]


class Pod:
    __slots__ = ("name", "created", "ready_at", "slot", "is_ready")

    def __init__(self, name, created, ready_at, slot):
        self.name, self.created, self.ready_at, self.slot = name, created, ready_at, slot
        self.is_ready = False


class Target:
    """One Deployment: its demand, pods, series slots and world figures.
    All methods run under World.lock; times are wall seconds since start."""

    def __init__(self, world, namespace, name, profile):
        self.world = world
        self.namespace, self.name, self.profile = namespace, name, profile
        self.key = "%s/%s" % (namespace, name)
        self.template_hash = hashlib.sha1(self.key.encode()).hexdigest()[:TEMPLATE_HASH_LEN]
        self.dep_labels = 'namespace="%s",deployment="%s"' % (namespace, name)
        self.t = 0.0
        self.cum = [0.0] * VEC_LEN
        self.starting = collections.deque()   # not ready, in creation order
        self.ready_pods = []                  # ready, in readiness order
        self.slots = {}                       # name -> Slot, creation order
        self.pod_names = set()
        self.desired = 0
        self.replicas_source = None           # file path, or None
        self.last_status = None               # (replicas, ready) last PATCHed
        self.qps = profile.rate_at(0.0)
        self.p95 = world.model.p95(self.qps, 0)
        self.violating = False
        self.cost_usd = 0.0
        self.requests = 0.0
        self.violating_requests = 0.0
        self.violating_seconds = 0.0

    @property
    def replicas(self):
        return len(self.starting) + len(self.ready_pods)

    # _integrate: move the world of this target from self.t to t2 with the
    # current pods, splitting at the profile's rate changes so a step in a
    # trace lands at its exact instant; linear ramp pieces use the rate at
    # their midpoint.
    def _integrate(self, t2):
        world = self.world
        model = world.model
        while self.t < t2:
            tau = self.t * world.speed
            change = self.profile.next_change(tau)
            end = min(t2, change / world.speed) if math.isfinite(change) else t2
            if end <= self.t:  # float rounding at a breakpoint: take a hair more
                end = min(t2, self.t + 1e-9)
            dt = end - self.t
            lam = self.profile.rate_at((self.t + end) / 2 * world.speed)
            ready = len(self.ready_pods)
            if ready:
                rates = model.per_pod_rates(lam, ready)
                self.cum = [c + r * dt for c, r in zip(self.cum, rates)]
            self.cost_usd += self.replicas * dt * world.price / 3600.0
            self.requests += lam * dt
            p95 = model.p95(lam, ready)
            violating = lam > 0 and p95 > model.slo
            if violating:
                self.violating_seconds += dt
                self.violating_requests += lam * dt
            self.qps, self.p95, self.violating = lam, p95, violating
            self.t = end

    # advance: bring the target to wall time `now`, making starting pods
    # ready at their exact ready_at.
    def advance(self, now):
        while self.starting and self.starting[0].ready_at <= now:
            pod = self.starting.popleft()
            self._integrate(max(pod.ready_at, self.t))
            pod.slot.settle(self.cum)
            pod.slot.ready += 1
            pod.is_ready = True
            self.ready_pods.append(pod)
        self._integrate(now)
        # Keep the current figures even for a zero-length step.
        self.qps = self.profile.rate_at(now * self.world.speed)
        self.p95 = self.world.model.p95(self.qps, len(self.ready_pods))
        self.violating = self.qps > 0 and self.p95 > self.world.model.slo

    def _new_pod_name(self):
        while True:
            suffix = "".join(random.choice(POD_SUFFIX_ALPHABET) for _ in range(POD_SUFFIX_LEN))
            name = "%s-%s-%s" % (self.name, self.template_hash, suffix)
            if name not in self.pod_names:
                self.pod_names.add(name)
                return name

    # _slot_for_new_pod: uncapped, a fresh slot named after the pod; capped,
    # the slot with the fewest pods, opening slot sNNNN while under the cap.
    def _slot_for_new_pod(self, pod_name):
        world = self.world
        cap = world.pods_per_target_cap
        if cap and len(self.slots) >= cap:
            return min(self.slots.values(), key=lambda s: s.pods)
        if cap:
            index = 0
            while True:
                name = "%s-%s-s%04d" % (self.name, self.template_hash, index)
                if name not in self.slots:
                    break
                index += 1
        else:
            name = pod_name
        slot = Slot(self.namespace, name, world.next_node(), self.cum)
        self.slots[name] = slot
        return slot

    def _remove_pod(self, pod):
        slot = pod.slot
        if pod.is_ready:
            slot.settle(self.cum)
            slot.ready -= 1
        slot.pods -= 1
        if slot.pods == 0:
            del self.slots[slot.name]
        self.pod_names.discard(pod.name)

    # set_replicas: make the pod count n at wall time `now` (after advance).
    # Up: new pods, ready `startup` later (at once when already_ready, for
    # the pods that exist before the emulator starts). Down (docs/model.md §4):
    # pods not ready yet go first, youngest first, then the youngest ready.
    def set_replicas(self, n, now, already_ready=False):
        n = max(0, int(n))
        self.desired = n
        old = self.replicas
        while self.replicas < n:
            name = self._new_pod_name()
            slot = self._slot_for_new_pod(name)
            slot.pods += 1
            pod = Pod(name, now, now if already_ready else now + self.world.startup, slot)
            self.starting.append(pod)
        while self.replicas > n:
            pod = self.starting.pop() if self.starting else self.ready_pods.pop()
            self._remove_pod(pod)
        if already_ready:
            self.advance(now)
        if self.replicas != old:
            log("%s: %d -> %d pods (%d ready)" % (self.key, old, self.replicas, len(self.ready_pods)))

    def state(self, now):
        return {
            "t": now,
            "trace_t": now * self.world.speed,
            "qps": self.qps,
            "desired": self.desired,
            "replicas": self.replicas,
            "ready": len(self.ready_pods),
            "p95_ms": self.p95 * 1000.0 if math.isfinite(self.p95) else None,
            "violating": self.violating,
            "cost_usd_total": self.cost_usd,
            "requests_total": self.requests,
            "violating_requests": self.violating_requests,
            "violating_seconds": self.violating_seconds,
        }


class World:
    """Every target, the clock and the lock that serialises them."""

    def __init__(self, model, speed, startup, price, pods_per_target_cap, nodes, node_prefix):
        self.model = model
        self.speed = speed
        self.startup = startup
        self.price = price
        self.pods_per_target_cap = pods_per_target_cap
        self.nodes = ["%s%d" % (node_prefix, i) for i in range(nodes)]
        self._node_turn = 0
        self.targets = []
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def now(self):
        return time.monotonic() - self.t0

    def next_node(self):
        node = self.nodes[self._node_turn % len(self.nodes)]
        self._node_turn += 1
        return node

    def advance(self, now):
        for target in self.targets:
            target.advance(now)

    # render: the /metrics page (text format 0.0.4), each family as one
    # group. Caller holds the lock and has advanced the world.
    def render(self):
        out = []
        add = out.append
        slot_values = []
        for target in self.targets:
            for slot in target.slots.values():
                slot_values.append((target, slot, slot.values(target.cum)))

        add("# HELP http_requests_total Requests handled by the pod.\n"
            "# TYPE http_requests_total counter\n")
        for _, slot, v in slot_values:
            add("http_requests_total{%s} %r\n" % (slot.labels, v[V_REQ]))

        add("# HELP http_request_duration_seconds Request latency.\n"
            "# TYPE http_request_duration_seconds histogram\n")
        bucket_les = [repr(le) for le in BUCKETS]
        for _, slot, v in slot_values:
            prefix = "http_request_duration_seconds_bucket{" + slot.labels + ',le="'
            for i, le in enumerate(bucket_les):
                add('%s%s"} %r\n' % (prefix, le, v[V_BUCKET0 + i]))
            add('%s+Inf"} %r\n' % (prefix, v[V_REQ]))
            add("http_request_duration_seconds_sum{%s} %r\n" % (slot.labels, v[V_SUM]))
            add("http_request_duration_seconds_count{%s} %r\n" % (slot.labels, v[V_REQ]))

        add("# HELP container_cpu_usage_seconds_total CPU time used by the container.\n"
            "# TYPE container_cpu_usage_seconds_total counter\n")
        for _, slot, v in slot_values:
            add('container_cpu_usage_seconds_total{%s,container="%s"} %r\n'
                % (slot.labels, CONTAINER, v[V_CPU]))

        add("# HELP kube_pod_container_resource_requests Requested resources.\n"
            "# TYPE kube_pod_container_resource_requests gauge\n")
        for _, slot, _v in slot_values:
            add('kube_pod_container_resource_requests{%s,resource="cpu",unit="core"} %d\n'
                % (slot.labels_node, slot.pods))

        add("# HELP container_cpu_allocation CPU cores allocated (OpenCost).\n"
            "# TYPE container_cpu_allocation gauge\n")
        for _, slot, _v in slot_values:
            add("container_cpu_allocation{%s} 1\n" % slot.labels_node)
        add("# HELP container_memory_allocation_bytes Memory allocated (OpenCost).\n"
            "# TYPE container_memory_allocation_bytes gauge\n")
        for _, slot, _v in slot_values:
            add("container_memory_allocation_bytes{%s} %d\n" % (slot.labels_node, GIB))

        add("# HELP node_cpu_hourly_cost USD per core-hour (OpenCost).\n"
            "# TYPE node_cpu_hourly_cost gauge\n")
        for node in self.nodes:
            add('node_cpu_hourly_cost{node="%s"} %r\n' % (node, self.price * CPU_SHARE_OF_PRICE))
        add("# HELP node_ram_hourly_cost USD per GiB-hour (OpenCost).\n"
            "# TYPE node_ram_hourly_cost gauge\n")
        for node in self.nodes:
            add('node_ram_hourly_cost{node="%s"} %r\n' % (node, self.price * RAM_SHARE_OF_PRICE))

        for family, help_text, value in (
                ("kube_deployment_spec_replicas", "Desired pods.", lambda t: t.desired),
                ("kube_deployment_status_replicas", "Existing pods.", lambda t: t.replicas),
                ("kube_deployment_status_replicas_ready", "Ready pods.",
                 lambda t: len(t.ready_pods))):
            add("# HELP %s %s\n# TYPE %s gauge\n" % (family, help_text, family))
            for target in self.targets:
                add("%s{%s} %d\n" % (family, target.dep_labels, value(target)))

        add("# HELP emulator_demand_qps The world's arrival rate now.\n"
            "# TYPE emulator_demand_qps gauge\n")
        for target in self.targets:
            add("emulator_demand_qps{%s} %r\n" % (target.dep_labels, target.qps))
        add("# HELP emulator_model_p95_seconds The model's p95 now (+Inf when saturated).\n"
            "# TYPE emulator_model_p95_seconds gauge\n")
        for target in self.targets:
            p95 = "+Inf" if math.isinf(target.p95) else repr(target.p95)
            add("emulator_model_p95_seconds{%s} %s\n" % (target.dep_labels, p95))
        add("# HELP emulator_cost_usd_total The world's cost so far.\n"
            "# TYPE emulator_cost_usd_total counter\n")
        for target in self.targets:
            add("emulator_cost_usd_total{%s} %r\n" % (target.dep_labels, target.cost_usd))
        return "".join(out)

    def state(self, now):
        return {"t": now, "speed": self.speed,
                "targets": {t.key: t.state(now) for t in self.targets}}


# ---------------------------------------------------------------- HTTP

class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_handler(world):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive for Prometheus

        def do_GET(self):  # noqa: N802 - http.server's naming
            path = urllib.parse.urlsplit(self.path).path
            if path == "/metrics":
                with world.lock:
                    now = world.now()
                    world.advance(now)
                    body = world.render()
                self._send(200, "text/plain; version=0.0.4; charset=utf-8", body)
            elif path == "/state":
                with world.lock:
                    now = world.now()
                    world.advance(now)
                    body = json.dumps(world.state(now), allow_nan=False)
                self._send(200, "application/json", body)
            elif path in ("/healthz", "/-/ready"):
                self._send(200, "text/plain", "ok\n")
            else:
                self._send(404, "text/plain", "not found\n")

        def _send(self, status, ctype, body):
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args):
            pass

    return Handler


# ---------------------------------------------------------------- replicas

class KubeClient:
    """A minimal HTTPS client for one apiserver connection: TLS verified
    against the CA file, bearer token reread from its file on every request
    (tokens rotate), one persistent connection reopened after any error,
    every request bounded by API_TIMEOUT_S."""

    def __init__(self, url, ca_file, token_file):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https":
            raise InputError("--apiserver must be an https:// URL: %r" % url)
        self.host = parts.hostname
        self.port = parts.port or 443
        self.prefix = parts.path.rstrip("/")
        self.context = ssl.create_default_context(cafile=ca_file)
        self.token_file = token_file
        self.conn = None

    def _token(self):
        with open(self.token_file) as fh:
            return fh.read().strip()

    # request: one call; returns (status, decoded JSON or None). Raises
    # OSError / http.client.HTTPException on transport failures.
    def request(self, method, path, body=None, content_type=None):
        headers = {"Authorization": "Bearer " + self._token(), "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type or "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=API_TIMEOUT_S,
                                                        context=self.context)
            try:
                self.conn.request(method, self.prefix + path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                if resp.getheader("Connection", "").lower() == "close" or resp.version == 10:
                    self.close()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server closed: retry once fresh.
                self.close()
                if attempt:
                    raise
            except Exception:
                self.close()
                raise
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = None
        return resp.status, decoded

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def deployment_path(target):
    return "/apis/apps/v1/namespaces/%s/deployments/%s" % (
        urllib.parse.quote(target.namespace, safe=""), urllib.parse.quote(target.name, safe=""))


class ApiPoller:
    """Reads spec.replicas of a share of the targets once a second and
    PATCHes their status when (pods, ready) changed. One per worker thread,
    each with its own connection. Failures are logged once per kind per
    target and retried next round; the world keeps its current count."""

    def __init__(self, world, targets, client, stop):
        self.world, self.targets, self.client, self.stop = world, targets, client, stop
        self.reported = set()

    def _warn(self, target, kind, msg):
        if (target.key, kind) not in self.reported:
            self.reported.add((target.key, kind))
            log("%s: %s" % (target.key, msg))

    def _clear(self, target, kind):
        self.reported.discard((target.key, kind))

    # read_spec: spec.replicas of one target, or None on any failure.
    def read_spec(self, target):
        try:
            status, body = self.client.request("GET", deployment_path(target))
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            self._warn(target, "get", "GET deployment failed: %s" % exc)
            return None
        if status != 200 or not isinstance(body, dict):
            self._warn(target, "get", "GET deployment: HTTP %d" % status)
            return None
        self._clear(target, "get")
        replicas = (body.get("spec") or {}).get("replicas", 1)  # Kubernetes' default
        if not isinstance(replicas, int) or replicas < 0:
            self._warn(target, "spec", "bad spec.replicas %r" % (replicas,))
            return None
        return replicas

    def patch_status(self, target, replicas, ready):
        body = {"status": {"replicas": replicas, "readyReplicas": ready,
                           "availableReplicas": ready, "updatedReplicas": replicas}}
        try:
            status, _ = self.client.request("PATCH", deployment_path(target) + "/status", body,
                                            "application/merge-patch+json")
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            self._warn(target, "patch", "PATCH status failed: %s" % exc)
            return False
        if status // 100 != 2:
            self._warn(target, "patch", "PATCH status: HTTP %d" % status)
            return False
        self._clear(target, "patch")
        return True

    # sync: one round over this poller's targets.
    def sync(self):
        for target in self.targets:
            if self.stop.is_set():
                return
            replicas = self.read_spec(target)
            with self.world.lock:
                now = self.world.now()
                target.advance(now)
                if replicas is not None and replicas != target.desired:
                    target.set_replicas(replicas, now)
                status = (target.replicas, len(target.ready_pods))
            # Only a Deployment that answered this round gets its status.
            if (replicas is not None and status != target.last_status
                    and self.patch_status(target, *status)):
                target.last_status = status

    def run(self):
        while not self.stop.is_set():
            started = time.monotonic()
            self.sync()
            self.stop.wait(max(0.0, TICK_S - (time.monotonic() - started)))
        self.client.close()


# read_replicas_file: the integer in path, or None when it is missing,
# empty or not a non-negative integer (a writer may be mid-rename).
def read_replicas_file(path):
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def write_atomic(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------- main

def parse_target_line(text, where):
    if "=" not in text:
        raise InputError("%s: want NS/NAME=SPEC, got %r" % (where, text))
    key, spec = text.split("=", 1)
    key, spec = key.strip(), spec.strip()
    if key.count("/") != 1 or not all(key.split("/")) or not spec:
        raise InputError("%s: want NS/NAME=SPEC, got %r" % (where, text))
    namespace, name = key.split("/")
    return namespace, name, spec


def build_parser():
    p = argparse.ArgumentParser(
        description="Replay demand through the docs/model.md world in real time and serve "
                    "what Prometheus would scrape (127.0.0.1 only).")
    p.add_argument("--target", action="append", default=[], metavar="NS/NAME=SPEC",
                   help="a Deployment and its demand: TRACE.csv, "
                        "ramp:LOW,HIGH,HOLD_LOW_S,RAMP_S,HOLD_HIGH_S,RAMP_DOWN_S or const:RATE "
                        "(repeatable)")
    p.add_argument("--targets-file", metavar="FILE",
                   help="more targets, one NS/NAME=SPEC a line (# comments); "
                        "relative trace paths are tried against the file's directory first")
    p.add_argument("--speed", type=float, default=1.0,
                   help="trace seconds per wall second (default 1)")
    p.add_argument("--scale", type=float, default=1.0, help="multiplier on every rate (default 1)")
    p.add_argument("--service-rate", type=float, default=100.0,
                   help="μ, requests/s one ready pod serves (default 100)")
    p.add_argument("--base-latency-ms", type=float, default=20.0,
                   help="fixed latency of every request (default 20)")
    p.add_argument("--startup-s", type=float, default=30.0,
                   help="wall seconds from pod creation to ready (default 30)")
    p.add_argument("--price", type=float, default=0.05, help="USD per pod-hour (default 0.05)")
    p.add_argument("--slo-ms", type=float, default=100.0,
                   help="p95 SLO for the state file's violation figures (default 100)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--apiserver", metavar="URL",
                   help="https:// base URL of the (fake) kube-apiserver")
    p.add_argument("--ca", metavar="FILE", help="CA bundle that signs the apiserver's cert")
    p.add_argument("--token-file", metavar="FILE", help="bearer token for the apiserver")
    p.add_argument("--api-workers", type=int, default=4,
                   help="parallel apiserver connections (default 4)")
    p.add_argument("--replicas-file", action="append", default=[], metavar="NS/NAME=FILE",
                   help="read the target's replica count from FILE each second instead "
                        "of the apiserver (repeatable)")
    p.add_argument("--initial-replicas", type=int, default=1,
                   help="pods of a target with no readable replica source at start (default 1)")
    p.add_argument("--pods-per-target-cap", type=int, default=0, metavar="K",
                   help="expose at most K pod series slots per target (0: one per pod)")
    p.add_argument("--nodes", type=int, default=3, help="emulated nodes (default 3)")
    p.add_argument("--node-prefix",
                   help="node name prefix (default emu-PORT-node-, unique per emulator)")
    p.add_argument("--state-file", help="write the world's JSON state here every second")
    p.add_argument("--duration", type=float, default=0.0,
                   help="exit after this many wall seconds (0: run until SIGTERM)")
    p.add_argument("--seed", type=int, help="seed for pod name suffixes")
    return p


def check_args(args):
    positive = (("--speed", args.speed), ("--scale", args.scale),
                ("--service-rate", args.service_rate))
    for flag, value in positive:
        if not math.isfinite(value) or value <= 0:
            raise InputError("%s must be > 0" % flag)
    for flag, value in (("--base-latency-ms", args.base_latency_ms), ("--startup-s", args.startup_s),
                        ("--price", args.price), ("--slo-ms", args.slo_ms),
                        ("--duration", args.duration)):
        if not math.isfinite(value) or value < 0:
            raise InputError("%s must be >= 0" % flag)
    if args.pods_per_target_cap < 0 or args.nodes < 1 or args.api_workers < 1:
        raise InputError("--pods-per-target-cap >= 0, --nodes >= 1, --api-workers >= 1")
    if args.initial_replicas < 0:
        raise InputError("--initial-replicas must be >= 0")
    if args.apiserver and not (args.ca and args.token_file):
        raise InputError("--apiserver needs --ca and --token-file")


# load_targets: every --target and --targets-file line, in order, with the
# replicas files attached. Raises InputError on duplicates or bad specs.
def load_targets(args, world):
    lines = [(t, "--target", None) for t in args.target]
    if args.targets_file:
        base_dir = os.path.dirname(os.path.abspath(args.targets_file))
        try:
            with open(args.targets_file) as fh:
                for number, line in enumerate(fh, 1):
                    line = line.strip()
                    if line and not line.startswith("#"):
                        lines.append((line, "%s:%d" % (args.targets_file, number), base_dir))
        except OSError as exc:
            raise InputError("%s: %s" % (args.targets_file, exc.strerror)) from None
    if not lines:
        raise InputError("no targets (--target or --targets-file)")
    cache = {}
    by_key = {}
    for text, where, base_dir in lines:
        namespace, name, spec = parse_target_line(text, where)
        target = Target(world, namespace, name, parse_profile(spec, args.scale, base_dir, cache))
        if target.key in by_key:
            raise InputError("%s: %s given twice" % (where, target.key))
        by_key[target.key] = target
        world.targets.append(target)
    for text in args.replicas_file:
        key, _, path = text.partition("=")
        if key not in by_key or not path:
            raise InputError("--replicas-file %r: want NS/NAME=FILE for a known target" % text)
        by_key[key].replicas_source = path
    return by_key


def run(args):
    check_args(args)
    if args.seed is not None:
        random.seed(args.seed)
    server = _Server(("127.0.0.1", args.port), None)
    port = server.server_address[1]
    node_prefix = args.node_prefix if args.node_prefix is not None else "emu-%d-node-" % port
    world = World(Model(args.service_rate, args.base_latency_ms / 1000.0, args.slo_ms / 1000.0),
                  args.speed, args.startup_s, args.price, args.pods_per_target_cap,
                  args.nodes, node_prefix)
    server.RequestHandlerClass = make_handler(world)
    load_targets(args, world)

    stop = threading.Event()

    def _stop(_signum, _frame):
        stop.set()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    # Initial counts: what already runs before the emulator starts is ready.
    pollers = []
    if args.apiserver:
        api_targets = [t for t in world.targets if t.replicas_source is None]
        workers = min(args.api_workers, len(api_targets)) or 0
        for i in range(workers):
            client = KubeClient(args.apiserver, args.ca, args.token_file)
            pollers.append(ApiPoller(world, api_targets[i::workers], client, stop))
    initial = {}
    for poller in pollers:
        for target in poller.targets:
            initial[target.key] = poller.read_spec(target)
    with world.lock:
        world.t0 = time.monotonic()
        for target in world.targets:
            n = (read_replicas_file(target.replicas_source) if target.replicas_source
                 else initial.get(target.key))
            target.set_replicas(args.initial_replicas if n is None else n, 0.0, already_ready=True)

    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                name="http", daemon=True)]
    threads += [threading.Thread(target=p.run, name="api%d" % i, daemon=True)
                for i, p in enumerate(pollers)]
    for thread in threads:
        thread.start()
    if args.port_file:
        write_atomic(args.port_file, "%d\n" % port)
    log("serving http://127.0.0.1:%d/metrics: %d targets, speed %g, startup %gs, price %g"
        % (port, len(world.targets), args.speed, args.startup_s, args.price))

    next_tick = time.monotonic()
    while not stop.is_set():
        with world.lock:
            now = world.now()
            for target in world.targets:
                target.advance(now)
                if target.replicas_source:
                    n = read_replicas_file(target.replicas_source)
                    if n is not None and n != target.desired:
                        target.set_replicas(n, now)
            state = json.dumps(world.state(now), allow_nan=False) if args.state_file else None
        if state is not None:
            write_atomic(args.state_file, state + "\n")
        if args.duration and now >= args.duration:
            break
        next_tick += TICK_S
        stop.wait(max(0.0, next_tick - time.monotonic()))

    stop.set()
    server.shutdown()
    server.server_close()
    for thread in threads[1:]:
        thread.join(timeout=API_TIMEOUT_S * 2 + 1)
    if args.state_file:
        with world.lock:
            now = world.now()
            world.advance(now)
            state = json.dumps(world.state(now), allow_nan=False)
        write_atomic(args.state_file, state + "\n")
    log("stopped after %.1fs" % world.now())
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except InputError as exc:
        log(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
