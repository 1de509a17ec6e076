"""Bad input found by a bug hunt: each gets a clear error naming its argument, at once."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import KeyedVectors
from sklearn.utils._param_validation import InvalidParameterError

from annoy_adapters import AnnoyIndex
from annoy_adapters.gensim import AnnoyIndexer
from annoy_adapters.sklearn import AnnoyTransformer

X = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def index() -> AnnoyIndex:
    built = AnnoyIndex(8, "angular", seed=1)
    built.add_items(X)
    built.build(5)
    return built


@pytest.mark.parametrize("k", [10**20, 2**62])
def test_a_k_too_large_to_pad_names_k(index: AnnoyIndex, k: int) -> None:
    with pytest.raises(ValueError, match="'k' must be at most 200"):
        index.query(X[:2], k)
    with pytest.raises(ValueError, match="'k' must be at most 200"):
        index.query_items([0], k)
    assert index.query(X[:2], 300)[0].shape == (2, 300)  # padding as documented


@pytest.mark.parametrize("metric", ["angular", "euclidean"])
def test_zero_length_vectors_build_and_answer(metric: str) -> None:
    """As annoy does: nothing to split or group by, every item is as near as any other."""
    empty = AnnoyIndex(0, metric)
    empty.add_items(np.zeros((3, 0)))
    empty.build(2)
    assert sorted(empty.get_nns_by_item(0, 3)) == [0, 1, 2]


def test_add_item_names_an_id_beyond_int64() -> None:
    with pytest.raises(ValueError, match="'i' must fit in int64"):
        AnnoyIndex(8).add_item(10**20, [0.0] * 8)


def test_ids_for_none_names_labels(index: AnnoyIndex) -> None:
    labelled = AnnoyIndex(8)
    labelled.add_items(X[:5])
    labelled.set_labels(["a", "b", "c", "d", "e"])
    with pytest.raises(TypeError, match="'labels'"):
        labelled.ids_for(None)


def test_gensim_refuses_a_model_vector_with_nan() -> None:
    vectors = X[:10].copy()
    vectors[3, 3] = np.nan
    kv = KeyedVectors(8)
    kv.add_vectors([f"w{i}" for i in range(10)], vectors)
    with pytest.raises(ValueError, match="key 'w3' holds NaN or inf"):
        AnnoyIndexer(kv, 2, seed=1)


@pytest.mark.parametrize("param", ["n_neighbors", "n_trees", "search_k", "probe"])
def test_sklearn_refuses_bools_for_int_parameters_at_fit(param: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
        AnnoyTransformer(**{param: True}).fit(X)


def test_sklearn_load_checks_probe_against_the_file(tmp_path) -> None:
    path = str(tmp_path / "manhattan.annoy")
    AnnoyTransformer(metric="manhattan", random_state=0).fit(X).save(path)
    with pytest.raises(ValueError, match="probe=2 needs an index with cells"):
        AnnoyTransformer.load(path, probe=2)
