"""User reports against annoy_adapters.dask, on a real distributed.LocalCluster or the
synchronous scheduler.

Small builds (fewer than 16 rows) and the safety of replacing a file; arguments checked before
any task runs (search_k, labels, metadata, the output path) or refused instead of truncated
(float item ids, missing Int64 ids); files written by the pandas accessor answer as the accessor
does (decoded labels, vector columns, Arrow and nullable columns, column lists) and
scikit-learn's recorded feature order is honoured.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import annoy_adapters.dask  # noqa: E402
import annoy_adapters.pandas  # noqa: E402  (registers df.annoy)
from annoy_adapters import AnnoyIndex, IndexFileError, RowError, load  # noqa: E402
from annoy_adapters.core import assemble, build_trees  # noqa: E402
from annoy_adapters.dask import (  # noqa: E402
    build_index,
    query_array,
    query_dataframe,
    query_items,
)

F = 4


def _data(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, F)).astype(np.float32)


def _local_bytes(X: np.ndarray, path, metric: str, **kwargs) -> bytes:
    local = AnnoyIndex(F, metric, seed=1, **kwargs)
    local.add_items(X)
    local.build(2)
    local.save(str(path))
    return path.read_bytes()


@pytest.mark.parametrize(
    ("metric", "vector_dtype"),
    [("angular", "float32"), ("euclidean", "float16"), ("hamming", "float32")],
)
def test_few_rows_build_equals_local_build_and_replaces_a_good_file(
    client, tmp_path, metric, vector_dtype
):
    vectors, out = tmp_path / "v.npy", tmp_path / "out.annoy"
    np.save(vectors, _data(100, seed=9))
    build_index(vectors, out, metric=metric, n_trees=2, seed=1, vector_dtype=vector_dtype)
    for n in (1, 5, 15, 16):
        X = _data(n, seed=n)
        if metric == "hamming":
            X = (X > 0).astype(np.float32)
        np.save(vectors, X)
        built = build_index(
            vectors, out, metric=metric, n_trees=2, seed=1, vector_dtype=vector_dtype
        )
        expected = _local_bytes(X, tmp_path / "local.annoy", metric, vector_dtype=vector_dtype)
        assert out.read_bytes() == expected, n
        assert load(out).get_n_items() == n
        assert built.path == os.path.abspath(out) and built.get_n_items() == n
    assert sorted(os.listdir(tmp_path)) == ["local.annoy", "out.annoy", "v.npy"]  # no temp left


def test_a_failed_assembly_leaves_the_good_file_in_place(tmp_path):
    X = _data(40)
    vectors, out = tmp_path / "v.npy", tmp_path / "out.annoy"
    np.save(vectors, X)
    good = _local_bytes(X, out, "euclidean")
    parts = [build_trees(vectors, "euclidean", [t], seed=1) for t in range(2)]
    parts[1].forest.leaf_items[0] = len(X) + 5  # a part that writes a file no reader accepts
    with pytest.raises(IndexFileError, match="leaf items"):
        assemble(vectors, "euclidean", parts, out, seed=1)
    assert out.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["out.annoy", "v.npy"]


def test_build_into_a_missing_folder_names_the_users_path(tmp_path):
    np.save(tmp_path / "v.npy", _data(20))
    target = tmp_path / "no" / "such" / "out.annoy"
    with pytest.raises(FileNotFoundError, match=r"'path'.*out\.annoy"):
        build_index(tmp_path / "v.npy", target, n_trees=2)


@pytest.fixture(scope="module")
def index_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("reports") / "items.annoy"
    index = AnnoyIndex(F, "euclidean", seed=3)
    index.add_items(_data(60))
    index.build(3)
    index.save(str(path))
    return str(path)


@pytest.mark.parametrize("search_k", [-7, 0, -2])
def test_search_k_is_checked_before_any_task_runs(index_path, search_k):
    X = _data(10, seed=1)
    frame = dd.from_pandas(pd.DataFrame(X), npartitions=2)
    ids = dd.from_pandas(pd.Series(np.arange(5)), npartitions=1)
    message = rf"'search_k' must be -1 or a positive int \(got {search_k}\)"
    with pytest.raises(ValueError, match=message):
        query_dataframe(frame, index_path, k=2, search_k=search_k)
    with pytest.raises(ValueError, match=message):
        query_items(ids, index_path, k=2, by="id", search_k=search_k)
    with pytest.raises(ValueError, match=message):
        query_array(da.from_array(X, chunks=(5, F)), index_path, k=2, search_k=search_k)


@pytest.mark.parametrize("values", [[1.7, 3.0], [2.0, 3.0]])
def test_float_item_ids_are_refused_not_truncated(index_path, values):
    series = dd.from_pandas(pd.Series(values), npartitions=1)
    with pytest.raises(TypeError, match=r"'items' must hold int item ids.*float64"):
        query_items(series, index_path, k=2, by="id")


def test_int_item_ids_equal_the_core(client, index_path):
    series = dd.from_pandas(pd.Series([1, 3, 59], dtype=np.int64), npartitions=2)
    result = query_items(series, index_path, k=3, by="id", search_k=50).compute()
    ids, dist = load(index_path).query_items([1, 3, 59], 3, search_k=50)
    np.testing.assert_array_equal(result["neighbor"].to_numpy(), ids.reshape(-1))
    np.testing.assert_array_equal(result["distance"].to_numpy(), dist.reshape(-1))


# -- files written by the pandas accessor: labels as the frame's index ---------------------------


@pytest.fixture
def sync():
    with dask.config.set(scheduler="sync"):
        yield


def _labelled_frames() -> dict[str, pd.Index]:
    n = 40
    return {
        "datetime": pd.date_range("2024-01-01", periods=n, freq="h", name="t"),
        "datetime_tz": pd.date_range("2024-03-30", periods=n, freq="h", tz="Europe/Paris"),
        "float": pd.Index(np.arange(n) * 0.5 + 0.25, name="x"),
        "category": pd.CategoricalIndex([f"c{i}" for i in range(n)], name="c"),
        "mixed": pd.Index([i if i % 2 else f"s{i}" for i in range(n)], dtype=object),
        "uint64_high": pd.Index(np.arange(n, dtype=np.uint64) + np.uint64(2**63)),
        "tuples": pd.MultiIndex.from_arrays([[f"g{i % 4}" for i in range(n)], range(n)]),
    }


@pytest.mark.parametrize("kind", list(_labelled_frames()))
def test_pandas_labels_come_back_as_the_frames_index(client, tmp_path, kind):
    index = _labelled_frames()[kind]
    df = pd.DataFrame(_data(len(index), seed=2), index=index, columns=list("abcd"))
    path = tmp_path / f"{kind}.annoy"
    df.annoy.build(path=path, seed=0, n_trees=3)
    # Dask frames take no MultiIndex: its rows are labelled by tuples. Dask's string conversion
    # would turn the mixed labels 1, "s0" into "1", "s0".
    queries = df.iloc[[0, 7, 21, 39]].set_axis(df.index[[0, 7, 21, 39]].to_flat_index())
    with dask.config.set({"dataframe.convert-string": False}):
        frame = dd.from_pandas(queries, npartitions=2, sort=False)
        items = dd.from_pandas(pd.Series(queries.index), npartitions=2, sort=False)

    lazy = query_dataframe(frame, path, k=3)
    out = lazy.compute()
    pd.testing.assert_series_equal(out.dtypes, lazy.dtypes)  # meta == computed
    want = df.annoy.query(queries, k=3, index=path)
    pd.testing.assert_frame_equal(out.set_index("rank", append=True), want)

    # query_items takes the labels as the frame knows them (Timestamps, 'c0', 0.25, tuples...)
    lazy = query_items(items, path, k=3)
    by_label = lazy.compute()
    pd.testing.assert_series_equal(by_label.dtypes, lazy.dtypes)
    assert by_label["neighbor"][by_label["rank"] == 0].tolist() == queries.index.tolist()
    assert by_label["neighbor"].tolist() == want["neighbor"].tolist()


def test_unknown_pandas_label_names_the_users_value(sync, tmp_path):
    df = pd.DataFrame(_data(10), index=pd.Index(np.arange(10) + 0.5), columns=list("abcd"))
    path = tmp_path / "f.annoy"
    df.annoy.build(path=path, seed=0, n_trees=2)
    items = dd.from_pandas(pd.Series([0.5, 99.5]), npartitions=1)
    with pytest.raises(KeyError, match=r"'items' holds a label not in the index.*99\.5 at row 1"):
        query_items(items, path, k=2).compute()


# -- Arrow, nullable and vector columns -----------------------------------------------------------


@pytest.fixture(scope="module")
def plain_index(tmp_path_factory) -> tuple[str, np.ndarray]:
    X = _data(50, seed=4)
    path = tmp_path_factory.mktemp("columns") / "plain.annoy"
    index = AnnoyIndex(F, "euclidean", seed=3)
    index.add_items(X)
    index.set_labels([f"w{i}" for i in range(len(X))])
    index.build(3)
    index.save(str(path))
    return str(path), X


@pytest.mark.parametrize("dtype", ["float[pyarrow]", "double[pyarrow]", "Float64", "Float32"])
def test_arrow_and_nullable_columns_are_read_as_numbers(sync, plain_index, dtype):
    path, X = plain_index
    frame = pd.DataFrame(X[:12], columns=list("abcd")).astype(dtype)
    out = query_dataframe(dd.from_pandas(frame, npartitions=3), path, k=3).compute()
    ids, dist = load(path).query(X[:12], 3)
    assert out["neighbor"].tolist() == [f"w{i}" for i in ids.ravel()]
    np.testing.assert_array_equal(out["distance"].to_numpy(), dist.ravel())


def test_missing_value_in_a_nullable_column_names_column_and_row(sync, plain_index):
    path, X = plain_index
    frame = pd.DataFrame(X[:12], columns=list("abcd"), index=[f"q{i}" for i in range(12)])
    frame = frame.astype("Float64")
    frame.loc["q9", "c"] = pd.NA
    lazy = query_dataframe(dd.from_pandas(frame, npartitions=3, sort=False), path, k=2)
    message = r"column 'c' has a missing value \(NaN\) at row 'q9' \(position 1\).*partition 2"
    with pytest.raises(ValueError, match=message):
        lazy.compute()


def test_a_pandas_vector_column_file_is_queried_through_its_column(sync, tmp_path):
    X = _data(30, seed=6)
    source = pd.DataFrame({"emb": list(X)}, index=pd.Index([f"w{i}" for i in range(30)]))
    path = tmp_path / "emb.annoy"
    source.annoy.build(columns="emb", path=path, seed=0, n_trees=3)
    table = tmp_path / "emb.parquet"
    pd.DataFrame({"word": source.index, "emb": list(X)}).to_parquet(table)
    want = source.annoy.query(source.iloc[:6], k=3, index=path)

    for backend in ("numpy_nullable", "pyarrow"):  # object cells, then an Arrow list column
        frame = dd.read_parquet(table, dtype_backend=backend).set_index("word", sort=False)
        for columns in (None, "emb", ["emb"]):  # the recorded vector column, or named
            got = query_dataframe(
                frame.partitions[0].head(6, compute=False), path, 3, columns=columns
            ).compute()
            pd.testing.assert_frame_equal(
                got.set_index("rank", append=True), want, check_names=False, check_index_type=False
            )


def test_a_vector_column_of_a_file_without_recorded_columns(sync, plain_index, tmp_path):
    path, X = plain_index
    table = tmp_path / "vectors.parquet"
    pd.DataFrame({"word": [f"q{i}" for i in range(8)], "emb": list(X[:8])}).to_parquet(table)
    frame = dd.read_parquet(table, dtype_backend="pyarrow", npartitions=2)
    out = query_dataframe(frame, path, k=2, columns="emb").compute()
    ids, _ = load(path).query(X[:8], 2)
    assert out["neighbor"].tolist() == [f"w{i}" for i in ids.ravel()]
    short = tmp_path / "short.parquet"
    pd.DataFrame({"emb": list(X[:4, :3])}).to_parquet(short)
    with pytest.raises(ValueError, match=r"column 'emb' holds vectors of 3 values.*f=4"):
        query_dataframe(dd.read_parquet(short), path, k=2).compute()


@pytest.mark.parametrize(
    "make",
    [list, tuple, pd.Index, np.array, pd.Series],
    ids=["list", "tuple", "Index", "ndarray", "Series"],
)
def test_columns_take_what_pandas_takes(sync, plain_index, make):
    path, X = plain_index
    frame = pd.DataFrame(X[:6], columns=list("abcd"))
    frame["extra"] = 1.0
    out = query_dataframe(dd.from_pandas(frame, npartitions=2), path, 2, columns=make(list("abcd")))
    ids, _ = load(path).query(X[:6], 2)
    assert out.compute()["neighbor"].tolist() == [f"w{i}" for i in ids.ravel()]


def test_a_column_named_twice_is_refused(plain_index):
    path, X = plain_index
    frame = dd.from_pandas(pd.DataFrame(X[:6], columns=list("abcd")), npartitions=1)
    with pytest.raises(ValueError, match=r"'columns' lists a column twice"):
        query_dataframe(frame, path, k=2, columns=["a", "a", "a", "a"])


def test_scikit_learn_feature_order_recorded_in_the_file_is_honoured(sync, tmp_path):
    sklearn = pytest.importorskip("annoy_adapters.sklearn")
    X = _data(40, seed=8).astype(np.float64)
    df = pd.DataFrame(X, columns=list("abcd"))
    path = tmp_path / "sk.annoy"
    sklearn.AnnoyTransformer(random_state=0).fit(df[["d", "c", "b", "a"]]).save(path)
    queries = df.iloc[:6]  # columns a, b, c, d: the file's order is d, c, b, a
    out = query_dataframe(dd.from_pandas(queries, npartitions=2), path, k=3).compute()
    ids, dist = load(path).query(queries[["d", "c", "b", "a"]].to_numpy(np.float32), 3)
    np.testing.assert_array_equal(out["neighbor"].to_numpy(), ids.ravel())
    np.testing.assert_array_equal(out["distance"].to_numpy(), dist.ravel())
    with pytest.raises(ValueError, match=r"don't match the columns .* was built on"):
        query_dataframe(dd.from_pandas(queries, npartitions=1), path, 3, columns=list("abcd"))


# -- build_index: every check before the first task -----------------------------------------------


def _no_task_runs(build):
    """Run ``build`` (which must raise) and assert that no Dask task started."""
    from dask.callbacks import Callback

    started: list = []
    with dask.config.set(scheduler="sync"), Callback(pretask=lambda *a: started.append(a[0])):
        build()
    assert started == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"labels": [f"v{i}" for i in range(19)]},
            ValueError,
            r"'labels' must hold one label "
            r"per row of 'vectors' \(20 rows",
        ),
        ({"labels": ["same"] * 20}, ValueError, r"'labels' must be unique"),
        ({"labels": [1.5] * 20}, TypeError, r"'labels' must be all str or all int"),
        ({"metadata": {"when": {1, 2}}}, ValueError, r"'metadata' must be JSON-serialisable"),
    ],
    ids=["labels-count", "labels-duplicate", "labels-float", "metadata"],
)
def test_build_index_checks_labels_and_metadata_before_any_task(tmp_path, kwargs, error, message):
    np.save(tmp_path / "v.npy", _data(20))

    def build():
        with pytest.raises(error, match=message):
            build_index(tmp_path / "v.npy", tmp_path / "o.annoy", n_trees=4, **kwargs)

    _no_task_runs(build)
    assert sorted(os.listdir(tmp_path)) == ["v.npy"]


def test_build_index_into_a_directory_names_the_users_path_before_any_task(tmp_path):
    np.save(tmp_path / "v.npy", _data(20))
    (tmp_path / "out").mkdir()

    def build():
        with pytest.raises(IsADirectoryError, match=r"'path' must be a file path.*'[^']*out'"):
            build_index(tmp_path / "v.npy", tmp_path / "out", n_trees=2)

    _no_task_runs(build)
    assert os.listdir(tmp_path / "out") == []


def test_build_index_into_a_missing_folder_fails_before_any_task(tmp_path):
    np.save(tmp_path / "v.npy", _data(20))

    def build():
        with pytest.raises(FileNotFoundError, match=r"'path' must be in an existing folder"):
            build_index(tmp_path / "v.npy", tmp_path / "no" / "o.annoy", n_trees=2)

    _no_task_runs(build)


# -- nullable item ids ----------------------------------------------------------------------------


def test_missing_int64_item_ids_are_named(sync, index_path):
    series = dd.from_pandas(pd.Series([1, None, 3], dtype="Int64"), npartitions=1)
    lazy = query_items(series, index_path, k=2, by="id")
    with pytest.raises(ValueError, match=r"'items' \(dtype Int64\) has a missing value.*row 1"):
        lazy.compute()
    whole = dd.from_pandas(pd.Series([1, 3], dtype="Int64"), npartitions=1)
    got = query_items(whole, index_path, k=2, by="id").compute()
    ids, _ = load(index_path).query_items([1, 3], 2)
    np.testing.assert_array_equal(got["neighbor"].to_numpy(), ids.ravel())


# -- docs -----------------------------------------------------------------------------------------


def test_docs_describe_the_cache_key_the_code_uses():
    from pathlib import Path

    doc = annoy_adapters.dask.__doc__
    assert "inode" in doc and "(path, modification time, size)" not in doc
    page = (Path(__file__).resolve().parents[1] / "docs" / "dask.md").read_text()
    spark = page[page.index("## Spark") :]
    assert "inode" in spark and "keyed by path and modification time" not in spark


# -- a file rebuilt at the same path: new task keys, new answers ---------------------------------


def _save_at(path: str, X: np.ndarray, labels: list[str]) -> None:
    """Write a new file beside ``path`` and rename it over ``path`` (the documented way)."""
    index = AnnoyIndex(F, "euclidean", seed=1)
    index.add_items(X)
    index.set_labels(labels)
    index.build(2)
    index.save(path + ".new")
    os.replace(path + ".new", path)


def test_a_rebuilt_file_is_queried_not_the_results_held_for_the_old_one(client, tmp_path):
    path = str(tmp_path / "same.annoy")
    X = _data(40, seed=11)
    _save_at(path, X, [f"a{i}" for i in range(40)])
    Q = X[:6]

    def lazy():
        frame = dd.from_pandas(pd.DataFrame(Q), npartitions=2)
        items = dd.from_pandas(pd.Series(np.arange(6)), npartitions=2)
        ids, _ = query_array(da.from_array(Q, chunks=(3, F)), path, k=1)
        return (
            query_dataframe(frame, path, k=1),
            query_items(items, path, k=1, by="id"),
            ids,
        )

    held = [c.persist() for c in lazy()]  # results the cluster keeps for the first file
    assert held[0].compute()["neighbor"].tolist() == [f"a{i}" for i in range(6)]
    assert held[2].compute().ravel().tolist() == list(range(6))

    _save_at(path, X[::-1].copy(), [f"b{i}" for i in range(40)])  # same vectors, new ids
    frame, items, ids = lazy()
    assert frame.compute()["neighbor"].tolist() == [f"b{39 - i}" for i in range(6)]
    assert items.compute()["neighbor"].tolist() == [f"b{i}" for i in range(6)]
    assert ids.compute().ravel().tolist() == [39 - i for i in range(6)]
    del held


# -- an AnnoyIndex whose labels or metadata are not in its file ------------------------------------


def test_an_index_with_unsaved_labels_or_metadata_is_refused(tmp_path):
    path = str(tmp_path / "unsaved.annoy")
    index = AnnoyIndex(F, "euclidean", seed=1)
    index.add_items(_data(20, seed=12))
    index.build(2)
    index.save(path)
    items = dd.from_pandas(pd.Series(["n1"]), npartitions=1)
    frame = dd.from_pandas(pd.DataFrame(_data(4, seed=13)), npartitions=1)
    array = da.from_array(_data(4, seed=13), chunks=(2, F))

    relabelled = load(path)
    relabelled.set_labels([f"n{i}" for i in range(20)])
    retagged = load(path)
    retagged.set_metadata({"version": 2})
    for stale, what in ((relabelled, "labels"), (retagged, "metadata")):
        message = rf"'index' has unsaved {what} .*{os.path.basename(path)}.*save\(\) it first"
        with pytest.raises(ValueError, match=message):
            query_items(items, stale, k=2)
        with pytest.raises(ValueError, match=message):
            query_dataframe(frame, stale, k=2)
        with pytest.raises(ValueError, match=message):
            query_array(array, stale, k=2)

    relabelled.save(path)  # saved, the file has the labels: the index is taken
    with dask.config.set(scheduler="sync"):
        got = query_items(items, relabelled, k=1).compute()
    assert got["neighbor"].tolist() == ["n1"]


# -- query_array: errors name the user's argument and the row in the whole array ------------------


def test_query_array_errors_name_x_and_the_row_of_the_whole_array(client, index_path):
    Q = _data(40, seed=14)
    Q[17, 2] = np.nan
    ids, _ = query_array(da.from_array(Q, chunks=(10, F)), index_path, k=2)
    with pytest.raises(RowError, match=r"^'x' row 17 \(row 7 of block 1\) holds NaN or inf") as err:
        ids.compute()  # a RowError crosses from the worker process, as the core raises it
    assert (err.value.argument, err.value.row, err.value.reason) == ("x", 17, "holds NaN or inf")
    with pytest.raises(TypeError, match=r"'x' must hold real numbers \(got dtype complex64\)"):
        query_array(da.from_array(Q.astype(np.complex64), chunks=(10, F)), index_path, k=2)


# -- the per-process file cache lets go of old files -----------------------------------------------


def test_the_file_cache_lets_go_of_gone_replaced_and_least_used_files(tmp_path):
    import shutil

    from annoy_adapters import _cache

    limit = 16  # the documented bound
    first = tmp_path / "v0.annoy"
    index = AnnoyIndex(F, "euclidean", seed=1)
    index.add_items(_data(20, seed=15))
    index.build(1)
    index.save(str(first))
    paths = [first] + [tmp_path / f"v{i}.annoy" for i in range(1, limit + 3)]
    for p in paths[1:]:
        shutil.copy(first, p)  # distinct files
    _cache.clear_cache()
    in_use = _cache.open_index(paths[0])
    for p in paths:
        _cache.open_index(p)
    assert _cache.cache_info()["files"] == limit  # the least recently used went first

    os.remove(paths[-1])
    shutil.copy(first, str(paths[-2]) + ".new")
    os.replace(str(paths[-2]) + ".new", paths[-2])
    _cache.open_index(paths[0])  # opening another file drops the gone and the replaced file
    assert _cache.cache_info()["files"] == limit - 1
    # an index dropped while in use stays usable: the cache only forgets its reference
    assert in_use.query(_data(2, seed=16), 1)[0].shape == (2, 1)
    assert _cache.clear_cache() == limit - 1
    assert _cache.cache_info()["files"] == 0


def _cached_files(tmp_path, count: int) -> list[str]:
    """``count`` distinct index files, each opened once through an emptied cache."""
    import shutil

    from annoy_adapters import _cache

    paths = [str(tmp_path / f"c{i}.annoy") for i in range(count)]
    _save_at(paths[0], _data(20, seed=19), [f"c{i}" for i in range(20)])
    for p in paths[1:]:
        shutil.copy(paths[0], p)
    _cache.clear_cache()
    for p in paths:
        _cache.open_index(p)
    return paths


def test_a_cache_hit_stats_only_its_own_file(tmp_path, monkeypatch):
    # Every task thread passes through the cache, under one lock: statting all 16 cached files
    # on each hit cost 22 us against 3 us, and a server round trip each on network filesystems.
    from annoy_adapters import _cache

    paths = _cached_files(tmp_path, 5)
    statted: list[str] = []
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        statted.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    for _ in range(20):
        _cache.open_index(paths[2])
    assert set(statted) == {paths[2]}  # no other cached file was statted
    assert _cache.cache_info()["files"] == 5

    os.remove(paths[0])  # retired: let go when another file is opened
    statted.clear()
    extra = str(tmp_path / "extra.annoy")
    _save_at(extra, _data(20, seed=20), [f"e{i}" for i in range(20)])
    _cache.open_index(extra)
    assert set(paths) <= set(statted)  # a miss checks every cached file
    assert _cache.cache_info()["files"] == 5  # 4 left of the 5, and the new one
    _cache.clear_cache()


def test_cache_hits_check_the_other_files_at_most_every_few_seconds(tmp_path, monkeypatch):
    from annoy_adapters import _cache

    paths = _cached_files(tmp_path, 3)
    os.remove(paths[0])
    monkeypatch.setattr(_cache, "SWEEP_SECONDS", 3600.0)  # the last miss checked just now
    _cache.open_index(paths[1])
    assert _cache.cache_info()["files"] == 3  # a hit within the interval checks nothing else
    monkeypatch.setattr(_cache, "SWEEP_SECONDS", 0.0)  # the interval has passed
    _cache.open_index(paths[1])
    assert _cache.cache_info()["files"] == 2  # the gone file is let go without a new open
    _cache.clear_cache()


def _maps_of(path: str) -> int:
    import gc

    gc.collect()
    with open("/proc/self/maps") as maps:
        return sum(path in line for line in maps)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_workers_let_go_of_retired_versions_and_can_be_cleared(client, tmp_path):
    old, new = str(tmp_path / "items-v1.annoy"), str(tmp_path / "items-v2.annoy")
    _save_at(old, _data(30, seed=17), [f"a{i}" for i in range(30)])
    _save_at(new, _data(30, seed=18), [f"b{i}" for i in range(30)])
    annoy_adapters.dask.preload(client, old)
    assert all(client.run(_maps_of, old).values())
    os.remove(old)  # retired
    annoy_adapters.dask.preload(client, new)  # every worker consults its cache
    assert set(client.run(_maps_of, old).values()) == {0}

    cleared = annoy_adapters.dask.clear_worker_cache(client)
    assert len(cleared) == 2 and all(n >= 1 for n in cleared.values())
    info = annoy_adapters.dask.worker_cache_info(client)
    assert {w: i["files"] for w, i in info.items()} == dict.fromkeys(cleared, 0)
    assert set(client.run(_maps_of, new).values()) == {0}


# -- build_index: the .npy header checked before any task, NaN named by file and row --------------


@pytest.mark.parametrize(
    "make",
    [
        lambda X: X.astype(np.complex64),
        lambda X: X.astype(str),
        lambda X: np.zeros(X.shape, dtype=[("a", "f4")]),
    ],
    ids=["complex", "text", "records"],
)
def test_build_index_refuses_vectors_that_are_not_real_numbers_before_any_task(tmp_path, make):
    np.save(tmp_path / "v.npy", make(_data(20)))

    message = r"'vectors' must hold real numbers \(got dtype .* in '.*v\.npy'\)"

    def build():
        with pytest.raises(TypeError, match=message):
            build_index(tmp_path / "v.npy", tmp_path / "o.annoy", n_trees=2)

    _no_task_runs(build)


def test_build_index_names_the_vectors_file_and_row_holding_nan(client, tmp_path):
    X = _data(30, seed=19)
    X[21, 1] = np.nan
    np.save(tmp_path / "v.npy", X)
    with pytest.raises(RowError, match=r"^'vectors' row 21 of '.*v\.npy' holds NaN or inf") as err:
        build_index(tmp_path / "v.npy", tmp_path / "o.annoy", n_trees=2)
    assert (err.value.argument, err.value.row) == ("vectors", 21)
    assert not (tmp_path / "o.annoy").exists()


# -- docs/dask.md runs as one script: a worker re-importing it does no work -----------------------


def test_the_docs_page_does_no_work_when_a_worker_reimports_it(tmp_path, monkeypatch):
    import copy
    from pathlib import Path

    from annoy_adapters import _cache

    docs = Path(__file__).resolve().parents[1] / "docs" / "dask.md"
    # every ```python block, as tests/test_docs.py runs them (the page has no skip-exec marker)
    text = docs.read_text()
    assert "skip-exec" not in text
    blocks = [b.split("\n", 1)[1].split("```", 1)[0] for b in text.split("```python")[1:]]
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    saved = copy.deepcopy(dask.config.config)
    before = _cache.cache_info()["opens"]
    namespace = {"__name__": "__mp_main__"}  # what a spawned worker runs the script as
    try:
        exec(compile("\n".join(blocks), str(docs), "exec"), namespace)
    finally:
        dask.config.config.clear()
        dask.config.config.update(saved)
    assert os.listdir(tmp_path) == []  # no work folder, no index built
    assert _cache.cache_info()["opens"] == before  # no index opened
