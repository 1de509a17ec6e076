"""Lossless, pickle-free encoding of pandas index labels for the index file.

The core stores one label per item, and only ``str`` or ``int`` labels. A
pandas index can hold any hashable: datetimes, floats, tuples of a
MultiIndex, or a mix. This module maps an index to core labels plus a small
JSON description (the *codec*), stored in the file's metadata, and back.

Codecs
------
``"int"``
    Integer or boolean index: labels are the integers themselves.
``"str"``
    Index of strings without missing values: labels are the strings.
``"json"``
    Anything else: each label is a compact JSON text. Tuples become JSON
    arrays; values JSON lacks become one-key objects whose key starts with
    ``$`` (``{"$ts": [iso, tz]}`` for a timestamp, ...). Labels are hashable,
    so they are never lists or dicts, which keeps the decoding unambiguous.

The first two keep labels readable by the other adapters (gensim keys,
``AnnoyIndex.ids_for``); the JSON form is the fallback that never loses
information.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import json
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "decode_labels",
    "encode_labels",
    "from_jsonable",
    "to_json_metadata",
    "to_jsonable",
]

_INT64_MAX = np.iinfo(np.int64).max


def _tz_name(tz: Any) -> str | None:
    """Name of a named time zone (zoneinfo, pytz, dateutil), or None for fixed offsets."""
    if tz is None:
        return None
    for attr in ("key", "zone"):
        name = getattr(tz, attr, None)
        if isinstance(name, str):
            return name
    return _dateutil_name(tz)


def _dateutil_name(tz: Any) -> str | None:
    """``"dateutil/<zone>"`` (pandas' own spelling) for a dateutil zone read from a tz file.

    dateutil zones only know their file's path; the zone name is that path relative to
    the system's zoneinfo folder, or the bare name for dateutil's bundled zones.
    """
    try:
        from dateutil import tz as dateutil_tz
    except ImportError:  # pragma: no cover - dateutil is a pandas dependency
        return None
    filename = getattr(tz, "_filename", None)
    if not isinstance(tz, dateutil_tz.tzfile) or not isinstance(filename, str):
        return None
    for folder in _zoneinfo_folders(dateutil_tz):
        if filename.startswith(folder.rstrip("/") + "/"):
            return "dateutil/" + filename[len(folder.rstrip("/")) + 1 :]
    # A relative name came from dateutil's bundled zones; any other path is machine-specific.
    return None if filename.startswith("/") else "dateutil/" + filename


def _zoneinfo_folders(dateutil_tz: Any) -> Sequence[str]:
    """The folders dateutil reads zone files from: ``tz.TZPATH`` in dateutil 4,
    ``tz.tz.TZPATHS`` before."""
    folders = getattr(dateutil_tz, "TZPATH", None)
    if folders is None:
        folders = getattr(getattr(dateutil_tz, "tz", None), "TZPATHS", ())
    return tuple(folders)


def to_jsonable(value: Any) -> Any:
    """Turn one label (or column name) into a JSON-serialisable value.

    Parameters
    ----------
    value : hashable
        A label: str, int, float, bool, None, tuple, timestamp, timedelta,
        date, time, period, Decimal, bytes, complex, or a NumPy scalar of these.

    Returns
    -------
    object
        A value ``json.dumps`` accepts; `from_jsonable` reverses it.

    Raises
    ------
    TypeError
        For a label type with no lossless encoding.

    Examples
    --------
    >>> import pandas as pd
    >>> to_jsonable(("a", 1))
    ['a', 1]
    >>> from_jsonable(to_jsonable(pd.Timestamp("2024-05-01", tz="UTC")))
    Timestamp('2024-05-01 00:00:00+0000', tz='UTC')
    """
    # Order matters: bool before int, NaT before datetime (NaT subclasses it).
    if value is None or isinstance(value, str | bool):
        return str(value) if isinstance(value, str) else value
    if value is pd.NaT:
        return {"$nat": None}
    if value is pd.NA:
        return {"$na": None}
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            return {"$nat": None} if np.isnat(value) else to_jsonable(pd.Timestamp(value))
        if isinstance(value, np.timedelta64):
            return {"$nat": None} if np.isnat(value) else to_jsonable(pd.Timedelta(value))
        return to_jsonable(value.item())
    if isinstance(value, int | float):
        return value  # json writes NaN/Infinity tokens and reads them back exactly
    if isinstance(value, tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, _dt.datetime):
        ts = pd.Timestamp(value)
        if ts.tzinfo is None:
            return {"$ts": [ts.isoformat(), None]}
        # Wall time in UTC plus the zone: historic offsets (LMT, seconds) don't parse back
        # from ISO text, and a zone name keeps DST rules that an offset would lose.
        utc = ts.tz_convert("UTC").tz_localize(None).isoformat()
        zone = _tz_name(ts.tzinfo)
        return {"$ts": [utc, zone if zone is not None else ts.utcoffset().total_seconds()]}
    if isinstance(value, _dt.timedelta):
        return {"$td": int(pd.Timedelta(value).as_unit("ns").value)}
    if isinstance(value, _dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, _dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, pd.Period):
        return {"$period": [str(value), value.freqstr]}
    if isinstance(value, decimal.Decimal):
        return {"$dec": str(value)}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, complex):
        return {"$complex": [value.real, value.imag]}
    raise TypeError(
        f"label {value!r} of type {type(value).__name__} can't be stored in the index file; "
        "supported label types: str, int, float, bool, None, tuple, datetime, timedelta, "
        "date, time, Period, Decimal, bytes, complex"
    )


def _from_tag(tag: str, payload: Any) -> Any:
    if tag == "$ts":
        iso, tz = payload
        ts = pd.Timestamp(iso)
        if tz is None:
            return ts
        if not isinstance(tz, str):
            tz = _dt.timezone(_dt.timedelta(seconds=tz))
        return ts.tz_localize("UTC").tz_convert(tz)
    if tag == "$td":
        return pd.Timedelta(int(payload), unit="ns")
    if tag == "$date":
        return _dt.date.fromisoformat(payload)
    if tag == "$time":
        return _dt.time.fromisoformat(payload)
    if tag == "$period":
        return pd.Period(payload[0], freq=payload[1])
    if tag == "$dec":
        return decimal.Decimal(payload)
    if tag == "$bytes":
        return base64.b64decode(payload)
    if tag == "$complex":
        return complex(payload[0], payload[1])
    if tag == "$nat":
        return pd.NaT
    if tag == "$na":
        return pd.NA
    if tag == "$json":
        return from_jsonable(json.loads(payload))
    raise ValueError(f"unknown label tag {tag!r} in the index file's labels")


def from_jsonable(value: Any) -> Any:
    """Reverse `to_jsonable`.

    Examples
    --------
    >>> from_jsonable(["a", 1])
    ('a', 1)
    """
    if isinstance(value, list):
        return tuple(from_jsonable(v) for v in value)
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError(f"malformed label {value!r} in the index file")
        ((tag, payload),) = value.items()
        return _from_tag(tag, payload)
    return value


def _dumps(value: Hashable) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False)


def to_json_metadata(value: Any) -> Any:
    """`to_jsonable` for values stored in the metadata (column names, categories).

    The metadata must be strict JSON, which has no NaN or Infinity; a value holding one is
    stored as its label text (what a ``"json"`` codec label would be) under ``"$json"``.
    `from_jsonable` reverses both forms.

    Examples
    --------
    >>> to_json_metadata("x"), to_json_metadata(float("nan"))
    ('x', {'$json': 'NaN'})
    >>> from_jsonable(to_json_metadata(("a", float("inf"))))
    ('a', inf)
    """
    encoded = to_jsonable(value)
    try:
        json.dumps(encoded, allow_nan=False)
    except ValueError:
        return {"$json": _dumps(value)}
    return encoded


def encode_labels(index: pd.Index) -> tuple[np.ndarray, dict[str, Any]]:
    """Encode a pandas index as core labels plus the codec description.

    Parameters
    ----------
    index : pandas.Index
        The frame's index (a MultiIndex too).

    Returns
    -------
    labels : numpy.ndarray
        int64 or object (str) array, one label per row, for ``AnnoyIndex.set_labels``.
    codec : dict
        JSON-serialisable: ``{"codec", "nlevels", "names", "dtypes"}``, plus ``"categories"``
        for categorical levels; store it in the metadata and pass it to `decode_labels`.

    Examples
    --------
    >>> import pandas as pd
    >>> labels, codec = encode_labels(pd.Index([1.5, 2.0]))
    >>> list(labels), codec["codec"]
    (['1.5', '2.0'], 'json')
    >>> decode_labels(labels, codec)
    Index([1.5, 2.0], dtype='float64')
    """
    level_dtypes = _level_dtypes(index)
    codec: dict[str, Any] = {
        "nlevels": int(index.nlevels),
        "names": [to_json_metadata(name) for name in index.names],
        "dtypes": [_dtype_text(dtype) for dtype in level_dtypes],
    }
    if any(isinstance(dtype, pd.CategoricalDtype) for dtype in level_dtypes):
        # "category" alone can't rebuild the categories the found labels don't show.
        codec["categories"] = [_categories(dtype) for dtype in level_dtypes]
    dtype = index.dtype
    if not isinstance(index, pd.MultiIndex) and isinstance(dtype, np.dtype):
        if dtype.kind in "bi" or (
            dtype.kind == "u" and (len(index) == 0 or index.max() <= _INT64_MAX)
        ):
            codec["codec"] = "int"
            return index.to_numpy(dtype=np.int64), codec
    if (
        not isinstance(index, pd.MultiIndex)
        and not index.hasnans
        and (
            index.inferred_type == "string"
            or (len(index) == 0 and pd.api.types.is_string_dtype(dtype))
        )
    ):
        codec["codec"] = "str"
        return index.to_numpy(dtype=object), codec
    codec["codec"] = "json"
    # One json.dumps per label is unavoidable for arbitrary Python objects; it only runs
    # when an index is saved, never on the neighbors()/query() hot path.
    values = index.to_flat_index() if isinstance(index, pd.MultiIndex) else index
    return np.array([_dumps(v) for v in values], dtype=object), codec


def _level_dtypes(index: pd.Index) -> list[Any]:
    if isinstance(index, pd.MultiIndex):
        return list(index.dtypes)
    return [index.dtype]


def _dtype_text(dtype: Any) -> str:
    """The dtype's name, spelling a dateutil zone so that ``astype`` parses it back."""
    if isinstance(dtype, pd.DatetimeTZDtype):
        zone = _dateutil_name(dtype.tz)
        if zone is not None:
            return f"datetime64[{dtype.unit}, {zone}]"
    if isinstance(dtype, pd.StringDtype) and str(dtype) == "string":
        # "string" alone reads back in the default storage (pyarrow when installed).
        return f"string[{dtype.storage}]"
    return str(dtype)


def _categories(dtype: Any) -> dict[str, Any] | None:
    """A categorical level's categories (JSON-encoded), their dtype and order, else None."""
    if not isinstance(dtype, pd.CategoricalDtype):
        return None
    return {
        "values": [to_json_metadata(c) for c in dtype.categories],
        "dtype": _dtype_text(dtype.categories.dtype),
        "ordered": bool(dtype.ordered),
    }


def _categorical_dtype(spec: dict[str, Any]) -> pd.CategoricalDtype:
    values = pd.Index([from_jsonable(c) for c in spec["values"]], dtype=object)
    return pd.CategoricalDtype(_restore_dtype(values, spec["dtype"]), bool(spec["ordered"]))


def _restore_dtype(
    values: pd.Index, dtype: str, categories: dict[str, Any] | None = None
) -> pd.Index:
    try:
        return values.astype(_categorical_dtype(categories) if categories else dtype)
    except (TypeError, ValueError, KeyError, ImportError, NotImplementedError):
        if dtype.startswith("string["):
            # A storage this environment lacks (no pyarrow): the default one.
            return _restore_dtype(values, "string")
        # A dtype this pandas can't rebuild from its name (or values it refuses):
        # the labels themselves are exact, only the container dtype differs.
        return values


def decode_labels(labels: Sequence[Any] | np.ndarray, codec: dict[str, Any]) -> pd.Index:
    """Decode core labels written by `encode_labels` back to a pandas index.

    Parameters
    ----------
    labels : array-like
        All labels of the file, or any subset of them (e.g. only the neighbours found).
    codec : dict
        The codec description stored in the metadata.

    Returns
    -------
    pandas.Index
        With the original dtype(s) and names; a MultiIndex for several levels.

    Examples
    --------
    >>> import pandas as pd
    >>> idx = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["x", "y"])
    >>> labels, codec = encode_labels(idx)
    >>> decode_labels(labels, codec).equals(idx)
    True
    """
    kind = codec.get("codec")
    names = [from_jsonable(n) for n in codec.get("names", [None])]
    dtypes = codec.get("dtypes", [])
    # Older files have no categories: their categorical levels get the labels' own.
    categories = codec.get("categories") or [None] * len(dtypes)
    if kind in ("int", "str"):
        out = pd.Index(np.asarray(labels, dtype=np.int64 if kind == "int" else object))
        if dtypes:
            out = _restore_dtype(out, dtypes[0], categories[0])
        return out.rename(names[0])
    if kind != "json":
        raise ValueError(f"unknown pandas label codec {kind!r} in the index file's metadata")
    values = [from_jsonable(json.loads(s)) for s in labels]
    if codec.get("nlevels", 1) > 1:
        if not values:
            return pd.MultiIndex.from_arrays([[]] * len(names), names=names)
        mi = pd.MultiIndex.from_tuples(values, names=names)
        levels = [
            _restore_dtype(mi.levels[i], dt, cats)
            for i, (dt, cats) in enumerate(zip(dtypes, categories, strict=False))
        ]
        try:
            return mi.set_levels(levels, verify_integrity=False)
        except (TypeError, ValueError):
            return mi
    out = pd.Index(values, dtype=object, name=names[0])
    if dtypes and dtypes[0] != "object":
        out = _restore_dtype(out, dtypes[0], categories[0])
    return out
