"""hnswlib (HNSW graph), M=16, batch queries with an ``ef`` sweep."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.systems.base import BATCH, System, pad_ids

SPACES = {"angular": "cosine", "euclidean": "l2"}


class HnswSystem(System):
    name = "hnswlib"
    knob = "ef"
    dist = "hnswlib"
    modes = (BATCH,)
    persistent = True
    requires = ("hnswlib",)

    def variants(self, cfg: dict) -> list[dict]:
        return [{"M": 16, "ef_construction": cfg.get("hnsw_ef_construction", 200)}]

    def sweep(self, cfg: dict, variant: dict, mode: str) -> list[Any]:
        return list(cfg["ef"])

    def label(self, variant: dict, mode: str) -> str:
        return f"hnswlib M={variant['M']}"

    def build(self, X: np.ndarray, metric: str, variant: dict, threads: int, seed: int) -> Any:
        import hnswlib

        index = hnswlib.Index(space=SPACES[metric], dim=X.shape[1])
        index.init_index(
            max_elements=X.shape[0],
            M=variant["M"],
            ef_construction=variant["ef_construction"],
            random_seed=seed,
        )
        index.add_items(X, np.arange(X.shape[0]), num_threads=threads)
        return index

    def save(self, model: Any, path: str) -> None:
        model.save_index(path)

    def load(self, path: str, f: int, metric: str, variant: dict, threads: int) -> Any:
        import hnswlib

        index = hnswlib.Index(space=SPACES[metric], dim=f)
        index.load_index(path)
        index.set_num_threads(threads)
        return index

    def query(
        self, model: Any, Q: np.ndarray, k: int, mode: str, knob: Any, threads: int
    ) -> np.ndarray:
        model.set_ef(max(int(knob), k))  # hnswlib requires ef >= k
        ids, _ = model.knn_query(Q, k=k, num_threads=threads)
        return pad_ids(ids, k)
