"""AnnoyTransformer: regressions from user reports, through scikit-learn's own API."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

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


# -- metric='hamming': rows answered from their values alone ----------------------------------


def _bits(n: int = 60, f: int = 4, seed: int = 0) -> np.ndarray:
    # 4 bits: only 16 distinct rows among 60, so most rows have duplicates
    return (np.random.default_rng(seed).random((n, f)) > 0.5).astype(np.float64)


@pytest.mark.parametrize("mode", ["distance", "connectivity"])
def test_hamming_row_answer_does_not_depend_on_its_position(mode):
    """Bug report: with 'hamming', the row at position i equal to stored sample i got i forced
    first, so a row's neighbours among its duplicates (all at 0.0) changed with its position
    and scikit-learn's sample-order and subset invariance checks failed."""
    X = _bits()
    est = AnnoyTransformer(n_neighbors=3, metric="hamming", mode=mode, random_state=0).fit(X)
    G = est.transform(X)
    perm = np.random.default_rng(1).permutation(len(X))
    for rows in (perm, perm[:7]):
        Gp = est.transform(X[rows])
        np.testing.assert_array_equal(Gp.indices, G[rows].indices)
        np.testing.assert_array_equal(Gp.data, G[rows].data)
    assert (est.fit_transform(X) != G).nnz == 0
    if mode == "distance":  # a training row still starts at distance 0.0 (itself or a twin)
        first = G.indptr[:-1]
        assert np.all(G.data[first] == 0.0)
        assert np.array_equal(X[G.indices[first]], X)


def test_hamming_passes_sklearn_invariance_checks_on_binary_data():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Binarizer
    from sklearn.utils.estimator_checks import (
        check_methods_sample_order_invariance,
        check_methods_subset_invariance,
    )

    # the checks draw 3 * uniform(20, 3) samples: 3 bits each, so duplicates abound
    pipe = make_pipeline(Binarizer(threshold=1.0), AnnoyTransformer(metric="hamming"))
    check_methods_sample_order_invariance("Pipeline", pipe)
    check_methods_subset_invariance("Pipeline", pipe)


# -- metric='hamming' takes 0/1 features only ------------------------------------------------


def test_hamming_refuses_non_binary_features_in_fit():
    """Bug report: label-encoded categories 1, 2, 3 were binarised at 0.5 to the same bit, so
    rows scikit-learn puts at hamming distance 0.5 came out at 0.0."""
    X = _bits(n=30, f=6)
    X[4, 2] = 2.0
    X[9, 0] = 3.0
    est = AnnoyTransformer(n_neighbors=3, metric="hamming")
    with pytest.raises(ValueError, match=r"X must hold only 0 and 1 \(or bool\)") as info:
        est.fit(X)
    assert r"got X[4, 2] = 2.0" in str(info.value)
    assert "One-hot encode" in str(info.value)
    with pytest.raises(NotFittedError):
        est.transform(X)


def test_hamming_refuses_non_binary_query_rows():
    X = _bits(n=30, f=6)
    est = AnnoyTransformer(n_neighbors=3, metric="hamming", random_state=0).fit(X)
    Q = X[:3].copy()
    Q[1, 5] = 0.5
    for method in (est.transform, est.kneighbors, est.kneighbors_graph):
        with pytest.raises(ValueError, match=r"got X\[1, 5\] = 0\.5"):
            method(Q)


def test_hamming_takes_bools_and_matches_sklearn_on_one_hot_categories():
    from sklearn.neighbors import KNeighborsTransformer
    from sklearn.preprocessing import OneHotEncoder

    codes = np.random.default_rng(0).integers(0, 4, size=(80, 5))
    X = OneHotEncoder(sparse_output=False).fit_transform(codes)
    for data in (X, X.astype(bool)):
        est = AnnoyTransformer(n_neighbors=4, metric="hamming", search_k=10**6, random_state=0)
        dist, _ = est.fit(data).kneighbors(data[:10])
        exact, _ = KNeighborsTransformer(n_neighbors=4, metric="hamming").fit(X).kneighbors(X[:10])
        np.testing.assert_allclose(dist, exact, atol=1e-6)


# -- parameters checked before the data; a failed fit leaves the estimator as it was -----------


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"metric": "manhattan", "probe": 2},
            r"'probe' parameter of AnnoyTransformer needs an index with cells.*"
            r"Got probe=2 with metric='manhattan'",
        ),
        (
            {"metric": "hamming", "vector_dtype": "float16"},
            r"'vector_dtype' parameter of AnnoyTransformer must be 'float32' with "
            r"metric='hamming'.*Got 'float16' instead",
        ),
    ],
)
def test_bad_parameter_combinations_raise_before_the_data_is_read(params, match, monkeypatch):
    from annoy_adapters import AnnoyIndex

    def no_build(*args, **kwargs):
        raise AssertionError("built an index for parameters that cannot work")

    monkeypatch.setattr(AnnoyIndex, "build", no_build)
    X = _data()
    X[0, 0] = np.nan  # validate_data would refuse it, had it run first
    with pytest.raises(ValueError, match=match):
        AnnoyTransformer(**params).fit(X)


def _failing_refits():
    X6 = np.random.default_rng(1).normal(size=(80, 6))
    X6_nan = X6.copy()
    X6_nan[3, 3] = np.nan
    return [
        ({"metric": "manhattan", "probe": 2}, X6),  # parameters
        ({"metric": "hamming"}, X6),  # values, after validate_data
        ({}, X6_nan),  # validate_data itself
        ({"vector_dtype": "float16"}, X6 * 1e6),  # the core, beyond float16's range
    ]


@pytest.mark.parametrize(("params", "X_new"), _failing_refits())
def test_failed_refit_leaves_the_previous_fit_usable(params, X_new):
    """Bug report: a refit that failed left n_features_in_ = 6 beside an index of 4 features,
    so transform failed for both shapes."""
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_data(f=4), columns=["a", "b", "c", "d"])
    est = AnnoyTransformer(n_neighbors=3, random_state=0).fit(X)
    expected = est.transform(X)
    defaults = est.get_params()
    with pytest.raises(ValueError):
        est.set_params(**params).fit(X_new)
    est.set_params(**defaults)
    assert est.n_features_in_ == est.index_.f == 4
    assert list(est.feature_names_in_) == ["a", "b", "c", "d"]
    assert (est.transform(X) != expected).nnz == 0


def test_failed_first_fit_leaves_the_estimator_unfitted():
    from sklearn.utils.validation import check_is_fitted

    est = AnnoyTransformer(vector_dtype="float16")
    with pytest.raises(ValueError, match="float16"):
        est.fit(_data() * 1e6)  # the core refuses values beyond +-65504
    assert not hasattr(est, "n_features_in_")
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    with pytest.raises(NotFittedError):
        est.transform(_data())
