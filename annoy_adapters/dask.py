"""Query and build annoy-adapters indexes at scale with Dask.

Tasks carry only the *path* of the index file (and, in their keys, the file's identity when
the query was built). Every worker process opens (memory-maps) the file once through a
per-process cache keyed by the absolute path and the file's identity (device, inode, modification
and change times, size), and all of its threads share that mapping; a file replaced by renaming a
new one over the path is opened afresh, and files gone or replaced are let go. Results equal the
single-process results exactly.

The file must exist at the same path on every worker (a shared filesystem or a synced local
copy; memory-mapping needs a local POSIX file). Replace a file by writing a new one and renaming
it over the old path, never by rewriting it in place. See the "Scaling out" docs page.

Examples
--------
>>> import numpy as np, pandas as pd, dask.dataframe as dd
>>> import tempfile, os
>>> from annoy_adapters import AnnoyIndex
>>> from annoy_adapters.dask import query_dataframe
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 8)).astype(np.float32)
>>> path = os.path.join(tempfile.mkdtemp(), "vectors.annoy")
>>> index = AnnoyIndex(8, "euclidean", seed=1)
>>> _ = index.add_items(X)
>>> _ = index.build(4)
>>> _ = index.save(path)
>>> frame = dd.from_pandas(pd.DataFrame(X[:10]), npartitions=2)
>>> result = query_dataframe(frame, path, k=3)            # lazy
>>> tidy = result.compute().set_index("rank", append=True)
>>> tidy.loc[(0, 0), "neighbor"]                          # row 0 is its own nearest
np.int64(0)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from annoy_adapters._cache import (
    FileIdentity,
    cache_info,
    clear_cache,
    open_index,
    open_with_identity,
)
from annoy_adapters._checks import check_k, check_probe, check_search_k

if TYPE_CHECKING:  # pragma: no cover
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client

    from annoy_adapters import AnnoyIndex
    from annoy_adapters._pandas_vectors import ColumnSpec

__all__ = [
    "build_index",
    "clear_worker_cache",
    "preload",
    "query_array",
    "query_dataframe",
    "query_items",
    "worker_cache_info",
]

_INSTALL_HINT = 'pip install "annoy-adapters[dask]"'


def _import_dask() -> tuple[Any, Any, Any]:
    try:
        import dask
        import dask.array as da
        import dask.dataframe as dd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"annoy_adapters.dask needs dask: {_INSTALL_HINT}") from exc
    return dask, da, dd


def _index_path(index: str | os.PathLike[str] | AnnoyIndex) -> str:
    """Absolute path of an index file (or of the file backing an AnnoyIndex)."""
    if isinstance(index, (str, os.PathLike)):
        path = os.fspath(index)
    elif getattr(index, "path", None):
        path = index.path
        _refuse_unsaved(index)
    else:
        raise TypeError(
            "'index' must be the path of a saved index file or a file-backed AnnoyIndex "
            f"(got {type(index).__name__}); save() the index first"
        )
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"'index' file not found: {path!r}")
    return path


def _refuse_unsaved(index: Any) -> None:
    """Tasks open the file, not this object: labels or metadata set since it was loaded
    (which its pickle carries beside the path) would silently not be used."""
    from annoy_adapters.core import AnnoyIndex

    if not isinstance(index, AnnoyIndex):
        return
    state = index.__getstate__()
    unsaved = [name for name in ("labels", "metadata") if name in state]
    if unsaved:
        raise ValueError(
            f"'index' has unsaved {' and '.join(unsaved)} (changed since it was loaded from "
            f"{index.path!r}); the tasks open the file, not this object: save() it first"
        )


def _open(index: str | os.PathLike[str] | AnnoyIndex) -> tuple[str, AnnoyIndex, FileIdentity]:
    """The index file's path, its opened index and its identity when the graph is built.

    The identity goes into every task's arguments, so it is part of the task keys: a file
    replaced at the same path gives new keys, never the results the cluster holds (persisted
    collections, futures) for the old file.
    """
    path = _index_path(index)
    opened, identity = open_with_identity(path)
    return path, opened, identity


def _search(search_k: Any, probe: Any, opened: AnnoyIndex) -> dict[str, Any]:
    """The query's search settings, checked on the client before any task runs."""
    # the core's rules, checked here so a bad value fails before any task runs
    search_k = check_search_k(search_k)
    probe = check_probe(probe)
    if probe is not None and not opened.get_n_cells():
        raise ValueError(
            f"'probe' needs an index with cells; {opened.path} has none (metric "
            f"{opened.metric!r}, or built without cells): use search_k"
        )
    return {"search_k": search_k, "probe": probe}


def _vector_spec(meta: pd.DataFrame, columns: Any, index: AnnoyIndex) -> ColumnSpec:
    """The frame's columns holding the vectors: given, recorded in the file, or all of them.

    ``meta`` is the Dask frame's empty pandas frame: the pandas adapter's rules then apply as
    they are (a list, tuple, Index, array or Series of names, or one name; no name twice;
    numeric columns, or one column holding a vector per row).
    """
    from annoy_adapters._pandas_vectors import _as_column_list, resolve_columns
    from annoy_adapters._recorded import recorded_columns

    recorded = recorded_columns(index)
    # Recorded columns the frame has are the ones to read, in the recorded order (a file's
    # order may differ from the frame's: scikit-learn fitted on df[["d", "c", "b", "a"]]).
    if recorded is not None and not all(c in meta.columns for c in recorded[0]):
        recorded = None
    if columns is None:
        names = list(recorded[0]) if recorded is not None else list(meta.columns)
    else:
        names = _as_column_list(meta, columns)
        missing = [c for c in names if c not in meta.columns]
        if missing:
            raise KeyError(
                f"'columns' not in the frame: {missing!r} (frame has {list(meta.columns)!r})"
            )
    try:
        spec = resolve_columns(meta, names)
    except TypeError:
        _hint_converted_vectors(meta, names)
        raise
    if recorded is not None:
        if spec["columns"] != recorded[0]:
            raise ValueError(
                f"'columns' {spec['columns']!r} don't match the columns {index.path!r} was "
                f"built on, {recorded[0]!r} (same names in the same order)"
            )
        if spec["vector_column"] != recorded[1]:
            kind = "one column of vectors" if recorded[1] else "numeric columns"
            first = spec["columns"][0]
            raise TypeError(
                f"{index.path!r} was built on {kind} {recorded[0]!r}, but in 'frame' "
                f"{first!r} has dtype {meta[first].dtype}"
            )
    if not spec["vector_column"] and len(spec["columns"]) != index.f:
        raise ValueError(
            f"'columns' must name the index's f={index.f} vector columns, or one column "
            f"holding a vector per row (got {len(spec['columns'])}: {spec['columns']!r})"
        )
    return spec


def _hint_converted_vectors(meta: pd.DataFrame, names: list[Any]) -> None:
    """Name Dask's string conversion when one named column arrives as strings.

    ``dd.from_pandas`` turns a pandas column of lists or arrays into their text unless
    ``dataframe.convert-string`` is off; the pandas adapter's "not numeric" would hide why.
    """
    import pandas as pd

    if len(names) != 1 or names[0] not in meta.columns:
        return
    dtype = meta[names[0]].dtype
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        raise TypeError(
            f"column {names[0]!r} of 'frame' holds strings (dtype {dtype}), not numbers or "
            "vectors; if it held lists or arrays in pandas, dd.from_pandas turned them into "
            "text: build the Dask frame under dask.config.set({'dataframe.convert-string': "
            "False}), or read it with dd.read_parquet, which keeps list columns"
        )


def query_dataframe(
    frame: dd.DataFrame,
    index: str | os.PathLike[str] | AnnoyIndex,
    k: int,
    *,
    columns: Sequence[Any] | None = None,
    search_k: int = -1,
    probe: int | None = None,
) -> dd.DataFrame:
    """k nearest neighbours of every row of a Dask DataFrame, lazily (``map_partitions``).

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        One query vector per row.
    index : str, path-like or file-backed AnnoyIndex
        The index file; it must exist at the same path on every worker.
    k : int
        Neighbours per row.
    columns : label or list-like of labels, optional
        The vector columns, in order (a list, tuple, Index, array or Series of names, each
        once), or the one column holding a vector per row (lists, arrays, an Arrow list
        column), as the pandas accessor takes them. Default: the columns recorded in the file
        (by the pandas accessor, scikit-learn's ``feature_names_in_`` or the CLI), in the
        recorded order, when the frame has them all; otherwise every column. When the frame
        has the recorded columns, `columns` must name them, in that order.
    search_k : int, default -1
        Nodes to inspect per query (-1: ``k * n_trees``, as annoy).
    probe : int, optional
        Scan the ``probe`` cells nearest each query instead of walking the trees (angular and
        euclidean files with cells; see ``AnnoyIndex.query``); ``search_k`` is then unused.

    Returns
    -------
    dask.dataframe.DataFrame
        Tidy rows: the index is the query row's label (repeated for each neighbour, divisions
        kept), columns ``rank`` (0 = nearest), ``neighbor`` (the neighbour's label, or its item
        id when the index has no labels) and ``distance`` (float32). Labels a pandas frame
        stored (``df.annoy.build(path=...)``) come back as that frame's index labels, in its
        dtype (timestamps, floats, categories, tuples...).
        ``result.compute().set_index("rank", append=True)`` is the pandas accessor's format.
        When fewer than k items are found a row gets fewer ranks. Missing or non-finite values
        raise ValueError at compute time, naming the column and row.

    Examples
    --------
    >>> import numpy as np, pandas as pd, dask.dataframe as dd, tempfile, os
    >>> from annoy_adapters import AnnoyIndex
    >>> X = np.eye(4, dtype=np.float32)
    >>> index = AnnoyIndex(4, "euclidean", seed=1)
    >>> _ = index.add_items(X)
    >>> _ = index.build(2)
    >>> path = os.path.join(tempfile.mkdtemp(), "eye.annoy")
    >>> _ = index.save(path)
    >>> frame = dd.from_pandas(pd.DataFrame(X, index=list("wxyz")), npartitions=2)
    >>> out = query_dataframe(frame, path, k=1).compute()
    >>> out["neighbor"].tolist()
    [0, 1, 2, 3]
    """
    _, _, dd = _import_dask()
    from annoy_adapters import _dask_tidy

    if not isinstance(frame, dd.DataFrame):
        raise TypeError(f"'frame' must be a dask.dataframe.DataFrame (got {type(frame).__name__})")
    k = check_k(k)
    path, opened, identity = _open(index)
    search = _search(search_k, probe, opened)
    spec = _vector_spec(frame._meta, columns, opened)
    meta = _dask_tidy.empty_result(frame._meta.index, k, _dask_tidy.neighbor_taker(opened))
    return frame.map_partitions(
        _dask_tidy.query_partition,
        path,
        identity,
        k,
        search,
        spec,
        meta=meta,
        align_dataframes=False,
    )


def query_items(
    items: dd.Series,
    index: str | os.PathLike[str] | AnnoyIndex,
    k: int,
    *,
    by: str | None = None,
    search_k: int = -1,
    probe: int | None = None,
) -> dd.DataFrame:
    """k nearest neighbours of stored items named in a Dask Series, lazily.

    Parameters
    ----------
    items : dask.dataframe.Series
        Labels (``by="label"``) or item ids (``by="id"``, an integer dtype: floats such as 2.0
        are refused, as by ``AnnoyIndex.query_items``) of stored items. Labels a pandas frame
        stored are given as that frame's index labels (Timestamps, floats, category values,
        tuples...).
    index : str, path-like or file-backed AnnoyIndex
        The index file; it must exist at the same path on every worker.
    k : int
        Neighbours per item (the item itself is included, usually at rank 0).
    by : {"label", "id"}, optional
        Default: ``"label"`` when the index has labels, else ``"id"``.
    search_k : int, default -1
        Nodes to inspect per query.
    probe : int, optional
        Cells scanned per query instead of the trees, as in `query_dataframe`.

    Returns
    -------
    dask.dataframe.DataFrame
        The same tidy format as `query_dataframe`, indexed like `items`.
        Unknown labels raise KeyError, out-of-range ids IndexError and missing ids (NA in a
        nullable ``Int64`` Series) ValueError at compute time.

    Examples
    --------
    >>> import numpy as np, pandas as pd, dask.dataframe as dd, tempfile, os
    >>> from annoy_adapters import AnnoyIndex
    >>> index = AnnoyIndex(2, "euclidean", seed=1)
    >>> _ = index.add_items(np.array([[0, 0], [0, 1], [5, 5]], dtype=np.float32))
    >>> index.set_labels(["origin", "up", "far"])
    >>> _ = index.build(2)
    >>> path = os.path.join(tempfile.mkdtemp(), "words.annoy")
    >>> _ = index.save(path)
    >>> words = dd.from_pandas(pd.Series(["origin", "far"]), npartitions=1)
    >>> query_items(words, path, k=2).compute()["neighbor"].tolist()
    ['origin', 'up', 'far', 'up']
    """
    _, _, dd = _import_dask()
    from annoy_adapters import _dask_tidy

    if not isinstance(items, dd.Series):
        raise TypeError(f"'items' must be a dask.dataframe.Series (got {type(items).__name__})")
    k = check_k(k)
    path, opened, identity = _open(index)
    search = _search(search_k, probe, opened)
    has_labels = opened.labels is not None
    if by is None:
        by = "label" if has_labels else "id"
    if by not in ("label", "id"):
        raise ValueError(f"'by' must be 'label' or 'id' (got {by!r})")
    if by == "label" and not has_labels:
        raise ValueError("'by' is 'label' but the index file has no labels; use by='id'")
    if by == "id" and not _holds_ints(items):
        # as AnnoyIndex.query_items: ids must be ints; a cast would turn 1.7 into item 1
        raise TypeError(f"'items' must hold int item ids for by='id' (got dtype {items.dtype})")
    meta = _dask_tidy.empty_result(items._meta.index, k, _dask_tidy.neighbor_taker(opened))
    return items.map_partitions(
        _dask_tidy.query_items_partition,
        path,
        identity,
        k,
        search,
        by == "label",
        meta=meta,
        align_dataframes=False,
    )


def _holds_ints(items: dd.Series) -> bool:
    import pandas as pd

    dtype = items.dtype
    return pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def query_array(
    x: da.Array,
    index: str | os.PathLike[str] | AnnoyIndex,
    k: int,
    *,
    search_k: int = -1,
    probe: int | None = None,
) -> tuple[da.Array, da.Array]:
    """k nearest neighbours of every row of a 2-D Dask array, lazily (``map_blocks``).

    Parameters
    ----------
    x : dask.array.Array
        Shape (n, f); chunks along the columns are merged first.
    index : str, path-like or file-backed AnnoyIndex
        The index file; it must exist at the same path on every worker.
    k : int
        Neighbours per row.
    search_k : int, default -1
        Nodes to inspect per query.
    probe : int, optional
        Cells scanned per query instead of the trees, as in `query_dataframe`.

    Returns
    -------
    ids, distances : dask.array.Array
        int64 and float32 arrays of shape (n, k), chunked like `x`'s rows, rows sorted best
        first, padded with -1 / inf when fewer than k items are found (as
        ``AnnoyIndex.query``). Both come from the same tasks: computing them together
        (``dask.compute(ids, distances)``) queries each block once. A row holding NaN or inf
        raises `annoy_adapters.RowError` (a ValueError) at compute time, naming its row
        in `x` (and in its block).

    Examples
    --------
    >>> import numpy as np, dask, dask.array as da, tempfile, os
    >>> from annoy_adapters import AnnoyIndex
    >>> X = np.arange(20, dtype=np.float32).reshape(10, 2)
    >>> index = AnnoyIndex(2, "euclidean", seed=1)
    >>> _ = index.add_items(X)
    >>> _ = index.build(2)
    >>> path = os.path.join(tempfile.mkdtemp(), "line.annoy")
    >>> _ = index.save(path)
    >>> ids, dist = query_array(da.from_array(X, chunks=(4, 2)), path, k=2)
    >>> ids, dist = dask.compute(ids, dist)
    >>> ids[:3].tolist()
    [[0, 1], [1, 0], [2, 1]]
    """
    _, da, _ = _import_dask()
    from annoy_adapters import _dask_tidy

    if not isinstance(x, da.Array):
        raise TypeError(f"'x' must be a dask.array.Array (got {type(x).__name__})")
    k = check_k(k)
    path, opened, identity = _open(index)
    search = _search(search_k, probe, opened)
    f = opened.f
    if x.ndim != 2 or (not np.isnan(x.shape[1]) and x.shape[1] != f):
        raise ValueError(f"'x' must have shape (n, {f}) (got {x.shape})")
    if x.dtype.kind not in "biuf":  # the core's rule, checked before any task runs
        raise TypeError(f"'x' must hold real numbers (got dtype {x.dtype})")
    if len(x.chunks[1]) > 1:
        x = x.rechunk({1: -1})
    pairs = x.map_blocks(
        _dask_tidy.query_block,
        path,
        identity,
        k,
        search,
        dtype=_dask_tidy.PAIR_DTYPE,
        chunks=(x.chunks[0], (k,)),
        meta=np.empty((0, 0), dtype=_dask_tidy.PAIR_DTYPE),
    )
    ids = pairs.map_blocks(_field, "id", dtype=np.int64, meta=np.empty((0, 0), np.int64))
    dist = pairs.map_blocks(_field, "distance", dtype=np.float32, meta=np.empty((0, 0), np.float32))
    return ids, dist


def _field(block: np.ndarray, name: str) -> np.ndarray:
    # A contiguous copy: a strided field view would keep the whole record block alive.
    return np.ascontiguousarray(block[name])


def build_index(
    vectors: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    metric: str = "angular",
    n_trees: int,
    seed: int | None = None,
    leaf_size: int | None = None,
    labels: Sequence[Any] | None = None,
    metadata: dict[str, Any] | None = None,
    trees_per_task: int = 1,
    vector_dtype: str = "float32",
) -> AnnoyIndex:
    """Build the trees of one forest in parallel on the Dask workers; write one index file.

    Each task memory-maps the shared ``.npy`` file (the path is all it carries), builds its
    trees from per-tree seeds and sends back only the tree nodes; the calling process then
    writes the file. The file is equal, byte for byte, to a local build with the same
    arguments::

        idx = AnnoyIndex(f, metric, leaf_size=leaf_size, seed=seed, vector_dtype=vector_dtype)
        idx.add_items(np.load(vectors)); idx.set_labels(labels); idx.set_metadata(metadata)
        idx.build(n_trees); idx.save(path)

    Parameters
    ----------
    vectors : str or path-like
        A 2-D ``.npy`` file, at the same path on every worker and on the caller; row i is
        item i.
    path : str or path-like
        The index file to write. The new file is written beside it and checked (loaded) before
        it replaces any file at `path`, so a failed build never leaves a broken file there.
    metric : str, default "angular"
        One of ``annoy_adapters.METRICS``.
    n_trees : int
        Trees in the forest (>= 1; the "-1 = until the index doubles" rule needs a local build).
    seed : int, optional
        Forest seed (default: the core's default seed).
    leaf_size : int, optional
        As ``AnnoyIndex(leaf_size=...)``.
    labels : sequence of str or int, optional
        One unique label per row, stored in the file.
    metadata : dict, optional
        JSON-serialisable metadata stored in the file.
    trees_per_task : int, default 1
        Trees built by one task; 1 balances best.
    vector_dtype : {"float32", "float16"}, default "float32"
        As ``AnnoyIndex(vector_dtype=...)``: "float16" halves the vectors' bytes.

    Returns
    -------
    AnnoyIndex
        The new index, memory-mapped from `path`.

    Notes
    -----
    Runs on the active Dask scheduler: the ``distributed.Client`` in use if there is one,
    otherwise Dask's local threads.

    Every argument (the shape and dtype of the ``.npy`` file, the labels' count, types and
    uniqueness, the metadata, the seed, the leaf size, the output path) is checked before any
    task is submitted. NaN or inf in the vectors shows only when the tasks read them: the build
    then raises `annoy_adapters.RowError` (a ValueError) naming the file and the row.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from annoy_adapters import AnnoyIndex
    >>> tmp = tempfile.mkdtemp()
    >>> X = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    >>> np.save(os.path.join(tmp, "x.npy"), X)
    >>> built = build_index(os.path.join(tmp, "x.npy"), os.path.join(tmp, "dask.annoy"),
    ...                     metric="euclidean", n_trees=3, seed=5)
    >>> local = AnnoyIndex(4, "euclidean", seed=5)
    >>> _ = local.add_items(X)
    >>> _ = local.build(3)
    >>> _ = local.save(os.path.join(tmp, "local.annoy"))
    >>> open(built.path, "rb").read() == open(local.path, "rb").read()
    True
    """
    dask, _, _ = _import_dask()
    from annoy_adapters import _dask_tidy
    from annoy_adapters.core import AnnoyIndex, assemble

    vectors_path, n_rows = _check_vectors(vectors)
    out = _check_output(path, vectors_path)
    if isinstance(n_trees, bool) or not isinstance(n_trees, (int, np.integer)) or n_trees < 1:
        raise ValueError(f"'n_trees' must be a positive int (got {n_trees!r})")
    if (
        isinstance(trees_per_task, bool)
        or not isinstance(trees_per_task, (int, np.integer))
        or trees_per_task < 1
    ):
        raise ValueError(f"'trees_per_task' must be a positive int (got {trees_per_task!r})")
    # Everything the calling process checks after the trees are built, checked before any task
    # runs: a mistake in the labels must not cost the whole build.
    checker = AnnoyIndex(1, metric, seed=seed, leaf_size=leaf_size, vector_dtype=vector_dtype)
    if metadata is not None:
        checker.set_metadata(metadata)
    if labels is not None:
        labels = _checked_labels(labels, n_rows, vectors_path)
    tree_ids = list(range(int(n_trees)))
    groups = [tree_ids[i : i + trees_per_task] for i in range(0, len(tree_ids), trees_per_task)]
    task = dask.delayed(_dask_tidy.build_trees_task, pure=True)
    parts = dask.compute(
        *[task(vectors_path, metric, group, seed, leaf_size, vector_dtype) for group in groups]
    )
    return assemble(
        vectors_path,
        metric,
        list(parts),
        out,
        seed=seed,
        leaf_size=leaf_size,
        labels=labels,
        metadata=metadata,
        vector_dtype=vector_dtype,
    )


def _check_vectors(vectors: Any) -> tuple[str, int]:
    """The absolute path of the shared ``.npy`` file and its number of rows, its shape and
    dtype checked from the header (NaN/inf only show when the tasks read the data)."""
    path = os.fspath(vectors) if isinstance(vectors, (str, os.PathLike)) else None
    if path is None or not path.endswith(".npy"):
        raise TypeError(
            f"'vectors' must be the path of a .npy file shared by the workers (got {vectors!r})"
        )
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"'vectors' file not found: {path!r}")
    try:
        header = np.load(path, mmap_mode="r")  # reads the header, maps no data
    except (ValueError, OSError) as exc:
        raise ValueError(f"'vectors' must be a readable .npy file ({path!r}: {exc})") from None
    shape, dtype = header.shape, header.dtype
    if len(shape) != 2:
        raise ValueError(f"'vectors' must hold a 2-D array (got shape {shape} in {path!r})")
    if dtype.kind not in "biuf":  # the core's rule (no complex, text or records)
        raise TypeError(f"'vectors' must hold real numbers (got dtype {dtype} in {path!r})")
    return path, int(shape[0])


def _check_output(path: Any, vectors_path: str) -> str:
    """``path`` as given, checked to be a new or replaceable file in a writable folder."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"'path' must be a str or path-like (got {type(path).__name__})")
    given = os.fspath(path)
    target = os.path.abspath(given)
    folder = os.path.dirname(target)
    if os.path.isdir(target):
        raise IsADirectoryError(f"'path' must be a file path, not a directory (got {given!r})")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"'path' must be in an existing folder (got {given!r})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(
            f"'path' must be in a folder you can write to (got {given!r}; the new file is "
            "written beside it, then renamed)"
        )
    if os.path.exists(target) and os.path.samefile(target, vectors_path):
        raise ValueError(f"'path' is the 'vectors' file itself (got {given!r})")
    return given


def _checked_labels(labels: Any, n_rows: int, vectors_path: str) -> np.ndarray:
    """The labels as the core stores them, checked (count, type, uniqueness) by the core."""
    from annoy_adapters import AnnoyIndex

    try:
        count = len(labels)
    except TypeError:
        raise TypeError(
            f"'labels' must be a sequence of str or int (got {type(labels).__name__})"
        ) from None
    if count != n_rows:
        raise ValueError(
            f"'labels' must hold one label per row of 'vectors' ({n_rows} rows in "
            f"{vectors_path!r}; got {count} labels)"
        )
    # An index with items 0..n-1 (one stored: the rest are holes, no vectors copied) lets the
    # core check the labels with its own rules and messages.
    checker = AnnoyIndex(1, "euclidean")
    if n_rows:
        checker.add_item(n_rows - 1, [0.0])
    checker.set_labels(labels)
    return checker.labels


def _open_on_worker(path: str) -> int:
    return open_index(path).get_n_items()


def preload(client: Client, index: str | os.PathLike[str] | AnnoyIndex) -> dict[str, int]:
    """Open (memory-map) the index file on every worker now, before the first query.

    Later tasks then find it in the worker's cache; useful before timing a job, or to fail
    early when a worker cannot see the file.

    Parameters
    ----------
    client : distributed.Client
        The client of the cluster.
    index : str, path-like or file-backed AnnoyIndex
        The index file (the same path on every worker).

    Returns
    -------
    dict
        ``{worker address: number of items in the file}``.

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> preload(Client(...), "/shared/glove.annoy")  # doctest: +SKIP
    {'tcp://127.0.0.1:40000': 400000, 'tcp://127.0.0.1:40001': 400000}
    """
    return client.run(_open_on_worker, _index_path(index))


def worker_cache_info(client: Client) -> dict[str, dict[str, int]]:
    """Per-worker counts of index files opened and cache hits, and the files open now:
    ``{address: {"opens", "hits", "files"}}``.

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> worker_cache_info(Client(...))  # doctest: +SKIP
    {'tcp://127.0.0.1:40000': {'opens': 1, 'hits': 7, 'files': 1}, ...}
    """
    return client.run(cache_info)


def clear_worker_cache(client: Client) -> dict[str, int]:
    """Forget the index files every worker keeps open: ``{address: files forgotten}``.

    Not needed for correctness: each worker's cache drops every file that is gone or was
    replaced when it opens another file (or version), and at a task 5 seconds or more after its
    last check; it keeps at most 16 files open (least recently used go first). Use it to release
    the old files' mappings (and their disk space, for deleted files) at once, after retiring
    versions. A query still running keeps its file mapped until it ends;
    later tasks open their file again.

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> clear_worker_cache(Client(...))  # doctest: +SKIP
    {'tcp://127.0.0.1:40000': 2, 'tcp://127.0.0.1:40001': 2}
    """
    return client.run(clear_cache)
