"""AnnoyTransformer: the k-neighbours graph contract of scikit-learn's KNeighborsTransformer."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KNeighborsTransformer, NearestNeighbors

from annoy_adapters.sklearn import AnnoyTransformer

METRICS = ["euclidean", "sqeuclidean", "manhattan", "angular", "cosine", "dot", "hamming"]


def _data(metric: str, n: int = 120, f: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if metric == "hamming":
        return (rng.random((n, f * 4)) > 0.5).astype(np.float64)
    return rng.normal(size=(n, f))


def assert_valid_graph(G, n_queries: int, n_fit: int, k: int) -> None:
    """Every property consumers of a precomputed k-neighbours graph rely on."""
    assert sp.issparse(G) and G.format == "csr"
    assert G.shape == (n_queries, n_fit)
    assert G.dtype == np.float64
    np.testing.assert_array_equal(G.indptr, np.arange(0, n_queries * k + 1, k))
    rows = G.indices.reshape(n_queries, k)
    data = G.data.reshape(n_queries, k)
    assert np.all(np.sort(rows, axis=1)[:, 1:] != np.sort(rows, axis=1)[:, :-1]), "dup cols"
    assert np.all(np.diff(data, axis=1) >= 0), "rows not sorted by distance"
    assert np.all(data >= 0)
    assert np.all((rows >= 0) & (rows < n_fit))


# not 'dot': a sample need not be its own nearest there (tests/test_sklearn_user_reports.py)
@pytest.mark.parametrize("metric", [m for m in METRICS if m != "dot"])
def test_fit_transform_is_a_valid_graph_with_self_first(metric):
    X = _data(metric)
    G = AnnoyTransformer(n_neighbors=5, metric=metric, random_state=0).fit_transform(X)
    assert_valid_graph(G, len(X), len(X), 6)
    first = G.indptr[:-1]
    np.testing.assert_array_equal(G.indices[first], np.arange(len(X)))
    # An explicit stored 0.0, not an absent entry.
    assert np.all(G.data[first] == 0.0)
    assert G.nnz == len(X) * 6


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "dot"])
def test_fit_transform_equals_fit_then_transform(metric):
    X = _data(metric, n=200)
    est = AnnoyTransformer(n_neighbors=4, metric=metric, n_trees=3, random_state=1)
    G1 = est.fit_transform(X)
    G2 = est.fit(X).transform(X)
    assert (G1 != G2).nnz == 0
    np.testing.assert_array_equal(G1.indices, G2.indices)
    np.testing.assert_array_equal(G1.data, G2.data)


def test_identical_rows_each_sample_is_its_own_first_neighbour():
    # 64 copies of one point: the search returns 4 arbitrary copies, usually not the
    # query's own sample; the graph must still start each row with it.
    X = np.ones((64, 4))
    G = AnnoyTransformer(n_neighbors=3, random_state=0).fit_transform(X)
    assert_valid_graph(G, 64, 64, 4)
    np.testing.assert_array_equal(G.indices[G.indptr[:-1]], np.arange(64))
    assert len(G.nonzero()[0]) == 0  # every stored distance is 0.0
    dist, ind = AnnoyTransformer(n_neighbors=3, random_state=0).fit(X).kneighbors()
    assert not np.any(ind == np.arange(64)[:, None])
    assert np.all(dist == 0.0)


def test_missed_self_is_inserted_with_many_duplicates():
    # 12 copies of each of 20 points and 8 entries per row: the forest returns the 8
    # lowest-id copies, so most copies are missing from their own row.
    X = np.repeat(_data("euclidean", n=20, seed=3), 12, axis=0)
    est = AnnoyTransformer(n_neighbors=7, random_state=0).fit(X)
    raw_ids, _ = est.index_.query(X, 8)
    assert not np.all(np.any(raw_ids == np.arange(len(X))[:, None], axis=1))  # precondition
    G = est.transform(X)
    assert_valid_graph(G, len(X), len(X), 8)
    np.testing.assert_array_equal(G.indices[G.indptr[:-1]], np.arange(len(X)))
    assert np.all(G.data == 0.0)


def test_rows_the_forest_leaves_short_are_completed():
    # One tree and search_k=1 visit a single leaf (at most annoy's K items); 71 entries per row
    # need more, so the transformer widens the search for those rows.
    X = _data("euclidean", n=150)
    est = AnnoyTransformer(n_neighbors=70, n_trees=1, search_k=1, random_state=0).fit(X)
    raw_ids, _ = est.index_.query(X, 71, search_k=1)
    assert np.any(raw_ids[:, -1] < 0)  # precondition: the core pads short rows with -1
    G = est.transform(X)
    assert_valid_graph(G, 150, 150, 71)
    np.testing.assert_array_equal(G.indices[G.indptr[:-1]], np.arange(150))


def test_transform_of_new_data_has_no_forced_self():
    X = _data("euclidean", n=150)
    est = AnnoyTransformer(n_neighbors=5, random_state=0).fit(X[:100])
    G = est.transform(X[100:])
    assert_valid_graph(G, 50, 100, 6)
    assert np.all(G.data[G.indptr[:-1]] > 0)


@pytest.mark.parametrize(
    "metric, sk_metric",
    [
        ("euclidean", "euclidean"),
        ("sqeuclidean", "sqeuclidean"),
        ("manhattan", "manhattan"),
        ("cosine", "cosine"),
        ("hamming", "hamming"),
    ],
)
def test_matches_exact_knn_on_small_data(metric, sk_metric):
    # search_k = n_trees * n_samples visits every leaf, so the search is exhaustive: the
    # graph must equal scikit-learn's exact one up to float32 rounding and distance ties.
    X = _data(metric, n=150)
    Xq = _data(metric, n=30, seed=9)
    ann = AnnoyTransformer(
        n_neighbors=5, metric=metric, n_trees=5, search_k=750, random_state=0
    ).fit(X)
    exact = KNeighborsTransformer(n_neighbors=5, metric=sk_metric).fit(X)
    for query in (X, Xq):
        Ga, Ge = ann.transform(query), exact.transform(query)
        assert type(Ga) is type(Ge)
        da = Ga.data.reshape(-1, 6)
        de = Ge.data.reshape(-1, 6)
        np.testing.assert_allclose(da, de, rtol=1e-5, atol=1e-5)
        if metric != "hamming":  # hamming distances tie a lot; ids may differ on ties
            same = Ga.indices.reshape(-1, 6) == Ge.indices.reshape(-1, 6)
            assert same.mean() > 0.99


def test_angular_distance_is_annoys_and_cosine_is_one_minus_cos():
    X = _data("angular", n=100)
    Xq = _data("angular", n=10, seed=5)
    ang = AnnoyTransformer(n_neighbors=3, metric="angular", n_trees=30, random_state=0).fit(X)
    cos = AnnoyTransformer(n_neighbors=3, metric="cosine", n_trees=30, random_state=0).fit(X)
    da, ia = ang.kneighbors(Xq)
    dc, ic = cos.kneighbors(Xq)
    np.testing.assert_array_equal(ia, ic)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Xq / np.linalg.norm(Xq, axis=1, keepdims=True)
    cos_sim = np.take_along_axis(Qn @ Xn.T, ia, axis=1)
    np.testing.assert_allclose(dc, 1 - cos_sim, atol=1e-5)
    np.testing.assert_allclose(da, np.sqrt(2 - 2 * cos_sim), atol=1e-3)


def test_dot_orders_by_inner_product():
    X = _data("dot", n=200)
    Xq = _data("dot", n=20, seed=4)
    est = AnnoyTransformer(
        n_neighbors=5, metric="dot", n_trees=5, search_k=1000, random_state=0
    ).fit(X)
    dist, ind = est.kneighbors(Xq)
    top = np.argsort(-(Xq @ X.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ind, top)
    assert np.all(np.diff(dist, axis=1) >= 0) and np.all(dist >= 0)
    M2 = np.max(np.sum(X * X, axis=1))
    expected = np.sqrt(
        np.sum(Xq * Xq, axis=1)[:, None] + M2 - 2 * np.take_along_axis(Xq @ X.T, ind, axis=1)
    )
    np.testing.assert_allclose(dist, expected, rtol=1e-4, atol=1e-4)


def test_kneighbors_none_excludes_self_like_sklearn():
    X = _data("euclidean", n=100)
    est = AnnoyTransformer(n_neighbors=4, n_trees=5, search_k=500, random_state=0).fit(X)
    dist, ind = est.kneighbors()
    assert ind.shape == (100, 4) and dist.shape == (100, 4)
    assert not np.any(ind == np.arange(100)[:, None])
    ed, ei = NearestNeighbors(n_neighbors=4).fit(X).kneighbors()
    np.testing.assert_array_equal(ind, ei)
    np.testing.assert_allclose(dist, ed, rtol=1e-5)
    ind_only = est.kneighbors(n_neighbors=2, return_distance=False)
    np.testing.assert_array_equal(ind_only, ei[:, :2])
    G = est.kneighbors_graph(mode="distance")
    Ge = NearestNeighbors(n_neighbors=4).fit(X).kneighbors_graph(mode="distance")
    np.testing.assert_array_equal(G.indices, Ge.indices)
    np.testing.assert_allclose(G.data, Ge.data, rtol=1e-5)


def test_connectivity_mode_has_n_neighbors_ones():
    X = _data("euclidean", n=80)
    G = AnnoyTransformer(n_neighbors=5, mode="connectivity", random_state=0).fit_transform(X)
    Ge = KNeighborsTransformer(n_neighbors=5, mode="connectivity").fit_transform(X)
    assert_valid_graph(G, 80, 80, 5)
    assert np.all(G.data == 1.0)
    assert Ge.nnz == G.nnz
    np.testing.assert_array_equal(G.indices[G.indptr[:-1]], np.arange(80))


def test_sparse_interface_config_is_respected():
    X = _data("euclidean", n=50)
    est = AnnoyTransformer(n_neighbors=3, random_state=0).fit(X)
    exact = KNeighborsTransformer(n_neighbors=3).fit(X)
    assert type(est.transform(X)) is type(exact.transform(X))
    if "sparse_interface" not in sklearn.get_config():
        pytest.skip("scikit-learn < 1.9 has no sparse_interface setting")
    for interface, cls in (("sparray", sp.csr_array), ("spmatrix", sp.csr_matrix)):
        with sklearn.config_context(sparse_interface=interface):
            G = est.transform(X)
            assert type(G) is cls
            assert type(exact.transform(X)) is cls
            assert type(est.kneighbors_graph()) is cls


def test_float32_input_gives_float64_graph_equal_to_float64_input():
    X = _data("euclidean", n=60).astype(np.float32)
    est = AnnoyTransformer(n_neighbors=3, random_state=0)
    G32 = est.fit_transform(X)
    G64 = est.fit_transform(X.astype(np.float64))
    assert G32.dtype == np.float64
    np.testing.assert_array_equal(G32.indices, G64.indices)
    np.testing.assert_array_equal(G32.data, G64.data)


def test_random_state_controls_the_forest():
    X = _data("euclidean", n=300, f=10)
    a = AnnoyTransformer(n_neighbors=5, n_trees=2, search_k=5, random_state=0)
    b = AnnoyTransformer(n_neighbors=5, n_trees=2, search_k=5, random_state=0)
    np.testing.assert_array_equal(a.fit_transform(X).indices, b.fit_transform(X).indices)


def test_feature_names_are_recorded_and_checked():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_data("euclidean", n=40), columns=[f"c{i}" for i in range(6)])
    est = AnnoyTransformer(n_neighbors=3, random_state=0).fit(X)
    np.testing.assert_array_equal(est.feature_names_in_, X.columns)
    assert est.get_feature_names_out()[0] == "annoytransformer0"
    with pytest.raises(ValueError, match="feature names"):
        est.transform(X.rename(columns={"c0": "z"}))


# ------------------------------------------------------------------ bad input


def test_unfitted_use_raises_not_fitted_error():
    est = AnnoyTransformer()
    for call in (lambda: est.transform(np.ones((2, 2))), est.kneighbors, est.kneighbors_graph):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()
    with pytest.raises(NotFittedError):
        est.save("never-written.annoy")


def test_nan_and_inf_are_rejected_with_sklearns_message():
    X = _data("euclidean", n=20)
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        AnnoyTransformer().fit(X)
    est = AnnoyTransformer(n_neighbors=2).fit(_data("euclidean", n=20))
    X[3, 2] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        est.transform(X)


def test_wrong_feature_count():
    est = AnnoyTransformer(n_neighbors=2).fit(_data("euclidean", n=20, f=4))
    with pytest.raises(
        ValueError,
        match="X has 3 features, but AnnoyTransformer is expecting 4 features as input",
    ):
        est.transform(np.ones((2, 3)))


def test_n_neighbors_larger_than_fitted_samples():
    X = _data("euclidean", n=5)
    est = AnnoyTransformer(n_neighbors=5).fit(X)
    with pytest.raises(ValueError, match="n_neighbors = 6, n_samples_fit = 5, n_samples = 5"):
        est.transform(X)  # distance mode needs n_neighbors + 1
    with pytest.raises(ValueError, match="Expected n_neighbors < n_samples_fit"):
        est.kneighbors(n_neighbors=5)
    with pytest.raises(ValueError, match=r"Expected n_neighbors > 0\. Got 0"):
        est.kneighbors(X, n_neighbors=0)
    with pytest.raises(TypeError, match="enter integer value"):
        est.kneighbors(X, n_neighbors=2.5)
    # The same messages as scikit-learn's own transformer.
    with pytest.raises(ValueError, match="n_neighbors = 6, n_samples_fit = 5, n_samples = 5"):
        KNeighborsTransformer(n_neighbors=5).fit(X).transform(X)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_neighbors": -3}, "'n_neighbors' parameter of AnnoyTransformer must be an int"),
        ({"metric": "minkowski"}, "'metric' parameter of AnnoyTransformer must be a str"),
        ({"mode": "dist"}, "'mode' parameter"),
        ({"n_trees": 0}, "'n_trees' parameter"),
        ({"search_k": 0}, "'search_k' parameter"),
        ({"probe": 0}, "'probe' parameter"),
    ],
)
def test_invalid_parameters_raise_at_fit(params, match):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=match):
        AnnoyTransformer(**params).fit(_data("euclidean", n=10))


def test_sparse_input_rejected_with_type_error():
    with pytest.raises(TypeError, match="dense data is required"):
        AnnoyTransformer().fit(sp.random(10, 4, density=0.5, format="csr", random_state=0))


def test_init_takes_keywords_only():
    with pytest.raises(TypeError):
        AnnoyTransformer(5)  # type: ignore[misc]


def test_probe_needs_a_metric_with_cells():
    with pytest.raises(ValueError, match="'probe' parameter of AnnoyTransformer needs an index"):
        AnnoyTransformer(metric="manhattan", probe=2).fit(_data("manhattan", n=50))
