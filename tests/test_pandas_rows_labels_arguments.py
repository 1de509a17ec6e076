"""df.annoy: regressions from user reports: row Series, label dtypes, result names, arguments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import annoy_adapters.pandas  # noqa: F401  (registers df.annoy)
from annoy_adapters import load

COLUMNS = ["x0", "x1", "x2", "x3"]


def _frame(n: int = 30, index=None) -> pd.DataFrame:
    rng = np.random.default_rng(28)
    return pd.DataFrame(rng.normal(size=(n, len(COLUMNS))), columns=COLUMNS, index=index)


@pytest.fixture
def saved(tmp_path):
    df = _frame(index=[f"item{i:03d}" for i in range(30)])
    path = tmp_path / "items.annoy"
    df.annoy.build(path=path, seed=0, n_trees=3)
    return df, path


# -- 1. a row of a frame with a text column is one vector -----------------------------------


def test_object_row_of_a_frame_with_text_is_aligned_on_the_columns(saved):
    df, path = saved
    with_text = df.assign(title=[f"t{i}" for i in range(len(df))])
    row = with_text.loc["item001"]
    assert row.dtype == object  # scalars, not vectors
    want = df.annoy.query(df.loc["item001"], k=2, index=path)
    pd.testing.assert_frame_equal(with_text.annoy.query(row, k=2, index=path), want)
    fresh = with_text.annoy.query(row, k=2, columns=COLUMNS, seed=0, n_trees=3)
    assert fresh.index.get_level_values(0).tolist() == ["item001"] * 2
    with pytest.raises(TypeError, match=r"label 'x1' holds str 'oops'"):
        df.annoy.query(row.astype(object).replace({row["x1"]: "oops"}), k=2, index=path)


def test_series_of_vectors_still_queries_one_row_per_vector(saved):
    df, path = saved
    cells = pd.Series(list(df.iloc[:2].to_numpy()), index=["q0", "q1"], dtype=object)
    got = df.annoy.query(cells, k=1, index=path)
    assert got.index.get_level_values(0).tolist() == ["q0", "q1"]


# -- 2. the same labels in another dtype are the same rows ----------------------------------


@pytest.mark.parametrize(
    ("built", "frame"),
    [
        (pd.RangeIndex(30), pd.Index(range(30), dtype="Int64")),
        (pd.Index(range(30), dtype="Int64"), pd.RangeIndex(30)),
        (pd.Index([f"s{i}" for i in range(30)]), pd.CategoricalIndex([f"s{i}" for i in range(30)])),
    ],
    ids=["int64-file-Int64-frame", "Int64-file-int64-frame", "str-file-category-frame"],
)
def test_neighbors_accepts_equal_labels_in_another_dtype(built, frame, tmp_path):
    path = tmp_path / "labels.annoy"
    _frame(index=built).annoy.build(path=path, seed=0, n_trees=3)
    got = _frame(index=frame).annoy.neighbors(k=2, index=path)
    assert got["neighbor"].dtype == frame.dtype


def test_labels_of_another_kind_are_still_refused_naming_two_types(tmp_path):
    path = tmp_path / "ints.annoy"
    _frame().annoy.build(path=path, seed=0, n_trees=3)
    with pytest.raises(ValueError, match="first difference at position 0") as err:
        _frame(index=pd.Index(np.arange(30.0))).annoy.neighbors(k=2, index=path)
    assert "only in type" not in str(err.value)  # 0.0 and 0 don't read the same
    as_text = pd.Index([str(i) for i in range(30)])
    with pytest.raises(ValueError, match="differ only in type, str in the frame and int"):
        _frame(index=as_text).annoy.neighbors(k=2, index=path)


# -- 3. string[python] keeps its storage ----------------------------------------------------


@pytest.mark.parametrize("dtype", ["string[python]", "string[pyarrow]"])
def test_string_index_storage_round_trips(dtype, tmp_path):
    pytest.importorskip("pyarrow")
    index = pd.Index([f"s{i}" for i in range(30)], dtype=dtype, name="id")
    df = _frame(index=index)
    path = tmp_path / "s.annoy"
    df.annoy.build(path=path, seed=0, n_trees=3)
    got = df.annoy.query(df.iloc[:2], k=2, index=path)
    assert got["neighbor"].dtype == index.dtype
    assert got["neighbor"].dtype.storage == index.dtype.storage


def test_older_files_plain_string_dtype_still_decodes():
    from annoy_adapters._pandas_codec import decode_labels, encode_labels

    labels, codec = encode_labels(pd.Index(["a", "b"], dtype="string[python]"))
    codec["dtypes"] = ["string"]  # what files written before the storage was kept hold
    assert decode_labels(labels, codec).equals(pd.Index(["a", "b"], dtype="string"))


# -- 4. index levels named like the result's columns ----------------------------------------


@pytest.mark.parametrize("name", ["neighbor", "distance"])
def test_index_named_like_a_result_column_is_refused_before_searching(name):
    df = _frame(index=pd.Index([f"i{i}" for i in range(30)], name=name))
    with pytest.raises(ValueError, match=f"level named '{name}'.*rename_axis"):
        df.annoy.neighbors(k=2)
    with pytest.raises(ValueError, match=f"level named '{name}'"):
        _frame().annoy.query(df.iloc[:2], k=2)
    wide = df.annoy.neighbors(k=2, format="wide", seed=0)  # no clash in the wide layout
    assert wide.index.name == name
    renamed = df.rename_axis(index={name: f"row_{name}"}).annoy.neighbors(k=2, seed=0)
    assert list(renamed.reset_index().columns[:2]) == [f"row_{name}", "rank"]


# -- 5. wide keeps the frame's row order ----------------------------------------------------


def test_wide_keeps_the_row_order_and_equals_unstack_after_sorting():
    rows = pd.MultiIndex.from_arrays([np.arange(30) % 3, np.arange(30)], names=["g", "i"])
    df = _frame(index=rows)
    nn = df.annoy.neighbors(k=3, seed=0, n_trees=3)
    wide = df.annoy.neighbors(k=3, seed=0, n_trees=3, format="wide")
    assert wide.index.equals(rows)
    pd.testing.assert_frame_equal(wide.sort_index(), nn.unstack("rank").sort_index())


# -- 6. argument checks ---------------------------------------------------------------------


def test_include_self_must_be_a_bool():
    with pytest.raises(TypeError, match=r"'include_self' must be True or False \(got 'no'\)"):
        _frame().annoy.neighbors(k=2, include_self="no")


def test_columns_as_a_set_is_refused_with_a_clear_error():
    with pytest.raises(TypeError, match=r"'columns' must be .*list-like.*in order \(got set"):
        _frame().annoy.neighbors(k=2, columns={"x0", "x1"})


@pytest.mark.parametrize(("name", "value"), [("n_trees", 50), ("seed", 3)])
def test_build_only_arguments_with_an_index_are_refused(saved, name, value):
    df, path = saved
    match = f"'{name}' is {value}, but it applies only when building"
    with pytest.raises(ValueError, match=match):
        df.annoy.neighbors(k=2, index=path, **{name: value})
    with pytest.raises(ValueError, match=match):
        df.annoy.query(df.iloc[:1], k=2, index=load(path), **{name: value})
