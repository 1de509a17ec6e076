"""Query and build annoy-adapters indexes at scale with Dask.

Tasks carry only the *path* of the index file. Every worker process opens (memory-maps) the
file once through a per-process cache keyed by (path, modification time, size), and all of its
threads share that mapping; results equal the single-process results exactly.

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

from annoy_adapters._cache import cache_info, open_index

if TYPE_CHECKING:  # pragma: no cover
    import dask.array as da
    import dask.dataframe as dd
    from distributed import Client

    from annoy_adapters import AnnoyIndex

__all__ = [
    "build_index",
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
    else:
        raise TypeError(
            "'index' must be the path of a saved index file or a file-backed AnnoyIndex "
            f"(got {type(index).__name__}); save() the index first"
        )
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"'index' file not found: {path!r}")
    return path


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"'k' must be a positive int (got {k!r})")
    return int(k)


def _check_search_k(search_k: Any) -> int:
    # the core's rule and message, checked here so a bad value fails before any task runs
    if (
        isinstance(search_k, bool)
        or not isinstance(search_k, (int, np.integer))
        or (search_k != -1 and search_k < 1)
    ):
        raise ValueError(f"'search_k' must be -1 or a positive int (got {search_k!r})")
    return int(search_k)


def _search(search_k: Any, probe: Any, opened: AnnoyIndex) -> dict[str, Any]:
    """The query's search settings, checked on the client before any task runs."""
    search_k = _check_search_k(search_k)
    if probe is not None:
        if isinstance(probe, bool) or not isinstance(probe, (int, np.integer)) or probe < 1:
            raise ValueError(f"'probe' must be None or a positive int (got {probe!r})")
        if not opened.get_n_cells():
            raise ValueError(
                f"'probe' needs an index with cells; {opened.path} has none (metric "
                f"{opened.metric!r}, or built without cells): use search_k"
            )
        probe = int(probe)
    return {"search_k": search_k, "probe": probe}


def _label_kind(index: AnnoyIndex) -> str | None:
    from annoy_adapters._dask_tidy import label_kind

    return label_kind(index.labels)


def _vector_columns(frame_columns: Sequence[Any], columns: Any, index: AnnoyIndex) -> list[Any]:
    """The frame's columns holding the vector: given, recorded in the file, or all of them."""
    available = list(frame_columns)
    if columns is None:
        meta = index.metadata
        for adapter in ("pandas", "cli"):
            recorded = (meta.get(adapter) or {}).get("columns")
            if recorded and all(c in available for c in recorded):
                columns = list(recorded)
                break
        else:
            columns = available
    elif isinstance(columns, (str, int)) or not isinstance(columns, Sequence):
        raise TypeError(f"'columns' must be a list of column names (got {columns!r})")
    columns = list(columns)
    missing = [c for c in columns if c not in available]
    if missing:
        raise KeyError(f"'columns' not in the frame: {missing!r} (frame has {available!r})")
    if len(columns) != index.f:
        raise ValueError(
            f"'columns' must name the index's f={index.f} vector columns (got {len(columns)}: "
            f"{columns!r})"
        )
    return columns


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
    columns : list, optional
        The vector columns, in order. Default: the columns recorded in the file by the pandas
        accessor or the CLI when the frame has them all, otherwise every column.
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
        id when the index has no labels) and ``distance`` (float32).
        ``result.compute().set_index("rank", append=True)`` is the pandas accessor's format.
        When fewer than k items are found a row gets fewer ranks.

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
    k = _check_k(k)
    path = _index_path(index)
    opened = open_index(path)
    search = _search(search_k, probe, opened)
    cols = _vector_columns(frame.columns, columns, opened)
    kind = _label_kind(opened)
    meta = _dask_tidy.empty_result(frame._meta.index, k, kind)
    return frame.map_partitions(
        _dask_tidy.query_partition,
        path,
        k,
        search,
        cols,
        kind,
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
        are refused, as by ``AnnoyIndex.query_items``) of stored items.
    index : str, path-like or file-backed AnnoyIndex
        The index file; it must exist at the same path on every worker.
    k : int
        Neighbours per item (the item itself is included, usually at rank 0).
    by : {"label", "id"}, optional
        Default: ``"label"`` when the index has labels, else ``"id"``.
    search_k : int, default -1
        Nodes to inspect per query.
    probe : int, optional
        Cells scanned per query instead of the trees, as in :func:`query_dataframe`.

    Returns
    -------
    dask.dataframe.DataFrame
        The same tidy format as :func:`query_dataframe`, indexed like `items`.
        Unknown labels raise KeyError and out-of-range ids IndexError at compute time.

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
    k = _check_k(k)
    path = _index_path(index)
    opened = open_index(path)
    search = _search(search_k, probe, opened)
    kind = _label_kind(opened)
    if by is None:
        by = "label" if kind is not None else "id"
    if by not in ("label", "id"):
        raise ValueError(f"'by' must be 'label' or 'id' (got {by!r})")
    if by == "label" and kind is None:
        raise ValueError("'by' is 'label' but the index file has no labels; use by='id'")
    if by == "id" and not _holds_ints(items):
        # as AnnoyIndex.query_items: ids must be ints; a cast would turn 1.7 into item 1
        raise TypeError(f"'items' must hold int item ids for by='id' (got dtype {items.dtype})")
    meta = _dask_tidy.empty_result(items._meta.index, k, kind)
    return items.map_partitions(
        _dask_tidy.query_items_partition,
        path,
        k,
        search,
        by == "label",
        kind,
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
        Cells scanned per query instead of the trees, as in :func:`query_dataframe`.

    Returns
    -------
    ids, distances : dask.array.Array
        int64 and float32 arrays of shape (n, k), chunked like `x`'s rows, rows sorted best
        first, padded with -1 / inf when fewer than k items are found (as
        ``AnnoyIndex.query``). Both come from the same tasks: computing them together
        (``dask.compute(ids, distances)``) queries each block once.

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
    k = _check_k(k)
    path = _index_path(index)
    opened = open_index(path)
    search = _search(search_k, probe, opened)
    f = opened.f
    if x.ndim != 2 or (not np.isnan(x.shape[1]) and x.shape[1] != f):
        raise ValueError(f"'x' must have shape (n, {f}) (got {x.shape})")
    if len(x.chunks[1]) > 1:
        x = x.rechunk({1: -1})
    pairs = x.map_blocks(
        _dask_tidy.query_block,
        path,
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
        One label per row, stored in the file.
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

    vectors_path = os.fspath(vectors) if isinstance(vectors, (str, os.PathLike)) else None
    if vectors_path is None or not vectors_path.endswith(".npy"):
        raise TypeError(
            f"'vectors' must be the path of a .npy file shared by the workers (got {vectors!r})"
        )
    vectors_path = os.path.abspath(vectors_path)
    if not os.path.isfile(vectors_path):
        raise FileNotFoundError(f"'vectors' file not found: {vectors_path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"'path' must be in an existing folder (got {os.fspath(path)!r})")
    if isinstance(n_trees, bool) or not isinstance(n_trees, (int, np.integer)) or n_trees < 1:
        raise ValueError(f"'n_trees' must be a positive int (got {n_trees!r})")
    if (
        isinstance(trees_per_task, bool)
        or not isinstance(trees_per_task, (int, np.integer))
        or trees_per_task < 1
    ):
        raise ValueError(f"'trees_per_task' must be a positive int (got {trees_per_task!r})")
    AnnoyIndex(1, metric, vector_dtype=vector_dtype)  # checks both before any task runs
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
        os.fspath(path),
        seed=seed,
        leaf_size=leaf_size,
        labels=labels,
        metadata=metadata,
        vector_dtype=vector_dtype,
    )


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
    """Per-worker counts of index files opened and cache hits: ``{address: {"opens", "hits"}}``.

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> worker_cache_info(Client(...))  # doctest: +SKIP
    {'tcp://127.0.0.1:40000': {'opens': 1, 'hits': 7}, ...}
    """
    return client.run(cache_info)
