"""AnnoyTransformer persistence: the shared index file, pickle and joblib."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest

from annoy_adapters import AnnoyIndex, IndexFileError
from annoy_adapters import load as load_index
from annoy_adapters.sklearn import AnnoyTransformer


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(300, 8))


def _same_graph(G1, G2):
    np.testing.assert_array_equal(G1.indptr, G2.indptr)
    np.testing.assert_array_equal(G1.indices, G2.indices)
    np.testing.assert_array_equal(G1.data, G2.data)


def test_save_writes_params_to_metadata_and_load_restores_without_refit(X, tmp_path):
    path = tmp_path / "est.annoy"
    est = AnnoyTransformer(n_neighbors=7, metric="cosine", n_trees=4, random_state=3).fit(X)
    G = est.transform(X[:50])
    est.save(path)
    assert est.index_.path is not None  # now backed by the file

    meta = load_index(path).metadata
    assert meta["adapter"] == "sklearn"
    assert meta["sklearn"]["n_neighbors"] == 7
    assert meta["sklearn"]["metric"] == "cosine"
    assert meta["sklearn"]["random_state"] == 3

    restored = AnnoyTransformer.load(path)
    assert restored.get_params() == est.get_params()
    assert restored.n_samples_fit_ == 300 and restored.n_features_in_ == 8
    assert restored.index_.path is not None
    assert restored.index_.get_n_trees() == 4  # the same forest, not a refit
    _same_graph(restored.transform(X[:50]), G)
    _same_graph(restored.transform(X[:50]), est.transform(X[:50]))


def test_load_with_overrides(X, tmp_path):
    path = tmp_path / "est.annoy"
    AnnoyTransformer(n_neighbors=5, metric="angular", random_state=0).fit(X).save(path)
    est = AnnoyTransformer.load(path, n_neighbors=3, metric="cosine", mode="connectivity")
    assert (est.n_neighbors, est.metric, est.mode) == (3, "cosine", "connectivity")
    G = est.transform(X)
    assert G.nnz == 300 * 3 and np.all(G.data == 1.0)
    with pytest.raises(ValueError, match="metric='euclidean' cannot be answered"):
        AnnoyTransformer.load(path, metric="euclidean")
    with pytest.raises(TypeError):
        AnnoyTransformer.load(path, not_a_param=1)


@pytest.mark.parametrize("core_metric", ["angular", "euclidean", "manhattan", "dot", "hamming"])
def test_load_a_file_written_by_annoyindex(core_metric, tmp_path):
    rng = np.random.default_rng(1)
    V = rng.normal(size=(120, 16))
    if core_metric == "hamming":
        V = (V > 0).astype(np.float64)
    index = AnnoyIndex(16, core_metric, seed=0)
    index.add_items(V)
    index.build(8)
    path = tmp_path / f"{core_metric}.annoy"
    index.save(path)

    est = AnnoyTransformer.load(path)
    assert est.metric == core_metric and est.n_trees == 8 and est.n_neighbors == 5
    assert est.n_samples_fit_ == 120 and est.n_features_in_ == 16
    G = est.transform(V)
    assert G.shape == (120, 120) and G.nnz == 120 * 6
    if core_metric != "dot":  # with dot a sample need not be its own nearest
        np.testing.assert_array_equal(G.indices[G.indptr[:-1]], np.arange(120))
        assert np.all(G.data[G.indptr[:-1]] == 0.0)
    # New queries (not fitted rows, which start with themselves): the index's own answer.
    Q = rng.normal(size=(10, 16))
    if core_metric == "hamming":
        Q = (Q > 0).astype(np.float64)
    ind = est.kneighbors(Q, n_neighbors=3, return_distance=False)
    ids, _ = index.query(Q, 3, search_k=8 * max(3, index.leaf_size))
    np.testing.assert_array_equal(ind, ids)


def test_load_a_file_with_another_adapters_metadata(X, tmp_path):
    # What the pandas accessor writes: labels and its own metadata, no sklearn section.
    index = AnnoyIndex(8, "euclidean", seed=0)
    index.add_items(X)
    index.build(5)
    index.set_labels([f"row{i}" for i in range(300)])
    index.set_metadata({"adapter": "pandas", "pandas": {"columns": [f"c{i}" for i in range(8)]}})
    path = tmp_path / "pandas.annoy"
    index.save(path)

    est = AnnoyTransformer.load(path, n_neighbors=4)
    assert list(est.feature_names_in_) == [f"c{i}" for i in range(8)]
    assert est.metric == "euclidean" and est.n_trees == 5
    # scikit-learn's own warning: the index knows column names, the query has none.
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        G = est.transform(X[:5])
    assert G.shape == (5, 300) and G.nnz == 25
    np.testing.assert_array_equal(G.indices[G.indptr[:-1]], np.arange(5))


def test_load_a_file_built_by_the_pandas_accessor(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("annoy_adapters.pandas")
    rng = np.random.default_rng(2)
    df = pd.DataFrame(rng.normal(size=(200, 6)), columns=list("abcdef"))
    df.index = [f"doc{i}" for i in range(200)]
    path = tmp_path / "frame.annoy"
    df.annoy.build(metric="euclidean", n_trees=6, path=path, seed=0)

    est = AnnoyTransformer.load(path, n_neighbors=3)
    assert est.n_samples_fit_ == 200 and list(est.feature_names_in_) == list("abcdef")
    G = est.transform(df)  # a frame with the same columns: no feature-name complaint
    assert G.shape == (200, 200) and G.nnz == 200 * 4
    np.testing.assert_array_equal(G.indices[G.indptr[:-1]], np.arange(200))
    with pytest.raises(ValueError, match="feature names"):
        est.transform(df.rename(columns={"a": "z"}))


def test_resave_a_loaded_file_keeps_other_metadata(X, tmp_path):
    index = AnnoyIndex(8, "euclidean", seed=0)
    index.add_items(X)
    index.build(5)
    index.set_labels([f"row{i}" for i in range(300)])
    index.set_metadata({"adapter": "pandas", "pandas": {"columns": [f"c{i}" for i in range(8)]}})
    index.save(tmp_path / "pandas.annoy")
    est = AnnoyTransformer.load(tmp_path / "pandas.annoy", n_neighbors=4)
    # Re-saving from sklearn keeps the other adapter's metadata and the labels.
    est.save(tmp_path / "resaved.annoy")
    again = load_index(tmp_path / "resaved.annoy")
    assert again.metadata["adapter"] == "sklearn"
    assert again.metadata["sklearn"]["n_neighbors"] == 4
    assert again.metadata["pandas"]["columns"][0] == "c0"
    assert again.labels[3] == "row3"
    # The source file is untouched: still the pandas accessor's.
    assert load_index(tmp_path / "pandas.annoy").metadata["adapter"] == "pandas"
    assert est.index_.path.endswith("resaved.annoy")


def test_feature_names_survive_the_file(X, tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    path = tmp_path / "named.annoy"
    AnnoyTransformer(random_state=0).fit(df).save(path)
    est = AnnoyTransformer.load(path)
    assert list(est.feature_names_in_) == list(df.columns)
    with pytest.raises(ValueError, match="feature names"):
        est.transform(df.rename(columns={"f0": "x"}))


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        AnnoyTransformer.load(tmp_path / "missing.annoy")
    bad = tmp_path / "bad.annoy"
    bad.write_bytes(b"not an index" * 10)
    with pytest.raises(IndexFileError):
        AnnoyTransformer.load(bad)


def test_pickle_in_memory_round_trip(X):
    est = AnnoyTransformer(n_neighbors=4, random_state=0).fit(X)
    clone = pickle.loads(pickle.dumps(est))
    _same_graph(clone.transform(X), est.transform(X))
    assert clone.index_.path is None


def test_pickle_of_file_backed_estimator_does_not_copy_the_index(X, tmp_path):
    path = tmp_path / "est.annoy"
    est = AnnoyTransformer(n_neighbors=4, random_state=0).fit(X)
    in_memory_size = len(pickle.dumps(est))
    est.save(path)
    blob = pickle.dumps(est)
    assert len(blob) < 4096 < in_memory_size
    assert len(blob) < path.stat().st_size / 4
    clone = pickle.loads(blob)
    assert clone.index_.path is not None
    _same_graph(clone.transform(X), est.transform(X))


def test_joblib_round_trip(X, tmp_path):
    est = AnnoyTransformer(n_neighbors=4, metric="dot", random_state=0).fit(X)
    joblib.dump(est, tmp_path / "est.joblib")
    clone = joblib.load(tmp_path / "est.joblib")
    _same_graph(clone.transform(X), est.transform(X))
    est.save(tmp_path / "dot.annoy")
    joblib.dump(est, tmp_path / "backed.joblib")
    _same_graph(joblib.load(tmp_path / "backed.joblib").transform(X), est.transform(X))
    _same_graph(AnnoyTransformer.load(tmp_path / "dot.annoy").transform(X), est.transform(X))


def test_no_mmap_objects_on_the_estimator(X, tmp_path):
    import mmap

    est = AnnoyTransformer(random_state=0).fit(X)
    est.save(tmp_path / "est.annoy")
    for value in vars(est).values():
        assert not isinstance(value, mmap.mmap)


def test_float16_vectors_match_float32_on_rounded_data_and_survive_the_file(X, tmp_path):
    rounded = X.astype(np.float16).astype(np.float64)
    est = AnnoyTransformer(n_neighbors=4, vector_dtype="float16", random_state=0).fit(X)
    ref = AnnoyTransformer(n_neighbors=4, random_state=0).fit(rounded)
    assert est.index_.vector_dtype == "float16" and ref.index_.vector_dtype == "float32"
    G = est.fit_transform(X)
    assert (G.diagonal() == 0).all() and G.getnnz() == 300 * 5  # each sample first, itself
    _same_graph(G, ref.transform(rounded))
    # a query row equal to a sample after rounding is that sample, wherever it comes
    order = np.random.default_rng(1).permutation(300)
    _same_graph(est.transform(X[order]), G[order])
    path = tmp_path / "half.annoy"
    est.save(path)
    restored = AnnoyTransformer.load(path)
    assert restored.vector_dtype == "float16" and restored.get_params() == est.get_params()
    _same_graph(restored.transform(X[:40]), G[:40])
    with pytest.raises(ValueError, match="vector_dtype='float32' does not match the index"):
        AnnoyTransformer.load(path, vector_dtype="float32")
    with pytest.raises(ValueError, match="'vector_dtype' parameter of AnnoyTransformer must be"):
        AnnoyTransformer(metric="hamming", vector_dtype="float16").fit(X)
