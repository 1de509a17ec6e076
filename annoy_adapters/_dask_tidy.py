"""Per-block work of the Dask adapter: runs inside worker processes.

Everything here receives only the index *path* (and the file's identity when the graph was
built, which only makes the task keys differ for a replaced file) and opens it through the
per-process cache (`annoy_adapters._cache.open_index`), so a worker maps each file once
and all of its threads share the mapping. Vectors are read from a partition with the pandas
adapter's `frame_vectors` (numeric, nullable and Arrow
columns, or one column of vectors; errors name the column and row), and labels a pandas frame
encoded in the file come back decoded, as the pandas accessor returns them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annoy_adapters._cache import FileIdentity, open_index
from annoy_adapters._pandas_codec import _dumps
from annoy_adapters._pandas_labels import decoding_taker
from annoy_adapters._pandas_vectors import ColumnSpec, frame_vectors, naming_rows
from annoy_adapters._recorded import gensim_keys, pandas_label_codec
from annoy_adapters.core import RowError

if TYPE_CHECKING:  # pragma: no cover
    from annoy_adapters import AnnoyIndex

#: record dtype of one (neighbour id, distance) pair in the array API
PAIR_DTYPE = np.dtype([("id", np.int64), ("distance", np.float32)])

#: Maps found item ids (int64, all >= 0) to the values of the ``neighbor`` column.
NeighborTaker = Callable[[np.ndarray], Any]


def neighbor_taker(index: AnnoyIndex) -> NeighborTaker:
    """How item ids become ``neighbor`` values for this file.

    Item ids when the file has no labels; labels a pandas frame wrote decoded with its codec
    (timestamps, floats, categories, tuples...), as the pandas accessor returns them; any other
    labels as stored (str or int64). Applied to zero ids it gives the column's exact dtype, so
    the meta built on the client matches every computed partition.
    """
    labels = index.labels
    if labels is None:
        return _ids
    keys = gensim_keys(index, labels)
    if keys is not None:  # gensim's int keys among str ones: Python ints and strs
        return lambda ids: keys[ids]
    codec = pandas_label_codec(index, labels)
    if codec is None:
        if labels.dtype.kind in "iu":
            return lambda ids: np.asarray(labels[ids], dtype=np.int64)
        # pandas 3's default string dtype: an empty object array would not be inferred as one
        return lambda ids: pd.Series(labels[ids], dtype="str").array
    decoded = decoding_taker(labels, codec, index.path)  # the pandas accessor's decoding

    def take(ids: np.ndarray) -> Any:
        found = decoded(ids)
        # A MultiIndex becomes a column of tuples, as in the pandas accessor's result.
        return found.to_flat_index() if isinstance(found, pd.MultiIndex) else found

    return take


def _ids(ids: np.ndarray) -> np.ndarray:
    return np.asarray(ids, dtype=np.int64)


def tidy_frame(
    query_index: pd.Index,
    ids: np.ndarray,
    dist: np.ndarray,
    take: NeighborTaker,
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
    return pd.DataFrame(
        {
            "rank": rank,
            "neighbor": take(flat[keep]),
            "distance": np.asarray(dist, dtype=np.float32).reshape(-1)[keep],
        },
        index=query_index.take(rows),
    )


def empty_result(query_index: pd.Index, k: int, take: NeighborTaker) -> pd.DataFrame:
    """The zero-row frame with the exact columns and dtypes of a computed partition."""
    return tidy_frame(
        query_index[:0],
        np.empty((0, k), dtype=np.int64),
        np.empty((0, k), dtype=np.float32),
        take,
    )


def query_partition(
    part: pd.DataFrame,
    path: str,
    identity: FileIdentity,
    k: int,
    search: dict[str, Any],
    spec: ColumnSpec,
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Neighbours of every row of one partition (the map_partitions function).

    ``identity`` is the file's when the graph was built: it is there for the task key only
    (the task opens the file at ``path`` as it is now). ``spec`` is the pandas adapter's
    ``{"columns": [...], "vector_column": bool}``; ``partition_info`` (given by Dask) names the
    partition in errors about a row.
    """
    index = open_index(path)
    take = neighbor_taker(index)
    if len(part) == 0:
        return empty_result(part.index, k, take)
    try:
        x = frame_vectors(part, spec)
        with naming_rows(part.index, "'frame'"):
            ids, dist = index.query(_checked_width(x, spec, index.f, path), k, **search)
    except (ValueError, TypeError) as exc:
        if type(exc) not in (ValueError, TypeError) or partition_info is None:
            raise  # only the row-naming errors, whose type takes one message
        # The pandas adapter's messages count positions within the partition: say which.
        raise type(exc)(f"{exc} [partition {partition_info['number']} of 'frame']") from None
    return tidy_frame(part.index, ids, dist, take)


def _checked_width(x: np.ndarray, spec: ColumnSpec, f: int, path: str) -> np.ndarray:
    """A column of vectors shows its length only now: it must be the index's f."""
    if x.shape[1] != f:
        raise ValueError(
            f"column {spec['columns'][0]!r} holds vectors of {x.shape[1]} values but the index "
            f"at {path!r} has f={f}"
        )
    return x


def query_items_partition(
    part: pd.Series,
    path: str,
    identity: FileIdentity,
    k: int,
    search: dict[str, Any],
    by_label: bool,
) -> pd.DataFrame:
    """Neighbours of the stored items named (by label or id) in one partition of a Series."""
    index = open_index(path)
    take = neighbor_taker(index)
    if len(part) == 0:
        return empty_result(part.index, k, take)
    if by_label:
        item_ids = _ids_of_labels(index, part, path)
    else:
        _refuse_missing_ids(part)
        # ids go to the core unconverted: it refuses non-int ids instead of truncating them
        item_ids = part.to_numpy()
    ids, dist = index.query_items(item_ids, k, **search)
    return tidy_frame(part.index, ids, dist, take)


def _ids_of_labels(index: AnnoyIndex, part: pd.Series, path: str) -> np.ndarray:
    """Item ids of the labels in ``part``, given as the user knows them.

    A file a pandas frame wrote with its JSON codec stores each label as JSON text: the
    Series' values (Timestamps, floats, category values, tuples...) are encoded the same way.
    """
    labels = index.labels
    keys = None if labels is None else gensim_keys(index, labels)
    if keys is not None:  # stored as text: look the user's int and str keys up directly
        position = {key: i for i, key in enumerate(keys.tolist())}
        found = [position.get(key, -1) for key in part.tolist()]
        if -1 in found:
            raise _unknown_label(part, found.index(-1), path)
        return np.asarray(found, dtype=np.int64)
    codec = pandas_label_codec(index, labels)
    if codec is not None and codec.get("codec") == "json":
        # One encoding per value: arbitrary Python objects have no array form.
        keys = [_dumps(v) for v in part.tolist()]
    else:
        keys = part.to_numpy().tolist()
    try:
        return index.ids_for(keys)
    except KeyError:
        raise _unknown_label(part, _first_unknown(index, keys), path) from None


def _unknown_label(part: pd.Series, pos: int, path: str) -> KeyError:
    value = part.iloc[pos : pos + 1].tolist()[0]  # a Python value: 99.5, not np.float64
    return KeyError(
        f"'items' holds a label not in the index at {path!r}: {value!r} at row {part.index[pos]!r}"
    )


def _first_unknown(index: AnnoyIndex, keys: list[Any]) -> int:
    # Error path only: find the first label the index lacks.
    for pos, key in enumerate(keys):
        try:
            index.ids_for([key])
        except KeyError:
            return pos
    return 0  # pragma: no cover - ids_for raised, so one is unknown


def _refuse_missing_ids(part: pd.Series) -> None:
    """Nullable or Arrow ids may hold NA, which no cast may turn into an id."""
    missing = part.isna().to_numpy()
    if missing.any():
        pos = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"'items' (dtype {part.dtype}) has a missing value (NA) at row {part.index[pos]!r}; "
            f"{int(missing.sum())} in this partition are missing: drop them first "
            "(items.dropna())"
        )


def query_block(
    block: np.ndarray,
    path: str,
    identity: FileIdentity,
    k: int,
    search: dict[str, Any],
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    """Neighbours of the rows of one array block, as a (rows, k) record array (id, distance).

    ``search`` holds the query's ``search_k`` and ``probe``, as in every function here;
    ``block_info`` (given by Dask) places the block in the user's array, so an error names the
    row as the user counts it.
    """
    out = np.empty((block.shape[0], k), dtype=PAIR_DTYPE)
    if block.shape[0] == 0:
        return out
    try:
        ids, dist = open_index(path).query(block, k, **search)
    except RowError as exc:
        # The core counts rows in the block: name the user's 'x' and its row in the whole array.
        row, where = _array_row(exc.row, block_info)
        raise RowError(f"'x' row {where} {exc.reason}", "x", row, exc.reason) from None
    out["id"] = ids
    out["distance"] = dist
    return out


def _array_row(row: int, block_info: dict[Any, Any] | None) -> tuple[int, str]:
    """The row's position in the whole array and how a message names it: that position and
    the row's place in its block. When the chunk sizes are unknown, so is the block's offset:
    the position is then the one in the block."""
    info = (block_info or {}).get(0)
    if info is None:
        return row, str(row)
    block = info["chunk-location"][0]
    start = info["array-location"][0][0]
    if start is None or np.isnan(start):
        return row, f"{row} of block {block}"
    return int(start) + row, f"{int(start) + row} (row {row} of block {block})"


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

    try:
        return build_trees(
            vectors_path,
            metric,
            tree_ids,
            seed=seed,
            leaf_size=leaf_size,
            vector_dtype=vector_dtype,
        )
    except RowError as exc:
        # Only reading the data finds NaN/inf: name the user's argument and file, not the
        # core's 'X' (the row is the file's: the task reads the whole file).
        message = f"'vectors' row {exc.row} of {vectors_path!r} {exc.reason}: fix or drop it"
        raise RowError(message, "vectors", exc.row, exc.reason) from None
