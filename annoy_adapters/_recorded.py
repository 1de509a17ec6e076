"""What the adapters record in an index file for each other: its columns and its labels' codec.

Every adapter keeps its own metadata section.  This module is the one place that knows where
each of them records the columns a file was built from, and how pandas encodes labels that are
not plain str or int, so a file built by any adapter answers the same through every other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from annoy_adapters import AnnoyIndex

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "decoded_labels",
    "gensim_keys",
    "label_ends",
    "pandas_label_codec",
    "pandas_section",
    "recorded_columns",
]

#: Where the other adapters record the names of the columns (one per dimension) an index was
#: built from: scikit-learn's ``feature_names_in_`` (fitted on a DataFrame), the CLI's table.
OTHER_COLUMN_NAMES = (("sklearn", "feature_names_in_"), ("cli", "columns"))

_PANDAS_HINT = 'decoding its labels needs pandas: pip install "annoy-adapters[pandas]"'


def pandas_section(index: AnnoyIndex) -> dict[str, Any] | None:
    """``metadata["pandas"]``, also in a file another adapter re-saved (they keep sections)."""
    meta = index.metadata.get("pandas")
    return meta if isinstance(meta, dict) else None


def recorded_columns(index: AnnoyIndex) -> tuple[list[Any], bool] | None:
    """``(columns, vector_column)``: the table columns the file was built from, or None.

    The pandas section's (any hashable names, and whether one column holds whole vectors),
    else scikit-learn's or the CLI's (one str name per dimension).
    """
    meta = pandas_section(index)
    if meta is not None and isinstance(meta.get("columns"), list):
        names = meta["columns"]
        if not all(isinstance(c, str) for c in names):  # JSON-encoded names need pandas' codec
            from annoy_adapters._pandas_codec import from_jsonable

            names = [from_jsonable(c) for c in names]
        return list(names), bool(meta.get("vector_column", False))
    for adapter, key in OTHER_COLUMN_NAMES:
        section = index.metadata.get(adapter)
        names = section.get(key) if isinstance(section, dict) else None
        if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
            continue  # not a column list we can trust
        whole = section.get("vector_column")  # the CLI's, since it records list columns
        if whole is None:  # older CLI files: one name for several dimensions is a list column
            whole = len(names) == 1 and index.f > 1
        if (len(names) == 1) if whole else (len(names) == index.f):
            return list(names), bool(whole)
    return None


def label_ends(labels: np.ndarray) -> list[Any]:
    """First and last label as JSON values: a cheap fingerprint of the labels."""
    from annoy_adapters._pandas_codec import to_jsonable

    if len(labels) == 0:
        return []
    return [to_jsonable(labels[0]), to_jsonable(labels[-1])]


def gensim_keys(index: AnnoyIndex, labels: np.ndarray) -> np.ndarray | None:
    """gensim's keys when ``labels`` are gensim's text for int keys (mixed tags, ints beyond
    int64), else None.

    gensim writes its section and its labels together and pandas never re-saves a file, so
    when the section's fingerprint matches the labels they are gensim's, even in a file pandas
    built first.
    """
    meta = index.metadata.get("gensim")
    if not isinstance(meta, dict) or np.asarray(labels).dtype.kind in "iu":
        return None
    from annoy_adapters._gensim_keys import int_tagged_keys

    keys = int_tagged_keys(labels, meta)
    if keys is None:
        return None
    out = np.empty(len(keys), dtype=object)  # Python ints and strs, as gensim has them
    out[:] = keys
    return out


def pandas_label_codec(index: AnnoyIndex, labels: np.ndarray) -> dict[str, Any] | None:
    """The pandas label codec, if the file's ``labels`` are still the ones pandas wrote.

    An adapter that re-saves the file with its own labels keeps the pandas section; the stored
    first and last labels tell such labels apart from pandas' own (and gensim's, whose own
    fingerprint wins: see :func:`gensim_keys`).
    """
    if gensim_keys(index, labels) is not None:
        return None
    meta = pandas_section(index)
    codec = meta.get("index") if meta else None
    if not isinstance(codec, dict):
        return None
    try:
        ends = label_ends(labels)
    except ImportError:
        raise ImportError(
            f"{index.path or 'the index'} was built by pandas: {_PANDAS_HINT}"
        ) from None
    return codec if codec.get("ends") == ends else None


def decoded_labels(index: AnnoyIndex) -> pd.Index | np.ndarray | None:
    """The file's labels as their builder knew them, in item-id order (None: no labels).

    Labels pandas encoded (timestamps, floats, categories, tuples, mixed types...) come back as
    the pandas Index it was built from; gensim's int keys among str keys (or beyond int64) as an
    object array of Python ints and strs; any other labels as the core's array.
    """
    labels = index.labels
    if labels is None:
        return None
    keys = gensim_keys(index, labels)
    if keys is not None:
        return keys
    codec = pandas_label_codec(index, labels)
    if codec is None:
        return labels
    from annoy_adapters._pandas_codec import decode_labels

    return decode_labels(labels, codec)
