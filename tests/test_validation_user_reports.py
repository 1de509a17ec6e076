"""Bad input found by a bug hunt: each gets a clear error naming its argument, at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from gensim.models import KeyedVectors
from sklearn.utils._param_validation import InvalidParameterError

import annoy_adapters.pandas  # noqa: F401  (registers df.annoy)
from annoy_adapters import AnnoyIndex, load
from annoy_adapters.core import build_trees
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


@pytest.mark.parametrize("seed", [-1, 2**64, -(2**63)])
def test_a_seed_outside_uint64_names_seed(seed: int) -> None:
    # these used to wrap modulo 2**63, so -1 built the same forest as 2**63 - 1
    expected = rf"'seed' must be an int in \[0, 2\*\*64\) \(got {seed}\)"
    with pytest.raises(ValueError, match=expected):
        AnnoyIndex(8, "angular", seed=seed)
    with pytest.raises(ValueError, match="'seed'"):
        AnnoyIndex(8, "angular").set_seed(seed)


def test_seeds_2_63_apart_build_different_forests(tmp_path) -> None:
    files = []
    for seed in (5, 5 + 2**63):
        built = AnnoyIndex(8, "angular", seed=seed)
        built.add_items(X)
        built.build(3)
        path = tmp_path / f"{seed}.idx"
        built.save(str(path))
        files.append(path.read_bytes())
        assert load(str(path)).seed == seed
    assert files[0] != files[1]


@pytest.mark.parametrize("metric", ["euclidean", "dot"])
def test_items_too_small_to_square_are_refused_at_build(metric: str) -> None:
    # at this scale float32 squares are subnormal: builds used to answer with 5% wrong neighbours
    built = AnnoyIndex(8, metric, seed=1)
    built.add_items(X * 1e-22)
    with pytest.raises(ValueError, match=rf"within \+-3.39e-21 for metric '{metric}'.*1e20"):
        built.build(2)
    with pytest.raises(ValueError, match="largest coordinate"):
        build_trees(X * 1e-22, metric, [0], seed=1)


@pytest.mark.parametrize("metric", ["euclidean", "dot", "angular", "manhattan"])
def test_small_items_that_square_precisely_still_build(metric: str) -> None:
    scaled = (X * (1e-20 if metric in ("euclidean", "dot") else 1e-30)).astype(np.float32)
    built = AnnoyIndex(8, metric, seed=1)
    built.add_items(scaled)
    built.build(2)
    got, _ = built.query(scaled[:20], 5, search_k=10**6)
    assert (got[:, 0] == np.arange(20)).all() or metric == "dot"
    zeros = AnnoyIndex(8, metric, seed=1)  # all-zero items are not too small: they are exact
    zeros.add_items(np.zeros((10, 8), np.float32))
    assert zeros.build(1)


def test_pandas_names_a_row_too_large_by_its_label() -> None:
    # the core's message named 'X' row 3, an argument the pandas user never passed
    df = pd.DataFrame(X[:50].astype(np.float64), index=[f"r{i}" for i in range(50)])
    df.iloc[3, 1] = 1e30
    with pytest.raises(ValueError, match=r"^the frame has row 'r3' \(position 3\) that is too "):
        df.annoy.neighbors(k=3, metric="euclidean")
    built = df.drop(index="r3").annoy.build(n_trees=2, metric="euclidean", seed=1)
    with pytest.raises(ValueError, match=r"^the query has row 'r3' \(position 1\) that is too "):
        df.iloc[2:5].annoy.query(df.iloc[2:5], k=2, index=built)


def test_pandas_names_a_row_beyond_float16_by_its_label() -> None:
    df = pd.DataFrame(X[:20].astype(np.float64), index=list("abcdefghijklmnopqrst"))
    df.iloc[4, 0] = 1e5
    with pytest.raises(ValueError, match=r"row 'e' \(position 4\) that holds 100000, beyond"):
        df.annoy.build(n_trees=2, vector_dtype="float16")


@pytest.mark.parametrize(
    ("value", "reason"), [(np.nan, "holds NaN or inf"), (1e30, "is too large: its norm")]
)
def test_gensim_most_similar_names_vector_not_x(value: float, reason: str) -> None:
    kv = KeyedVectors(8)
    kv.add_vectors([f"w{i}" for i in range(30)], X[:30])
    indexer = AnnoyIndexer(kv, 2, seed=1)
    bad = np.ones(8, np.float32)
    bad[2] = value
    with pytest.raises(ValueError, match=rf"^'vector' {reason}"):
        # gensim passes the unit mean of its inputs, so only NaN gets through it
        if np.isnan(value):
            kv.most_similar(positive=[bad], topn=3, indexer=indexer)
        else:
            indexer.most_similar(bad, 3)
