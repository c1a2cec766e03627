#!/usr/bin/env bash
# The benchmark harness in one command (see BENCHMARKS.md). Needs root, a C
# compiler, Python 3.11+, and a release build of rsysmon (`make bench` does
# the build first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec env PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" python3 -m harness "$@"
