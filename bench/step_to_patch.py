#!/usr/bin/env python3
"""Time from a step in demand to the controller's PATCH.

The workload emulator holds 50 req/s on one Deployment, then steps to 500
req/s (10x). Real Prometheus scrapes it every `--scrape` and the controller
runs with the default queries (rate windows of 1m) at `--interval`. The
figure is the time from the step to the first PATCH of the scale
subresource above the count before the step, read from the fake
apiserver's request log. Each interval is measured `--repeat` times with
the step at a different phase of the tick.

Usage: bench/step_to_patch.py [--cpscale build/cpscale] [--intervals 15s,5s]
                              [--repeat 2] [--scrape 15s]
"""

import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402
import kubefake  # noqa: E402
import test_controller as tc  # noqa: E402  (configs, deployments, the emulator path)

LOW, HIGH = 50, 500
WARM_S = 75         # a full 1m rate window of the low rate before the step
AFTER_S = 90        # give up this long after the step


def one_step(cpscale, interval, scrape, phase_s, workdir, index):
    """Returns seconds from the step to the first scale-up PATCH, or None."""
    with kubefake.FakeApiserver(manual_status=True) as kube:
        for ns in ("cpscale", "shop"):
            kube.seed(tc.namespace_object(ns))
        kube.seed(tc.deployment("shop", "api", 2))
        token_file = os.path.join(workdir, "token")
        with open(token_file, "w") as handle:
            handle.write(kube.token)
        port_file = os.path.join(workdir, "emu-%d.port" % index)
        hold_low = WARM_S + phase_s
        emulator = harness.Process(
            [sys.executable, tc.EMULATOR,
             "--target", "shop/api=ramp:%d,%d,%d,1,100000,1" % (LOW, HIGH, hold_low),
             "--service-rate", str(tc.SERVICE_RATE), "--base-latency-ms", str(tc.BASE_MS),
             "--startup-s", "5", "--apiserver", kube.url, "--ca", kube.ca_file,
             "--token-file", token_file, "--port-file", port_file,
             "--duration", str(hold_low + AFTER_S + 30)],
            name="emulator-%d" % index, log_dir=workdir)
        emulator.start()
        step_at = time.time() + hold_low
        harness.wait_until(lambda: os.path.exists(port_file), 20, "emulator port")
        with open(port_file) as handle:
            target = "127.0.0.1:%d" % int(handle.read())
        with harness.Prometheus(scrape_targets=[target], scrape_interval=scrape) as prom:
            config = os.path.join(workdir, "config-%d.yaml" % index)
            tc.write_config(config, prom.url,
                            [{"namespace": "shop", "deployment": "api", "max": 50}],
                            interval=interval, prom_timeout="5s",
                            queries=tc.test_queries_with_window("1m"))
            kubeconfig = kube.write_kubeconfig(os.path.join(workdir, "kubeconfig"))
            controller = harness.Process([cpscale, "run", "--config", config, "--kubeconfig",
                                          kubeconfig, "--listen", "127.0.0.1:0",
                                          "--log-level", "warn"],
                                         name="controller-%d" % index, log_dir=workdir)
            controller.start()
            while time.time() < step_at + AFTER_S:
                time.sleep(1)
                after = [r for r in kube.log() if r.get("verb") == "patch"
                         and r.get("subresource") == "scale" and r["t"] > step_at]
                before = [r for r in kube.log() if r.get("verb") == "patch"
                          and r.get("subresource") == "scale" and r["t"] <= step_at]
                level = tc.patched_replicas(before[-1]) if before else 2
                ups = [r for r in after if tc.patched_replicas(r) > level]
                if ups:
                    controller.stop()
                    emulator.stop()
                    return ups[0]["t"] - step_at
            controller.stop()
        emulator.stop()
    return None


def main():
    harness.install_signal_handlers()  # SIGTERM runs the atexit hook that stops what it started
    parser = harness.bench_arg_parser(__doc__)
    parser.add_argument("--intervals", default="15s,5s")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--scrape", default="15s")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="cps-step-")
    index = 0
    for interval in args.intervals.split(","):
        seconds = float(interval.rstrip("s"))
        results = []
        for r in range(args.repeat):
            phase = seconds * r / max(1, args.repeat)
            results.append(one_step(os.path.abspath(args.cpscale), interval, args.scrape, phase,
                                    workdir, index))
            index += 1
        shown = ", ".join("%.1f s" % x if x is not None else "none" for x in results)
        print("interval %s, scrape %s, default 1m rate windows: step %d -> %d req/s to PATCH: %s"
              % (interval, args.scrape, LOW, HIGH, shown))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
