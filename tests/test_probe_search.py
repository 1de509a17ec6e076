"""Probe search: items grouped into cells and stored cell by cell, scanned cell by cell."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import brute_force, clustered

from annoy_adapters import AnnoyIndex, IndexFileError, load
from annoy_adapters.core import _fileformat as ff

K = 10
CELL_METRICS = ["angular", "euclidean"]


def built(metric: str, n: int = 6000, f: int = 16, seed: int = 0) -> tuple[AnnoyIndex, np.ndarray]:
    x = clustered(n, f, seed=seed)
    index = AnnoyIndex(f, metric, seed=seed)
    index.add_items(x)
    index.build(5)
    return index, x


def recall(got: np.ndarray, want: np.ndarray) -> float:
    hits = [len(set(a) & set(b)) for a, b in zip(got, want, strict=True)]
    return float(np.mean(hits)) / want.shape[1]


@pytest.mark.parametrize("metric", CELL_METRICS)
def test_cells_hold_every_item_once_in_about_sqrt_n_groups(metric: str) -> None:
    index, x = built(metric)
    cells = index._cells
    assert cells is not None
    assert 40 <= index.get_n_cells() <= 160  # sqrt(6000) = 77
    assert np.array_equal(np.sort(cells.row_ids[: cells.ptr[-1]]), np.arange(len(x)))
    assert (np.diff(cells.ptr) > 0).all()
    # the store is reordered, yet every id still reads its own vector
    np.testing.assert_array_equal(index.get_item_vectors(), x.astype(np.float32))
    assert index.get_item_vector(17) == x[17].astype(np.float32).tolist()


@pytest.mark.parametrize("metric", CELL_METRICS)
def test_probe_recall_against_brute_force(metric: str) -> None:
    index, x = built(metric)
    q = clustered(300, 16, seed=9)
    truth = np.argsort(brute_force(metric, x, q), axis=1, kind="stable")[:, :K]
    few = max(1, index.get_n_cells() // 8)
    ids, d = index.query(q, K, probe=few)
    assert recall(ids, truth) >= 0.93  # an eighth of the cells (measured 0.96-0.97)
    assert (np.diff(d, axis=1) >= 0).all()
    more, _ = index.query(q, K, probe=index.get_n_cells() // 3)
    assert recall(more, truth) >= max(0.99, recall(ids, truth))  # measured 0.998-0.999


@pytest.mark.parametrize("metric", CELL_METRICS)
def test_probing_every_cell_is_exact(metric: str) -> None:
    index, x = built(metric)
    q = clustered(200, 16, seed=5)
    ids, d = index.query(q, K, probe=10**6)  # more than there are: every cell
    exact_ids, exact_d = index.query(q, K, search_k=len(x) * 5)  # the exact mode
    np.testing.assert_array_equal(ids, exact_ids)
    np.testing.assert_array_equal(d, exact_d)
    oracle = np.sort(brute_force(metric, x, q), axis=1)[:, :K]  # float64
    np.testing.assert_allclose(d, oracle, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("vector_dtype", ["float32", "float16"])
@pytest.mark.parametrize("metric", CELL_METRICS)
def test_one_query_equals_its_batch_row(metric: str, vector_dtype: str, monkeypatch) -> None:
    from annoy_adapters.core import _cells

    # products of a few rows each: a float16 query's widened rows are cut into many pieces
    monkeypatch.setattr(_cells, "BLAS_ROWS", 7)
    x = clustered(6000, 16, seed=0)
    index = AnnoyIndex(16, metric, seed=0, vector_dtype=vector_dtype)
    index.add_items(x)
    index.build(5)
    q = clustered(40, 16, seed=3)
    ids, d = index.query(q, K, probe=6)
    for row in range(len(q)):
        got, dist = index.get_nns_by_vector(q[row], K, include_distances=True, probe=6)
        assert got == ids[row].tolist()
        np.testing.assert_allclose(dist, d[row], rtol=1e-6)
    assert index.get_nns_by_item(3, 1, probe=6) == [3]
    np.testing.assert_array_equal(index.query_items([3, 4], K, probe=6)[0][:, 0], [3, 4])


def test_float16_spans_widened_in_a_small_buffer_score_as_widened_all_at_once(monkeypatch) -> None:
    from annoy_adapters.core import _cells
    from annoy_adapters.core._metrics import HALF_SCALE, half_scaled

    monkeypatch.setattr(_cells, "BLAS_ROWS", 7)  # spans cut, buffers flushed part-full
    store = clustered(200, 16, seed=4).astype(np.float16)
    spans = [(10, 12), (40, 40), (50, 69), (0, 7), (150, 151), (100, 106), (190, 200)]
    q = clustered(1, 16, seed=6)[0] * HALF_SCALE
    rows = np.concatenate([store[a:z] for a, z in spans])
    got = _cells._half_products(store, spans, q)
    assert got.dtype == np.float32 and len(got) == len(rows)
    np.testing.assert_allclose(got, half_scaled(rows) @ q, rtol=1e-6)
    assert np.array_equal(_cells._half_products(store, [(5, 5)], q), np.zeros(0, np.float32))


@pytest.mark.parametrize("metric", CELL_METRICS)
def test_batches_match_single_queries_when_cells_are_smaller_than_the_kept_items(
    metric: str,
) -> None:
    # a batch lets only items at or above a query's bar (its k + 8-th best in its nearest
    # cell) through its other cells; with cells this small the bar often does not exist and
    # the partition takes over, and either way the answers are those of one query per call
    index, _ = built(metric, n=250, f=8)
    sizes = np.diff(index._cells.ptr)
    assert sizes.min() <= K + 8 < sizes.max()
    q = clustered(60, 8, seed=4)
    for k, probe in ((K, 1), (K, 3), (30, 4), (3, 7)):
        ids, d = index.query(q, k, probe=probe)
        for row in range(len(q)):
            got, dist = index.get_nns_by_vector(q[row], k, include_distances=True, probe=probe)
            assert got == ids[row][ids[row] >= 0].tolist(), (k, probe, row)
            np.testing.assert_allclose(dist, d[row][: len(got)], rtol=1e-6)


def test_holes_are_never_returned_and_unbuild_restores_the_order() -> None:
    x = clustered(3000, 8, seed=1)
    index = AnnoyIndex(8, "euclidean", seed=1)
    ids = np.arange(len(x)) * 2  # every odd id is a hole
    index.add_items(x, ids=ids)
    index.build(3)
    got, _ = index.query(x[:100], K, probe=index.get_n_cells())
    assert (got % 2 == 0).all() and (got[:, 0] == ids[:100]).all()
    index.unbuild()
    index.add_item(1, x[0] + 100)  # written by id, where the unbuilt store keeps it
    index.build(3)
    np.testing.assert_array_equal(index.get_item_vectors(ids), x.astype(np.float32))
    assert index.get_item_vector(1) == (x[0] + 100).astype(np.float32).tolist()
    assert index.get_nns_by_vector(x[0] + 100, 1, probe=3) == [1]


@pytest.mark.parametrize("metric", CELL_METRICS)
def test_save_load_and_pickle_keep_cells_and_answers(tmp_path, metric: str) -> None:
    index, x = built(metric)
    q = clustered(50, 16, seed=8)
    want = index.query(q, K, probe=5)
    path = tmp_path / "cells.annoy"
    index.save(path)
    loaded = load(path)
    assert loaded.get_n_cells() == index.get_n_cells()
    for other in (loaded, pickle.loads(pickle.dumps(loaded)), pickle.loads(pickle.dumps(index))):
        got = other.query(q, K, probe=5)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(other.get_item_vectors(), x.astype(np.float32))
        assert other.get_distance(0, 1) == pytest.approx(index.get_distance(0, 1))


@pytest.mark.parametrize("metric", ["manhattan", "dot", "hamming"])
def test_other_metrics_have_no_cells_and_say_so(metric: str) -> None:
    index = AnnoyIndex(8, metric)
    index.add_items(np.random.default_rng(0).random((200, 8)))
    index.build(2)
    assert index.get_n_cells() == 0
    with pytest.raises(ValueError, match="'probe' needs an index with cells"):
        index.query(np.ones((1, 8)), 1, probe=2)


def test_bad_probe_values_and_builds_without_cells() -> None:
    index, _ = built("angular", n=500)
    for bad in (0, -3):
        with pytest.raises(ValueError, match=rf"'probe' must be a positive int \(got {bad}\)"):
            index.query(np.ones((1, 16)), 1, probe=bad)
    with pytest.raises(ValueError, match="'probe'"):
        index.query(np.ones((1, 16)), 1, probe=2.5)
    plain = AnnoyIndex(16, "angular")
    plain.add_items(np.random.default_rng(0).random((300, 16)))
    plain.build(2, cells=False)
    assert plain.get_n_cells() == 0
    with pytest.raises(ValueError, match="has none: use search_k"):
        plain.get_nns_by_vector(np.ones(16), 1, probe=1)


def _rewrite(src, dst, **changes: np.ndarray) -> None:
    mapped = ff.Mapped(src)
    fields = {k: v for k, v in mapped.fields.items() if k not in ("arrays", "content_hash")}
    arrays = {k: np.array(v) for k, v in mapped.arrays.items()}
    mapped.close()
    arrays.update(changes)
    ff.write(dst, fields, arrays)


@pytest.mark.parametrize("damage", ["duplicate", "out_of_range", "inverse", "ptr"])
def test_damaged_cell_maps_are_refused_not_followed(tmp_path, damage: str) -> None:
    index, x = built("euclidean", n=800)
    good = tmp_path / "good.annoy"
    index.save(good)
    rows, back = index._cells.row_ids.copy(), index._cells.rows.copy()
    if damage == "duplicate":
        rows[1] = rows[0]
        change = {"cell_rows": rows}
    elif damage == "out_of_range":
        back[5] = 10**6
        change = {"item_rows": back}
    elif damage == "inverse":
        back[[0, 1]] = back[[1, 0]]
        change = {"item_rows": back}
    else:
        ptr = index._cells.ptr.copy()
        ptr[-1] = len(x) + 5
        change = {"cell_ptr": ptr}
    bad = tmp_path / "bad.annoy"
    _rewrite(good, bad, **change)
    with pytest.raises(IndexFileError, match="corrupted"):
        load(bad).query(x[:2], 3, probe=2)
    with pytest.raises(IndexFileError, match="corrupted"):
        load(bad).get_item_vectors([0, 1])


def test_batches_are_chunked_by_kept_items_without_changing_answers(monkeypatch) -> None:
    from annoy_adapters.core import _cells

    index, _ = built("euclidean")
    q = clustered(700, 16, seed=11)
    want = index.query(q, K, probe=20)
    assert _cells.chunk_size(index._cells, 20, K) == 4096
    monkeypatch.setattr(_cells, "KEPT_BUDGET", 1000)  # 256 queries per chunk: three chunks
    assert _cells.chunk_size(index._cells, 20, K) == 256
    got = index.query(q, K, probe=20)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("metric", CELL_METRICS)
def test_sample_rounds_look_only_near_the_cell_and_are_exact_with_every_candidate(
    metric: str, monkeypatch
) -> None:
    """After the first round, a sample row is compared with the centroids nearest its cell's;
    given every centroid as a candidate that is the exact nearest-centroid assignment."""
    from annoy_adapters.core import _cells
    from annoy_adapters.core._metrics import get_metric

    m = get_metric(metric)
    x = clustered(3000, 12, seed=3).astype(np.float32)
    rng = np.random.default_rng(3)
    cent = x[rng.choice(len(x), 40, replace=False)]
    cell = rng.integers(0, 40, len(x))  # any current labels
    exact = _cells._nearest(m, x, cent, 1)
    monkeypatch.setattr(_cells, "CANDIDATES", 40)
    assert np.array_equal(_cells._nearest_around(m, x, cell, cent, 2), exact)
    monkeypatch.setattr(_cells, "CANDIDATES", 5)
    near = _cells._nearest_around(m, x, cell, cent, 1)
    scores = _cells._centroid_scores(m, cent, cent)
    allowed = np.argsort(-scores, axis=1)[:, :5]  # the 5 nearest of each cell's centroid
    assert (allowed[cell] == near[:, None]).any(axis=1).all()
    assert (near != exact).any()  # a restriction that bites on scattered labels


@pytest.mark.parametrize("holes", [False, True])
@pytest.mark.parametrize("vector_dtype", ["float32", "float16"])
@pytest.mark.parametrize("metric", CELL_METRICS)
def test_cells_from_the_builds_rows_equal_cells_from_the_store(metric, vector_dtype, holes):
    """A build hands the cells the rows its trees read (unit rows for angular) instead of
    a fresh copy of the store: the cells must come out the same bit for bit."""
    from annoy_adapters.core._cells import build_cells
    from annoy_adapters.core._treespace import TreeSpace

    x = clustered(3000, 12, seed=4)
    index = AnnoyIndex(12, metric, seed=4, vector_dtype=vector_dtype)
    index.add_items(x)
    if holes:
        index.add_item(3005, x[0])  # ids 3000-3004 are absent
    present = np.flatnonzero(index._present[: index._n])
    handed = TreeSpace(index._metric, index._store[: index._n], present, 12).cell_rows()
    assert (handed is not None) == (metric == "angular" or not holes)  # the path under test
    index.build(3, n_jobs=1)
    built_cells = index._cells
    assert built_cells is not None
    store = np.empty_like(index._store)
    store[built_cells.row_ids] = index._store  # back in id order
    again = build_cells(index._metric, store, index._present, index._forest, 1)
    assert again is not None
    for name, a in built_cells.arrays().items():
        np.testing.assert_array_equal(a, again.arrays()[name], err_msg=name)


@pytest.mark.parametrize("slack", [0.0, 0.25])
@pytest.mark.parametrize("first", [0, 5, 18, 19, 60, 400])
def test_one_query_top_with_the_nearest_cells_bar_equals_a_full_partition(
    first: int, slack: float
) -> None:
    """The nearest cell's kk-th best bars the other cells' scores; what passes is partitioned
    again, so the kept positions are those of a partition of every score, with every score
    within ``slack`` of the kk-th."""
    from annoy_adapters.core import _cells

    rng = np.random.default_rng(first)
    for trial in range(20):
        s = rng.standard_normal(400).astype(np.float32)
        if trial % 2:  # the nearest cell holds the best scores, as it mostly does
            s[:first] += 2
        got = _cells._top_after_first(s, 18, first, slack)
        want = np.flatnonzero(s >= np.sort(s)[-18] - np.float32(slack))
        assert np.array_equal(np.sort(got), want)
        assert len(got) >= 18
    few = np.array([3.0, 1.0, 2.0], np.float32)
    assert np.array_equal(np.sort(_cells._top_after_first(few, 18, 2, slack)), [0, 1, 2])
