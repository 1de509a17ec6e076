"""The interface every benchmarked system implements.

A system builds an index from float32 vectors, optionally persists it to a
file, and answers queries either in one batch call or one query per call.
Queries are timed by the worker around :meth:`System.query`; anything a
system does per query (the Python loop of one-query-per-call mode) is part
of what is measured, by design.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

BATCH = "batch"
PER_CALL = "per-call"


class System:
    """Base class; subclasses override the class attributes and methods.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"annoy"``.
    knob : str or None
        Name of the query-time parameter that is swept (``None``: exact).
    modes : tuple of str
        Query modes this system is measured in.
    persistent : bool
        Whether :meth:`save` / :meth:`load` exist (then build and query run
        in separate processes and file size / load time are reported).
    """

    name = "system"
    knob: str | None = None
    modes: tuple[str, ...] = (BATCH,)
    persistent = False
    requires: tuple[str, ...] = ()  # top-level modules that must be installed
    imports: tuple[str, ...] = ()  # modules setup() imports (default: requires)
    dist: str | None = None  # distribution whose version is reported

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def variants(self, cfg: dict) -> list[dict]:
        """Build-time configurations, e.g. ``[{"n_trees": 10}, {"n_trees": 50}]``."""
        return [{}]

    def sweep(self, cfg: dict, variant: dict, mode: str) -> list[Any]:
        """Knob values for ``mode``, cheapest (lowest recall) first."""
        return [None]

    def knob_name(self, value: Any) -> str | None:
        """Name of the parameter a swept ``value`` sets (default: :attr:`knob`)."""
        return self.knob

    def finals(self, cfg: dict, variant: dict, mode: str) -> list[Any]:
        """Knob values measured after the sweep even when it stopped early (e.g. exact mode)."""
        return []

    def label(self, variant: dict, mode: str) -> str:
        """Human-readable series name."""
        return self.name if mode == BATCH else f"{self.name} ({mode})"

    def setup(self) -> None:
        """Import the libraries this system needs (so no timing includes imports)."""
        for mod in self.imports or self.requires:
            importlib.import_module(mod)

    def warmup(self, metric: str, threads: int, variant: dict) -> None:
        """Trigger one-off costs (JIT compilation) before anything is timed."""

    def build(self, X: np.ndarray, metric: str, variant: dict, threads: int, seed: int) -> Any:
        """Return a queryable model; may fill ``self.timings`` with sub-steps."""
        raise NotImplementedError

    def prepare_queries(self, Q: np.ndarray, mode: str) -> Any:
        """Convert the query matrix to this system's best input, untimed."""
        return Q

    def save(self, model: Any, path: str) -> None:
        raise NotImplementedError

    def load(self, path: str, f: int, metric: str, variant: dict, threads: int) -> Any:
        raise NotImplementedError

    def query(
        self, model: Any, Q: np.ndarray, k: int, mode: str, knob: Any, threads: int
    ) -> np.ndarray:
        """Return int ids of shape (len(Q), k); pad with -1 if fewer found."""
        raise NotImplementedError


def per_call(
    one: Callable[[Any], Sequence[int]], rows: Sequence[Any], k: int, threads: int
) -> np.ndarray:
    """Run ``one(row)`` for every query row, on ``threads`` Python threads.

    The libraries measured in this mode release the GIL inside the call, so
    with 2 threads two contiguous halves of the queries run concurrently.
    """

    def run(chunk: Sequence[Any]) -> np.ndarray:
        out = np.full((len(chunk), k), -1, dtype=np.int64)
        for i, row in enumerate(chunk):  # the per-query call is what is measured
            res = one(row)
            out[i, : len(res)] = res[:k]
        return out

    if threads <= 1:
        return run(rows)
    bounds = np.linspace(0, len(rows), threads + 1).astype(int)
    chunks = [rows[a:b] for a, b in itertools.pairwise(bounds)]
    with ThreadPoolExecutor(threads) as ex:
        return np.concatenate(list(ex.map(run, chunks)))


def pad_ids(ids: np.ndarray, k: int) -> np.ndarray:
    """Return ``ids`` as int64 (n, k), padding missing columns with -1."""
    ids = np.asarray(ids).astype(np.int64, copy=False)
    if ids.shape[1] >= k:
        return ids[:, :k]
    out = np.full((ids.shape[0], k), -1, dtype=np.int64)
    out[:, : ids.shape[1]] = ids
    return out
