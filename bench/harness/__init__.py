"""The rsysmon benchmark harness: see BENCHMARKS.md at the repository root."""
