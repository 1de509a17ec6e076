"""annoy_adapters.dask on a real distributed.LocalCluster (2 worker processes)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from annoy_adapters import AnnoyIndex, load  # noqa: E402
from annoy_adapters.dask import (  # noqa: E402
    build_index,
    preload,
    query_array,
    query_dataframe,
    query_items,
    worker_cache_info,
)

F = 8


def _data(n: int = 400, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, F)).astype(np.float32)


def _save_index(path, X, metric="euclidean", labels=None, n_trees=5) -> str:
    index = AnnoyIndex(X.shape[1], metric, seed=7)
    index.add_items(X)
    if labels is not None:
        index.set_labels(labels)
    index.build(n_trees)
    index.save(str(path))
    return str(path)


def _expected_tidy(query_labels, ids, dist, labels) -> pd.DataFrame:
    """The tidy format written out row by row (independent of the adapter's array code)."""
    rows = [
        (q, r, labels[i] if labels is not None else int(i), float(d))
        for q, row_ids, row_d in zip(query_labels, ids, dist, strict=True)
        for r, (i, d) in enumerate(zip(row_ids, row_d, strict=True))
        if i >= 0
    ]
    return pd.DataFrame(rows, columns=["query", "rank", "neighbor", "distance"])


def _opens(client) -> dict[str, tuple[int, int]]:
    return {w: (v["opens"], v["hits"]) for w, v in worker_cache_info(client).items()}


def test_query_dataframe_equals_single_process(client, tmp_path):
    X = _data()
    labels = [f"w{i}" for i in range(len(X))]
    path = _save_index(tmp_path / "a.annoy", X, labels=labels)
    Q = _data(60, seed=1)
    qframe = pd.DataFrame(Q, columns=[f"c{j}" for j in range(F)])
    qframe.index = pd.Index([f"q{i:02d}" for i in range(len(Q))], name="qid")
    qframe["other"] = "ignored"
    ddf = dd.from_pandas(qframe, npartitions=4)

    result = query_dataframe(ddf, path, k=5, columns=[f"c{j}" for j in range(F)])
    assert list(result.columns) == ["rank", "neighbor", "distance"]
    assert result.known_divisions and result.divisions == ddf.divisions
    out = result.compute()
    # the lazy collection's meta describes the computed data exactly
    pd.testing.assert_series_equal(out.dtypes, result.dtypes)
    assert out.index.name == "qid"

    ids, dist = load(path).query(Q, 5)
    expected = _expected_tidy(qframe.index, ids, dist, labels)
    got = out.reset_index()
    assert got["qid"].tolist() == expected["query"].tolist()
    assert got["rank"].tolist() == expected["rank"].tolist()
    assert got["neighbor"].tolist() == expected["neighbor"].tolist()
    np.testing.assert_array_equal(got["distance"].to_numpy(), dist.reshape(-1))
    assert out["distance"].dtype == np.float32

    tidy = out.set_index("rank", append=True)
    assert tidy.index.names == ["qid", "rank"]
    assert tidy.loc[("q00", 0), "neighbor"] == labels[ids[0, 0]]


def test_each_worker_opens_the_file_once(client, tmp_path):
    X = _data()
    path = _save_index(tmp_path / "once.annoy", X)
    ddf = dd.from_pandas(pd.DataFrame(_data(200, seed=2)), npartitions=10)
    before = _opens(client)
    query_dataframe(ddf, path, k=3).compute()
    # a second, different graph (held results of the first one would be reused otherwise)
    query_dataframe(ddf, path, k=4).compute()
    after = _opens(client)
    assert len(after) == 2
    calls = 0
    for worker, (opens, hits) in after.items():
        d_opens = opens - before[worker][0]
        d_hits = hits - before[worker][1]
        calls += d_opens + d_hits
        # a worker that ran any task opened the file exactly once; the rest were hits
        assert d_opens == (1 if d_opens + d_hits else 0), (worker, d_opens, d_hits)
    assert calls == 2 * ddf.npartitions  # one open_index call per partition and pass


def test_preload_opens_on_every_worker_then_only_hits(client, tmp_path):
    path = _save_index(tmp_path / "pre.annoy", _data())
    before = _opens(client)
    assert preload(client, path) == dict.fromkeys(before, 400)
    query_array(da.from_array(_data(100, seed=6), chunks=(10, F)), path, k=2)[0].compute()
    after = _opens(client)
    assert {w: after[w][0] - before[w][0] for w in after} == dict.fromkeys(after, 1)
    assert sum(after[w][1] - before[w][1] for w in after) >= 10  # every block was a hit


def test_query_array_equals_single_process(client, tmp_path):
    X = _data()
    path = _save_index(tmp_path / "arr.annoy", X, metric="angular")
    Q = _data(50, seed=3)
    x = da.from_array(Q, chunks=(13, 5))  # column chunks are merged by the adapter
    ids, dist = query_array(x, path, k=4)
    assert ids.dtype == np.int64 and dist.dtype == np.float32
    assert ids.shape == (50, 4) and ids.chunks[0] == (13, 13, 13, 11)
    got_ids, got_dist = dask.compute(ids, dist)
    want_ids, want_dist = load(path).query(Q, 4)
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_array_equal(got_dist, want_dist)


def test_probe_through_every_entry_point_equals_single_process(client, tmp_path):
    X = _data(2000)
    labels = [f"w{i}" for i in range(len(X))]
    path = _save_index(tmp_path / "cells.annoy", X, labels=labels)
    index = load(path)
    assert index.get_n_cells() > 3
    Q = _data(60, seed=4)
    want_ids, want_dist = index.query(Q, 4, probe=3)
    ids, dist = dask.compute(*query_array(da.from_array(Q, chunks=(25, F)), path, k=4, probe=3))
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(dist, want_dist)
    frame = dd.from_pandas(pd.DataFrame(Q), npartitions=3)
    got = query_dataframe(frame, path, k=4, probe=3).compute()
    assert got["neighbor"].tolist() == [labels[i] for i in want_ids.ravel()]
    named = dd.from_pandas(pd.Series(labels[:30]), npartitions=2)
    by_item = query_items(named, path, k=2, probe=3).compute()
    assert by_item[by_item["rank"] == 0]["neighbor"].tolist() == labels[:30]
    with pytest.raises(ValueError, match="'probe' must be None or a positive int"):
        query_array(da.from_array(Q), path, k=1, probe=0)
    manhattan = _save_index(tmp_path / "m.annoy", X, metric="manhattan")
    with pytest.raises(ValueError, match="'probe' needs an index with cells"):
        query_dataframe(frame, manhattan, k=1, probe=2)


def test_query_items_by_label_and_id(client, tmp_path):
    X = _data(300)
    labels = [f"item{i}" for i in range(len(X))]
    path = _save_index(tmp_path / "items.annoy", X, labels=labels)
    names = pd.Series(["item5", "item17", "item250", "item0"], name="word")
    out = query_items(dd.from_pandas(names, npartitions=2), path, k=3).compute()
    ids, dist = load(path).query_items([5, 17, 250, 0], 3)
    expected = _expected_tidy(names.index, ids, dist, labels)
    assert out["neighbor"].tolist() == expected["neighbor"].tolist()
    np.testing.assert_array_equal(out["distance"].to_numpy(), dist.reshape(-1))

    by_id = query_items(
        dd.from_pandas(pd.Series([5, 17, 250, 0]), npartitions=2), path, k=3, by="id"
    ).compute()
    assert by_id["neighbor"].tolist() == expected["neighbor"].tolist()


def test_replaced_file_is_reopened(client, tmp_path):
    """The documented safe replacement: write a new file, rename it over the old path."""
    path = str(tmp_path / "live.annoy")
    X = _data()
    _save_index(path, X)
    Q = pd.DataFrame(_data(20, seed=4))
    first = query_dataframe(dd.from_pandas(Q, npartitions=2), path, k=2).compute()
    _save_index(tmp_path / "live.annoy.tmp", X * 10.0, n_trees=3)
    os.replace(tmp_path / "live.annoy.tmp", path)
    second = query_dataframe(dd.from_pandas(Q, npartitions=2), path, k=2).compute()
    _, dist = load(path).query(Q.to_numpy(), 2)
    np.testing.assert_array_equal(second["distance"].to_numpy(), dist.reshape(-1))
    assert not np.array_equal(first["distance"].to_numpy(), second["distance"].to_numpy())


@pytest.mark.parametrize(
    ("metric", "vector_dtype"),
    [("angular", "float32"), ("dot", "float32"), ("euclidean", "float16")],
)
def test_build_index_equals_local_build_byte_for_byte(client, tmp_path, metric, vector_dtype):
    X = _data(500, seed=5)
    vectors = tmp_path / "vectors.npy"
    np.save(vectors, X)
    labels = [f"v{i}" for i in range(len(X))]
    meta = {"adapter": "dask", "note": "test"}

    built = build_index(
        vectors,
        tmp_path / "dask.annoy",
        metric=metric,
        n_trees=5,
        seed=11,
        labels=labels,
        metadata=meta,
        trees_per_task=2,
        vector_dtype=vector_dtype,
    )
    local = AnnoyIndex(F, metric, seed=11, vector_dtype=vector_dtype)
    local.add_items(X)
    local.set_labels(labels)
    local.set_metadata(meta)
    local.build(5)
    local.save(str(tmp_path / "local.annoy"))

    assert (tmp_path / "dask.annoy").read_bytes() == (tmp_path / "local.annoy").read_bytes()
    assert built.get_n_trees() == 5 and built.path == os.path.abspath(tmp_path / "dask.annoy")
    assert built.vector_dtype == vector_dtype


def test_argument_errors(tmp_path):
    X = _data(50)
    path = _save_index(tmp_path / "e.annoy", X)
    ddf = dd.from_pandas(pd.DataFrame(X), npartitions=1)
    with pytest.raises(ValueError, match="'k' must be a positive int"):
        query_dataframe(ddf, path, k=0)
    with pytest.raises(ValueError, match="'search_k'"):
        query_dataframe(ddf, path, k=1, search_k=1.5)
    with pytest.raises(FileNotFoundError, match="'index'"):
        query_dataframe(ddf, tmp_path / "missing.annoy", k=1)
    with pytest.raises(KeyError, match="'columns' not in the frame"):
        query_dataframe(ddf, path, k=1, columns=["nope"])
    with pytest.raises(ValueError, match="f=8"):
        query_dataframe(ddf, path, k=1, columns=[0, 1])
    with pytest.raises(TypeError, match=r"'frame' must be a dask\.dataframe\.DataFrame"):
        query_dataframe(pd.DataFrame(X), path, k=1)
    with pytest.raises(TypeError, match="file-backed AnnoyIndex"):
        query_dataframe(ddf, AnnoyIndex(F, "euclidean"), k=1)
    with pytest.raises(ValueError, match=r"'x' must have shape \(n, 8\)"):
        query_array(da.ones((4, 3)), path, k=1)
    with pytest.raises(ValueError, match="no labels"):
        query_items(dd.from_pandas(pd.Series(["a"]), npartitions=1), path, k=1, by="label")
    np.save(tmp_path / "v.npy", X)
    with pytest.raises(ValueError, match="'n_trees' must be a positive int"):
        build_index(tmp_path / "v.npy", tmp_path / "o.annoy", n_trees=-1)
    with pytest.raises(TypeError, match=r"'vectors' must be the path of a \.npy file"):
        build_index(X, tmp_path / "o.annoy", n_trees=2)
    with pytest.raises(ValueError, match="'vector_dtype' must be 'float32' or 'float16'"):
        build_index(tmp_path / "v.npy", tmp_path / "o.annoy", n_trees=2, vector_dtype="half")
