"""Per-block work of the Dask adapter: runs inside worker processes.

Everything here receives only the index *path* and opens it through the per-process cache
(:func:`annoy_adapters._cache.open_index`), so a worker maps each file once and all of its
threads share the mapping.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from annoy_adapters._cache import open_index

#: record dtype of one (neighbour id, distance) pair in the array API
PAIR_DTYPE = np.dtype([("id", np.int64), ("distance", np.float32)])


def label_kind(labels: np.ndarray | None) -> str | None:
    """``"str"``, ``"int"`` or ``None`` (no labels): decides the ``neighbor`` dtype."""
    if labels is None:
        return None
    return "int" if labels.dtype.kind in "iu" else "str"


def _neighbor_column(values: np.ndarray, kind: str | None) -> Any:
    # An explicit dtype keeps the computed partitions identical to the meta built from zero
    # rows (an empty object array would otherwise not be inferred as a string column).
    # "str" is pandas 3's default string dtype (object holding str on pandas 2).
    if kind == "str":
        return pd.Series(values, dtype="str").array
    return np.asarray(values, dtype=np.int64)


def tidy_frame(
    query_index: pd.Index,
    ids: np.ndarray,
    dist: np.ndarray,
    labels: np.ndarray | None,
    kind: str | None,
) -> pd.DataFrame:
    """Flat tidy rows: index = query label repeated, columns rank / neighbor / distance.

    ``frame.set_index("rank", append=True)`` gives the pandas accessor's format
    (MultiIndex (query label, rank)). Padding (id -1: fewer than k items were found) becomes
    no row, so a query with fewer neighbours simply has fewer ranks.
    """
    n, k = ids.shape
    flat = ids.reshape(-1)
    keep = flat >= 0
    rows = np.repeat(np.arange(n, dtype=np.int64), k)[keep]
    rank = np.tile(np.arange(k, dtype=np.int64), n)[keep]
    found = flat[keep]
    neighbor = labels[found] if labels is not None else found
    return pd.DataFrame(
        {
            "rank": rank,
            "neighbor": _neighbor_column(neighbor, kind),
            "distance": np.asarray(dist, dtype=np.float32).reshape(-1)[keep],
        },
        index=query_index.take(rows),
    )


def empty_result(query_index: pd.Index, k: int, kind: str | None) -> pd.DataFrame:
    """The zero-row frame with the exact columns and dtypes of a computed partition."""
    labels = np.empty(0, dtype=np.int64 if kind != "str" else object) if kind else None
    return tidy_frame(
        query_index[:0],
        np.empty((0, k), dtype=np.int64),
        np.empty((0, k), dtype=np.float32),
        labels,
        kind,
    )


def query_partition(
    part: pd.DataFrame,
    path: str,
    k: int,
    search: dict[str, Any],
    columns: list[Any],
    kind: str | None,
) -> pd.DataFrame:
    """Neighbours of every row of one partition (the map_partitions function)."""
    if len(part) == 0:
        return empty_result(part.index, k, kind)
    index = open_index(path)
    ids, dist = index.query(part[columns].to_numpy(), k, **search)
    return tidy_frame(part.index, ids, dist, index.labels, kind)


def query_items_partition(
    part: pd.Series,
    path: str,
    k: int,
    search: dict[str, Any],
    by_label: bool,
    kind: str | None,
) -> pd.DataFrame:
    """Neighbours of the stored items named (by label or id) in one partition of a Series."""
    if len(part) == 0:
        return empty_result(part.index, k, kind)
    index = open_index(path)
    values = part.to_numpy()
    # ids go to the core unconverted: it refuses non-int ids instead of truncating them
    item_ids = index.ids_for(values) if by_label else values
    ids, dist = index.query_items(item_ids, k, **search)
    return tidy_frame(part.index, ids, dist, index.labels, kind)


def query_block(block: np.ndarray, path: str, k: int, search: dict[str, Any]) -> np.ndarray:
    """Neighbours of the rows of one array block, as a (rows, k) record array (id, distance).

    ``search`` holds the query's ``search_k`` and ``probe``, as in every function here.
    """
    out = np.empty((block.shape[0], k), dtype=PAIR_DTYPE)
    if block.shape[0] == 0:
        return out
    ids, dist = open_index(path).query(block, k, **search)
    out["id"] = ids
    out["distance"] = dist
    return out


def build_trees_task(
    vectors_path: str,
    metric: str,
    tree_ids: list[int],
    seed: int | None,
    leaf_size: int | None,
    vector_dtype: str = "float32",
) -> Any:
    """Build some trees of the forest on a worker from the shared .npy file."""
    from annoy_adapters.core import build_trees

    return build_trees(
        vectors_path, metric, tree_ids, seed=seed, leaf_size=leaf_size, vector_dtype=vector_dtype
    )
