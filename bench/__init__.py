"""The load benchmark of the responder: see BENCHMARKS.md and ``python -m bench.run --help``."""
