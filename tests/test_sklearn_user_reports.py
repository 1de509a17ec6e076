"""AnnoyTransformer: regressions from user reports, through scikit-learn's own API."""

from __future__ import annotations

import numpy as np
import pytest

from annoy_adapters import load
from annoy_adapters.sklearn import AnnoyTransformer


def _data(n: int = 80, f: int = 5) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, f))


@pytest.mark.parametrize(("fitted", "changed"), [("cosine", "euclidean"), ("cosine", "angular")])
def test_metric_changed_after_fit_keeps_the_fitted_distances(fitted, changed):
    X = _data()
    est = AnnoyTransformer(n_neighbors=4, metric=fitted, random_state=0).fit(X)
    expected_graph = est.transform(X[:10]).toarray()
    expected_dist, expected_ind = est.kneighbors(X[:10])
    est.set_params(metric=changed)
    np.testing.assert_array_equal(est.transform(X[:10]).toarray(), expected_graph)
    dist, ind = est.kneighbors(X[:10])
    np.testing.assert_array_equal(ind, expected_ind)
    np.testing.assert_array_equal(dist, expected_dist)
    # cosine distances are 1 - cos, within [0, 2]
    assert dist.max() <= 2.0
    assert est.metric_ == fitted
    # the new metric takes effect at the next fit
    est.fit(X)
    assert est.metric_ == changed


def test_save_after_set_params_stores_the_fitted_metric(tmp_path):
    X = _data()
    est = AnnoyTransformer(n_neighbors=3, metric="cosine", random_state=0).fit(X)
    expected = est.kneighbors(X[:5])
    est.set_params(metric="euclidean")
    est.save(tmp_path / "m.annoy")
    assert load(tmp_path / "m.annoy").metadata["sklearn"]["metric"] == "cosine"
    again = AnnoyTransformer.load(tmp_path / "m.annoy")
    assert again.metric == again.metric_ == "cosine"
    np.testing.assert_array_equal(again.kneighbors(X[:5])[1], expected[1])
    np.testing.assert_allclose(again.kneighbors(X[:5])[0], expected[0])


def test_load_refuses_an_index_with_holes(tmp_path):
    """The graph's columns are training samples 0..n-1: a file whose ids have holes (never
    added) cannot stand for a training set, so load says so instead of failing later."""
    from annoy_adapters import AnnoyIndex

    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    index = AnnoyIndex(4, "euclidean", seed=1)
    index.add_items(x, ids=np.arange(50) * 2)  # odd ids are holes
    index.build(5)
    path = str(tmp_path / "holes.annoy")
    index.save(path)
    assert index.get_n_holes() == 49
    with pytest.raises(ValueError, match="49 holes"):
        AnnoyTransformer.load(path, n_neighbors=3)


def _dot_data(n: int = 100, f: int = 4) -> np.ndarray:
    # uneven norms: with 'dot' a sample is then often not its own nearest neighbour
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, f)) * rng.uniform(0.2, 3, size=(n, 1))


def test_dot_query_row_answer_does_not_depend_on_its_position():
    """User report: with 'dot', row 5 of X got sample 5 forced first at 0.0 because it sat
    at position 5 and equalled the stored vector; alone, the same row got other neighbours."""
    X = _dot_data()
    est = AnnoyTransformer(n_neighbors=3, metric="dot", random_state=0, search_k=10**6).fit(X)
    dist, ind = est.kneighbors(X[:10])
    dist5, ind5 = est.kneighbors(X[5:6])
    np.testing.assert_array_equal(ind[5], ind5[0])
    np.testing.assert_array_equal(dist[5], dist5[0])
    # exhaustive search: the largest inner products, at sqrt(|q|^2 + M^2 - 2 q.x)
    top = np.argsort(-(X[:10] @ X.T), axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(ind, top)
    M2 = np.max(np.sum(X * X, axis=1))
    q2 = np.sum(X[:10] ** 2, axis=1)[:, None]
    expected = np.sqrt(q2 + M2 - 2 * np.take_along_axis(X[:10] @ X.T, ind, axis=1))
    np.testing.assert_allclose(dist, expected, rtol=1e-4, atol=1e-4)
    assert np.all(dist > 0)  # no self forced in at 0.0


@pytest.mark.parametrize("mode", ["distance", "connectivity"])
@pytest.mark.parametrize(
    "check_name", ["check_methods_subset_invariance", "check_methods_sample_order_invariance"]
)
def test_dot_passes_sklearn_invariance_checks(check_name, mode):
    from sklearn.utils import estimator_checks

    check = getattr(estimator_checks, check_name)
    est = AnnoyTransformer(metric="dot", mode=mode, search_k=10**6, random_state=0)
    check(type(est).__name__, est)
