"""df.annoy / Series.annoy through real pandas 3 DataFrames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import annoy_adapters.pandas as ap
from annoy_adapters import AnnoyIndex, load
from annoy_adapters._cache import cache_info

N, F, K = 120, 6, 5
EXACT = 100_000  # a search_k that visits every leaf: results are exact


def _frame(n: int = N, f: int = F, seed: int = 0, index=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    if index is None:
        index = pd.Index([f"w{i:03d}" for i in range(n)], name="word")
    return pd.DataFrame(rng.normal(size=(n, f)), index=index, columns=[f"d{j}" for j in range(f)])


def _brute(df: pd.DataFrame, k: int) -> np.ndarray:
    """Exact angular neighbours (positions), self excluded."""
    x = df.to_numpy(dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


@pytest.fixture
def df() -> pd.DataFrame:
    return _frame()


# -- the tidy result ----------------------------------------------------------------------


def test_neighbors_tidy_shape_labels_and_exactness(df):
    out = df.annoy.neighbors(k=K, search_k=EXACT, seed=1)
    assert list(out.columns) == ["neighbor", "distance"]
    assert list(out.index.names) == ["word", "rank"]
    assert len(out) == N * K
    assert out["distance"].dtype == np.float32
    assert out["neighbor"].dtype == df.index.dtype
    # rank 0..k-1 per row, rows in the frame's order
    assert out.index.get_level_values("rank").tolist() == list(range(K)) * N
    assert out.index.get_level_values("word").tolist() == np.repeat(df.index, K).tolist()
    # no self matches, labels not positions, exact with a large search_k
    assert not (out.index.get_level_values("word") == out["neighbor"]).any()
    expected = df.index.to_numpy()[_brute(df, K)].ravel()
    assert out["neighbor"].tolist() == expected.tolist()
    # distances sorted per row and equal to annoy's angular distance
    d = out["distance"].to_numpy().reshape(N, K)
    assert (np.diff(d, axis=1) >= 0).all()
    x = df.to_numpy()
    a, b = x[0], df.loc[out["neighbor"].iloc[0]].to_numpy()
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert d[0, 0] == pytest.approx(np.sqrt(2 - 2 * cos), abs=1e-5)


def test_probe_scans_cells_and_every_cell_is_exact(df, tmp_path):
    big = _frame(n=2000, seed=3)
    want = big.index.to_numpy()[_brute(big, K)].ravel()
    every = big.annoy.neighbors(k=K, probe=10**6, seed=1)
    assert every["neighbor"].tolist() == want.tolist()
    some = big.annoy.neighbors(k=K, probe=12, seed=1)
    hits = some["neighbor"].to_numpy().reshape(-1, K)[:, :, None] == want.reshape(-1, K)[:, None]
    assert hits.any(axis=2).mean() >= 0.9  # 12 of the ~45 cells (measured 0.97)
    path = tmp_path / "big.annoy"
    big.annoy.build(path=path, seed=1)
    queried = big.annoy.query(big.iloc[:5], k=3, index=path, probe=10**6)
    assert queried.xs(0, level="rank")["neighbor"].tolist() == big.index[:5].tolist()


def test_result_joins_groups_and_unstacks(df):
    out = df.annoy.neighbors(k=3, seed=1)
    joined = out.join(df, on="neighbor")
    assert joined[df.columns].to_numpy() == pytest.approx(df.loc[out["neighbor"]].to_numpy())
    per_word = out.groupby(level="word")["distance"].mean()
    assert per_word.index.equals(df.index)
    flat = out.reset_index()
    assert list(flat.columns) == ["word", "rank", "neighbor", "distance"]


def test_include_self_puts_each_row_first(df):
    out = df.annoy.neighbors(k=3, include_self=True, search_k=EXACT, seed=1)
    first = out.xs(0, level="rank")
    assert (first["neighbor"] == first.index).all()
    assert (first["distance"] == 0).all()


def test_wide_format_matches_tidy(df):
    tidy = df.annoy.neighbors(k=4, seed=3)
    wide = df.annoy.neighbors(k=4, seed=3, format="wide")
    assert wide.index.equals(df.index)
    assert wide.columns.names == [None, "rank"]
    assert wide.shape == (N, 8)
    assert wide.equals(tidy.unstack("rank"))


def test_metrics_pass_through(df):
    dot = df.annoy.neighbors(k=3, metric="dot", search_k=EXACT, seed=1)
    d = dot["distance"].to_numpy().reshape(N, 3)
    assert (np.diff(d, axis=1) <= 0).all()  # inner products, largest first
    euc = df.annoy.neighbors(k=3, metric="euclidean", search_k=EXACT, seed=1)
    x = df.to_numpy()
    dist = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    assert (
        euc["neighbor"].tolist() == df.index.to_numpy()[np.argsort(dist, 1)[:, :3]].ravel().tolist()
    )


def test_multiindex_frame_keeps_levels():
    index = pd.MultiIndex.from_product([["a", "b", "c"], range(10)], names=["group", "i"])
    df = _frame(30, index=index)
    out = df.annoy.neighbors(k=2, seed=1)
    assert list(out.index.names) == ["group", "i", "rank"]
    assert isinstance(out["neighbor"].iloc[0], tuple)
    assert df.loc[out["neighbor"].tolist()].shape == (60, F)


def test_duplicate_index_labels_are_fine_for_neighbors(df):
    dup = df.set_axis(["same"] * N)
    out = dup.annoy.neighbors(k=2, seed=1)
    assert len(out) == 2 * N and (out["neighbor"] == "same").all()


def test_identical_rows_still_drop_exactly_one_self_match():
    df = pd.DataFrame(np.ones((20, 3)), index=range(100, 120))
    out = df.annoy.neighbors(k=5, search_k=EXACT, seed=1)
    assert len(out) == 100
    assert not (out.index.get_level_values(0) == out["neighbor"]).any()
    assert (out["distance"] == 0).all()


# -- vector columns and the Series accessor ------------------------------------------------


def test_vector_column_object_and_arrow_match_numeric_columns(df):
    expected = df.annoy.neighbors(k=K, seed=7)
    lists = pd.DataFrame({"emb": list(df.to_numpy()), "other": "x"}, index=df.index)
    got = lists.annoy.neighbors(k=K, columns="emb", seed=7)
    pd.testing.assert_frame_equal(got, expected)
    arrow = pd.DataFrame(
        {"emb": pd.Series(df.to_numpy().tolist(), dtype=pd.ArrowDtype(pa.list_(pa.float32())))}
    ).set_index(df.index)
    pd.testing.assert_frame_equal(arrow.annoy.neighbors(k=K, seed=7), expected)


def test_series_accessor(df):
    s = pd.Series(list(df.to_numpy()), index=df.index, name="emb")
    expected = df.annoy.neighbors(k=3, seed=2)
    pd.testing.assert_frame_equal(s.annoy.neighbors(k=3, seed=2), expected)
    q = s.annoy.query(s.iloc[:2], k=1, search_k=EXACT, seed=2)
    assert q["neighbor"].tolist() == list(df.index[:2])


def test_accessor_is_stateless_and_gated():
    df = _frame(5)
    assert df.annoy is not df.annoy  # pandas 3 builds it on every access
    assert vars(df.annoy) == {"_df": df} or set(vars(df.annoy)) == {"_df"}
    assert not hasattr(pd.DataFrame({"word": ["a", "b"]}), "annoy")
    with pytest.raises(AttributeError, match="needs numeric columns"):
        pd.DataFrame({"word": ["a", "b"]}).annoy  # noqa: B018
    with pytest.raises(AttributeError, match="one vector per row"):
        pd.Series([1.0, 2.0]).annoy  # noqa: B018


# -- query ---------------------------------------------------------------------------------


def test_query_with_frame_series_and_arrays(df):
    idx = df.annoy.build(n_trees=5, seed=1)
    new = df.iloc[[3, 8]].set_axis(["q1", "q2"])[df.columns[::-1]]  # other order: read by name
    out = df.annoy.query(new, k=2, index=idx, search_k=EXACT)
    assert list(out.index.names) == [None, "rank"]
    assert out.xs(0, level="rank")["neighbor"].tolist() == [df.index[3], df.index[8]]
    row = df.annoy.query(df.loc["w005"], k=1, index=idx, search_k=EXACT)
    assert row.index.tolist() == [("w005", 0)] and row["neighbor"].iloc[0] == "w005"
    arr = df.annoy.query(df.to_numpy()[:3], k=1, index=idx, search_k=EXACT)
    assert arr.index.get_level_values(0).tolist() == [0, 1, 2]
    one = df.annoy.query(df.to_numpy()[4], k=1, index=idx, search_k=EXACT)
    assert one["neighbor"].tolist() == ["w004"]
    wide = df.annoy.query(new, k=2, index=idx, format="wide")
    assert wide.index.tolist() == ["q1", "q2"]


def test_query_without_index_builds_from_the_frame(df):
    out = df.annoy.query(df.iloc[:4], k=1, search_k=EXACT, seed=1, metric="euclidean")
    assert out["neighbor"].tolist() == list(df.index[:4])
    assert out["distance"].tolist() == [0, 0, 0, 0]


# -- the index file --------------------------------------------------------------------------


def test_build_saves_labels_and_metadata(df, tmp_path):
    path = tmp_path / "words.annoy"
    idx = df.annoy.build(n_trees=4, path=path, seed=1)
    assert idx.path is not None
    loaded = load(str(path))
    assert list(loaded.labels) == list(df.index)
    meta = loaded.metadata
    assert meta["adapter"] == "pandas"
    assert meta["pandas"]["columns"] == list(df.columns)
    assert meta["pandas"]["vector_column"] is False
    assert meta["pandas"]["index"]["codec"] == "str"
    assert meta["pandas"]["index"]["names"] == ["word"]
    np.testing.assert_allclose(loaded.get_item_vectors(), df.to_numpy(np.float32))
    assert loaded.ids_for(["w010"]).tolist() == [10]


def test_neighbors_with_saved_index_equals_fresh_build(df, tmp_path):
    path = tmp_path / "w.annoy"
    df.annoy.build(n_trees=6, path=path, seed=4)
    fresh = df.annoy.neighbors(k=K, n_trees=6, seed=4)
    pd.testing.assert_frame_equal(df.annoy.neighbors(k=K, index=path), fresh)
    pd.testing.assert_frame_equal(df.annoy.neighbors(k=K, index=str(path)), fresh)
    # columns are read by name, so a reordered frame gives the same answer
    pd.testing.assert_frame_equal(df[df.columns[::-1]].annoy.neighbors(k=K, index=path), fresh)


def test_a_float16_index_built_from_the_frame_serves_neighbors_and_query(df, tmp_path):
    path = tmp_path / "half.annoy"
    idx = df.annoy.build(n_trees=6, path=path, seed=4, vector_dtype="float16")
    assert idx.vector_dtype == "float16"
    rounded = df.astype(np.float16).astype(np.float32)
    want = rounded.annoy.neighbors(k=K, n_trees=6, seed=4, metric="angular")
    pd.testing.assert_frame_equal(df.annoy.neighbors(k=K, index=path), want)
    got = df.annoy.query(df.iloc[:5], k=K, index=path)
    pd.testing.assert_frame_equal(got, rounded.annoy.query(rounded.iloc[:5], k=K, index=path))
    assert (got.xs(0, level="rank")["distance"] == 0).all()  # each row finds itself first


@pytest.mark.parametrize(
    "index",
    [
        pd.date_range("2024-01-01", periods=40, freq="h", tz="Europe/Paris", name="t"),
        pd.MultiIndex.from_product([["x", "y"], range(20)], names=["g", "i"]),
        pd.Index(np.linspace(0, 1, 40), name="score"),
        pd.Index([*range(20), *(f"s{i}" for i in range(20))], dtype=object),
        pd.RangeIndex(40),
    ],
    ids=["datetime-tz", "multiindex", "float", "mixed", "range"],
)
def test_index_labels_round_trip_through_the_file(index, tmp_path):
    df = _frame(40, index=index)
    path = tmp_path / "x.annoy"
    df.annoy.build(n_trees=3, path=path, seed=1)
    from_file = df.annoy.query(df, k=3, index=path, search_k=EXACT)
    in_memory = df.annoy.neighbors(k=3, include_self=True, search_k=EXACT, seed=1)
    pd.testing.assert_frame_equal(from_file, in_memory)
    if not isinstance(index, pd.MultiIndex):
        assert from_file["neighbor"].dtype == index.dtype


def test_files_written_by_annoyindex_work(df, tmp_path):
    x = df.to_numpy(np.float32)
    plain = AnnoyIndex(F, "angular", seed=1)
    plain.add_items(x)
    plain.build(4)
    plain.save(str(tmp_path / "plain.annoy"))
    # no labels: ids map to this frame's rows
    out = df.annoy.query(df.iloc[:3], k=1, index=tmp_path / "plain.annoy", search_k=EXACT)
    assert out["neighbor"].tolist() == list(df.index[:3])
    nn = df.annoy.neighbors(k=2, index=tmp_path / "plain.annoy", search_k=EXACT)
    assert nn["neighbor"].tolist() == df.index.to_numpy()[_brute(df, 2)].ravel().tolist()
    with pytest.raises(ValueError, match="stores no labels and holds 120 items"):
        df.iloc[:10].annoy.query(df.iloc[:3], k=1, index=tmp_path / "plain.annoy")
    # str labels: they name the neighbours, whatever frame the accessor is on
    labelled = AnnoyIndex(F, "angular", seed=1)
    labelled.add_items(x)
    labelled.build(4)
    labelled.set_labels([f"L{i}" for i in range(N)])
    labelled.save(str(tmp_path / "labelled.annoy"))
    out = df.iloc[:10].annoy.query(
        df.iloc[:3], k=1, index=tmp_path / "labelled.annoy", search_k=EXACT
    )
    assert out["neighbor"].tolist() == ["L0", "L1", "L2"]


def test_saved_index_is_opened_once_per_process(df, tmp_path):
    path = tmp_path / "c.annoy"
    df.annoy.build(n_trees=2, path=path, seed=1)
    df.annoy.query(df.iloc[:2], k=1, index=path)
    before = cache_info()
    for _ in range(3):
        df.annoy.query(df.iloc[:2], k=1, index=path)
    after = cache_info()
    assert after["opens"] == before["opens"]
    assert after["hits"] == before["hits"] + 3


# -- errors --------------------------------------------------------------------------------


def test_columns_checked_against_the_saved_index(df, tmp_path):
    path = tmp_path / "cols.annoy"
    df.annoy.build(n_trees=2, path=path, seed=1)
    with pytest.raises(ValueError, match=r"'columns' \['d1', 'd0'.*don't match .*\['d0', 'd1'"):
        df.annoy.neighbors(k=2, index=path, columns=["d1", "d0", "d2", "d3", "d4", "d5"])
    with pytest.raises(KeyError, match=r"lacks columns \['d5'\]"):
        df.drop(columns="d5").annoy.neighbors(k=2, index=path)
    with pytest.raises(KeyError, match=r"query frame lacks columns \['d0'\]"):
        df.annoy.query(df.drop(columns="d0"), k=2, index=path)
    with pytest.raises(ValueError, match="uses 'angular'"):
        df.annoy.neighbors(k=2, index=path, metric="euclidean")


def test_neighbors_with_an_index_of_other_rows_is_refused(df, tmp_path):
    path = tmp_path / "o.annoy"
    df.annoy.build(n_trees=2, path=path, seed=1)
    with pytest.raises(ValueError, match="holds 120 items but the frame has 10 rows"):
        df.iloc[:10].annoy.neighbors(k=2, index=path)
    with pytest.raises(ValueError, match="first difference at position 0"):
        df.iloc[::-1].annoy.neighbors(k=2, index=path)


@pytest.mark.parametrize(
    ("frame", "kwargs", "error", "match"),
    [
        (
            pd.DataFrame({"a": [1.0, 2.0], "w": ["x", "y"]}),
            {},
            TypeError,
            "column 'w' has dtype str, not numeric",
        ),
        (
            pd.DataFrame({"a": [1.0, np.nan, 3.0]}, index=["x", "y", "z"]),
            {},
            ValueError,
            r"column 'a' has a missing value \(NaN\) at row 'y' \(position 1\)",
        ),
        (pd.DataFrame({"a": [1.0, np.inf]}), {}, ValueError, "non-finite value"),
        (pd.DataFrame({"a": pd.array([1, None], dtype="Int64")}), {}, ValueError, "column 'a'"),
        (
            pd.DataFrame({"v": [[1.0, 2.0], [1.0]]}, index=["p", "q"]),
            {},
            ValueError,
            r"different lengths: row 'q' \(position 1\) has 1 values",
        ),
        (
            pd.DataFrame({"v": [[1.0, 2.0], None]}, index=["p", "q"]),
            {},
            ValueError,
            r"column 'v' has a missing vector at row 'q'",
        ),
        (pd.DataFrame({"v": [[1.0, 2.0], 3.0]}), {}, TypeError, "row 1 .*holds float 3.0"),
        (pd.DataFrame({"v": [[1.0, "b"], [1.0, 2.0]]}), {}, TypeError, "vectors of numbers; row 0"),
        (pd.DataFrame({"v": ["ab", "cd"]}, dtype=object), {}, TypeError, "holds str 'ab'"),
        (pd.DataFrame({"v": [[np.nan, 1.0], [1.0, 1.0]]}), {}, ValueError, "missing value"),
        (pd.DataFrame({"a": np.ones(0)}), {}, ValueError, "the frame is empty"),
        (
            pd.DataFrame({"a": [1.0, 2.0]}),
            {"columns": ["zz"]},
            KeyError,
            r"columns \['zz'\] are not in the frame",
        ),
        (
            pd.DataFrame({"a": [1.0, 2.0]}),
            {"k": 0},
            ValueError,
            r"'k' must be a positive int \(got 0\)",
        ),
        (pd.DataFrame({"a": [1.0, 2.0]}), {"k": 2}, ValueError, r"'k' must be at most 1"),
        (pd.DataFrame({"a": [1.0, 2.0]}), {"k": 1, "format": "long"}, ValueError, "'format'"),
        (pd.DataFrame({"a": [1.0, 2.0]}), {"k": 1, "index": 3}, TypeError, "'index' must be"),
        (
            pd.DataFrame({"a": [1.0, 2.0]}),
            {"k": 1, "search_k": 0},
            ValueError,
            r"'search_k' must be -1 or a positive int \(got 0\)",
        ),
    ],
)
def test_bad_input_names_the_column_or_row(frame, kwargs, error, match):
    with pytest.raises(error, match=match):
        frame.annoy.neighbors(**kwargs)


def test_query_errors(df):
    idx = df.annoy.build(n_trees=2, seed=1)
    with pytest.raises(ValueError, match="have 3 values but the index has f=6"):
        df.annoy.query(np.ones(3), index=idx)
    with pytest.raises(ValueError, match="query row 1 has a missing"):
        df.annoy.query(np.array([[1.0] * 6, [np.nan] * 6]), index=idx)
    with pytest.raises(ValueError, match="'k' must be at most 120"):
        df.annoy.query(np.ones(6), k=121, index=idx)
    with pytest.raises(TypeError, match="array of numbers"):
        df.annoy.query("king", index=idx)
    with pytest.raises(ValueError, match="must be a built AnnoyIndex"):
        df.annoy.query(np.ones(6), index=AnnoyIndex(6))


def test_module_exports():
    assert ap.DEFAULT_N_TREES >= 1
    assert pd.DataFrame.annoy is ap.AnnoyDataFrameAccessor
    assert pd.Series.annoy is ap.AnnoySeriesAccessor


def test_build_needs_unique_labels(df):
    dup = df.set_axis(["a", "b", "a", *df.index[3:]])
    with pytest.raises(ValueError, match=r"duplicate labels \('a' at rows 0 and 2"):
        dup.annoy.build(n_trees=2)


def test_vector_column_index_checks_the_query_kind(df, tmp_path):
    path = tmp_path / "vec.annoy"
    vec = pd.DataFrame({"emb": list(df.to_numpy())}, index=df.index)
    idx = vec.annoy.build(n_trees=2, path=path, seed=1)
    assert idx.metadata["pandas"]["columns"] == ["emb"]
    assert idx.metadata["pandas"]["vector_column"] is True
    with pytest.raises(TypeError, match="uses one column of vectors"):
        vec.annoy.query(pd.DataFrame({"emb": np.ones(3)}), k=1, index=path)
    out = vec["emb"].annoy.query(vec.iloc[:2], k=1, index=path, search_k=EXACT)
    assert out["neighbor"].tolist() == list(df.index[:2])


def test_files_resaved_by_other_adapters(tmp_path):
    """Other adapters keep metadata["pandas"] when they save; the labels decide its use."""
    df = _frame(30, index=pd.date_range("2024-01-01", periods=30, freq="D", name="day"))
    built = df.annoy.build(n_trees=2, seed=1)
    meta, labels = built.metadata, built.labels
    x = df.to_numpy(np.float32)

    def save(labels, adapter):
        idx = AnnoyIndex(F, "angular", seed=1)
        idx.add_items(x)
        idx.build(2)
        idx.set_labels(labels)
        idx.set_metadata(dict(meta, adapter=adapter))
        path = tmp_path / f"{adapter}.annoy"
        idx.save(str(path))
        return path

    # same labels (e.g. the sklearn adapter re-saving): still decoded to timestamps
    same = save(labels, "sklearn")
    out = df.annoy.query(df.iloc[:1], k=1, index=same, search_k=EXACT)
    assert out["neighbor"].tolist() == [df.index[0]]
    assert out["neighbor"].dtype == df.index.dtype
    # labels rewritten by another adapter: used as they are
    keys = [f"key{i}" for i in range(len(labels))]
    other = save(keys, "gensim")
    out = df.annoy.query(df.iloc[:1], k=1, index=other, search_k=EXACT)
    assert out["neighbor"].tolist() == ["key0"]
