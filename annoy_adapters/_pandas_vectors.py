"""Turn DataFrame columns into a float32 matrix, with errors that name the column and row.

A frame holds vectors either as numeric columns (one dimension per column) or as
one column whose cells are equal-length vectors (lists, NumPy arrays, or an
Arrow ``list<float>`` column). The *spec* describes which: ``{"columns": [...],
"vector_column": bool}``; it is what the pandas adapter stores in the index
file's metadata and checks queries against.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Set
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from annoy_adapters.core import RowError

__all__ = [
    "ColumnSpec",
    "can_hold_vectors",
    "frame_vectors",
    "is_numeric",
    "is_vector_dtype",
    "naming_rows",
    "resolve_columns",
]

ColumnSpec = dict[str, Any]

_HINT = "pass columns=[...] naming the numeric columns, or the one column holding a vector per row"


def is_numeric(dtype: Any) -> bool:
    """True for bool, integer and real float dtypes (NumPy, nullable or Arrow)."""
    return pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
    )


def is_vector_dtype(dtype: Any) -> bool:
    """True for dtypes whose cells may be vectors: object, or an Arrow list type."""
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        t = dtype.pyarrow_dtype
        return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    return isinstance(dtype, np.dtype) and dtype.kind == "O"


def can_hold_vectors(dtypes: Any) -> bool:
    """Whether any column dtype could hold vector data (used to gate the accessor)."""
    return any(is_numeric(d) or is_vector_dtype(d) for d in dtypes)


def _as_column_list(df: pd.DataFrame, columns: Any) -> list[Hashable]:
    if columns is None:
        return list(df.columns)
    # A tuple is one label when the frame has a column of that name (MultiIndex columns).
    if isinstance(columns, tuple) and columns in df.columns:
        return [columns]
    if isinstance(columns, list | tuple | pd.Index | np.ndarray | pd.Series):
        return list(columns)
    # A set or dict has no order to give the vector's dimensions; a frozenset may be a name.
    unhashable = not isinstance(columns, Hashable)
    if unhashable or (isinstance(columns, Set | Mapping) and columns not in df.columns):
        raise TypeError(
            "'columns' must be a column label or a list-like of column labels, in order "
            f"(got {type(columns).__name__} {columns!r:.60})"
        )
    return [columns]


def resolve_columns(df: pd.DataFrame, columns: Any = None) -> ColumnSpec:
    """Decide which columns hold the vectors.

    Parameters
    ----------
    df : pandas.DataFrame
    columns : label, list of labels or None
        None: the frame's single vector column if it has exactly one column of
        vectors, else all columns (which must then all be numeric).

    Returns
    -------
    dict
        ``{"columns": [labels], "vector_column": bool}``.

    Examples
    --------
    >>> import pandas as pd
    >>> resolve_columns(pd.DataFrame({"x": [1.0], "y": [2.0]}))
    {'columns': ['x', 'y'], 'vector_column': False}
    """
    names = _as_column_list(df, columns)
    if not names:
        raise ValueError(f"'columns' must name at least one column (got {columns!r})")
    if len(set(map(_key, names))) != len(names):
        raise ValueError(f"'columns' lists a column twice (got {names!r})")
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise KeyError(
            f"columns {missing!r} are not in the frame; it has {_preview(list(df.columns))}"
        )
    _check_single_columns(df, names)
    dtypes = [df[c].dtype for c in names]
    if len(names) == 1 and is_vector_dtype(dtypes[0]):
        return {"columns": names, "vector_column": True}
    bad = [(c, d) for c, d in zip(names, dtypes, strict=True) if not is_numeric(d)]
    if bad:
        c, d = bad[0]
        more = f" (and {len(bad) - 1} more non-numeric columns)" if len(bad) > 1 else ""
        raise TypeError(f"column {c!r} has dtype {d}, not numeric{more}; {_HINT}")
    return {"columns": names, "vector_column": False}


def _check_single_columns(df: pd.DataFrame, names: list[Hashable]) -> None:
    """Each name must select one column: not a duplicated name, nor part of a MultiIndex key."""
    if df.columns.is_unique and not isinstance(df.columns, pd.MultiIndex):
        return  # every name present selects exactly one column
    for c in names:
        if not isinstance(df[c], pd.DataFrame):
            continue
        if isinstance(df.columns, pd.MultiIndex):
            raise ValueError(f"'columns' entry {c!r} {_partial_key(df.columns, c)}")
        raise ValueError(f"the frame has several columns named {c!r}; rename them first")


def _partial_key(columns: pd.MultiIndex, key: Hashable) -> str:
    # Error path only: list the columns a partial MultiIndex key selects.
    head = key if isinstance(key, tuple) else (key,)
    full = [c for c in columns if c[: len(head)] == head]
    return (
        f"selects {len(full)} of the frame's MultiIndex columns, {_preview(full)}; "
        "name each column by its full tuple, e.g. columns=[" + repr(full[0]) + ", ...]"
    )


def _key(label: Hashable) -> tuple[str, Hashable]:
    # 1 and True are equal in Python but are different column names.
    return (type(label).__name__, label)


def _preview(items: list[Any], n: int = 8) -> str:
    if len(items) <= n:
        return repr(items)
    return repr(items[:n])[:-1] + f", ... ({len(items)} in all)]"


def _row(index: pd.Index, pos: int) -> str:
    return f"row {index[pos]!r} (position {pos})"


@contextmanager
def naming_rows(index: pd.Index, what: str) -> Iterator[None]:
    """Name a row the core refuses (too large a norm, ...) by its label in ``what``."""
    try:
        yield
    except RowError as exc:
        raise ValueError(f"{what} has {_row(index, exc.row)} that {exc.reason}") from None


def _check_finite(
    x: np.ndarray, index: pd.Index, column_of: Any, cell: Callable[[int, int], Any] | None = None
) -> None:
    """Refuse NaN/inf in float32 ``x``; ``cell(r, c)``, when given, is the frame's own value,
    so a finite value beyond float32's range is not reported as infinite."""
    finite = np.isfinite(x)
    if finite.all():
        return
    r, c = np.argwhere(~finite)[0]
    n_rows = int((~finite.all(axis=1)).sum())
    value = x[r, c]
    raw = cell(int(r), int(c)) if cell is not None and np.isinf(value) else None
    if raw is not None and np.isfinite(float(raw)):
        what = f"a value beyond float32's range (+-3.4e38): {float(raw)!r}"
    elif np.isnan(value):
        what = "a missing value (NaN)"
    else:
        what = f"a non-finite value ({value})"
    raise ValueError(
        f"column {column_of(c)!r} has {what} at {_row(index, int(r))}; "
        f"{n_rows} row(s) are affected: drop or fill them first (e.g. df.dropna())"
    )


def _select(df: pd.DataFrame, names: list[Hashable]) -> pd.DataFrame:
    """The columns ``names``, in that order, selected by position.

    ``df[names]`` would read a list of booleans (columns named True/False, e.g. from
    ``df.pivot`` on a bool column) as a row mask.
    """
    return df.iloc[:, df.columns.get_indexer_for(names)]


def _numeric_matrix(df: pd.DataFrame, names: list[Hashable]) -> np.ndarray:
    frame = _select(df, names)
    with np.errstate(over="ignore"):  # too large for float32: _check_finite says so
        x = frame.to_numpy(dtype=np.float32, na_value=np.nan)
    _check_finite(x, df.index, lambda c: names[c], lambda r, c: frame.iat[r, c])
    return np.ascontiguousarray(x)


def _arrow_vectors(s: pd.Series, name: Hashable) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(s.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        pos = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(
            f"column {name!r} has a missing vector at {_row(s.index, pos)}; "
            f"{arr.null_count} row(s) are missing: drop them first (e.g. df.dropna())"
        )
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(arr)
    if not (
        pa.types.is_integer(flat.type)
        or pa.types.is_floating(flat.type)
        or pa.types.is_boolean(flat.type)
    ):
        raise TypeError(f"column {name!r} holds vectors of {flat.type}, not numbers")
    values = flat.cast(pa.float32()).to_numpy(zero_copy_only=False)
    return _stack_flat(values, lengths, s.index, name)


def _stack_flat(
    values: np.ndarray, lengths: np.ndarray, index: pd.Index, name: Hashable
) -> np.ndarray:
    _check_lengths(lengths, index, name)
    x = values.reshape(len(lengths), int(lengths[0]))
    _check_finite(x, index, lambda c: name)
    return np.ascontiguousarray(x, dtype=np.float32)


def _check_lengths(lengths: np.ndarray, index: pd.Index, name: Hashable) -> None:
    f = int(lengths[0])
    ragged = np.flatnonzero(lengths != f)
    if ragged.size:
        r = int(ragged[0])
        raise ValueError(
            f"column {name!r} holds vectors of different lengths: {_row(index, r)} has "
            f"{int(lengths[r])} values but {_row(index, 0)} has {f}; "
            f"{ragged.size} row(s) differ from the first"
        )
    if f == 0:
        raise ValueError(f"column {name!r} holds empty vectors (length 0)")


def _object_vectors(s: pd.Series, name: Hashable) -> np.ndarray:
    cells = s.to_numpy(dtype=object)
    missing = pd.isna(cells)  # elementwise: a list cell is never NA
    if missing.any():
        pos = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"column {name!r} has a missing vector at {_row(s.index, pos)}; "
            f"{int(missing.sum())} row(s) are missing: drop them first (e.g. df.dropna())"
        )
    try:
        lengths = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    except TypeError:
        pos = _first_unsized(cells)
        raise TypeError(
            f"column {name!r} must hold a vector (list or array of numbers) in every row; "
            f"{_row(s.index, pos)} holds {type(cells[pos]).__name__} {cells[pos]!r:.60}"
        ) from None
    _check_lengths(lengths, s.index, name)
    try:
        # No dtype here: NumPy would parse "1.5" as a number; the check below refuses text.
        raw = np.asarray(cells.tolist())
    except (TypeError, ValueError):
        raw = None
    if raw is not None and raw.ndim != 2:
        # Strings have a len(), so they get this far.
        pos = _first_unsized(cells)
        raise TypeError(
            f"column {name!r} must hold flat vectors of numbers; {_row(s.index, pos)} holds "
            f"{type(cells[pos]).__name__} {cells[pos]!r:.60}"
        )
    x = _as_numbers(raw) if raw is not None else None
    if x is None:
        pos = _first_non_numeric(cells)
        raise TypeError(
            f"column {name!r} must hold vectors of numbers; {_row(s.index, pos)} holds "
            f"{type(cells[pos]).__name__} {cells[pos]!r:.60}"
        )
    _check_finite(x, s.index, lambda c: name)
    return np.ascontiguousarray(x)


def _as_numbers(raw: np.ndarray) -> np.ndarray | None:
    """``raw`` as float32 if it holds numbers (not text, not complex), else None."""
    if raw.dtype.kind == "O":
        # Mixed cells (e.g. None among floats, Decimal): numbers, unless one is text.
        if any(isinstance(v, str | bytes) for v in raw.ravel()):
            return None
    elif raw.dtype.kind not in "biuf":
        return None
    try:
        return raw.astype(np.float32, copy=False)
    except (TypeError, ValueError):
        return None


def _first_unsized(cells: np.ndarray) -> int:
    # Error path only: find the cell that made len() fail.
    for pos, v in enumerate(cells):
        if not hasattr(v, "__len__") or isinstance(v, str | bytes):
            return pos
    return 0


def _first_non_numeric(cells: np.ndarray) -> int:
    # Error path only.
    for pos, v in enumerate(cells):
        try:
            raw = np.asarray(v)
        except (TypeError, ValueError):
            return pos
        if raw.ndim != 1 or _as_numbers(raw) is None:
            return pos
    return 0


def frame_vectors(df: pd.DataFrame, spec: ColumnSpec) -> np.ndarray:
    """The (n, f) float32 matrix of the frame's vectors, validated.

    Parameters
    ----------
    df : pandas.DataFrame
    spec : dict
        From `resolve_columns`.

    Returns
    -------
    numpy.ndarray
        C-contiguous float32, one row per frame row.

    Raises
    ------
    ValueError
        Empty frame, missing/NaN/infinite values, ragged vectors (naming column and row).
    TypeError
        Cells that are not vectors of numbers.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"v": [[1, 2], [3, 4]]})
    >>> frame_vectors(df, resolve_columns(df)).shape
    (2, 2)
    """
    names = spec["columns"]
    if len(df) == 0:
        raise ValueError(f"the frame is empty (0 rows); columns {_preview(names)} hold no vectors")
    if spec["vector_column"]:
        (name,) = names
        s = df[name]
        if isinstance(s.dtype, pd.ArrowDtype):
            return _arrow_vectors(s, name)
        return _object_vectors(s, name)
    return _numeric_matrix(df, names)
