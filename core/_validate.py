"""Argument checks of the public API: messages name the argument, what was expected, what came."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._errors import RowError

INT64_MIN, INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
FLOAT32_MAX = float(np.finfo(np.float32).max)


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


SEED_LIMIT = 1 << 64


def seed(value: Any) -> int:
    """Validate a build seed: an int in [0, 2**64), the range of the hash key (no wrapping, so two
    different seeds never give the same forest)."""
    v = integer("seed", value)
    if 0 <= v < SEED_LIMIT:
        return v
    raise ValueError(f"'seed' must be an int in [0, 2**64) (got {v})")


def search_k(value: Any) -> int:
    """Validate annoy's ``search_k``: -1 (the default rule) or a positive int."""
    v = integer("search_k", value)
    if v == -1 or v >= 1:
        return v
    raise ValueError(f"'search_k' must be -1 or a positive int (got {v})")


def is_integer_array(arr: np.ndarray) -> bool:
    """Whether ``arr`` holds integers: an int dtype, Python ints in an object array, or
    nothing (``np.asarray([])`` is float64, yet an empty list of ids is a list of ids)."""
    if arr.size == 0 or arr.dtype.kind in "iu":
        return True
    return arr.dtype == object and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in arr.flat
    )


def as_int64(name: str, arr: np.ndarray) -> np.ndarray:
    """Integer array ``arr`` as int64, raising ValueError for a value int64 cannot hold
    (uint64 from 2**63 up, Python ints in an object array) where a cast would wrap."""
    if arr.dtype.kind == "u" and arr.size and arr.max() > INT64_MAX:
        bad = int(arr.flat[int(np.argmax(arr > INT64_MAX))])
        raise ValueError(f"'{name}' must fit in int64 (got {bad})")
    try:
        return arr.astype(np.int64)
    except OverflowError:  # Python ints in an object array: name the first that does not fit
        bad = next(v for v in arr.flat if not INT64_MIN <= v <= INT64_MAX)
        raise ValueError(f"'{name}' must fit in int64 (got {int(bad)})") from None


def float_matrix(name: str, data: Any, f: int, max_norm: float | None = None) -> np.ndarray:
    """Return ``data`` as a C-contiguous float32 (n, f) matrix of finite numbers.

    A 1-D input of length ``f`` is one row.  Wrong width raises IndexError (annoy's type for a
    vector of the wrong length), non-numeric input TypeError, NaN or inf ValueError, as do
    finite values beyond float32 and (given ``max_norm``) rows whose L2 norm exceeds it.
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
    out = _as_float32(arr)
    if not out.size:
        return out
    # one BLAS pass: the sum of all squares is finite only if every value is, and bounds every
    # row's squared norm (half the limit: a margin for its float32 rounding)
    limit = math.inf if max_norm is None else max_norm * max_norm / 2
    if float(np.vdot(out, out)) <= limit:
        return out
    if not np.isfinite(out).all():
        _refuse_non_finite(name, arr, out)
    if max_norm is not None:
        _check_norms(name, out, max_norm)
    return out


def _as_float32(arr: np.ndarray) -> np.ndarray:
    """``arr`` as C-contiguous float32; a wider float beyond float32's range becomes inf
    silently (the caller names it), without paying for np.errstate on other dtypes."""
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
        with np.errstate(over="ignore"):
            return np.ascontiguousarray(arr, dtype=np.float32)
    return np.ascontiguousarray(arr, dtype=np.float32)


def _refuse_non_finite(name: str, arr: np.ndarray, out: np.ndarray) -> None:
    """Name the first row of ``out`` (float32 ``arr``) holding NaN or inf: in ``arr`` itself, or
    a finite value beyond float32 that the cast turned into inf."""
    bad = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
    if not np.isfinite(arr[bad]).all():
        message = f"'{name}' must be finite: row {bad} holds NaN or inf"
        raise RowError(message, name, bad, "holds NaN or inf")
    big = float(np.abs(arr[bad]).max())
    reason = f"holds {big:.3g}, outside the float32 range (+-{FLOAT32_MAX:.3g})"
    raise RowError(f"'{name}' row {bad} {reason}", name, bad, reason)


def _check_norms(name: str, x: np.ndarray, max_norm: float) -> None:
    """Raise if a row's L2 norm (computed in float64) exceeds ``max_norm``."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    over = np.flatnonzero(norms > max_norm)
    if len(over):
        row = int(over[0])
        reason = (
            f"is too large: its norm {norms[row]:.3g} exceeds {max_norm:.3g}, "
            "beyond which squared distances overflow float32"
        )
        raise RowError(f"'{name}' row {row} {reason}", name, row, reason)
