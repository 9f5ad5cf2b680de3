"""Benchmark scripts of korpat-jax (each runnable on its own; `python -m benchmarks.transfer` is a package)."""
