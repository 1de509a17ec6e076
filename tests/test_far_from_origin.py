"""Points far from the origin and close together (GPS coordinates, offset embeddings).

The float32 inner-product expansion |q|^2 + |x|^2 - 2 q.x cancels there: its rounding can
exceed the distances being compared.  Exhaustive searches must still return the exact
neighbours (a float64 brute force decides), as annoy's direct distances do.
"""

from __future__ import annotations

import numpy as np
import pytest

from annoy_adapters import AnnoyIndex

K = 10


def _gps(rng: np.random.Generator, n: int) -> np.ndarray:
    """Points within a few km of Manhattan, in degrees."""
    return np.c_[40.7 + 0.05 * rng.normal(size=n), -74.0 + 0.05 * rng.normal(size=n)]


def _offset(rng: np.random.Generator, n: int) -> np.ndarray:
    return 1000 + rng.normal(size=(n, 8))


def _truth(metric: str, x: np.ndarray, q: np.ndarray) -> np.ndarray:
    x, q = x.astype(np.float64), q.astype(np.float64)
    if metric == "euclidean":
        d = ((q[:, None] - x[None]) ** 2).sum(-1)
    else:
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        d = -(qn @ xn.T)
    return np.argsort(d, axis=1, kind="stable")[:, :K]


def _recall(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(got, want, strict=True)]))


@pytest.mark.parametrize("metric", ["euclidean", "angular"])
@pytest.mark.parametrize("make", [_gps, _offset], ids=["gps", "offset-1000"])
def test_exhaustive_searches_are_exact_far_from_the_origin(metric: str, make) -> None:
    rng = np.random.default_rng(7)
    x = make(rng, 3000).astype(np.float32)
    q = make(rng, 60).astype(np.float32)
    index = AnnoyIndex(x.shape[1], metric, seed=3)
    index.add_items(x)
    index.build(5)
    want = _truth(metric, x, q)
    everything = len(x) * index.get_n_trees()
    got = {
        "exact mode": index.query(q, K, search_k=everything)[0],
        "all leaves": index.query(q, K, search_k=everything - 1)[0],
        "all cells": index.query(q, K, probe=index.get_n_cells())[0],
        "one call": np.array([index.get_nns_by_vector(v, K, search_k=everything) for v in q]),
        "one call, all cells": np.array(
            [index.get_nns_by_vector(v, K, probe=index.get_n_cells()) for v in q]
        ),
    }
    for how, ids in got.items():
        assert _recall(ids, want) == 1.0, how


def test_the_tree_search_ranks_its_candidates_exactly_far_from_the_origin() -> None:
    """Whatever the candidates, the returned ones are the best of them by exact distance."""
    rng = np.random.default_rng(8)
    x = _gps(rng, 3000).astype(np.float32)
    q = _gps(rng, 40).astype(np.float32)
    index = AnnoyIndex(2, "euclidean", seed=3)
    index.add_items(x)
    index.build(5, cells=False)
    ids, dist = index.query(q, K, search_k=600)
    exact = np.sqrt(((q[:, None].astype(np.float64) - x[ids].astype(np.float64)) ** 2).sum(-1))
    np.testing.assert_allclose(dist, exact, rtol=1e-5, atol=1e-9)
    assert (np.diff(exact, axis=1) >= -1e-9).all()  # sorted by exact distance


def test_the_angular_fast_pass_holds_for_large_norms() -> None:
    """Cosines from norms of 1e12 (squared norms' product beyond float32) equal those of the
    same directions at unit scale: the fast pass must not turn every distance into 2."""
    from annoy_adapters.core._metrics import get_metric

    rng = np.random.default_rng(9)
    q = rng.normal(size=(4, 8)).astype(np.float32)
    x = rng.normal(size=(4, 30, 8)).astype(np.float32)

    def fast(scale: float) -> np.ndarray:
        qs, xs = q * np.float32(scale), x * np.float32(scale)
        q_sq = np.einsum("ij,ij->i", qs, qs)
        x_sq = np.einsum("bmi,bmi->bm", xs, xs)
        return get_metric("angular").rank(qs, xs, q_sq, x_sq)

    np.testing.assert_allclose(fast(1e12), fast(1.0), atol=1e-5)
