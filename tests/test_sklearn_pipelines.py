"""AnnoyTransformer inside scikit-learn's estimators, next to the exact KNeighborsTransformer."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import DBSCAN, SpectralClustering
from sklearn.datasets import load_digits, make_blobs, make_regression, make_swiss_roll
from sklearn.manifold import TSNE, Isomap, trustworthiness
from sklearn.metrics import adjusted_rand_score, r2_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    KNeighborsTransformer,
)
from sklearn.pipeline import Pipeline, make_pipeline
from threadpoolctl import threadpool_limits

from annoy_adapters.sklearn import AnnoyTransformer


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def test_digits_knn_accuracy_within_one_point_of_exact(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    scores = {}
    for name, transformer in (
        ("annoy", AnnoyTransformer(n_neighbors=5, random_state=0)),
        ("exact", KNeighborsTransformer(n_neighbors=5)),
    ):
        pipe = make_pipeline(transformer, KNeighborsClassifier(n_neighbors=5, metric="precomputed"))
        scores[name] = pipe.fit(X_train, y_train).score(X_test, y_test)
    assert scores["exact"] > 0.95
    assert abs(scores["annoy"] - scores["exact"]) <= 0.01, scores


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_digits_knn_with_the_cell_scan(digits_split, metric):
    X_train, X_test, y_train, y_test = digits_split
    scores = {}
    for name, transformer in (
        ("probe", AnnoyTransformer(n_neighbors=5, metric=metric, probe=8, random_state=0)),
        ("exact", KNeighborsTransformer(n_neighbors=5, metric=metric)),
    ):
        pipe = make_pipeline(transformer, KNeighborsClassifier(n_neighbors=5, metric="precomputed"))
        scores[name] = pipe.fit(X_train, y_train).score(X_test, y_test)
    assert pipe[0].n_samples_fit_ == len(X_train)
    assert abs(scores["probe"] - scores["exact"]) <= 0.01, scores
    # every cell: the exact neighbour distances (digits are integers: ties may swap ids)
    every = AnnoyTransformer(n_neighbors=5, metric=metric, probe=10**6, random_state=0)
    exact = KNeighborsTransformer(n_neighbors=5, metric=metric).fit(X_train)
    got = every.fit(X_train).transform(X_test)
    want = exact.transform(X_test)
    rows = (len(X_test), -1)
    np.testing.assert_allclose(
        np.sort(got.data.reshape(rows), axis=1),
        np.sort(want.data.reshape(rows), axis=1),
        rtol=1e-4,
        atol=1e-6,
    )


def test_digits_knn_with_float16_vectors(digits_split):
    # digits are integers 0..16, exact in float16: the same graph as float32, half the bytes
    X_train, X_test, y_train, y_test = digits_split
    pipes = {
        dtype: make_pipeline(
            AnnoyTransformer(n_neighbors=5, probe=8, vector_dtype=dtype, random_state=0),
            KNeighborsClassifier(n_neighbors=5, metric="precomputed"),
        ).fit(X_train, y_train)
        for dtype in ("float16", "float32")
    }
    half, single = pipes["float16"], pipes["float32"]
    assert half[0].index_._store.nbytes * 2 == single[0].index_._store.nbytes
    assert half.score(X_test, y_test) == single.score(X_test, y_test) > 0.95
    np.testing.assert_array_equal(
        half[0].transform(X_test).toarray(), single[0].transform(X_test).toarray()
    )


def _cache_entries(location: Path) -> int:
    return len(list(location.rglob("output.pkl")))


def test_grid_search_with_cached_graph(digits_split, tmp_path):
    X_train, _, y_train, _ = digits_split
    X_train, y_train = X_train[:600], y_train[:600]
    pipe = Pipeline(
        [
            ("graph", AnnoyTransformer(n_neighbors=8, random_state=0)),
            ("knn", KNeighborsClassifier(metric="precomputed")),
        ],
        memory=str(tmp_path),
    )
    grid = GridSearchCV(pipe, {"knn__n_neighbors": [1, 3, 5, 8]}, cv=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid.fit(X_train, y_train)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "cache" in m.lower() or "pickle" in m.lower()], messages
    # 3 folds + the refit on all data: 4 graphs computed for 13 pipeline fits.
    assert _cache_entries(tmp_path) == 4
    best = grid.best_params_["knn__n_neighbors"]
    assert grid.best_score_ > 0.9

    # The second search is served from the cache: nothing new is written, same result.
    grid2 = GridSearchCV(pipe, {"knn__n_neighbors": [1, 3, 5, 8]}, cv=3).fit(X_train, y_train)
    assert _cache_entries(tmp_path) == 4
    assert grid2.best_params_["knn__n_neighbors"] == best
    np.testing.assert_allclose(
        grid2.cv_results_["mean_test_score"], grid.cv_results_["mean_test_score"]
    )


def test_tsne_on_precomputed_graph(digits_split):
    X = digits_split[0][:300]
    perplexity = 10
    n_neighbors = int(3 * perplexity + 1)
    embeddings = {}
    for name, transformer in (
        ("annoy", AnnoyTransformer(n_neighbors=n_neighbors, random_state=0)),
        ("exact", KNeighborsTransformer(n_neighbors=n_neighbors)),
    ):
        tsne = TSNE(
            metric="precomputed",
            init="random",
            perplexity=perplexity,
            max_iter=250,
            random_state=0,
        )
        # TSNE's OpenMP threads fight any other load on the machine; one thread is
        # fastest for 300 samples.
        with threadpool_limits(limits=1, user_api="openmp"):
            embeddings[name] = make_pipeline(transformer, tsne).fit_transform(X)
    assert embeddings["annoy"].shape == (300, 2)
    t_annoy = trustworthiness(X, embeddings["annoy"], n_neighbors=5)
    t_exact = trustworthiness(X, embeddings["exact"], n_neighbors=5)
    assert t_annoy > 0.9 and abs(t_annoy - t_exact) < 0.03, (t_annoy, t_exact)


def test_isomap_on_precomputed_graph():
    X, _ = make_swiss_roll(n_samples=400, random_state=0)
    errors = {}
    for name, transformer in (
        ("annoy", AnnoyTransformer(n_neighbors=10, n_trees=20, random_state=0)),
        ("exact", KNeighborsTransformer(n_neighbors=10)),
    ):
        iso = Isomap(n_neighbors=10, metric="precomputed", n_components=2)
        emb = make_pipeline(transformer, iso).fit_transform(X)
        assert emb.shape == (400, 2)
        errors[name] = iso.reconstruction_error()
    # geodesic distances move with every missed neighbour (recall here is ~0.999), so the
    # errors agree closely but not exactly
    np.testing.assert_allclose(errors["annoy"], errors["exact"], rtol=0.05)


def test_dbscan_on_precomputed_graph():
    X, y = make_blobs(n_samples=300, centers=3, cluster_std=0.5, random_state=0)
    labels = {}
    for name, transformer in (
        ("annoy", AnnoyTransformer(n_neighbors=10, random_state=0)),
        ("exact", KNeighborsTransformer(n_neighbors=10)),
    ):
        G = transformer.fit_transform(X)
        labels[name] = DBSCAN(eps=0.5, min_samples=5, metric="precomputed").fit_predict(G)
    assert adjusted_rand_score(labels["exact"], labels["annoy"]) > 0.98
    assert adjusted_rand_score(y, labels["annoy"]) > 0.9


# Three well separated blobs make a disconnected 10-NN graph; scikit-learn says so.
@pytest.mark.filterwarnings("ignore:Graph is not fully connected:UserWarning")
def test_spectral_clustering_on_precomputed_graph():
    X, y = make_blobs(n_samples=300, centers=3, cluster_std=0.8, random_state=1)
    G = AnnoyTransformer(n_neighbors=10, mode="connectivity", random_state=0).fit_transform(X)
    sc = SpectralClustering(
        n_clusters=3, affinity="precomputed_nearest_neighbors", n_neighbors=10, random_state=0
    )
    assert adjusted_rand_score(y, sc.fit_predict(G)) > 0.95


def test_knn_regressor_pipeline():
    X, y = make_regression(n_samples=500, n_features=8, noise=5.0, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scores = {}
    for name, transformer in (
        ("annoy", AnnoyTransformer(n_neighbors=7, random_state=0)),
        ("exact", KNeighborsTransformer(n_neighbors=7)),
    ):
        pipe = make_pipeline(transformer, KNeighborsRegressor(n_neighbors=7, metric="precomputed"))
        scores[name] = r2_score(y_test, pipe.fit(X_train, y_train).predict(X_test))
    assert abs(scores["annoy"] - scores["exact"]) < 0.02, scores
