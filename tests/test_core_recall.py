"""Recall against an exact brute-force oracle, per metric, on seeded clustered data."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import brute_force, data_for

from annoy_adapters import AnnoyIndex

N, F, K = 4000, 24, 10


def recall_by_distance(metric: str, got_dist: np.ndarray, exact: np.ndarray) -> float:
    """Share of returned neighbours at least as close as the exact k-th (robust to ties)."""
    kth = np.sort(exact, axis=1)[:, K - 1 : K]
    if metric == "dot":
        return float(np.mean(-got_dist <= kth + 1e-3 * np.abs(kth)))
    return float(np.mean(got_dist <= kth + 1e-4 + 1e-4 * np.abs(kth)))


@pytest.fixture(scope="module")
def built() -> dict[str, tuple[AnnoyIndex, np.ndarray, np.ndarray]]:
    out = {}
    for metric in ["angular", "euclidean", "manhattan", "dot", "hamming"]:
        x = data_for(metric, N, F, seed=1)
        q = data_for(metric, 200, F, seed=2)
        index = AnnoyIndex(F, metric, seed=42)
        index.add_items(x)
        index.build(10)
        out[metric] = (index, q, brute_force(metric, x, q))
    return out


@pytest.mark.parametrize(
    ("metric", "threshold"),
    [("angular", 0.95), ("euclidean", 0.95), ("manhattan", 0.95), ("dot", 0.90), ("hamming", 0.95)],
)
def test_recall_at_moderate_search_k(built, metric: str, threshold: float) -> None:
    index, q, exact = built[metric]
    ids, dist = index.query(q, K, search_k=2000)
    assert ids.shape == (len(q), K) and dist.shape == (len(q), K)
    assert recall_by_distance(metric, dist, exact) >= threshold


def test_exact_when_search_k_covers_everything(built, metric: str) -> None:
    index, q, exact = built[metric]
    _ids, dist = index.query(q, K, search_k=N * index.get_n_trees())
    want = np.sort(exact, axis=1)[:, :K]
    got = -dist if metric == "dot" else dist
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_recall_grows_with_search_k(built) -> None:
    index, q, exact = built["angular"]
    r = [
        recall_by_distance("angular", index.query(q, K, search_k=s)[1], exact)
        for s in (100, 500, 4000)
    ]
    assert r[0] <= r[1] <= r[2]


def test_query_rows_equal_single_queries(built, metric: str) -> None:
    index, q, _ = built[metric]
    ids, dist = index.query(q[:40], K, search_k=300)
    for i in range(40):
        got_ids, got_d = index.get_nns_by_vector(q[i], K, 300, include_distances=True)
        assert got_ids == ids[i].tolist()
        np.testing.assert_allclose(got_d, dist[i], rtol=1e-6)


def test_query_items_matches_get_nns_by_item(built, metric: str) -> None:
    index, _, _ = built[metric]
    ids, dist = index.query_items(np.arange(15), 5)
    for i in range(15):
        assert index.get_nns_by_item(i, 5) == ids[i].tolist()
    assert (dist[:, 0] <= dist[:, -1]).all() if metric != "dot" else True
