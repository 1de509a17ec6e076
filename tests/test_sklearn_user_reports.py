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
