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
        # One string name per dimension, or the entry isn't a column list we can trust.
        if (
            isinstance(names, list)
            and len(names) == index.f
            and all(isinstance(c, str) for c in names)
        ):
            return list(names), False
    return None


def label_ends(labels: np.ndarray) -> list[Any]:
    """First and last label as JSON values: a cheap fingerprint of the labels."""
    from annoy_adapters._pandas_codec import to_jsonable

    if len(labels) == 0:
        return []
    return [to_jsonable(labels[0]), to_jsonable(labels[-1])]


def pandas_label_codec(index: AnnoyIndex, labels: np.ndarray) -> dict[str, Any] | None:
    """The pandas label codec, if the file's ``labels`` are still the ones pandas wrote.

    An adapter that re-saves the file with its own labels keeps the pandas section; the stored
    first and last labels tell such labels apart from pandas' own.
    """
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
    the pandas Index it was built from; any other labels as the core's array.
    """
    labels = index.labels
    if labels is None:
        return None
    codec = pandas_label_codec(index, labels)
    if codec is None:
        return labels
    from annoy_adapters._pandas_codec import decode_labels

    return decode_labels(labels, codec)
