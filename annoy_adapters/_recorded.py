"""What the adapters record in an index file for each other: its columns and its labels' codec.

Every adapter keeps its own metadata section.  This module is the one place that knows where
each of them records the columns a file was built from, and how pandas encodes labels that are
not plain str or int, so a file built by any adapter answers the same through every other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from annoy_adapters import AnnoyIndex, IndexFileError
from annoy_adapters._checks import shown

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "corrupted",
    "decode_pandas_labels",
    "decoded_labels",
    "gensim_keys",
    "gensim_section",
    "label_ends",
    "metadata_field",
    "metadata_section",
    "pandas_label_codec",
    "pandas_section",
    "recorded_columns",
]

#: Where the other adapters record the names of the columns (one per dimension) an index was
#: built from: scikit-learn's ``feature_names_in_`` (fitted on a DataFrame), the CLI's table.
OTHER_COLUMN_NAMES = (("sklearn", "feature_names_in_"), ("cli", "columns"))

_PANDAS_HINT = 'decoding its labels needs pandas: pip install "annoy-adapters[pandas]"'


#: What decoding a JSON-encoded name or label raises on values no adapter writes (unknown
#: tags, malformed payloads, Decimal's InvalidOperation is an ArithmeticError).
_DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, ArithmeticError)


def corrupted(
    index: AnnoyIndex, section: str, field: str, expected: str, got: Any
) -> IndexFileError:
    """The error for a metadata value no adapter writes, naming the file, the section and
    field, what was expected and what came (the file loaded: only its metadata is wrong)."""
    where = repr(index.path) if index.path else "the index"
    return IndexFileError(
        f"{where} is corrupted: {field!r} in its metadata {section!r} section must be "
        f"{expected} (got {shown(got)})"
    )


def metadata_section(index: AnnoyIndex, name: str) -> dict[str, Any] | None:
    """``metadata[name]`` when it is an adapter's record (a dict), else None.

    The metadata is the user's dict too: ``{"pandas": "3.1.1"}`` (a package version) is not
    the pandas adapter's record, and readers that ignored it before must keep doing so.
    """
    section = index.metadata.get(name)
    return section if isinstance(section, dict) else None


def metadata_field(
    index: AnnoyIndex,
    section: str,
    meta: dict[str, Any],
    field: str,
    ok: Callable[[Any], bool],
    expected: str,
    default: Any = None,
) -> Any:
    """``meta[field]`` (``default`` when absent), refused unless ``ok(value)``."""
    if field not in meta:
        return default
    value = meta[field]
    if not ok(value):
        raise corrupted(index, section, field, expected, value)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def pandas_section(index: AnnoyIndex) -> dict[str, Any] | None:
    """``metadata["pandas"]``, also in a file another adapter re-saved (they keep sections).

    Every field the adapters read is checked here, so that a hostile file fails on load with
    an IndexFileError instead of a TypeError deep in the decoding.
    """
    meta = metadata_section(index, "pandas")
    if meta is None:
        return None
    whole = metadata_field(
        index, "pandas", meta, "vector_column", lambda v: isinstance(v, bool), "a bool", False
    )
    columns = meta.get("columns")
    if columns is not None and not (
        isinstance(columns, list) and len(columns) == (1 if whole else index.f)
    ):
        # names that cannot be this index's columns (copied from another index's metadata,
        # say) are no record of them: ignored, as readers always have
        meta = {k: v for k, v in meta.items() if k != "columns"}
    codec = metadata_field(
        index, "pandas", meta, "index", lambda v: isinstance(v, dict), "a dict (the label codec)"
    )
    if codec is not None:
        _check_codec(index, codec)
    return meta


def _check_codec(index: AnnoyIndex, codec: dict[str, Any]) -> None:
    """The pandas label codec's fields (see ``_pandas_codec.encode_labels``), before any use."""

    def field(name: str, ok: Callable[[Any], bool], expected: str, default: Any = None) -> Any:
        if name not in codec:
            return default
        if not ok(codec[name]):
            raise corrupted(index, "pandas", f"index.{name}", expected, codec[name])
        return codec[name]

    kind = codec.get("codec")
    if kind not in ("int", "str", "json"):
        raise corrupted(index, "pandas", "index.codec", "'int', 'str' or 'json'", kind)
    one_level = kind != "json"  # int and str codecs encode a flat index
    nlevels = field(
        "nlevels",
        lambda v: _is_int(v) and (v == 1 if one_level else v >= 1),
        "1" if one_level else "a positive int",
        1,
    )
    sized = f"a list of {nlevels} (one per level)"
    field("names", lambda v: isinstance(v, list) and len(v) == nlevels, sized)
    dtypes = field(
        "dtypes", lambda v: _is_str_list(v) and len(v) == nlevels, f"{sized} dtype names", []
    )
    cats = field(
        "categories",
        lambda v: v is None or (isinstance(v, list) and len(v) == len(dtypes)),
        f"null or a list of {len(dtypes)} (one per dtype)",
    )
    for spec in cats or []:
        if spec is not None and not (
            isinstance(spec, dict)
            and isinstance(spec.get("values"), list)
            and isinstance(spec.get("dtype"), str)
            and isinstance(spec.get("ordered"), bool)
        ):
            raise corrupted(
                index,
                "pandas",
                "index.categories",
                "entries null or {'values': list, 'dtype': str, 'ordered': bool}",
                spec,
            )
    field(
        "ends",
        lambda v: isinstance(v, list) and len(v) in (0, 2),
        "a list of the first and last label",
    )


def _decoded(index: AnnoyIndex, section: str, field: str, values: list[Any]) -> list[Any]:
    """JSON-encoded names (pandas' codec) decoded, as an IndexFileError when they can't be."""
    if all(isinstance(v, str) for v in values):
        return values  # nothing to decode, and no need for pandas
    from annoy_adapters._pandas_codec import from_jsonable

    try:
        return [from_jsonable(v) for v in values]
    except _DECODE_ERRORS as exc:
        reason = f"JSON-encoded values ({type(exc).__name__}: {exc})"
        raise corrupted(index, section, field, reason, values) from None


def decode_pandas_labels(path: str | None, labels: Any, codec: dict[str, Any]) -> pd.Index:
    """``_pandas_codec.decode_labels``, as an IndexFileError naming the file for labels that
    are not the codec's (labels are decoded when found, so they are not checked on load)."""
    from annoy_adapters._pandas_codec import decode_labels

    try:
        return decode_labels(labels, codec)
    except _DECODE_ERRORS as exc:
        where = repr(path) if path else "the index"
        raise IndexFileError(
            f"{where} is corrupted: its labels don't decode with the pandas label codec of "
            f"its metadata ({type(exc).__name__}: {exc})"
        ) from None


def recorded_columns(index: AnnoyIndex) -> tuple[list[Any], bool] | None:
    """``(columns, vector_column)``: the table columns the file was built from, or None.

    The pandas section's (any hashable names, and whether one column holds whole vectors),
    else scikit-learn's or the CLI's (one str name per dimension).
    """
    meta = pandas_section(index)
    if meta is not None and "columns" in meta:  # checked by pandas_section
        names = _decoded(index, "pandas", "columns", meta["columns"])
        try:  # 1 and True are different column names, hence the type
            unique = len({(type(c).__name__, c) for c in names}) == len(names)
        except TypeError:  # Decimal("sNaN") does not hash
            unique = False
        if not unique:
            raise corrupted(index, "pandas", "columns", "distinct hashable names", meta["columns"])
        return names, meta.get("vector_column", False)
    for adapter, key in OTHER_COLUMN_NAMES:
        section = metadata_section(index, adapter)
        if section is None or section.get(key) is None:  # the CLI records none for a .npy
            continue
        whole = section.get("vector_column")
        if not (whole is None or isinstance(whole, bool)):
            continue  # no record this reader can use (the user's own, or another index's)
        names = section[key]
        if whole is None and isinstance(names, list):
            # older CLI files: one name for several dimensions is a list column
            whole = len(names) == 1 and index.f > 1
        want = 1 if whole else index.f
        if not (_is_str_list(names) and len(names) == want):
            continue  # no record of this index's columns (copied from another, say)
        return list(names), bool(whole)
    return None


def label_ends(labels: np.ndarray) -> list[Any]:
    """First and last label as JSON values: a cheap fingerprint of the labels."""
    from annoy_adapters._pandas_codec import to_jsonable

    if len(labels) == 0:
        return []
    return [to_jsonable(labels[0]), to_jsonable(labels[-1])]


def gensim_section(index: AnnoyIndex) -> dict[str, Any] | None:
    """``metadata["gensim"]`` with the fields that decode its keys checked (gensim.py checks
    its settings); None when absent."""
    meta = metadata_section(index, "gensim")
    if meta is None:
        return None
    metadata_field(
        index,
        "gensim",
        meta,
        "int_key_runs",
        lambda v: v is None or (isinstance(v, list) and all(map(_is_run, v))),
        "a list of [start, stop] pairs of ints with 0 <= start < stop",
    )
    metadata_field(
        index,
        "gensim",
        meta,
        "label_ends",
        lambda v: v is None or (_is_str_list(v) and len(v) in (0, 2)),
        "a list of the first and last label (str)",
    )
    return meta


def _is_run(run: Any) -> bool:
    return (
        isinstance(run, list) and len(run) == 2 and all(map(_is_int, run)) and 0 <= run[0] < run[1]
    )


def gensim_keys(index: AnnoyIndex, labels: np.ndarray) -> np.ndarray | None:
    """gensim's keys when ``labels`` are gensim's text for int keys (mixed tags, ints beyond
    int64), else None.

    gensim writes its section and its labels together and pandas never re-saves a file, so
    when the section's fingerprint matches the labels they are gensim's, even in a file pandas
    built first.
    """
    meta = gensim_section(index)
    if meta is None or np.asarray(labels).dtype.kind in "iu":
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
    fingerprint wins: see `gensim_keys`).
    """
    if gensim_keys(index, labels) is not None:
        return None
    meta = pandas_section(index)
    codec = meta.get("index") if meta else None
    if codec is None:
        return None
    try:
        ends = label_ends(labels)
    except ImportError:
        raise ImportError(
            f"{index.path or 'the index'} was built by pandas: {_PANDAS_HINT}"
        ) from None
    if codec.get("ends") != ends:
        return None
    # the codec is in use: what it decodes besides the labels must decode too
    int_labels = np.asarray(labels).dtype.kind in "iu"
    if len(labels) and (codec["codec"] == "int") != int_labels:
        kind = "int" if int_labels else "str"
        raise corrupted(
            index, "pandas", "index.codec", f"the codec of {kind} labels", codec["codec"]
        )
    _decoded(index, "pandas", "index.names", codec.get("names", []))
    for spec in codec.get("categories") or []:
        if spec is not None:
            _decoded(index, "pandas", "index.categories", spec["values"])
    return codec


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
    return decode_pandas_labels(index.path, labels, codec)
