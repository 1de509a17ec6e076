"""The exact mode (search_k covering every item of every tree) against ranking every item."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import brute_force, clustered

from annoy_adapters import AnnoyIndex
from annoy_adapters.core._exact import SAMPLE, exact_candidates
from annoy_adapters.core._metrics import get_metric
from annoy_adapters.core._search import rank

K = 10
PRODUCT_METRICS = ["angular", "euclidean", "dot"]


def every_item_ranked(index: AnnoyIndex, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """What the search returns when every present item is a candidate (no prefilter)."""
    m = get_metric(index.metric)
    everyone = np.broadcast_to(np.flatnonzero(index._present), (len(q), index._n_present))
    rows = None if index._cells is None else index._cells.id_rows  # the store is cell by cell
    ids, d = rank(m, m.store(q), everyone, index._store, index._sqnorm, k, rows)
    return ids, m.returned(d)


def exact_query(index: AnnoyIndex, q: np.ndarray, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    return index.query(q, k, search_k=index.get_n_items() * index.get_n_trees())


def built(metric: str, x: np.ndarray, ids: np.ndarray | None = None) -> AnnoyIndex:
    index = AnnoyIndex(x.shape[1], metric, seed=7)
    if ids is None:
        index.add_items(x)
    else:
        for i, v in zip(ids, x, strict=True):
            index.add_item(int(i), v)
    index.build(2)
    return index


@pytest.mark.parametrize("metric", PRODUCT_METRICS)
@pytest.mark.parametrize("n", [6_000, 3 * SAMPLE + 123])  # one sample pass; sample + blocks
def test_exact_mode_equals_ranking_every_item(metric: str, n: int) -> None:
    x = clustered(n, 16, seed=3)
    q = clustered(60, 16, seed=4)
    index = built(metric, x)
    got_ids, got_d = exact_query(index, q)
    want_ids, want_d = every_item_ranked(index, q, K)
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_array_equal(got_d, want_d)
    # and against a float64 oracle: the k-th distance is the true k-th distance
    oracle = np.sort(brute_force(metric, x, q), axis=1)[:, :K]
    got = -got_d if metric == "dot" else got_d
    np.testing.assert_allclose(got, oracle, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", PRODUCT_METRICS)
def test_exact_mode_ties_go_to_the_smaller_id(metric: str) -> None:
    # 300 copies of one vector spread over the ids, and the query is that vector: the k
    # smallest ids among the copies must come back, whatever block each copy falls in
    x = clustered(3 * SAMPLE, 8, seed=5)
    copies = np.random.default_rng(0).choice(len(x), 300, replace=False)
    x[copies] = x[0]
    index = built(metric, x)
    ids, _ = exact_query(index, x[:1])
    want_ids, _ = every_item_ranked(index, x[:1], K)
    np.testing.assert_array_equal(ids, want_ids)
    if metric != "dot":  # for dot a longer vector beats the copies
        assert ids[0].tolist() == sorted({0, *copies.tolist()})[:K]


def test_exact_mode_far_from_the_origin_and_with_zero_rows() -> None:
    # euclidean scores q.x - |x|^2/2 lose digits far from the origin: the margin must cover it
    x = clustered(3 * SAMPLE, 12, seed=6) + np.float32(1e3)
    q = x[:40] + np.random.default_rng(1).normal(scale=0.01, size=(40, 12)).astype(np.float32)
    index = built("euclidean", x)
    np.testing.assert_array_equal(exact_query(index, q)[0], every_item_ranked(index, q, K)[0])
    # angular: zero rows rank as cosine 0 (distance sqrt 2), never ahead of a closer item
    x = clustered(3 * SAMPLE, 12, seed=7)
    x[::97] = 0
    index = built("angular", x)
    q = -x[1:41]  # opposite the data: many neighbours at cosine < 0, behind the zero rows
    np.testing.assert_array_equal(exact_query(index, q)[0], every_item_ranked(index, q, K)[0])


@pytest.mark.parametrize("metric", PRODUCT_METRICS)
def test_exact_mode_skips_holes_and_matches_single_queries(metric: str) -> None:
    x = clustered(2 * SAMPLE + 500, 10, seed=8)
    ids = np.arange(len(x)) * 3 + 1  # ids 0, 2, 3, 5, ... are holes
    index = built(metric, x, ids)
    q = clustered(30, 10, seed=9)
    got, d = exact_query(index, q)
    assert np.isin(got, ids).all()
    np.testing.assert_array_equal(got, every_item_ranked(index, q, K)[0])
    sk = index.get_n_items() * index.get_n_trees()
    for i in (0, 17, 29):
        one, one_d = index.get_nns_by_vector(q[i], K, sk, include_distances=True)
        assert one == got[i].tolist()
        np.testing.assert_array_equal(np.float32(one_d), d[i])


def test_exact_candidates_keep_every_tie_at_the_boundary() -> None:
    # 40 identical items at the k-th place: all of them are candidates, none dropped
    x = np.zeros((2 * SAMPLE, 4), np.float32)
    x[:, 0] = np.arange(len(x), dtype=np.float32) + 10  # distinct, far away
    x[5:45] = [1, 0, 0, 0]
    m = get_metric("euclidean")
    sq = np.einsum("ij,ij->i", x, x)
    cand = exact_candidates(m, np.zeros((1, 4), np.float32), x, sq, np.arange(len(x)), K)
    assert set(range(5, 45)) <= set(cand[0].tolist())


def test_exact_mode_with_a_k_beyond_the_sample() -> None:
    x = clustered(3 * SAMPLE, 6, seed=10)
    q = clustered(3, 6, seed=11)
    index = built("euclidean", x)
    for k in (SAMPLE // 2, 2 * SAMPLE):
        got, d = exact_query(index, q, k)
        want, want_d = every_item_ranked(index, q, k)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(d, want_d)
