"""Spotify's annoy 1.17.3 (C++), one query per call: the baseline."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.systems.base import PER_CALL, System, per_call


class AnnoySystem(System):
    name = "annoy"
    knob = "search_k"
    dist = "annoy"
    modes = (PER_CALL,)
    persistent = True
    requires = ("annoy",)

    def variants(self, cfg: dict) -> list[dict]:
        return [{"n_trees": t} for t in cfg["n_trees"]]

    def sweep(self, cfg: dict, variant: dict, mode: str) -> list[Any]:
        return list(cfg["search_k"])

    def label(self, variant: dict, mode: str) -> str:
        return f"annoy {variant['n_trees']} trees"

    def build(self, X: np.ndarray, metric: str, variant: dict, threads: int, seed: int) -> Any:
        from annoy import AnnoyIndex

        index = AnnoyIndex(X.shape[1], metric)
        index.set_seed(seed)
        t0 = time.perf_counter()
        for start in range(0, X.shape[0], 10_000):
            # annoy has no bulk add; lists are its fastest input, converted in
            # chunks so a list of the whole matrix never inflates the peak RSS.
            for i, row in enumerate(X[start : start + 10_000].tolist(), start):
                index.add_item(i, row)
        t1 = time.perf_counter()
        index.build(variant["n_trees"], n_jobs=threads)
        self.timings = {"add_s": t1 - t0, "trees_s": time.perf_counter() - t1}
        return index

    def save(self, model: Any, path: str) -> None:
        model.save(path)

    def load(self, path: str, f: int, metric: str, variant: dict, threads: int) -> Any:
        from annoy import AnnoyIndex

        index = AnnoyIndex(f, metric)
        index.load(path)
        return index

    def query(
        self, model: Any, Q: np.ndarray, k: int, mode: str, knob: Any, threads: int
    ) -> np.ndarray:
        # Python lists are annoy's fastest input (no per-call sequence protocol
        # on a NumPy row); conversion happens before timing, in prepare_queries.
        return per_call(lambda q: model.get_nns_by_vector(q, k, knob), Q, k, threads)

    def prepare_queries(self, Q: np.ndarray, mode: str) -> Any:
        return Q.tolist()
