"""pandas accessors: ``df.annoy.neighbors()`` and friends, answering in DataFrames.

``import annoy_adapters.pandas`` registers ``DataFrame.annoy`` and, for a column whose
cells are vectors, ``Series.annoy``. Results come back *tidy*: a MultiIndex of (the
row's own index label, ``rank``) with columns ``neighbor`` (the neighbour's index
label) and ``distance``, ready to join, group and plot.

Indexes built with ``df.annoy.build(path=...)`` are ordinary annoy-adapters index files:
the frame's index labels are stored as the file's labels (see ``docs/pandas.md`` for
the metadata) and the file loads in ``annoy_adapters.load``, the scikit-learn and gensim
adapters. Files are opened through a per-process cache, so passing the same path again
does not reopen it.

Examples
--------
>>> import numpy as np, pandas as pd
>>> import annoy_adapters.pandas  # registers df.annoy
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame(rng.normal(size=(100, 8)), index=[f"item{i}" for i in range(100)])
>>> nn = df.annoy.neighbors(k=3, n_trees=5, seed=1)
>>> nn.index.names, list(nn.columns)
(FrozenList([None, 'rank']), ['neighbor', 'distance'])
>>> len(nn)
300
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any, Literal

import numpy as np

try:
    import pandas as pd
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'annoy_adapters.pandas needs pandas: pip install "annoy-adapters[pandas]"'
    ) from exc

from annoy_adapters import AnnoyIndex
from annoy_adapters._cache import open_index
from annoy_adapters._checks import check_k, check_search_k
from annoy_adapters._pandas_codec import encode_labels, to_json_metadata
from annoy_adapters._pandas_labels import check_same_rows, label_taker
from annoy_adapters._pandas_result import check_names_free, drop_self, to_frame
from annoy_adapters._pandas_vectors import (
    ColumnSpec,
    can_hold_vectors,
    frame_vectors,
    is_numeric,
    is_vector_dtype,
    naming_rows,
    resolve_columns,
)
from annoy_adapters._recorded import label_ends, recorded_columns
from annoy_adapters._sklearn_graph import put_self_first

__all__ = ["DEFAULT_N_TREES", "AnnoyDataFrameAccessor", "AnnoySeriesAccessor"]

DEFAULT_N_TREES = 10
"""Trees of an index the accessor builds when ``n_trees`` is not given."""
#: Version of the ``metadata["pandas"]`` layout this module writes.
_FORMAT = 1
_FORMATS = ("tidy", "wide")

Format = Literal["tidy", "wide"]
IndexLike = AnnoyIndex | str | os.PathLike


# -- argument checks ---------------------------------------------------------------------


def _check_format(fmt: Any) -> str:
    if fmt not in _FORMATS:
        raise ValueError(f"'format' must be 'tidy' or 'wide' (got {fmt!r})")
    return fmt


def _check_bool(name: str, value: Any) -> bool:
    # "no" or 0 would pass as truthy or falsy without saying so.
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"'{name}' must be True or False (got {value!r})")
    return bool(value)


def _check_build_only(n_trees: Any, seed: Any) -> None:
    """A given index is already built: its trees and seed can't change."""
    for name, value in (("n_trees", n_trees), ("seed", seed)):
        if value is not None:
            raise ValueError(
                f"'{name}' is {value!r}, but it applies only when building an index; "
                f"leave {name}=None when passing an index"
            )


# -- index files -------------------------------------------------------------------------


def _open(index: Any) -> AnnoyIndex:
    if isinstance(index, str | os.PathLike):
        return open_index(os.fspath(index))
    if isinstance(index, AnnoyIndex):
        if not index.built:
            raise ValueError("'index' must be a built AnnoyIndex (call .build() first)")
        return index
    raise TypeError(
        f"'index' must be an AnnoyIndex or the path of an index file (got {type(index).__name__})"
    )


def _where(idx: AnnoyIndex) -> str:
    return f"the index at {idx.path!r}" if idx.path else "the index"


def _saved_spec(idx: AnnoyIndex) -> ColumnSpec | None:
    """The vector columns the file names: the pandas section's, else another adapter's."""
    recorded = recorded_columns(idx)
    if recorded is None:
        return None
    return {"columns": recorded[0], "vector_column": recorded[1]}


def _check_metric(idx: AnnoyIndex, metric: str | None, vector_dtype: str | None = None) -> None:
    """A given index's metric and vector dtype are its own: asking for others is an error."""
    for name, asked, has in (
        ("metric", metric, idx.metric),
        ("vector_dtype", vector_dtype, idx.vector_dtype),
    ):
        if asked is not None and asked != has:
            raise ValueError(
                f"'{name}' is {asked!r} but {_where(idx)} uses {has!r}; "
                f"leave {name}=None when passing an index"
            )


def _check_dims(x: np.ndarray, spec: ColumnSpec, idx: AnnoyIndex) -> None:
    if x.shape[1] != idx.f:
        raise ValueError(
            f"columns {spec['columns']!r} give vectors of {x.shape[1]} values but "
            f"{_where(idx)} has f={idx.f}"
        )


def _spec_against_index(df: pd.DataFrame, columns: Any, idx: AnnoyIndex, what: str) -> ColumnSpec:
    """The columns to read from ``df``, checked against those saved with the index."""
    saved = _saved_spec(idx)
    if saved is None:
        return resolve_columns(df, columns)
    names = saved["columns"]
    if columns is not None:
        given = resolve_columns(df, columns)["columns"]
        if given != names:
            raise ValueError(
                f"'columns' {given!r} don't match the columns {_where(idx)} was built on, "
                f"{names!r} (same names in the same order)"
            )
    return _same_columns(df, saved, what, _where(idx))


def _same_columns(df: pd.DataFrame, saved: ColumnSpec, what: str, where: str) -> ColumnSpec:
    """Resolve ``saved``'s columns in ``df``: all present, and vectors stored the same way."""
    names = saved["columns"]
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise KeyError(f"the {what} lacks columns {missing!r}; {where} uses columns {names!r}")
    spec = resolve_columns(df, names)
    if spec["vector_column"] != saved["vector_column"]:
        kind = "one column of vectors" if saved["vector_column"] else "numeric columns"
        raise TypeError(
            f"{where} uses {kind} {names!r}, but in the {what} {names[0]!r} has "
            f"dtype {df[names[0]].dtype}"
        )
    return spec


def _check_unique(index: pd.Index) -> None:
    """The file maps labels to items, so build() needs each label once."""
    if index.is_unique:
        return
    pos = np.flatnonzero(index.duplicated(keep="first"))
    # factorize, not ==, so that missing labels (NaN != NaN) match their first occurrence.
    codes, _ = pd.factorize(index, use_na_sentinel=False)
    first = int(np.flatnonzero(codes == codes[pos[0]])[0])
    where = f"rows {first} and {pos[0]}"
    raise ValueError(
        f"the frame's index has duplicate labels ({index[pos[0]]!r} at {where}; "
        f"{len(pos)} duplicate row(s)); build() stores the labels in the index, which needs "
        "them unique: use df.reset_index() or make the labels unique first "
        "(neighbors() and query() without an index accept duplicates)"
    )


def _build_index(
    x: np.ndarray,
    rows: pd.Index,
    metric: str,
    n_trees: int | None,
    seed: int | None,
    vector_dtype: str = "float32",
    n_jobs: int = -1,
) -> AnnoyIndex:
    idx = AnnoyIndex(x.shape[1], metric, seed=seed, vector_dtype=vector_dtype)
    with naming_rows(rows, "the frame"):
        idx.add_items(x)
    idx.build(DEFAULT_N_TREES if n_trees is None else n_trees, n_jobs=n_jobs)
    return idx


# -- query vectors -----------------------------------------------------------------------


def _query_vectors(data: Any, spec: ColumnSpec, f: int, where: str) -> tuple[np.ndarray, pd.Index]:
    """Vectors and row labels of ``data``: a DataFrame, a Series, or an array."""
    if isinstance(data, pd.DataFrame):
        qspec = _same_columns(data, spec, "query frame", where)
        x = frame_vectors(data, qspec)
        index = data.index
    elif isinstance(data, pd.Series) and is_vector_dtype(data.dtype) and not _is_row(data):
        x = frame_vectors(
            data.to_frame(),
            {"columns": [data.name if data.name is not None else 0], "vector_column": True},
        )
        index = data.index
    elif isinstance(data, pd.Series):
        if not (is_numeric(data.dtype) or _is_row(data)):
            raise TypeError(
                f"a query Series must be numeric (one vector) or hold a vector per row "
                f"(got dtype {data.dtype})"
            )
        values = _aligned_series(data, spec, where)
        x = _array_vectors(_row_numbers(values), where)
        index = pd.Index([data.name if data.name is not None else 0])
    else:
        x = _array_vectors(data, where)
        index = pd.RangeIndex(len(x))
    if x.shape[1] != f:
        raise ValueError(f"the query vectors have {x.shape[1]} values but {where} has f={f}")
    return x, index


def _is_row(data: pd.Series) -> bool:
    """An object Series of scalars is one vector, e.g. ``df.loc["a"]`` of a frame that also
    has a text column; a Series of vectors has list or array cells."""
    return (
        isinstance(data.dtype, np.dtype)
        and data.dtype.kind == "O"
        and len(data) > 0
        and all(pd.api.types.is_scalar(v) for v in data.array)
    )


def _row_numbers(values: pd.Series) -> np.ndarray:
    """One vector's values as float32 (NaN where missing), refusing text by its label."""
    if is_numeric(values.dtype):
        return values.to_numpy(dtype=np.float32, na_value=np.nan)
    out = np.empty(len(values), dtype=np.float32)
    for i, (label, v) in enumerate(values.items()):
        try:
            if isinstance(v, str | bytes):
                raise TypeError  # float("1.5") would read text as a number
            out[i] = np.nan if pd.isna(v) else float(v)
        except (TypeError, ValueError):
            raise TypeError(
                f"the query Series must hold numbers in the vector columns; label {label!r} "
                f"holds {type(v).__name__} {v!r:.60}"
            ) from None
    return out


def _aligned_series(data: pd.Series, spec: ColumnSpec, where: str) -> pd.Series:
    """One numeric vector, e.g. df.loc["king"] - df.loc["man"], aligned on the column names.

    Its labels pick the vector columns by name (other labels are left out); a default
    RangeIndex with one value per vector column, like an array, is read by position,
    even when the columns are named by ints. Other labels must include every column:
    read by position they would silently mix up dimensions.
    """
    if spec["vector_column"]:
        return data  # the labels of one vector's values are positions
    names = spec["columns"]
    labels = data.index
    default = isinstance(labels, pd.RangeIndex) and labels.equals(pd.RangeIndex(len(data)))
    if default and len(data) == len(names):
        return data
    if labels.is_unique and all(c in labels for c in names):
        return data.reindex(names)
    if labels.equals(pd.RangeIndex(len(data))):
        return data
    missing = [c for c in names if c not in labels]
    if not missing:
        raise ValueError(f"the query Series has duplicate labels among the columns {names!r}")
    raise ValueError(
        f"the query Series is aligned on the column names, but its labels lack columns "
        f"{missing!r} of those {where} uses, {names!r}; label it by column name, or pass "
        "its values (s.to_numpy()) to query by position"
    )


def _array_vectors(data: Any, where: str) -> np.ndarray:
    try:
        x = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"the queries must be a DataFrame, a Series or an array of numbers (got "
            f"{type(data).__name__}: {exc})"
        ) from None
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"the query vectors must be a non-empty 1-d or 2-d array (got shape {x.shape})"
        )
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"query row {r} has a missing or non-finite value at position {c}")
    return np.ascontiguousarray(x)


# -- the accessors -----------------------------------------------------------------------


@pd.api.extensions.register_dataframe_accessor("annoy")
class AnnoyDataFrameAccessor:
    """``df.annoy``: approximate nearest neighbours among the rows of a DataFrame.

    The vectors are the frame's numeric columns (one dimension each) or one column
    holding a vector per row (lists, arrays, or an Arrow list column). The accessor
    holds no state; pandas creates it anew on every ``df.annoy``.

    Parameters
    ----------
    df : pandas.DataFrame
        Must have at least one numeric or vector-holding column; otherwise
        ``df.annoy`` raises AttributeError.

    Examples
    --------
    >>> import pandas as pd
    >>> import annoy_adapters.pandas
    >>> df = pd.DataFrame({"x": [0.0, 1.0, 5.0], "y": [0.0, 1.0, 5.0]}, index=["a", "b", "c"])
    >>> df.annoy.neighbors(k=1, metric="euclidean", seed=1)["neighbor"].tolist()
    ['b', 'a', 'b']
    """

    def __init__(self, df: pd.DataFrame) -> None:
        if not can_hold_vectors(df.dtypes):
            raise AttributeError(
                "DataFrame.annoy needs numeric columns or a column holding a vector per row; "
                f"this frame's columns have dtypes {sorted({str(d) for d in df.dtypes})}"
            )
        self._df = df

    def build(
        self,
        columns: Hashable | list[Hashable] | None = None,
        *,
        metric: str = "angular",
        n_trees: int | None = None,
        path: str | os.PathLike | None = None,
        seed: int | None = None,
        vector_dtype: str = "float32",
        n_jobs: int = -1,
    ) -> AnnoyIndex:
        """Build an index of the rows, labelled with the frame's index, optionally saved.

        Parameters
        ----------
        columns : label, list of labels or None
            The vector columns; None means the single vector column, else all columns.
        metric : {"angular", "euclidean", "manhattan", "dot", "hamming"}
        n_trees : int, optional
            Trees to build (default `DEFAULT_N_TREES`; -1: until nodes ~ 2 * rows).
        path : str or os.PathLike, optional
            Save the index there (atomically); the returned index is then backed by the file.
        seed : int, optional
            Seed for a reproducible build.
        vector_dtype : {"float32", "float16"}
            How the index keeps the vectors; "float16" halves their bytes in the file (values
            rounded to 11 significant bits, within +-65504).
        n_jobs : int, default -1
            Workers of the build (-1: every core); the index is the same for any ``n_jobs``.

        Returns
        -------
        AnnoyIndex
            Item i is row i; ``labels`` hold the encoded index labels and ``metadata``
            the columns (``metadata["pandas"]``, see docs/pandas.md).

        Examples
        --------
        >>> import pandas as pd
        >>> import annoy_adapters.pandas
        >>> df = pd.DataFrame({"x": [0.0, 1.0], "y": [1.0, 0.0]}, index=["a", "b"])
        >>> idx = df.annoy.build(n_trees=2, seed=1)
        >>> idx.metadata["pandas"]["columns"], list(idx.labels)
        (['x', 'y'], ['a', 'b'])
        """
        df = self._df
        spec = resolve_columns(df, columns)
        x = frame_vectors(df, spec)
        _check_unique(df.index)
        idx = _build_index(x, df.index, metric, n_trees, seed, vector_dtype, n_jobs)
        labels, codec = encode_labels(df.index)
        codec["ends"] = label_ends(labels)
        idx.set_labels(labels)
        idx.set_metadata(
            {
                "adapter": "pandas",
                "pandas": {
                    "format": _FORMAT,
                    "columns": [to_json_metadata(c) for c in spec["columns"]],
                    "vector_column": spec["vector_column"],
                    "index": codec,
                },
            }
        )
        if path is not None:
            idx.save(os.fspath(path))
        return idx

    def neighbors(
        self,
        k: int = 10,
        *,
        columns: Hashable | list[Hashable] | None = None,
        metric: str | None = None,
        n_trees: int | None = None,
        search_k: int = -1,
        probe: int | None = None,
        include_self: bool = False,
        index: IndexLike | None = None,
        format: Format = "tidy",
        seed: int | None = None,
        vector_dtype: str | None = None,
        n_jobs: int = -1,
    ) -> pd.DataFrame:
        """The k nearest other rows of every row.

        Parameters
        ----------
        k : int
            Neighbours per row.
        columns : label, list of labels or None
            The vector columns (see `build`); with a saved ``index`` they default to
            the columns stored in it and must match them, in order.
        metric : str, optional
            Distance for a new index (default ``"angular"``); with ``index``, must be None
            or the index's metric.
        n_trees : int, optional
            Trees for a new index (default `DEFAULT_N_TREES`); None with ``index``.
        search_k : int
            Candidates collected per query; -1 means annoy's default, ``n * n_trees`` for the
            ``n`` neighbours searched (``k + 1`` when each row's own match is left out).
        probe : int, optional
            Scan the ``probe`` cells nearest each row instead of walking the trees (angular
            and euclidean indexes; see ``AnnoyIndex.query``): usually several times faster at
            the same recall. ``search_k`` is then unused.
        include_self : bool
            Keep each row's own match (rank 0, distance 0, even for duplicate rows; with
            ``dot`` wherever its score puts it). False, like scikit-learn's
            ``kneighbors()`` on the training data, leaves it out.
        index : AnnoyIndex or path, optional
            An index built from this frame (same rows, same order), used instead of building.
        format : {"tidy", "wide"}
            ``tidy``: one row per (row, rank), refusing index levels named ``rank``,
            ``neighbor`` or ``distance``; ``wide``: one row per row in the frame's order,
            columns (``neighbor``/``distance``, rank).
        seed : int, optional
            Seed for a reproducible build; None with ``index``.
        vector_dtype : {"float32", "float16"}, optional
            How a new index keeps the vectors (see `build`; default float32); with
            ``index``, must be None or the index's.
        n_jobs : int, default -1
            Workers building a new index (see `build`).

        Returns
        -------
        pandas.DataFrame
            Tidy: MultiIndex (the frame's index level(s), ``rank``), columns ``neighbor``
            (the neighbour's index label) and ``distance`` (float32; angular:
            ``sqrt(2 - 2 cos)``, dot: the inner product, larger first).

        Examples
        --------
        >>> import pandas as pd
        >>> import annoy_adapters.pandas
        >>> df = pd.DataFrame({"x": [0.0, 1.0, 5.0]}, index=["a", "b", "c"])
        >>> df.annoy.neighbors(k=1, metric="euclidean", seed=1)  # doctest: +NORMALIZE_WHITESPACE
               neighbor  distance
          rank
        a 0           b       1.0
        b 0           a       1.0
        c 0           b       4.0
        """
        k = check_k(k)
        fmt = _check_format(format)
        search_k = check_search_k(search_k)
        include_self = _check_bool("include_self", include_self)
        df = self._df
        if fmt == "tidy":
            check_names_free(df.index)  # before the search, which may take long
        if index is None:
            spec = resolve_columns(df, columns)
            x = frame_vectors(df, spec)
            idx = _build_index(
                x, df.index, metric or "angular", n_trees, seed, vector_dtype or "float32", n_jobs
            )
        else:
            _check_build_only(n_trees, seed)
            idx = _open(index)
            _check_metric(idx, metric, vector_dtype)
            spec = _spec_against_index(df, columns, idx, "frame")
            x = frame_vectors(df, spec)
            _check_dims(x, spec, idx)
            check_same_rows(idx, df.index, _where(idx))
        n = len(df)
        available = n if include_self else n - 1
        if k > available:
            raise ValueError(
                f"'k' must be at most {available}, the number of "
                f"{'rows' if include_self else 'other rows'} in the frame (got {k})"
            )
        with naming_rows(df.index, "the frame"):
            ids, dist = idx.query(x, k if include_self else k + 1, search_k=search_k, probe=probe)
        if not include_self:
            ids, dist = drop_self(ids, dist, np.arange(n))
        elif idx.metric != "dot":
            # Each row first, at distance 0: an identical row (a tie) may come before it or
            # push it out of its own top k, and annoy finds no angle for an all-zero row.
            ids, dist = put_self_first(ids, dist, np.arange(n))
        return to_frame(df.index, ids, dist, df.index.take, fmt)

    def query(
        self,
        vectors_or_frame: Any,
        k: int = 10,
        *,
        index: IndexLike | None = None,
        columns: Hashable | list[Hashable] | None = None,
        metric: str | None = None,
        n_trees: int | None = None,
        search_k: int = -1,
        probe: int | None = None,
        format: Format = "tidy",
        seed: int | None = None,
        vector_dtype: str | None = None,
        n_jobs: int = -1,
    ) -> pd.DataFrame:
        """The k rows of this frame nearest to each query.

        Parameters
        ----------
        vectors_or_frame : DataFrame, Series or array-like
            A frame with the same vector columns (its index labels the results), a Series
            of vectors, one numeric Series (e.g. ``df.loc["king"]``, also of dtype object
            when the frame has text columns; labelled by its name; its labels pick the
            vector columns by name, a default RangeIndex is read by position), or a 1-d /
            2-d array (labelled 0, 1, ...).
        k : int
            Neighbours per query.
        index : AnnoyIndex or path, optional
            Search this index instead of building one from the frame. Its stored labels
            name the neighbours (decoded if a pandas frame wrote it); an index without
            labels must hold exactly this frame's rows.
        columns, metric, n_trees, search_k, probe, format, seed, vector_dtype, n_jobs
            As in `neighbors`.

        Returns
        -------
        pandas.DataFrame
            As `neighbors`, indexed by the query labels.

        Examples
        --------
        >>> import pandas as pd
        >>> import annoy_adapters.pandas
        >>> df = pd.DataFrame({"x": [0.0, 1.0, 5.0]}, index=["a", "b", "c"])
        >>> df.annoy.query([4.0], k=2, metric="euclidean", seed=1)["neighbor"].tolist()
        ['c', 'b']
        """
        k = check_k(k)
        fmt = _check_format(format)
        search_k = check_search_k(search_k)
        df = self._df
        if index is None:
            spec = resolve_columns(df, columns)
            idx = _build_index(
                frame_vectors(df, spec),
                df.index,
                metric or "angular",
                n_trees,
                seed,
                vector_dtype or "float32",
                n_jobs,
            )
            take = df.index.take
        else:
            _check_build_only(n_trees, seed)
            idx = _open(index)
            _check_metric(idx, metric, vector_dtype)
            spec = _saved_spec(idx) or resolve_columns(df, columns)
            if columns is not None and _saved_spec(idx) is not None:
                given = resolve_columns(df, columns)["columns"]
                if given != spec["columns"]:
                    raise ValueError(
                        f"'columns' {given!r} don't match the columns {_where(idx)} was built "
                        f"on, {spec['columns']!r} (same names in the same order)"
                    )
            take = label_taker(idx, df.index, _where(idx))
        x, qindex = _query_vectors(vectors_or_frame, spec, idx.f, _where(idx))
        if fmt == "tidy":
            check_names_free(qindex)
        n_items = idx.get_n_items()
        if k > n_items:
            raise ValueError(f"'k' must be at most {n_items}, the number of indexed rows (got {k})")
        with naming_rows(qindex, "the query"):
            ids, dist = idx.query(x, k, search_k=search_k, probe=probe)
        return to_frame(qindex, ids, dist, take, fmt)


@pd.api.extensions.register_series_accessor("annoy")
class AnnoySeriesAccessor:
    """``s.annoy`` for a Series holding one vector per row (e.g. ``df["embedding"]``).

    Same methods as `AnnoyDataFrameAccessor`, with the Series as the single
    vector column (named by the Series' name, or ``0``).

    Examples
    --------
    >>> import pandas as pd
    >>> import annoy_adapters.pandas
    >>> s = pd.Series([[0.0, 1.0], [0.0, 2.0], [1.0, 0.0]], index=["a", "b", "c"], name="emb")
    >>> s.annoy.neighbors(k=1, seed=1)["neighbor"].tolist()
    ['b', 'a', 'a']
    """

    def __init__(self, s: pd.Series) -> None:
        if not is_vector_dtype(s.dtype):
            raise AttributeError(
                "Series.annoy needs a Series holding one vector per row (lists or arrays, "
                f"dtype object or an Arrow list type); got dtype {s.dtype}. "
                "For numeric columns use df.annoy"
            )
        self._s = s

    def _frame(self) -> tuple[pd.DataFrame, Hashable]:
        name = self._s.name if self._s.name is not None else 0
        return self._s.to_frame(name), name

    def build(self, **kwargs: Any) -> AnnoyIndex:
        """`AnnoyDataFrameAccessor.build` on this column (same keyword arguments)."""
        frame, name = self._frame()
        return AnnoyDataFrameAccessor(frame).build([name], **kwargs)

    def neighbors(self, k: int = 10, **kwargs: Any) -> pd.DataFrame:
        """`AnnoyDataFrameAccessor.neighbors` on this column (same keyword arguments)."""
        frame, name = self._frame()
        kwargs.setdefault("columns", [name])
        return AnnoyDataFrameAccessor(frame).neighbors(k, **kwargs)

    def query(self, vectors_or_frame: Any, k: int = 10, **kwargs: Any) -> pd.DataFrame:
        """`AnnoyDataFrameAccessor.query` against this column (same keyword arguments)."""
        frame, name = self._frame()
        kwargs.setdefault("columns", [name])
        return AnnoyDataFrameAccessor(frame).query(vectors_or_frame, k, **kwargs)
