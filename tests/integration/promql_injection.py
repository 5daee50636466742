#!/usr/bin/env python3
"""PromQL injection against a real Prometheus.

Namespace and Deployment names that hold quotes, backslashes, newlines,
`}`, regex metacharacters, `$`, control and non-ASCII characters (some of
them crafted to close the matcher and `or` in another series) are written
as label values into a fresh TSDB (`promtool tsdb create-blocks-from
openmetrics`), each series with its own value, next to decoy series with
the names an escape gone wrong would reach (shop/api, shop/abc, ...).

For every name and every place a placeholder can stand (a bare literal,
inside "...", inside '...', as a =~ operand, as the prefix of a pod regex),
the query that cps_promql_substitute writes (through cps_promql_tool) goes
to Prometheus' /api/v1/query, and the answer must be exactly that name's own
series: the query parses, matches one series, and its value is the name's.
A `cps_promql_escape_string` literal alone is checked the same way, in an
equality matcher. Config validation keeps such names out of the
controller and `record` (they are not DNS labels); this suite tests the
escaping underneath, which must hold on its own.

Usage: promql_injection.py --cpscale PATH --promql-tool PATH
Ends with "N passed, N failed".
"""
import argparse
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_controller import Checks  # noqa: E402

POD_SUFFIX = "-7d9f8c6b5-x2x4z"
SAMPLES = 10
STEP_S = 60

# (namespace, name): each gets its own value, 1000 + its index
HOSTILE = [
    ("shop", 'a"b'),
    ("shop", 'a\\"b'),
    ("shop", "trailing\\"),
    ("shop", 'x"} or cps_inject_qps{deployment="api'),
    ("shop", "x'} or cps_inject_qps{deployment='api"),
    ("shop", 'x"}) or sum(cps_inject_qps{deployment=~".+'),
    ("shop", "new\nline"),
    ("shop", "cr\rtab\there"),
    ("shop", "brace}"),
    ("shop", "{brace"),
    ("shop", "a.*"),
    ("shop", "a|api"),
    ("shop", "(?i)API"),
    ("shop", "$deployment"),
    ("shop", "dollar$1"),
    ("shop", "unicode-\u00fcn\u00efc\u00f8d\u00e9-\u65e5\u672c"),
    ("shop", "emoji-\U0001F680"),
    ('sh"op', "api"),
    ("caf\u00e9", "api"),
    ("ns\\", "api"),
]
# what a broken escape would reach instead; values no hostile sum can equal
DECOYS = [("shop", "api", 500000), ("shop", "abc", 600000), ("shop", "b", 700000),
          ("shop", "x", 800000), ("shop", "api-extra", 900000), ("other", "api", 400000)]

# the places a placeholder can stand, as a query template each
TEMPLATES = [
    ("bare literal", "sum(cps_inject_qps{namespace=$namespace, deployment=$deployment})"),
    ("inside double quotes", 'sum(cps_inject_qps{namespace="$namespace", deployment="$deployment"})'),
    ("inside single quotes", "sum(cps_inject_qps{namespace='$namespace', deployment='$deployment'})"),
    ("regex operand", 'sum(cps_inject_qps{namespace=~"$namespace", deployment=~"$deployment"})'),
    ("bare regex operand", 'sum(cps_inject_qps{namespace=~$namespace, deployment=~$deployment})'),
    ("pod regex prefix", 'sum(cps_inject_pod_qps{namespace=$namespace, pod=~"$deployment-.*"})'),
]


def om_escape(value):
    """A label value in the OpenMetrics text format."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(now):
    lines = []
    series = [(ns, name, 1000 + i) for i, (ns, name) in enumerate(HOSTILE)] + DECOYS
    for family, label, suffix in (("cps_inject_qps", "deployment", ""),
                                  ("cps_inject_pod_qps", "pod", POD_SUFFIX)):
        lines.append("# TYPE %s gauge" % family)
        for ns, name, value in series:
            for k in range(SAMPLES):
                lines.append('%s{namespace="%s",%s="%s"} %d %d' % (
                    family, om_escape(ns), label, om_escape(name + suffix), value,
                    now - (SAMPLES - k) * STEP_S))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def tool(path, *args):
    out = subprocess.run([path] + list(args), capture_output=True, timeout=30)
    return out.returncode, out.stdout.decode("utf-8", "replace").rstrip("\n"), \
        out.stderr.decode("utf-8", "replace")


def show(text):
    return repr(text)[:160]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpscale", required=True, help="unused; the suites share a command line")
    parser.add_argument("--promql-tool", required=True)
    args = parser.parse_args()
    results = Checks()
    now = int(time.time())
    with harness.Prometheus(blocks_from_openmetrics=openmetrics(now)) as prom:
        at = now - STEP_S  # inside the samples, within the 5-minute lookback
        # the control: the decoys are there to be found
        got = prom.vector('cps_inject_qps{namespace="shop", deployment="api"}', time=at)
        results.check("control: the decoy shop/api answers", list(got.values()) == [500000.0],
                      str(got))
        for i, (ns, name) in enumerate(HOSTILE):
            want = 1000.0 + i
            for where, template in TEMPLATES:
                what = "%s/%s %s" % (show(ns), show(name), where)
                code, query, err = tool(args.promql_tool, "substitute", template, ns, name)
                if not results.check(what + ": substituted", code == 0, err.strip()):
                    continue
                try:
                    got = prom.vector(query, time=at)
                except harness.PrometheusError as error:
                    results.check(what + ": Prometheus parses it", False,
                                  "%s in %s" % (error, show(query)))
                    continue
                values = sorted(got.values())
                results.check(what + ": only its own series", values == [want],
                              "got %s from %s" % (values, show(query)))
            # the literal alone (what `record` puts into its filter)
            code, ns_literal, _ = tool(args.promql_tool, "escape", ns)
            code2, name_literal, _ = tool(args.promql_tool, "escape", name)
            what = "%s/%s escaped literal" % (show(ns), show(name))
            if results.check(what + ": written", code == 0 and code2 == 0):
                query = "sum(cps_inject_qps{namespace=%s, deployment=%s})" % (ns_literal,
                                                                              name_literal)
                try:
                    values = sorted(prom.vector(query, time=at).values())
                except harness.PrometheusError as error:
                    values = [str(error)]
                results.check(what + ": matches only its own series", values == [want],
                              "got %s from %s" % (values, show(query)))
        # a backtick cannot be written into a raw string: refused, not sent
        code, query, err = tool(args.promql_tool, "substitute",
                                "sum(cps_inject_qps{deployment=`$deployment`})", "shop", "a`b")
        results.check("a name with a backtick inside a raw string is refused",
                      code == 1 and "backtick" in err,
                      "exit %d: %s %s" % (code, show(query), err.strip()))
    print("%d passed, %d failed" % (results.passed, results.failed))
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
