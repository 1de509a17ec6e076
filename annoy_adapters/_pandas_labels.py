"""The labels of an index file's items as a pandas user knows them.

A file's core labels are str or int. pandas' own encoding (``metadata["pandas"]["index"]``)
turns any other index label into JSON text; gensim's (``metadata["gensim"]``) stores int keys
among str keys, and ints beyond int64, as text with the runs of positions that held ints. Both
are decoded here, so neighbours come back as the labels the file's builder had, and a frame is
matched against those labels (``neighbors(index=...)``) rather than their encoding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from annoy_adapters import AnnoyIndex
from annoy_adapters._pandas_codec import _dumps, encode_labels
from annoy_adapters._recorded import decode_pandas_labels, pandas_label_codec
from annoy_adapters._recorded import gensim_keys as recorded_gensim_keys

__all__ = ["check_same_rows", "decoding_taker", "gensim_keys", "label_taker"]

LabelTaker = Callable[[np.ndarray], pd.Index]


def gensim_keys(idx: AnnoyIndex) -> pd.Index | None:
    """gensim's keys (see `annoy_adapters._recorded.gensim_keys`) as an Index, or None."""
    labels = idx.labels
    keys = None if labels is None else recorded_gensim_keys(idx, labels)
    if keys is None:
        return None
    out = pd.Index(keys.tolist())  # object for mixed tags, uint64 (or object) beyond int64
    return out if out.dtype.kind in "uiO" else pd.Index(keys, dtype=object)


def decoding_taker(
    labels: np.ndarray, codec: dict[str, Any], path: str | None = None
) -> LabelTaker:
    """Map item ids to the pandas labels ``codec`` encoded in ``labels``, decoding only the
    labels found, each once (not the whole file per query); ``path`` names the file in the
    IndexFileError of labels that don't decode."""
    raw = np.asarray(labels)

    def take(ids: np.ndarray) -> pd.Index:
        uniq, inverse = np.unique(ids, return_inverse=True)
        return decode_pandas_labels(path, raw[uniq], codec).take(inverse.ravel())

    return take


def label_taker(idx: AnnoyIndex, frame_index: pd.Index | None, where: str) -> LabelTaker:
    """Map item ids to labels: the file's labels (decoded) if any, else the frame's index."""
    labels = idx.labels
    if labels is not None:
        keys = gensim_keys(idx)
        if keys is not None:
            return keys.take
        codec = pandas_label_codec(idx, labels)
        if codec is None:
            return pd.Index(labels).take
        return decoding_taker(labels, codec, idx.path)
    n_items = idx.get_n_items()
    if frame_index is not None and len(frame_index) == n_items:
        return frame_index.take
    raise ValueError(
        f"{where} stores no labels and holds {n_items} items, but the frame has "
        f"{0 if frame_index is None else len(frame_index)} rows, so its item ids can't be "
        "mapped to the frame's index labels; call query() on the frame the index was built from"
    )


def check_same_rows(idx: AnnoyIndex, index: pd.Index, where: str) -> None:
    """neighbors(index=...) searches among the frame's own rows: item i must be row i."""
    n_items = idx.get_n_items()
    if n_items != len(index):
        raise ValueError(
            f"{where} holds {n_items} items but the frame has {len(index)} rows; "
            "neighbors(index=...) needs the index built from this frame "
            "(use query() to search an index built from other rows)"
        )
    labels = idx.labels
    if labels is None:
        return
    keys = gensim_keys(idx)
    codec = None if keys is not None else pandas_label_codec(idx, labels)
    if codec is not None:
        mine, my_codec = encode_labels(index)
        if my_codec["codec"] == codec.get("codec") and _all_equal(mine, labels):
            return  # the common case: the frame that built the file, compared encoded
        theirs = decode_pandas_labels(idx.path, labels, codec)
    else:
        theirs = pd.Index(labels if keys is None else keys, dtype=object)
        if _all_equal(index.to_numpy(dtype=object), theirs.to_numpy(dtype=object)):
            return
    # Equal values in another dtype (Int64 for int64, category for str) are the same rows;
    # compared as the codec's JSON text, so that 1 and 1.0, or '0' and 0, stay different.
    differ = _differing(index, theirs)
    if differ is None:
        return
    frame_label, file_label = index[differ], theirs[differ]
    raise ValueError(
        f"the frame's index doesn't match the labels of {where} "
        f"(first difference at position {differ}: frame {frame_label!r}, "
        f"index file {file_label!r}{_type_only(frame_label, file_label)}); "
        "neighbors(index=...) needs the index built from this frame, with its rows in the "
        "same order"
    )


def _all_equal(a: Any, b: Any) -> bool:
    try:
        return bool((np.asarray(a, dtype=object) == np.asarray(b, dtype=object)).all())
    except TypeError:  # pd.NA compares as NA, which has no truth value
        return False


def _differing(index: pd.Index, theirs: pd.Index) -> int | None:
    """Position of the first label that differs in value, else None."""
    mine = index.to_flat_index() if isinstance(index, pd.MultiIndex) else index
    other = theirs.to_flat_index() if isinstance(theirs, pd.MultiIndex) else theirs
    a_values, b_values = mine.to_numpy(dtype=object), other.to_numpy(dtype=object)
    kind = pd.api.types.infer_dtype(a_values, skipna=False)
    if kind in ("integer", "string", "boolean") and kind == pd.api.types.infer_dtype(
        b_values, skipna=False
    ):
        # Labels all of one kind (no NaN): == compares them exactly, fast.
        differ = np.flatnonzero(~(a_values == b_values))
        return int(differ[0]) if differ.size else None
    for pos, (a, b) in enumerate(zip(a_values, b_values, strict=True)):
        if a is b:
            continue
        try:
            if _dumps(a) == _dumps(b):
                continue
        except TypeError:  # a label type the codec can't write: not the file's
            pass
        return pos
    return None


def _type_only(a: Any, b: Any) -> str:
    """``"; they differ only in type, ..."`` when two labels read the same but are not equal."""
    if str(a) != str(b) or type(a).__name__ == type(b).__name__:
        return ""
    return (
        f"; they differ only in type, {type(a).__name__} in the frame and "
        f"{type(b).__name__} in the file"
    )
