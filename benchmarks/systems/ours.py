"""annoy-adapters: batch ``query`` and one-query-per-call ``get_nns_by_vector``.

Two searches of one index kind: the trees (knob ``search_k``), and the cell scan (knob
``probe``, swept as ``{"probe": p}`` on a variant of its own, so it is a series of its own).
Tree variants build trees only (``cells=False``), the forest annoy builds; probe variants
build the trees and the cells.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.systems.base import BATCH, PER_CALL, System, pad_ids, per_call


class AnnoyAdaptersSystem(System):
    name = "annoy-adapters"
    knob = "search_k"
    dist = "annoy-adapters"
    modes = (BATCH, PER_CALL)
    persistent = True
    requires = ("annoy_adapters",)

    def variants(self, cfg: dict) -> list[dict]:
        leaf = cfg.get("aa_leaf_size")
        forests = cfg.get("aa_n_trees") or cfg["n_trees"]
        out = []
        for dtype in cfg.get("aa_vector_dtypes") or ["float32"]:
            # float32 variants carry no key, so their labels and cached indexes stay as they were
            extra = {} if dtype == "float32" else {"vector_dtype": dtype}
            out += [{"n_trees": t, "leaf_size": leaf, **extra} for t in forests]
            if cfg.get("probe"):
                out.append({"n_trees": min(forests), "leaf_size": leaf, "probe": True, **extra})
        return out

    def sweep(self, cfg: dict, variant: dict, mode: str) -> list[Any]:
        if variant.get("probe"):
            return [{"probe": p} for p in cfg["probe"]]
        return list(cfg["search_k"])

    def knob_name(self, value: Any) -> str | None:
        return "probe" if isinstance(value, dict) else self.knob

    def finals(self, cfg: dict, variant: dict, mode: str) -> list[Any]:
        # search_k covering every item of every tree: the index's exact (BLAS) mode
        if mode != BATCH or variant.get("probe"):
            return []
        return [cfg["n_index"] * variant["n_trees"]]

    def label(self, variant: dict, mode: str) -> str:
        how = "batch query" if mode == BATCH else "get_nns_by_vector"
        half = " float16" if variant.get("vector_dtype") == "float16" else ""
        if variant.get("probe"):
            return f"annoy-adapters{half} {how} probe (cells; {variant['n_trees']}-tree file)"
        return f"annoy-adapters{half} {how} {variant['n_trees']} trees"

    def warmup(self, metric: str, threads: int, variant: dict) -> None:
        X = np.random.default_rng(0).standard_normal((500, 8)).astype(np.float32)
        self.query(self.build(X, metric, {"n_trees": 2}, threads, 0), X[:5], 3, BATCH, 50, 1)

    def build(self, X: np.ndarray, metric: str, variant: dict, threads: int, seed: int) -> Any:
        from annoy_adapters import AnnoyIndex

        kwargs = {}
        if variant.get("leaf_size"):
            kwargs["leaf_size"] = variant["leaf_size"]
        if variant.get("vector_dtype"):
            kwargs["vector_dtype"] = variant["vector_dtype"]
        index = AnnoyIndex(X.shape[1], metric, seed=seed, **kwargs)
        t0 = time.perf_counter()
        index.add_items(X)
        t1 = time.perf_counter()
        # cells only where probe searches use them: a tree variant builds what annoy builds
        index.build(variant["n_trees"], n_jobs=threads, cells=bool(variant.get("probe")))
        self.timings = {"add_s": t1 - t0, "trees_s": time.perf_counter() - t1}
        return index

    def save(self, model: Any, path: str) -> None:
        model.save(path)

    def load(self, path: str, f: int, metric: str, variant: dict, threads: int) -> Any:
        from annoy_adapters import load

        return load(path)

    def query(
        self, model: Any, Q: np.ndarray, k: int, mode: str, knob: Any, threads: int
    ) -> np.ndarray:
        how = {"probe": int(knob["probe"])} if isinstance(knob, dict) else {"search_k": int(knob)}
        if mode == BATCH:
            ids, _ = model.query(Q, k, n_jobs=threads, **how)
            return pad_ids(ids, k)
        # NumPy rows: what the gensim indexer passes to get_nns_by_vector.
        return per_call(lambda q: model.get_nns_by_vector(q, k, **how), Q, k, threads)
