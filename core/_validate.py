"""Argument checks of the public API: messages name the argument, what was expected, what came."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"'{name}' must be a positive int (got {value!r})")
    return int(value)


def integer(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise TypeError if it is not an integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"'{name}' must be an int (got {type(value).__name__} {value!r})")
    return int(value)


def search_k(value: Any) -> int:
    """Validate annoy's ``search_k``: -1 (the default rule) or a positive int."""
    v = integer("search_k", value)
    if v == -1 or v >= 1:
        return v
    raise ValueError(f"'search_k' must be -1 or a positive int (got {v})")


def float_matrix(name: str, data: Any, f: int) -> np.ndarray:
    """Return ``data`` as a C-contiguous float32 (n, f) matrix of finite numbers.

    A 1-D input of length ``f`` is one row.  Wrong width raises IndexError (annoy's type for a
    vector of the wrong length), non-numeric input TypeError, NaN or inf ValueError.
    """
    try:
        arr = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"'{name}' must be numeric (got {type(data).__name__}: {exc})") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"'{name}' must be numeric (got dtype {arr.dtype})")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"'{name}' must be real numbers (got dtype {arr.dtype})")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(
            f"'{name}' must be a 1-D vector or a 2-D array (got {arr.ndim} dimensions)"
        )
    if arr.shape[1] != f:
        raise IndexError(f"Vector has wrong length (expected {f}, got {arr.shape[1]}) in '{name}'")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if out.size and not np.isfinite(out).all():
        bad = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
        raise ValueError(f"'{name}' must be finite: row {bad} holds NaN or inf")
    return out
