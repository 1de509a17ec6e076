"""Argument checks shared by the adapters, so each argument is refused with one message.

The core checks its own arguments too, but its checks are private; these run first, on the
client (a Dask graph fails before any task runs) and with the adapters' exception types.
"""

from __future__ import annotations

import numbers
import reprlib
from typing import Any

import numpy as np

__all__ = ["check_k", "check_probe", "check_search_k", "shown"]


def _is_int(value: Any) -> bool:
    # bool is an int to Python, never a count here
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def check_k(k: Any) -> int:
    """``k`` (neighbours per query) as an int, or ValueError if it is not a positive int."""
    if not _is_int(k) or k < 1:
        raise ValueError(f"'k' must be a positive int (got {k!r})")
    return int(k)


def check_search_k(search_k: Any) -> int:
    """``search_k`` as an int, or ValueError unless it is -1 (annoy's default rule) or a
    positive int: the core's rule and wording."""
    if not _is_int(search_k) or (search_k != -1 and search_k < 1):
        raise ValueError(f"'search_k' must be -1 or a positive int (got {search_k!r})")
    return int(search_k)


def check_probe(probe: Any) -> int | None:
    """``probe`` (cells scanned per query) as an int or None, or ValueError."""
    if probe is None:
        return None
    if not _is_int(probe) or probe < 1:
        raise ValueError(f"'probe' must be None or a positive int (got {probe!r})")
    return int(probe)


def shown(value: Any) -> str:
    """A short description of a rejected value: its type and a truncated repr (an array by
    its dtype and shape; a NumPy scalar as the Python value it equals, ``int 5``)."""
    if isinstance(value, np.ndarray):
        return f"array of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, np.generic):
        value = value.item()
    return f"{type(value).__name__} {reprlib.repr(value)}"
