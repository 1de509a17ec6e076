"""df.annoy: regressions from user reports, through real pandas DataFrames."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from dateutil import tz as dateutil_tz

import annoy_adapters.pandas  # noqa: F401  (registers df.annoy)
from annoy_adapters import load
from annoy_adapters.sklearn import AnnoyTransformer

EXACT = 100_000  # a search_k that visits every leaf: results are exact


def _frame(n: int = 300, columns=("a", "b", "c", "d"), index=None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(n, len(columns))), columns=list(columns), index=index)


# -- columns named by the scikit-learn adapter's file --------------------------------------


@pytest.fixture
def sklearn_file(tmp_path):
    df = _frame()
    path = tmp_path / "sk.annoy"
    AnnoyTransformer(random_state=0).fit(df).save(path)
    assert "pandas" not in load(path).metadata
    return df, path


def test_neighbors_reads_sklearn_feature_names_by_name(sklearn_file):
    df, path = sklearn_file
    expected = df.annoy.neighbors(k=3, index=path, search_k=EXACT)
    reordered = df[["d", "c", "b", "a"]].annoy.neighbors(k=3, index=path, search_k=EXACT)
    pd.testing.assert_frame_equal(reordered, expected)


def test_query_reads_sklearn_feature_names_by_name(sklearn_file):
    df, path = sklearn_file
    queries = df.iloc[:5]
    expected = df.annoy.query(queries, k=3, index=path, search_k=EXACT)
    flipped = df[["d", "c", "b", "a"]]
    for frame, q in [(flipped, queries), (flipped, flipped.iloc[:5]), (df, flipped.iloc[:5])]:
        pd.testing.assert_frame_equal(
            frame.annoy.query(q, k=3, index=path, search_k=EXACT), expected
        )
    # each query row finds itself first
    assert (expected.xs(0, level="rank")["neighbor"] == queries.index).all()


def test_sklearn_feature_names_missing_from_the_frame_are_named(sklearn_file):
    df, path = sklearn_file
    renamed = df.rename(columns={"a": "z"})
    with pytest.raises(KeyError, match=r"lacks columns \['a'\]"):
        renamed.annoy.neighbors(k=3, index=path)
    with pytest.raises(KeyError, match=r"lacks columns \['a'\]"):
        df.annoy.query(renamed.iloc[:2], k=3, index=path)
    with pytest.raises(ValueError, match="don't match the columns"):
        df.annoy.neighbors(k=3, index=path, columns=["d", "c", "b", "a"])


def test_extra_frame_columns_are_ignored_with_sklearn_feature_names(sklearn_file):
    df, path = sklearn_file
    wider = df.assign(label=np.arange(len(df)))[["label", "c", "a", "d", "b"]]
    pd.testing.assert_frame_equal(
        wider.annoy.neighbors(k=2, index=path, search_k=EXACT),
        df.annoy.neighbors(k=2, index=path, search_k=EXACT),
    )


# -- a numeric Series query ----------------------------------------------------------------


@pytest.fixture
def wide_frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        rng.normal(size=(40, 4)),
        columns=["a", "b", "c", "extra"],
        index=[f"i{i}" for i in range(40)],
    )


def test_row_series_query_selects_the_vector_columns_by_name(wide_frame, tmp_path):
    path = tmp_path / "abc.annoy"
    wide_frame.annoy.build(["a", "b", "c"], path=path, seed=0)
    out = wide_frame.annoy.query(wide_frame.loc["i3"], k=2, index=path, search_k=EXACT)
    assert out.index.get_level_values(0).tolist() == ["i3", "i3"]
    assert out["neighbor"].iloc[0] == "i3"
    # same with a fresh index and explicit columns, and with the labels in another order
    fresh = wide_frame.annoy.query(wide_frame.loc["i3"], k=2, columns=["a", "b", "c"], seed=0)
    assert fresh["neighbor"].iloc[0] == "i3"
    shuffled = wide_frame.loc["i3"][["extra", "c", "a", "b"]]
    again = wide_frame.annoy.query(shuffled, k=2, index=path, search_k=EXACT)
    pd.testing.assert_frame_equal(again, out)


def test_series_with_other_string_labels_is_refused(wide_frame, tmp_path):
    path = tmp_path / "abc.annoy"
    wide_frame.annoy.build(["a", "b", "c"], path=path, seed=0)
    s = pd.Series([0.1, 0.2, 0.3], index=["x", "y", "z"], name="q")
    with pytest.raises(ValueError, match=r"lack columns \['a', 'b', 'c'\]"):
        wide_frame.annoy.query(s, k=2, index=path)
    partial = pd.Series([0.1, 0.2, 0.3], index=["a", "b", "zz"])
    with pytest.raises(ValueError, match=r"lack columns \['c'\]"):
        wide_frame.annoy.query(partial, k=2, index=path)


def test_series_with_default_index_and_arrays_stay_positional(wide_frame, tmp_path):
    path = tmp_path / "abc.annoy"
    wide_frame.annoy.build(["a", "b", "c"], path=path, seed=0)
    values = wide_frame.loc["i5", ["a", "b", "c"]].to_numpy()
    by_series = wide_frame.annoy.query(pd.Series(values), k=2, index=path, search_k=EXACT)
    by_list = wide_frame.annoy.query(values.tolist(), k=2, index=path, search_k=EXACT)
    assert by_series["neighbor"].iloc[0] == "i5"
    pd.testing.assert_frame_equal(by_series, by_list)


# -- index dtypes read back from a file ----------------------------------------------------


def test_categorical_index_keeps_categories_and_order(tmp_path):
    index = pd.CategoricalIndex(
        [f"r{i}" for i in range(20)],
        categories=[f"r{i}" for i in reversed(range(25))],
        ordered=True,
        name="row",
    )
    df = _frame(20, index=index)
    path = tmp_path / "cat.annoy"
    df.annoy.build(path=path, seed=0)
    from_file = df.annoy.query(df.iloc[:3], k=2, index=path, search_k=EXACT)
    in_memory = df.annoy.query(df.iloc[:3], k=2, search_k=EXACT, seed=0)
    assert from_file["neighbor"].dtype == df.index.dtype
    assert list(from_file["neighbor"].dtype.categories) == list(index.categories)
    assert from_file["neighbor"].dtype.ordered
    pd.testing.assert_series_equal(from_file["neighbor"], in_memory["neighbor"])
    nn = df.annoy.neighbors(k=2, index=path, search_k=EXACT)
    assert nn["neighbor"].dtype == df.index.dtype


def test_categorical_multiindex_level_keeps_categories(tmp_path):
    cats = pd.CategoricalDtype(["z", "y", "x", "w"], ordered=True)
    index = pd.MultiIndex.from_arrays(
        [pd.Categorical(["x", "y"] * 5, dtype=cats), np.arange(10)], names=["g", "i"]
    )
    df = _frame(10, index=index)
    path = tmp_path / "mcat.annoy"
    df.annoy.build(path=path, seed=0)
    out = df.annoy.query(df.iloc[:2], k=2, index=path, search_k=EXACT)
    assert out["neighbor"].iloc[0] == df.index[0]
    level = load(path).metadata["pandas"]["index"]["categories"][0]
    assert level["values"] == ["z", "y", "x", "w"] and level["ordered"] is True


def test_dateutil_time_zone_survives_a_dst_change(tmp_path):
    paris = dateutil_tz.gettz("Europe/Paris")
    index = pd.date_range("2024-03-30", periods=48, freq="h", tz=paris, name="t")
    df = _frame(48, index=index)
    path = tmp_path / "dateutil.annoy"
    df.annoy.build(path=path, seed=0)
    out = df.annoy.query(df, k=2, index=path, search_k=EXACT)
    assert out["neighbor"].dtype == df.index.dtype
    assert (out.xs(0, level="rank")["neighbor"].to_numpy() == df.index.to_numpy()).all()


# -- build(): duplicate missing labels, missing column names -------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        [np.nan, 1.0, np.nan, 2.0],
        ["a", None, None, "b"],
        [pd.NaT, pd.Timestamp("2024-01-01"), pd.NaT, pd.Timestamp("2024-01-02")],
    ],
    ids=["nan", "none", "nat"],
)
def test_duplicate_missing_labels_get_the_documented_error(labels):
    df = _frame(4, columns=("x", "y", "z"), index=labels)
    with pytest.raises(ValueError, match=r"duplicate labels \(.* at rows \d and 2; 1 duplicate"):
        df.annoy.build()


def test_nan_column_name_is_stored_and_read_back(tmp_path):
    df = _frame(30, columns=(1.5, 2.5, np.nan))
    path = tmp_path / "nan.annoy"
    df.annoy.build(path=path, seed=0)
    out = df[[np.nan, 2.5, 1.5]].annoy.neighbors(k=2, index=path, search_k=EXACT)
    pd.testing.assert_frame_equal(out, df.annoy.neighbors(k=2, index=path, search_k=EXACT))
    with pytest.raises(KeyError, match="lacks columns"):
        df[[1.5, 2.5]].annoy.neighbors(k=2, index=path)


# -- smaller reports -----------------------------------------------------------------------


def test_index_named_rank_is_refused_before_searching():
    df = _frame(20, index=pd.RangeIndex(20, name="rank"))
    with pytest.raises(ValueError, match="level named 'rank'"):
        df.annoy.neighbors(k=2)
    with pytest.raises(ValueError, match="level named 'rank'"):
        _frame(20).annoy.query(df.iloc[:2], k=2)
    wide = df.annoy.neighbors(k=2, format="wide", seed=0)  # no clash in the wide layout
    assert wide.index.name == "rank"


def test_partial_multiindex_column_key_gets_a_clear_error():
    columns = pd.MultiIndex.from_product([["a", "b"], ["x", "y"]])
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(10, 4)), columns=columns)
    with pytest.raises(ValueError, match=r"'columns' entry 'a' selects 2 .*\('a', 'x'\)"):
        df.annoy.neighbors(k=2, columns="a")
    full = df.annoy.neighbors(k=2, columns=[("a", "x"), ("a", "y")], seed=0)
    assert len(full) == 20


def test_vector_cells_of_numeric_strings_are_refused():
    df = pd.DataFrame({"v": [["1.5", "2"], ["3", "4"], ["5", "6"]]})
    with pytest.raises(TypeError, match=r"must hold vectors of numbers; row 0 .* holds list"):
        df.annoy.neighbors(k=1)
    mixed = pd.DataFrame({"v": [[1.0, 2.0], [3.0, "4"], [5.0, 6.0]]})
    with pytest.raises(TypeError, match=r"row 1 \(position 1\) holds list"):
        mixed.annoy.neighbors(k=1)
    numbers = pd.DataFrame({"v": [[1.5, 2], [3, 4], [5, 6]]})
    assert len(numbers.annoy.neighbors(k=1, seed=0)) == 3


# -- columns named True/False --------------------------------------------------------------


def test_columns_named_true_false_are_columns_not_a_row_mask(tmp_path):
    # e.g. df.pivot(columns="flag") on a bool column
    df = pd.DataFrame([[1.0, 0.0], [0.0, 1.0]], columns=[True, False], index=["a", "b"])
    out = df.annoy.query([0.0, 1.0], k=1, metric="euclidean", seed=0)
    assert out["neighbor"].tolist() == ["b"]
    assert out["distance"].tolist() == [0.0]
    nn = df.annoy.neighbors(k=1, include_self=True, metric="euclidean", seed=0)
    assert nn.xs(0, level="rank")["neighbor"].tolist() == ["a", "b"]
    path = tmp_path / "bool.annoy"
    df.annoy.build(path=path, metric="euclidean", seed=0)
    flipped = df.iloc[:, ::-1]  # columns [False, True], read back by name
    again = flipped.annoy.query(flipped.loc[["b"]], k=1, index=path)
    assert again["neighbor"].tolist() == ["b"] and again["distance"].tolist() == [0.0]


# -- wide results with missing neighbours --------------------------------------------------


def test_wide_result_keeps_large_int_labels_exact_when_neighbours_are_missing():
    ids = pd.Index(2**60 + np.arange(200), name="user_id")
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 8)), index=ids)
    wide = df.annoy.neighbors(k=20, probe=1, seed=0, format="wide")
    tidy = df.annoy.neighbors(k=20, probe=1, seed=0)
    neighbor = wide["neighbor"]
    assert neighbor.isna().any().any()  # the case under test: some rows get fewer than k
    assert set(neighbor.dtypes) == {pd.Int64Dtype()}
    assert set(wide["distance"].dtypes) == {np.dtype("float32")}
    # every found label is one of the index's, exactly, and in the tidy result's cells
    stacked = neighbor.stack("rank").dropna().astype("int64")
    assert stacked.isin(ids).all()
    pd.testing.assert_series_equal(
        stacked.rename("neighbor"), tidy["neighbor"], check_index_type=False
    )
    assert neighbor.isna().sum().sum() == 200 * 20 - len(tidy)


def test_wide_result_without_missing_neighbours_keeps_the_index_dtype():
    ids = pd.Index(2**60 + np.arange(50), name="user_id")
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 4)), index=ids)
    tidy = df.annoy.neighbors(k=3, seed=0, search_k=EXACT)
    wide = df.annoy.neighbors(k=3, seed=0, search_k=EXACT, format="wide")
    assert set(wide["neighbor"].dtypes) == {np.dtype("int64")}
    assert wide.equals(tidy.unstack("rank"))


# -- include_self: each row first ----------------------------------------------------------


def test_include_self_puts_duplicate_rows_first_at_distance_zero():
    df = pd.DataFrame([[1.0, 2.0]] * 3 + [[5.0, -1.0], [-3.0, 0.5]], index=list("abcde"))
    for metric in ["angular", "euclidean", "manhattan"]:
        nn = df.annoy.neighbors(k=2, include_self=True, metric=metric, seed=0, search_k=1000)
        first = nn.xs(0, level="rank")
        assert first["neighbor"].tolist() == list("abcde"), metric
        assert (first["distance"] == 0).all(), metric
        assert (nn.groupby(level=0).size() == 2).all()
        pairs = list(zip(nn.index.get_level_values(0), nn["neighbor"], strict=True))
        assert len(set(pairs)) == len(pairs), metric  # no row twice in one result
    wide = df.annoy.neighbors(k=2, include_self=True, seed=0, search_k=1000, format="wide")
    assert wide[("neighbor", 0)].tolist() == list("abcde")


def test_include_self_keeps_an_all_zero_row_under_angular():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    x[7] = 0.0
    df = pd.DataFrame(x, index=[f"r{i}" for i in range(50)])
    nn = df.annoy.neighbors(k=3, include_self=True, seed=0, search_k=EXACT)
    assert nn.loc["r7"]["neighbor"].tolist()[0] == "r7"
    assert nn.loc["r7"]["distance"].iloc[0] == 0.0
    assert (nn.xs(0, level="rank")["neighbor"] == df.index).all()
    assert len(nn) == 150


def test_include_self_with_dot_keeps_the_search_order():
    df = pd.DataFrame([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0]], index=list("abc"))
    nn = df.annoy.neighbors(k=2, include_self=True, metric="dot", seed=0, search_k=1000)
    # a's largest inner product is with b, not with itself
    assert nn.loc["a"]["neighbor"].tolist() == ["b", "a"]


# -- a RangeIndex Series query with int column names ---------------------------------------


def test_range_index_series_is_read_by_position_with_int_column_names(tmp_path):
    rng = np.random.default_rng(2)
    df = pd.DataFrame(
        rng.normal(size=(30, 3)), index=[f"i{i}" for i in range(30)], columns=[0, 1, 2]
    )
    permuted = df[[2, 0, 1]]
    values = permuted.loc["i4"].to_numpy()  # in the frame's column order: 2, 0, 1
    by_series = permuted.annoy.query(
        pd.Series(values), k=2, metric="euclidean", seed=0, search_k=EXACT
    )
    by_list = permuted.annoy.query(values.tolist(), k=2, metric="euclidean", seed=0, search_k=EXACT)
    pd.testing.assert_frame_equal(by_series, by_list)
    assert by_series["neighbor"].iloc[0] == "i4"
    assert by_series["distance"].iloc[0] == 0.0
    path = tmp_path / "perm.annoy"
    permuted.annoy.build(path=path, metric="euclidean", seed=0)
    from_file = permuted.annoy.query(pd.Series(values), k=2, index=path, search_k=EXACT)
    assert from_file["neighbor"].iloc[0] == "i4"
    # a row Series is labelled by the column names (not a RangeIndex): aligned by name
    assert not isinstance(df.loc["i4"].index, pd.RangeIndex)
    by_name = permuted.annoy.query(df.loc["i4"], k=2, index=path, search_k=EXACT)
    assert by_name["neighbor"].iloc[0] == "i4"
    # a RangeIndex Series of another length than the vectors is aligned by name, as before
    row = pd.Series(df.loc["i4"].to_numpy())
    subset = df.annoy.query(row, k=2, columns=[0, 2], metric="euclidean", seed=0)
    assert subset["neighbor"].iloc[0] == "i4" and subset["distance"].iloc[0] == 0.0


def test_a_finite_value_beyond_float32_is_not_reported_as_infinite():
    """User report: 1e39 in a frame was reported as 'a non-finite value (inf)', with a
    RuntimeWarning from the cast; the frame holds no inf."""
    df = pd.DataFrame(np.ones((5, 3)))
    df.iloc[3, 1] = 1e39
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"beyond float32's range .*1e\+39 at row 3"):
            df.annoy.neighbors(k=2)
    df.iloc[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"non-finite value \(inf\) at row 3"):
        df.annoy.neighbors(k=2)


def test_build_neighbors_and_query_take_n_jobs(tmp_path):
    df = pd.DataFrame(
        np.random.default_rng(0).normal(size=(300, 6)), index=[f"r{i}" for i in range(300)]
    )
    paths = [tmp_path / f"{n}.annoy" for n in (1, 2)]
    for n, path in zip((1, 2), paths, strict=True):
        df.annoy.build(n_trees=4, seed=1, path=path, n_jobs=n)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    one = df.annoy.neighbors(k=3, n_trees=4, seed=1, n_jobs=1)
    pd.testing.assert_frame_equal(one, df.annoy.neighbors(k=3, n_trees=4, seed=1, n_jobs=2))
    q = df.annoy.query(df.iloc[:5], k=2, n_trees=4, seed=1, n_jobs=1)
    pd.testing.assert_frame_equal(q, df.annoy.query(df.iloc[:5], k=2, n_trees=4, seed=1))
    with pytest.raises(ValueError, match="'n_jobs'"):
        df.annoy.build(n_jobs=0)
