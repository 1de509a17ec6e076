"""Encode gensim keys (``index_to_key``) as core labels and back.

The core stores per-item labels that are all ``str`` or all ``int``. gensim keys are ``str``
words, ``int`` document tags, or, for a Doc2Vec model trained with both kinds of tags, a mix of
the two (gensim puts the plain int tags first, as positions ``0..max_tag``, then the string tags).

A mix is stored as ``str`` labels plus the runs of positions that held ints, as half-open
``[start, stop)`` pairs in the file's metadata (one pair for gensim's usual layout), so that a
reloaded index gives back ``3`` and not ``"3"``. Int keys beyond int64 (``2**63``, which int
labels cannot hold) are stored the same way, as text marked int, and come back as the same
Python ints. No pickle is involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["decode_keys", "encode_keys", "int_tagged_keys", "key_kind", "plain_keys"]

_INT_TYPES = (int, np.integer)
_STR_TYPES = (str, np.str_)


def key_kind(keys: Sequence[Any]) -> str:
    """Classify keys as ``"str"``, ``"int"`` or ``"mixed"``.

    Parameters
    ----------
    keys : sequence
        gensim's ``index_to_key``.

    Returns
    -------
    str
        ``"str"``, ``"int"`` or ``"mixed"`` (an empty sequence is ``"str"``).

    Raises
    ------
    TypeError
        If a key is neither ``str`` nor ``int`` (bool counts as neither).

    Examples
    --------
    >>> key_kind(["cat", "dog"]), key_kind([0, 1]), key_kind([0, "doc1"])
    ('str', 'int', 'mixed')
    """
    # One C-level pass over the types; runs once per build/save, never per query.
    types = set(map(type, keys))
    is_str = is_int = False
    for t in types:
        if issubclass(t, _STR_TYPES):
            is_str = True
        elif issubclass(t, _INT_TYPES) and not issubclass(t, (bool, np.bool_)):
            is_int = True
        else:
            bad = next(k for k in keys if type(k) is t)
            raise TypeError(
                "the index file can store str or int keys only "
                f"(got a key of type {t.__name__}: {bad!r})"
            )
    if is_str and is_int:
        return "mixed"
    return "int" if is_int else "str"


def _int_runs(mask: np.ndarray) -> list[list[int]]:
    """Half-open ``[start, stop)`` runs where ``mask`` is True."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return [[int(a), int(b)] for a, b in zip(starts, stops, strict=True)]


def encode_keys(keys: Sequence[Any]) -> tuple[list[str] | np.ndarray, dict[str, Any]]:
    """Turn gensim keys into core labels plus the metadata needed to decode them.

    Parameters
    ----------
    keys : sequence of str or int
        gensim's ``index_to_key``, in item-id order.

    Returns
    -------
    labels : list of str or numpy.ndarray of int64
        What to pass to ``AnnoyIndex.set_labels``.
    meta : dict
        ``{"key_type": "str" | "int" | "mixed"}``, plus ``"int_key_runs"`` and ``"label_ends"``
        when the labels are text holding ints: for ``"mixed"``, and for ``"int"`` keys that
        int64 labels cannot hold (then the labels are ``str``).

    Raises
    ------
    TypeError
        If a key is neither ``str`` nor ``int``.
    ValueError
        If a mixed set of keys has an int ``k`` and the string ``str(k)``: both would be stored
        as the same label.

    Examples
    --------
    >>> labels, meta = encode_keys([0, 1, "doc0"])
    >>> labels
    ['0', '1', 'doc0']
    >>> meta
    {'key_type': 'mixed', 'int_key_runs': [[0, 2]], 'label_ends': ['0', 'doc0']}
    >>> decode_keys(labels, meta)
    [0, 1, 'doc0']
    """
    kind = key_kind(keys)
    if kind == "int":
        try:
            return np.asarray(keys, dtype=np.int64), {"key_type": "int"}
        except OverflowError:
            # a key beyond int64 (e.g. 2**63): int labels cannot hold it, so every key is
            # stored as its text, marked int, and read back as the same Python int
            labels = [str(k) for k in keys]
            return labels, {
                "key_type": "int",
                "int_key_runs": [[0, len(labels)]],
                "label_ends": [labels[0], labels[-1]],
            }
    if kind == "str":
        return [str(k) for k in keys], {"key_type": "str"}
    is_int = np.fromiter((isinstance(k, _INT_TYPES) for k in keys), dtype=bool, count=len(keys))
    labels = [str(k) for k in keys]
    if len(set(labels)) != len(labels):
        raise ValueError(_collision_message(keys, labels))
    meta = {"key_type": "mixed", "int_key_runs": _int_runs(is_int)}
    # which labels the runs describe: another adapter may replace the labels and keep this
    # section (the core keeps metadata), and runs applied to other labels would misread them
    meta["label_ends"] = [labels[0], labels[-1]] if labels else []
    return labels, meta


def _collision_message(keys: Sequence[Any], labels: list[str]) -> str:
    """Why ``keys`` cannot be stored: the first two of them that share one label."""
    seen: dict[str, int] = {}
    for pos, label in enumerate(labels):
        if label in seen:
            first = seen[label]
            break
        seen[label] = pos
    else:  # pragma: no cover - only called when two labels are equal
        raise AssertionError("no two keys share a label")
    a, b = keys[first], keys[pos]
    where = f"at positions {first} and {pos}"
    if isinstance(a, _INT_TYPES) == isinstance(b, _INT_TYPES):
        return f"the keys hold {_key_repr(a)} twice ({where}); keys must be unique"
    int_key, str_key = (a, b) if isinstance(a, _INT_TYPES) else (b, a)
    return (
        "keys mix int and str tags where an int tag k and the str tag str(k) both occur "
        f"(first: {_key_repr(int_key)} and {_key_repr(str_key)}, {where}); the index file cannot "
        "tell them apart (rename the str tags)"
    )


def _key_repr(key: Any) -> str:
    """``repr`` of a key as a plain Python value (``5``, not ``np.int64(5)``): the key as the
    user wrote it, without the type the adapters' ``shown`` gives a rejected value (the
    message pairs an int key with its str twin, ``1 and '1'``)."""
    return repr(int(key) if isinstance(key, _INT_TYPES) else str(key))


def decode_keys(
    labels: Sequence[Any] | np.ndarray | None, meta: dict[str, Any] | None, n_items: int = 0
) -> list[Any]:
    """Turn core labels (and the gensim metadata) back into gensim keys.

    Parameters
    ----------
    labels : sequence or numpy.ndarray or None
        ``AnnoyIndex.labels``. None (a file without labels) gives the item ids as keys.
    meta : dict or None
        ``metadata["gensim"]`` as written by `encode_keys`; None for foreign files.
    n_items : int, default 0
        ``get_n_items()``, used when ``labels`` is None.

    Returns
    -------
    list
        Keys in item-id order, as Python ``str`` / ``int`` objects.

    Examples
    --------
    >>> decode_keys(None, None, n_items=3)
    [0, 1, 2]
    >>> decode_keys(np.array([7, 8]), {"key_type": "int"})
    [7, 8]
    """
    if labels is None:
        return list(range(n_items))
    arr = np.asarray(labels)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64).tolist()
    keys = int_tagged_keys(labels, meta)
    return np.asarray(labels, dtype=object).tolist() if keys is None else keys


def int_tagged_keys(
    labels: Sequence[Any] | np.ndarray, meta: dict[str, Any] | None
) -> list[Any] | None:
    """The keys of str ``labels`` whose int runs ``meta`` records, or None if it records none.

    This is how another adapter tells gensim's text labels of int keys (mixed tags, ints beyond
    int64) from plain str labels: None when ``meta`` has no ``int_key_runs``, or when its
    ``label_ends`` show the runs describe other labels (the labels were replaced since).

    Parameters
    ----------
    labels : sequence of str or numpy.ndarray
        ``AnnoyIndex.labels`` of a file with str labels.
    meta : dict or None
        The file's ``metadata["gensim"]``.

    Returns
    -------
    list or None
        Keys in item-id order (Python ``int`` where the runs say so, else ``str``), or None.

    Examples
    --------
    >>> labels, meta = encode_keys([0, 1, "doc2"])
    >>> int_tagged_keys(labels, meta)
    [0, 1, 'doc2']
    >>> int_tagged_keys(["a", "b"], {"key_type": "str"}) is None
    True
    """
    keys = np.asarray(labels, dtype=object)
    ints = _int_keys(keys, meta or {})
    if ints is None:
        return None
    keys = keys.copy()
    for (start, stop), values in ints:
        keys[start:stop] = values
    return keys.tolist()


def plain_keys(values: Sequence[Any] | np.ndarray, where: str) -> list[Any]:
    """``values`` as gensim keys: Python ``str`` and ``int`` objects, in the same order.

    Parameters
    ----------
    values : sequence, numpy.ndarray or pandas.Index
        Labels another adapter decoded (e.g. a pandas index read back from the file).
    where : str
        What holds them, for the error message (e.g. the file's path).

    Returns
    -------
    list
        The values, NumPy scalars turned into the equal Python ``str`` / ``int``.

    Raises
    ------
    ValueError
        If a value is not a str or an int (bool, float, timestamp, tuple, missing...), naming
        the first such value, its position and `where`.

    Examples
    --------
    >>> plain_keys(np.array([3, 4]), "f.annoy")
    [3, 4]
    >>> plain_keys([0.5], "f.annoy")
    Traceback (most recent call last):
    ...
    ValueError: 'f.annoy' holds labels that are not gensim keys: ...
    """
    keys = values.tolist() if hasattr(values, "tolist") else list(values)
    types = set(map(type, keys))
    if types <= {str, int}:
        return keys
    bad = {t for t in types if _not_a_key_type(t)}
    if bad:
        pos, value = next((i, k) for i, k in enumerate(keys) if type(k) in bad)
        raise ValueError(
            f"{where!r} holds labels that are not gensim keys: label {value!r} (item {pos}) is "
            f"a {type(value).__name__}, and gensim keys are str or int; build the file from "
            "str or int labels (with pandas, e.g. df.set_axis(df.index.astype(str))), or read "
            "it with annoy_adapters.pandas, which decodes them"
        )
    return [str(k) if isinstance(k, _STR_TYPES) else int(k) for k in keys]


def _not_a_key_type(t: type) -> bool:
    if issubclass(t, (bool, np.bool_)):
        return True
    return not issubclass(t, _STR_TYPES + _INT_TYPES)


def _int_keys(keys: np.ndarray, meta: dict[str, Any]) -> list[Any] | None:
    """The int keys the runs of ``meta`` mark, per run (as lists of Python ints), or None when
    the runs do not describe these labels (labels replaced since, or no runs): then every label
    is a str."""
    runs = meta.get("int_key_runs") or []
    ends = meta.get("label_ends")
    if not runs or (ends is not None and ends != ([keys[0], keys[-1]] if len(keys) else [])):
        return None
    out = []
    for run in runs:
        if not (isinstance(run, list) and len(run) == 2):
            return None
        start, stop = run
        if not (
            isinstance(start, int) and isinstance(stop, int) and 0 <= start < stop <= len(keys)
        ):
            return None
        ints = _canonical_ints(np.asarray(keys[start:stop], dtype=str))
        if ints is None:
            return None
        out.append(((start, stop), ints))
    return out


def _canonical_ints(text: np.ndarray) -> list[int] | None:
    """The Python ints ``text`` spells canonically, or None ("007" was a str key, not 7)."""
    try:
        values = text.astype(np.int64)  # one array operation for the usual keys
    except ValueError:
        return None
    except OverflowError:  # a key beyond int64 (e.g. 2**63): Python ints
        try:
            values = np.array([int(t) for t in text.tolist()], dtype=object)
        except ValueError:
            return None
    return values.tolist() if (values.astype(str) == text).all() else None
