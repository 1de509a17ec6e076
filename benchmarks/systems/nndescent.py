"""pynndescent (NN-descent graph), batch queries with an ``epsilon`` sweep.

pynndescent has no file format of its own, so it is built and queried in
one process; its numba functions are compiled on a tiny warm-up index first
so the build time does not include JIT compilation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.systems.base import BATCH, System, pad_ids

METRICS = {"angular": "cosine", "euclidean": "euclidean"}


class NNDescentSystem(System):
    name = "pynndescent"
    knob = "epsilon"
    dist = "pynndescent"
    modes = (BATCH,)
    persistent = False
    requires = ("pynndescent",)

    def sweep(self, cfg: dict, variant: dict, mode: str) -> list[Any]:
        return list(cfg["epsilon"])

    def _make(self, X: np.ndarray, metric: str, threads: int, seed: int) -> Any:
        from pynndescent import NNDescent

        index = NNDescent(X, metric=METRICS[metric], random_state=seed, n_jobs=threads)
        index.prepare()  # builds the search graph; part of the build
        return index

    def warmup(self, metric: str, threads: int, variant: dict) -> None:
        X = np.random.default_rng(0).standard_normal((2000, 8)).astype(np.float32)
        self._make(X, metric, threads, 0).query(X[:10], k=5)

    def build(self, X: np.ndarray, metric: str, variant: dict, threads: int, seed: int) -> Any:
        return self._make(X, metric, threads, seed)

    def query(
        self, model: Any, Q: np.ndarray, k: int, mode: str, knob: Any, threads: int
    ) -> np.ndarray:
        ids, _ = model.query(Q, k=k, epsilon=float(knob))
        return pad_ids(ids, k)
