#!/usr/bin/env python3
"""Three replicas, six shards, 3,000 targets: what each replica does and
costs, and how long a SIGKILLed shard holder's shards take to move.

It starts the fake kube-apiserver with 3,000 Deployments at 1 replica, a
real Prometheus answering fixed values for every target (backfilled with
promtool, as bench/controller_scale.py does), and three `cpscale run`
replicas with sharding.shards 6, warm_standby false and the default Lease
timings (15 s / 10 s / 2 s). Every target wants 3 replicas, so the first
ticks PATCH each target once, by the holder of its shard. It reports:
  - per replica: shards held (the Lease objects), targets acted on (every
    target is put back to 1 replica as the measured ticks begin; the
    distinct targets each replica then PATCHes, from the fake's log), CPU
    per tick (/proc/PID/stat over the
    measured ticks, which /metrics counts) and RSS (/proc/PID/status);
  - every PATCH sent by the holder of its shard (judged as
    tests/integration/test_sharding.py does);
  - after SIGKILL of one replica (and its targets put back to 1 replica):
    per shard of the victim, the time from the kill to the survivor's
    Lease write and to its first PATCH of the shard's targets, from the
    fake's request log, against lease_duration + 1.2 x retry_period + one
    interval.
Loopback only; everything it starts is stopped at the end.

Usage: bench/controller_shards.py [--cpscale build/cpscale] [--targets 3000]
                                  [--interval 5] [--ticks 3] [--warm-standby]
"""

import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402
import test_sharding as shards  # noqa: E402
from controller_scale import cpu_seconds, listening_port, memory_kb, metric_value  # noqa: E402,E501

LEASE = (15.0, 10.0, 2.0)  # the defaults: lease_duration, renew_deadline, retry_period


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as answer:
        return answer.read().decode()


def measure(cpscale, n_targets, interval_s, ticks, workdir, warm_standby=False):
    names = ["app-%d" % i for i in range(n_targets)]
    fleet = shards.Fleet(cpscale, workdir, names, shards=6, warm_standby=warm_standby,
                         interval_s=interval_s, namespace="bench", lease=LEASE)
    fleet.start()
    rows, handover = {}, {}
    try:
        for i in range(3):
            fleet.start_replica(i, args=["--kube-timeout", "60s"])
        harness.wait_until(lambda: shards.wait_spread(fleet, 1), 120, "2 shards each",
                           interval=1.0)
        ports = {i: harness.wait_until(lambda p=p: listening_port(p.process.pid), 30, "port")
                 for i, p in fleet.replicas.items()}
        # wait for every target to be PATCHed once, then measure ticks
        harness.wait_until(lambda: len({r["name"] for r in shards.scale_patches(
            fleet.kube.log(), "bench")}) >= n_targets, 30 * interval_s, "a PATCH per target",
            interval=2.0)
        # every target back to 1 replica: each replica PATCHes the targets of
        # its shards again within the measured ticks
        window_start = time.time()
        fleet.kube.seed({"apiVersion": "v1", "kind": "List",
                         "items": [shards.deployment(n, 1, "bench") for n in names]})
        start = {i: (metric_value(scrape(port), "cpscale_ticks_total"),
                     cpu_seconds(fleet.replicas[i].process.pid)) for i, port in ports.items()}
        harness.wait_until(lambda: all(metric_value(scrape(port), "cpscale_ticks_total")
                                       >= start[i][0] + ticks for i, port in ports.items()),
                           (ticks + 3) * interval_s * 3, "measured ticks")
        records = fleet.kube.log()
        holders = fleet.holders()
        for i, port in ports.items():
            pid = fleet.replicas[i].process.pid
            done = metric_value(scrape(port), "cpscale_ticks_total") - start[i][0]
            acted = {r["name"] for r in shards.scale_patches(records, "bench")
                     if r.get("user") == "user-%d" % i and r["t"] >= window_start}
            rows[i] = {"shards": sorted(s for s, (h, _) in holders.items()
                                        if h == "replica-%d" % i),
                       "targets_acted_on": len(acted),
                       "cpu_ms_per_tick": 1000 * (cpu_seconds(pid) - start[i][1]) / done,
                       "rss_mb": memory_kb(pid).get("VmRSS", 0) / 1024}
        bad, judged = shards.holder_violations(records, 6, "bench", LEASE[1], LEASE[0])
        # SIGKILL replica 0 and put its targets back to 1 replica: the
        # survivors PATCH them once they hold their shards
        victim_shards = rows[0]["shards"]
        moved = {n for n in names if shards.shard_of("bench", n) in victim_shards}
        killed_at = time.time()
        os.killpg(fleet.replicas[0].process.pid, signal.SIGKILL)
        fleet.replicas[0].process.wait()
        fleet.kube.seed({"apiVersion": "v1", "kind": "List",
                         "items": [shards.deployment(n, 1, "bench") for n in sorted(moved)]})
        bound = LEASE[0] + 1.2 * LEASE[2] + interval_s

        def moved_patched():
            return {r["name"] for r in shards.scale_patches(fleet.kube.log(), "bench")
                    if r["t"] > killed_at and r["name"] in moved} == moved
        harness.wait_until(moved_patched, bound + 8 * interval_s, "the victim's targets PATCHed",
                           interval=1.0)
        records = fleet.kube.log()
        writes = shards.lease_writes(records, 6)
        for s in victim_shards:
            taken = [w for w in writes[s] if w[0] > killed_at and w[1] and w[1] != "replica-0"]
            patched = [r["t"] for r in shards.scale_patches(records, "bench")
                       if r["t"] > killed_at and shards.shard_of("bench", r["name"]) == s]
            handover[s] = {"lease_s": taken[0][0] - killed_at if taken else None,
                           "new_holder": taken[0][1] if taken else None,
                           "first_patch_s": min(patched) - killed_at if patched else None}
        bad_after, judged_after = shards.holder_violations(records, 6, "bench", LEASE[1], LEASE[0])
    finally:
        fleet.stop()
    return {"targets": n_targets, "interval_s": interval_s, "replicas": rows,
            "patches_judged": judged_after, "patches_not_by_holder": len(bad_after),
            "handover": handover, "bound_s": bound, "violations": bad_after[:5]}


def main():
    harness.install_signal_handlers()  # SIGTERM runs the atexit hook that stops what it started
    parser = harness.bench_arg_parser(__doc__)
    parser.add_argument("--targets", type=int, default=3000)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=3)
    parser.add_argument("--warm-standby", action="store_true",
                        help="sharding.warm_standby true: every replica decides every target")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="cps-bench-shards-")
    try:
        result = measure(os.path.abspath(args.cpscale), args.targets, args.interval, args.ticks,
                         workdir, args.warm_standby)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("%d targets, 3 replicas, 6 shards, warm_standby %s, interval %d s, Lease 15s/10s/2s"
          % (result["targets"], "true" if args.warm_standby else "false", result["interval_s"]))
    for i, row in sorted(result["replicas"].items()):
        print("replica-%d: shards %s, %d targets acted on, %.1f ms CPU/tick, RSS %.1f MB"
              % (i, row["shards"], row["targets_acted_on"], row["cpu_ms_per_tick"],
                 row["rss_mb"]))
    print("PATCHes judged %d, not sent by their shard's holder: %d"
          % (result["patches_judged"], result["patches_not_by_holder"]))
    for s, h in sorted(result["handover"].items()):
        print("shard %d after SIGKILL of its holder: Lease taken by %s after %s s, first PATCH "
              "after %s s (bound %.1f s)"
              % (s, h["new_holder"], "%.2f" % h["lease_s"] if h["lease_s"] is not None else "-",
                 "%.2f" % h["first_patch_s"] if h["first_patch_s"] is not None else "-",
                 result["bound_s"]))
    if args.json:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
