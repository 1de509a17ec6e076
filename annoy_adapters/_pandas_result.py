"""Shape (n, k) neighbour arrays into tidy or wide DataFrames, with array operations only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["check_names_free", "drop_self", "to_frame"]

RANK = "rank"
_COLUMNS = ("neighbor", "distance")

LabelTaker = Callable[[np.ndarray], pd.Index]


def drop_self(
    ids: np.ndarray, dist: np.ndarray, self_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own item from k+1 results, leaving k per row.

    Rows that don't contain themselves (ties among duplicates can push an item out
    of its own top k+1) lose their last entry instead, so every row keeps k.

    Examples
    --------
    >>> import numpy as np
    >>> ids = np.array([[0, 1, 2], [0, 1, 2]])
    >>> drop_self(ids, ids.astype(float), np.array([0, 2]))[0]
    array([[1, 2],
           [0, 1]])
    """
    n, kk = ids.shape
    drop = ids == self_ids[:, None]
    # Keep only the first self match, and fall back to the last column without one.
    first = np.argmax(drop, axis=1)
    has_self = drop[np.arange(n), first]
    col = np.where(has_self, first, kk - 1)
    keep = np.ones_like(drop)
    keep[np.arange(n), col] = False
    return ids[keep].reshape(n, kk - 1), dist[keep].reshape(n, kk - 1)


def _row_levels(index: pd.Index, rows: np.ndarray) -> tuple[list[pd.Index], list[np.ndarray]]:
    """Levels and codes that repeat the query index's labels ``rows`` times, without factorizing
    the repeated labels (cheap even for millions of result rows)."""
    if isinstance(index, pd.MultiIndex):
        return list(index.levels), [np.asarray(c)[rows] for c in index.codes]
    codes, uniques = pd.factorize(index)
    return [uniques], [codes[rows]]


def to_frame(
    query_index: pd.Index,
    ids: np.ndarray,
    dist: np.ndarray,
    take_labels: LabelTaker,
    fmt: str,
) -> pd.DataFrame:
    """Build the result frame.

    Parameters
    ----------
    query_index : pandas.Index
        One label per query row (the rows of ``ids``).
    ids, dist : numpy.ndarray
        (n, k) item ids (-1 = not found) and distances from the core.
    take_labels : callable
        Maps an int64 array of item ids to a pandas Index of their labels.
    fmt : {"tidy", "wide"}
        ``tidy``: MultiIndex (query label, rank) with columns ``neighbor`` and
        ``distance``; missing neighbours are left out. ``wide``: one row per query,
        columns MultiIndex (``neighbor``/``distance``, rank); missing ones are NA, and
        then every ``neighbor`` column holds int, uint and bool labels in pandas'
        nullable dtype (Int64, UInt64, boolean), which keeps them exact.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> labels = pd.Index(["a", "b", "c"])
    >>> out = to_frame(pd.Index(["q"]), np.array([[2, 0]]), np.array([[0.5, 1.0]]),
    ...                labels.take, "tidy")
    >>> out["neighbor"].tolist()
    ['c', 'a']
    """
    n, k = ids.shape
    valid = ids >= 0
    distances = np.asarray(dist, dtype=np.float32)
    if fmt == "tidy":
        check_names_free(query_index)
        mask = valid.ravel()
        rows = np.repeat(np.arange(n), k)[mask]
        ranks = np.tile(np.arange(k), n)[mask]
        levels, codes = _row_levels(query_index, rows)
        index = pd.MultiIndex(
            levels=[*levels, pd.RangeIndex(k)],
            codes=[*codes, ranks],
            names=[*query_index.names, RANK],
            verify_integrity=False,
        )
        neighbor = take_labels(ids.ravel()[mask])
        return pd.DataFrame(
            {"neighbor": _column_values(neighbor), "distance": distances.ravel()[mask]},
            index=index,
        )
    # Wide: take every label once (a filler id where missing), then blank the missing cells
    # all at once, so that every rank column gets the same dtype.
    neighbor = take_labels(np.where(valid, ids, ids.max(initial=0).clip(0)).ravel())
    values = pd.Series(_column_values(neighbor))
    if not valid.all():
        values = _nullable(values).where(valid.ravel())
    columns = {}
    for r in range(k):  # a loop over the k ranks, not over rows
        columns["neighbor", r] = values.iloc[r::k].reset_index(drop=True)
    for r in range(k):
        columns["distance", r] = np.where(valid[:, r], distances[:, r], np.nan)
    out = pd.DataFrame(columns)
    out.index = query_index
    out.columns = pd.MultiIndex.from_tuples(list(columns), names=[None, RANK])
    return out


def check_names_free(index: pd.Index) -> None:
    """Refuse a row index with a level named ``rank``, ``neighbor`` or ``distance``.

    The tidy result adds a ``rank`` level and ``neighbor``/``distance`` columns: a second
    ``rank`` would make ``nn.xs(0, level="rank")`` ambiguous, a level named like a column
    breaks ``nn.reset_index()``, ``nn.join(facts, on="neighbor")`` and ``groupby``.
    """
    for name in (RANK, *_COLUMNS):
        if name not in index.names:
            continue
        clash = (
            f"which the result's own {name!r} level would duplicate"
            if name == RANK
            else f"which would clash with the result's {name!r} column (in reset_index(), "
            "joins and groupby)"
        )
        raise ValueError(
            f"the rows' index has a level named {name!r} (levels {list(index.names)!r}), "
            f"{clash}; rename it first, "
            f'e.g. df.rename_axis(index={{"{name}": "row_{name}"}}), or use format="wide"'
        )


def _nullable(values: pd.Series) -> pd.Series:
    """``values`` in a dtype that holds NA without changing them.

    NumPy int, uint and bool labels would turn float under ``where`` (inexact beyond
    2**53); they become pandas' nullable Int64/UInt64/boolean (same width) instead.
    Other dtypes (float, object, str, datetime, categorical, nullable, Arrow) hold NA as is.
    """
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        name = (
            "boolean"
            if dtype.kind == "b"
            else f"{'U' if dtype.kind == 'u' else ''}Int{dtype.itemsize * 8}"
        )
        return values.astype(name)
    return values


def _column_values(labels: pd.Index) -> pd.Index:
    # A MultiIndex becomes a column of tuples, which df.loc[...] and reindex accept.
    return labels.to_flat_index() if isinstance(labels, pd.MultiIndex) else labels
