#!/usr/bin/env python3
"""The code's layering, checked on the built objects and on the sources.

Rules (README "Layout"):
  lib/              includes only lib/ headers
  sim/              includes lib/ and sim/ headers, never controller/
  controller/*.c    includes lib/ and controller/ headers, never sim/
  controller/cli/   the command layer: may include all of them; nothing
                    outside it includes a cli/ header
No C file over 1,000 lines and no function over 150 (table data aside).
And on the objects: no cycle between C files, i.e. no two files that use
each other's functions or data, directly or through others (found from the
defined and undefined symbols `nm` lists for each object file).

Usage: layering.py BUILD_DIR   (run from the repository root)
Prints each breach and a "N passed, N failed" line; exits 1 on any breach.
"""
import os
import re
import subprocess
import sys

ROOMS = ["lib", "sim", "controller", "controller/cli"]
MAY_INCLUDE = {
    "lib": {"lib"},
    "sim": {"lib", "sim"},
    "controller": {"lib", "controller"},
    "controller/cli": {"lib", "sim", "controller", "controller/cli"},
}


def room_of(path):
    d = os.path.dirname(path)
    return d if d in ROOMS else None


def sources():
    out = []
    for room in ROOMS:
        for name in sorted(os.listdir(room)):
            if name.endswith((".c", ".h")):
                out.append(os.path.join(room, name))
    return out


def header_rooms(files):
    owner = {}
    for f in files:
        if f.endswith(".h"):
            owner.setdefault(os.path.basename(f), set()).add(room_of(f))
    return owner


def check_includes(files, failures):
    owner = header_rooms(files)
    for name, rooms in owner.items():
        if len(rooms) > 1:
            failures.append("header %s exists in %s" % (name, ", ".join(sorted(rooms))))
    for f in files:
        room = room_of(f)
        with open(f, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m:
                    continue
                inc = os.path.basename(m.group(1))
                if inc not in owner:
                    failures.append("%s:%d: includes %s, which no room owns" % (f, lineno, inc))
                    continue
                (target,) = owner[inc]
                if target not in MAY_INCLUDE[room]:
                    failures.append("%s:%d: %s/ includes %s from %s/" % (f, lineno, room, inc,
                                                                         target))


def objects(build):
    found = {}
    for dirpath, _, names in os.walk(build):
        if "CMakeFiles" not in dirpath or "/tests/" in dirpath + "/":
            continue
        for n in names:
            if not n.endswith(".c.o"):
                continue
            full = os.path.join(dirpath, n)
            m = re.search(r"\.dir/(.*)\.o$", full)
            if not m:
                continue
            rel = m.group(1)
            # objects of sources outside the tree keep a path relative to it
            rel = rel.replace("__/", "")
            if room_of(rel) is None or not os.path.exists(rel):
                continue
            found.setdefault(rel, full)
    return found


def symbols(obj):
    out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind in "TDBRC" or kind in "VW":
            defined.add(name)
    return defined, undefined


def strongly_connected(graph):
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            result.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def check_objects(build, failures):
    objs = objects(build)
    if not objs:
        failures.append("no object files under %s (build first)" % build)
        return
    defined_by, uses = {}, {}
    for src, obj in objs.items():
        d, u = symbols(obj)
        uses[src] = u
        for s in d:
            defined_by[s] = src
    graph = {}
    for src, u in uses.items():
        graph[src] = {defined_by[s] for s in u if s in defined_by and defined_by[s] != src}
    for src, deps in graph.items():
        for dep in deps:
            if room_of(dep) not in MAY_INCLUDE[room_of(src)]:
                failures.append("%s uses %s (%s/ may not use %s/)" %
                                (src, dep, room_of(src), room_of(dep)))
    for comp in strongly_connected(graph):
        if len(comp) > 1:
            failures.append("cycle between files: %s" % " <-> ".join(comp))
    print("%d object files, %d edges" % (len(graph), sum(len(v) for v in graph.values())))


FILE_MAX_LINES = 1000
FUNCTION_MAX_LINES = 150


def check_sizes(files, failures):
    """No C file over FILE_MAX_LINES lines, no function over
    FUNCTION_MAX_LINES (a function: a column-0 "{" after a line that closes
    a parameter list, to the next column-0 "}"; table data is not one)."""
    for f in files:
        with open(f, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        if f.endswith(".c") and len(lines) - 1 > FILE_MAX_LINES:
            failures.append("%s: %d lines (at most %d)" % (f, len(lines) - 1, FILE_MAX_LINES))
        start = None
        for i, line in enumerate(lines):
            if line == "{" and i > 0 and lines[i - 1].rstrip().endswith(")") \
                    and "=" not in lines[i - 1]:
                start = i
                head = i - 1
                while head > 0 and lines[head][:1] in (" ", "\t"):
                    head -= 1
                name = re.search(r"(\w+)\s*\(", lines[head])
                name = name.group(1) if name else "?"
            elif line.startswith("}") and start is not None:
                n = i - start + 1
                if n > FUNCTION_MAX_LINES:
                    failures.append("%s:%d: %s is %d lines (at most %d)" %
                                    (f, start + 1, name, n, FUNCTION_MAX_LINES))
                start = None


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    failures = []
    files = sources()
    check_includes(files, failures)
    include_failures = len(failures)
    check_objects(sys.argv[1], failures)
    object_failures = len(failures)
    check_sizes(files, failures)
    for f in failures:
        print("FAIL " + f)
    checks = 3
    failed = ((include_failures > 0) + (object_failures > include_failures) +
              (len(failures) > object_failures))
    print("%d passed, %d failed" % (checks - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
