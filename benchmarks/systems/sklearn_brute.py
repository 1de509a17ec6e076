"""scikit-learn ``NearestNeighbors(algorithm='brute')``: exact, batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.systems.base import BATCH, System, pad_ids

METRICS = {"angular": "cosine", "euclidean": "euclidean"}


class SklearnBruteSystem(System):
    name = "sklearn-brute"
    dist = "scikit-learn"
    modes = (BATCH,)
    requires = ("sklearn",)
    imports = ("sklearn.neighbors",)

    def build(self, X: np.ndarray, metric: str, variant: dict, threads: int, seed: int) -> Any:
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors(algorithm="brute", metric=METRICS[metric], n_jobs=threads).fit(X)

    def query(
        self, model: Any, Q: np.ndarray, k: int, mode: str, knob: Any, threads: int
    ) -> np.ndarray:
        return pad_ids(model.kneighbors(Q, n_neighbors=k, return_distance=False), k)
