"""Benchmark harness for annoy-adapters against its peers.

Run ``python -m benchmarks.run --quick`` for a smoke run, or see
``benchmarks/README.md`` for the full command. This package deliberately
imports nothing heavy at import time: ``benchmarks.worker`` must be able to
pin thread pools through environment variables *before* NumPy is imported.
"""
