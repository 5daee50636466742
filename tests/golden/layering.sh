#!/usr/bin/env bash
# The code's layering and size limits (tests/golden/layering.py), on the
# objects of the build that produced the binary given as $1.
set -euo pipefail
build_dir=$(dirname "$1")
exec python3 "$(dirname "$0")/layering.py" "$build_dir"
