"""Index labels of any hashable type survive encode -> (str | int labels) -> decode."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annoy_adapters._pandas_codec import decode_labels, encode_labels

INDEXES = {
    "range": pd.RangeIndex(5),
    "int-named": pd.Index([3, 1, 2], name="id"),
    "int8": pd.Index([1, -2], dtype="int8"),
    "uint64-big": pd.Index([2**63 + 5, 1], dtype="uint64"),
    "bool": pd.Index([True, False]),
    "str": pd.Index(["a", "b", "é", "日本", ""]),
    "str-object": pd.Index(["a", "b"], dtype=object),
    "str-with-nan": pd.Index(["a", None]),
    "float": pd.Index([1.5, np.nan, -0.0, np.inf, 1e-300]),
    "datetime-tz": pd.date_range("2021-03-28", periods=4, tz="Europe/Paris", freq="h"),
    "datetime-named": pd.date_range("2020-01-01", periods=3, freq="D", name="day"),
    "datetime-ns": pd.Index([pd.Timestamp("2020-01-01 00:00:00.000000001"), pd.NaT]),
    "timedelta": pd.timedelta_range("1s", periods=2),
    "period": pd.period_range("2020-01", periods=2, freq="M"),
    "multi": pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["x", "y"]),
    "multi-dates": pd.MultiIndex.from_product(
        [pd.date_range("2020", periods=2), ["u", "v"]], names=["t", None]
    ),
    "mixed": pd.Index([1, "a", 2.5, None, (1, "b")], dtype=object),
    "python-objects": pd.Index(
        [dt.date(2020, 1, 2), dt.time(1, 2, 3), decimal.Decimal("1.10"), b"\x00x", 1 + 2j],
        dtype=object,
    ),
    "empty": pd.Index([], dtype=object),
}


@pytest.mark.parametrize("name", list(INDEXES))
def test_round_trip_keeps_values_dtype_and_names(name):
    index = INDEXES[name]
    labels, codec = encode_labels(index)
    json.dumps(codec)  # the codec goes into the file's JSON metadata
    assert all(isinstance(v, str) for v in labels) or labels.dtype == np.int64
    back = decode_labels(labels, codec)
    assert back.equals(index)
    assert list(back.names) == list(index.names)
    assert back.dtype == index.dtype
    if isinstance(index, pd.MultiIndex):
        assert [lv.dtype for lv in back.levels] == [lv.dtype for lv in index.levels]
    # Element types survive too (1 and 1.0, str and bytes are different labels).
    assert [type(v) for v in back] == [type(v) for v in index]


def test_readable_codecs_for_ints_and_strings():
    labels, codec = encode_labels(pd.Index(["x", "y"]))
    assert codec["codec"] == "str" and list(labels) == ["x", "y"]
    labels, codec = encode_labels(pd.Index([10, 20]))
    assert codec["codec"] == "int" and labels.dtype == np.int64 and list(labels) == [10, 20]


def test_decoding_a_subset_in_any_order():
    index = pd.date_range("2020", periods=10, tz="UTC")
    labels, codec = encode_labels(index)
    ids = np.array([7, 2, 2])
    assert decode_labels(labels[ids], codec).equals(index.take(ids))


def test_unsupported_label_type_is_named():
    class Thing:
        __hash__ = object.__hash__

    with pytest.raises(TypeError, match="of type Thing can't be stored"):
        encode_labels(pd.Index([Thing()], dtype=object))


def test_unknown_codec_is_an_error():
    with pytest.raises(ValueError, match="unknown pandas label codec 'pickle'"):
        decode_labels(["x"], {"codec": "pickle"})


_scalars = st.one_of(
    st.text(max_size=5),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.datetimes(timezones=st.none() | st.timezones()).map(pd.Timestamp),
)
_labels = st.one_of(_scalars, st.tuples(_scalars, _scalars))


@settings(max_examples=60, deadline=None)
@given(st.lists(_labels, min_size=1, max_size=8))
def test_arbitrary_mixed_labels_round_trip(values):
    index = pd.Index(values, dtype=object)
    labels, codec = encode_labels(index)
    back = decode_labels(labels, codec)
    assert len(back) == len(index)
    for a, b in zip(back, index, strict=True):
        assert type(a) is type(b)
        assert (a == b) or (a != a and b != b) or repr(a) == repr(b)
