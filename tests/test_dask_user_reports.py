"""User reports against annoy_adapters.dask, on a real distributed.LocalCluster.

Small builds (fewer than 16 rows) and the safety of replacing a file; arguments checked before
any task runs (search_k) or refused instead of truncated (float item ids).
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

from annoy_adapters import AnnoyIndex, IndexFileError, load  # noqa: E402
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
