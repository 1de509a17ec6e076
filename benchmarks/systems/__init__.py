"""Registry of benchmarked systems (imported lazily by name)."""

from __future__ import annotations

import importlib
import importlib.util

from benchmarks.systems.base import BATCH, PER_CALL, System

_REGISTRY = {
    "annoy-adapters": ("benchmarks.systems.ours", "AnnoyAdaptersSystem"),
    "annoy": ("benchmarks.systems.annoy_cpp", "AnnoySystem"),
    "hnswlib": ("benchmarks.systems.hnsw", "HnswSystem"),
    "pynndescent": ("benchmarks.systems.nndescent", "NNDescentSystem"),
    "sklearn-brute": ("benchmarks.systems.sklearn_brute", "SklearnBruteSystem"),
    "numpy-brute": ("benchmarks.systems.numpy_brute", "NumpyBruteSystem"),
}
SYSTEMS = tuple(_REGISTRY)

__all__ = ["BATCH", "PER_CALL", "SYSTEMS", "System", "get_system", "missing_requirement"]


def get_system(name: str) -> System:
    """Return a fresh instance of the system registered as ``name``."""
    if name not in _REGISTRY:
        raise ValueError(f"'system' must be one of {SYSTEMS} (got {name!r})")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)()


def missing_requirement(name: str) -> str | None:
    """Name of the first module ``name`` needs that is not installed, or None.

    Examples
    --------
    >>> missing_requirement("numpy-brute") is None
    True
    """
    for mod in get_system(name).requires:
        if importlib.util.find_spec(mod) is None:
            return mod
    return None
