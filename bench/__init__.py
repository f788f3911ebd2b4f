"""Benchmark harnesses (not shipped): `python -m bench.interactions_bench`.
See docs/benchmarks.md for what each one measures and its latest results."""
