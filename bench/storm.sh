#!/usr/bin/env bash
# Completeness on a busy machine (see BENCHMARKS.md): a make -j2 build and
# paced threads under a CPU storm, every exec and thread accounted for.
# Needs root, a C compiler, make, perf, Python 3.11+ and a release build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec env PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" python3 -m harness.storm "$@"
