"""Item labels (str or int keys) stored without pickle: int64, or UTF-8 bytes plus offsets."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _validate as check
from ._errors import IndexFileError


def normalize(labels: Sequence[Any] | np.ndarray, n_items: int) -> np.ndarray:
    """Validate labels: ``n_items`` of them, all str or all int, no duplicates."""
    arr = np.asarray(labels, dtype=object) if not isinstance(labels, np.ndarray) else labels
    if arr.ndim != 1 or len(arr) != n_items:
        raise ValueError(
            f"'labels' must be a 1-D sequence of get_n_items()={n_items} labels "
            f"(got shape {np.shape(arr)})"
        )
    if arr.dtype.kind == "U" or (arr.dtype == object and all(isinstance(v, str) for v in arr)):
        out = arr.astype(object)
    elif check.is_integer_array(arr):
        out = check.as_int64("labels", arr)  # uint64 from 2**63 up would wrap negative
    else:
        kinds = sorted({type(v).__name__ for v in arr.tolist()})
        raise TypeError(f"'labels' must be all str or all int (got {', '.join(kinds)})")
    uniq = len(set(out.tolist()))
    if uniq != len(out):
        raise ValueError(f"'labels' must be unique (got {len(out) - uniq} duplicates)")
    return out


def to_arrays(labels: np.ndarray) -> tuple[str, dict[str, np.ndarray]]:
    if labels.dtype == np.int64:
        return "int", {"labels_int": labels}
    encoded = [s.encode("utf-8", "surrogatepass") for s in labels.tolist()]
    lens = np.fromiter((len(b) for b in encoded), np.int64, len(encoded))
    ptr = np.concatenate([[0], np.cumsum(lens)]).astype("<i8")
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return "str", {"labels_ptr": ptr, "labels_utf8": blob}


def from_arrays(
    kind: Any, arrays: dict[str, np.ndarray], n_items: int, path: str = "pickle"
) -> np.ndarray | None:
    """Decode stored labels, validating every offset and their uniqueness (a bad file raises
    IndexFileError naming ``path``)."""
    return decode(kind, arrays, n_items, path)[0]


def decode(
    kind: Any, arrays: dict[str, np.ndarray], n_items: int, path: str = "pickle"
) -> tuple[np.ndarray | None, dict[Any, int] | None]:
    """`from_arrays`, and for str labels the label -> id lookup built to find a repeat
    (``ids_for`` needs it: built once, not twice)."""
    if kind is None:
        return None, None

    def bad(what: str) -> IndexFileError:
        return IndexFileError(f"{path}: corrupted labels ({what})")

    if kind == "int":
        lab = arrays.get("labels_int")
        if lab is None or lab.shape != (n_items,) or lab.dtype != np.int64:
            raise bad("int labels missing or of the wrong length")
        labels = np.array(lab)
        ordered = np.sort(labels)  # a repeat sits beside its twin: no hashing of every label
        if (ordered[1:] == ordered[:-1]).any():
            raise bad("a label repeats")
        return labels, None
    if kind == "str":
        ptr, blob = arrays.get("labels_ptr"), arrays.get("labels_utf8")
        if ptr is None or blob is None or ptr.shape != (n_items + 1,) or ptr.dtype != np.int64:
            raise bad("str label offsets missing or mis-sized")
        if blob.ndim != 1 or (
            n_items and (ptr[0] != 0 or ptr[-1] != len(blob) or (np.diff(ptr) < 0).any())
        ):
            raise bad("str label offsets out of range")
        raw = blob.tobytes()
        try:
            p = ptr.tolist()
            text = raw.decode("utf-8", "surrogatepass")
            if len(text) == len(raw):  # ASCII: byte offsets are character offsets, decode once
                out = [text[a:b] for a, b in itertools.pairwise(p)]
            else:
                out = [raw[a:b].decode("utf-8", "surrogatepass") for a, b in itertools.pairwise(p)]
            arr = np.empty(len(out), dtype=object)
            arr[:] = out
        except UnicodeDecodeError as exc:
            raise bad(str(exc)) from None
        lookup = {v: i for i, v in enumerate(out)}
        if len(lookup) != len(out):  # ids_for would answer one id for two items
            raise bad("a label repeats")
        return arr, lookup
    raise IndexFileError(f"{path}: corrupted manifest (unknown labels kind {kind!r})")
