"""Plain NumPy exact search: BLAS scores per query block + argpartition."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.exact import ExactIndex
from benchmarks.systems.base import BATCH, System


class NumpyBruteSystem(System):
    name = "numpy-brute"
    dist = "numpy"
    modes = (BATCH,)

    def label(self, variant: dict, mode: str) -> str:
        return "NumPy exact brute force"

    def build(self, X: np.ndarray, metric: str, variant: dict, threads: int, seed: int) -> Any:
        return ExactIndex(X, metric, np.float32)

    def query(
        self, model: Any, Q: np.ndarray, k: int, mode: str, knob: Any, threads: int
    ) -> np.ndarray:
        return model.query(Q, k)[0]
