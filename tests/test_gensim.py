"""annoy_adapters.gensim.AnnoyIndexer, exercised through gensim's own API.

Models are trained once per module on gensim's bundled Lee corpus: small (32-d, a few epochs),
seeded and single-threaded, so they are identical on every run.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

gensim = pytest.importorskip("gensim")

from gensim.models import Doc2Vec, FastText, KeyedVectors, Word2Vec  # noqa: E402
from gensim.models.doc2vec import TaggedDocument  # noqa: E402
from gensim.test.utils import common_texts, datapath  # noqa: E402
from gensim.utils import simple_preprocess  # noqa: E402

import annoy_adapters  # noqa: E402
from annoy_adapters import AnnoyIndex, IndexFileError  # noqa: E402
from annoy_adapters.gensim import AnnoyIndexer, UnsupportedModelError  # noqa: E402

# Approximate top-5 must equal gensim's exact top-5 (as sets) for at least TOP5_RATE of
# N_SAMPLE sampled keys, with NUM_TREES trees and SEARCH_K. Measured: 0.99 to 1.00 for every
# model here. (With the default search_k = 5 * 10 = 50 nodes it is 0.35 to 0.9: these small
# corpora give vectors crowded in a narrow cone, which needs a wider search.)
TOP5_RATE = 0.9
N_SAMPLE = 100
NUM_TREES = 10
SEARCH_K = 1000


@pytest.fixture(scope="module")
def lee_docs() -> list[list[str]]:
    with open(datapath("lee_background.cor"), encoding="latin-1") as fh:
        return [simple_preprocess(line) for line in fh]


@pytest.fixture(scope="module")
def w2v(lee_docs: list[list[str]]) -> Word2Vec:
    # alpha 0.05 / 10 epochs: vectors spread enough for neighbours to mean something.
    return Word2Vec(lee_docs, vector_size=32, min_count=3, seed=1, workers=1, epochs=10, alpha=0.05)


@pytest.fixture(scope="module")
def fasttext(lee_docs: list[list[str]]) -> FastText:
    return FastText(
        lee_docs,
        vector_size=32,
        min_count=3,
        seed=1,
        workers=1,
        epochs=5,
        alpha=0.05,
        min_n=3,
        max_n=4,
        bucket=5000,
    )


@pytest.fixture(scope="module")
def d2v(lee_docs: list[list[str]]) -> Doc2Vec:
    tagged = [TaggedDocument(words, [i]) for i, words in enumerate(lee_docs)]
    return Doc2Vec(tagged, vector_size=32, min_count=3, seed=1, workers=1, epochs=10, alpha=0.05)


@pytest.fixture(scope="module")
def kv_text() -> KeyedVectors:
    # gensim's own fixture: 1762 words x 10 dims in word2vec text format.
    return KeyedVectors.load_word2vec_format(datapath("lee_fasttext.vec"))


@pytest.fixture(scope="module")
def models(w2v: Word2Vec, fasttext: FastText, d2v: Doc2Vec, kv_text: KeyedVectors) -> dict:
    return {"word2vec": w2v, "fasttext": fasttext, "doc2vec": d2v, "keyedvectors": kv_text}


def _kv(model: Any) -> KeyedVectors:
    if isinstance(model, Doc2Vec):
        return model.dv
    return model.wv if isinstance(model, Word2Vec) else model


@pytest.fixture(scope="module")
def indexers(models: dict) -> dict:
    return {
        name: AnnoyIndexer(m, NUM_TREES, search_k=SEARCH_K, seed=7) for name, m in models.items()
    }


MODEL_NAMES = ["word2vec", "fasttext", "doc2vec", "keyedvectors"]


def assert_same_answer(got: list, expected: list) -> None:
    """Same keys in the same order; similarities equal up to float32 rounding."""
    assert [k for k, _ in got] == [k for k, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-5)


def _sample(kv: KeyedVectors, n: int = N_SAMPLE) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.choice(len(kv), size=min(n, len(kv)), replace=False)


# -- construction -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_indexes_the_right_vectors(name: str, models: dict, indexers: dict) -> None:
    kv, indexer = _kv(models[name]), indexers[name]
    assert indexer.labels == list(kv.index_to_key)
    assert indexer.index.f == kv.vector_size == indexer.vector_size
    assert indexer.num_trees == NUM_TREES == indexer.index.get_n_trees()
    assert indexer.index.metric == "angular"
    assert indexer.model is models[name]
    assert len(indexer) == len(kv)


def test_num_trees_none_builds_automatically(kv_text: KeyedVectors) -> None:
    indexer = AnnoyIndexer(kv_text, seed=1)
    assert indexer.num_trees == indexer.index.get_n_trees() >= 1
    assert AnnoyIndexer(kv_text, -1, seed=1).num_trees == indexer.num_trees


def test_seed_makes_the_build_repeatable(kv_text: KeyedVectors) -> None:
    a = AnnoyIndexer(kv_text, 3, seed=5, n_jobs=1)
    b = AnnoyIndexer(kv_text, 3, seed=5, n_jobs=1)
    v = kv_text.get_normed_vectors()[:50]
    for row in v:
        assert a.most_similar(row, 8) == b.most_similar(row, 8)


def test_empty_indexer_then_nothing_built() -> None:
    indexer = AnnoyIndexer()
    assert indexer.index is None and indexer.labels is None and len(indexer) == 0
    with pytest.raises(RuntimeError, match="empty"):
        indexer.most_similar(np.zeros(3, np.float32), 1)
    with pytest.raises(RuntimeError, match="empty"):
        indexer.save("never-written.idx")
    assert not os.path.exists("never-written.idx")


@pytest.mark.parametrize("bad", [object(), "word2vec.model", np.zeros((3, 4)), {"a": [1.0]}])
def test_unsupported_model_is_a_clear_error(bad: object) -> None:
    with pytest.raises(UnsupportedModelError, match=type(bad).__qualname__) as err:
        AnnoyIndexer(bad, 2)
    # gensim raised ValueError here; the error is also a TypeError.
    assert isinstance(err.value, ValueError) and isinstance(err.value, TypeError)
    assert "'model'" in str(err.value)


def test_empty_model_is_rejected() -> None:
    with pytest.raises(ValueError, match="no vectors"):
        AnnoyIndexer(KeyedVectors(vector_size=4), 2)


@pytest.mark.parametrize("bad", [0, -2, 2.5, "10", True])
def test_bad_num_trees(bad: object, kv_text: KeyedVectors) -> None:
    with pytest.raises(ValueError, match=rf"'num_trees'.*\(got {bad!r}\)"):
        AnnoyIndexer(kv_text, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -5, 1.5, None, False])
def test_bad_search_k(bad: object, kv_text: KeyedVectors) -> None:
    # the wording of the pandas and Dask adapters and of the core
    message = rf"'search_k' must be -1 or a positive int \(got {re.escape(repr(bad))}\)"
    with pytest.raises(ValueError, match=message):
        AnnoyIndexer(kv_text, 2, search_k=bad)  # type: ignore[arg-type]
    indexer = AnnoyIndexer()
    with pytest.raises(ValueError, match=message):
        indexer.search_k = bad  # type: ignore[assignment]


# -- queries ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_vector_finds_itself_first(name: str, models: dict, indexers: dict) -> None:
    kv, indexer = _kv(models[name]), indexers[name]
    normed = kv.get_normed_vectors()
    for i in _sample(kv, 50):
        key, sim = indexer.most_similar(normed[i], 1)[0]
        assert key == kv.index_to_key[i]
        assert type(key) is type(kv.index_to_key[i])
        assert sim == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_approximate_top5_matches_exact(name: str, models: dict, indexers: dict) -> None:
    kv, indexer = _kv(models[name]), indexers[name]
    normed = kv.get_normed_vectors()
    same = 0
    keys = _sample(kv)
    for i in keys:
        approx = kv.most_similar([normed[i]], topn=5, indexer=indexer)
        exact = kv.most_similar([normed[i]], topn=5)
        same += {k for k, _ in approx} == {k for k, _ in exact}
        # The similarities are cosines: they agree with gensim's exact values.
        exact_sims = dict(exact)
        for k, s in approx:
            if k in exact_sims:
                assert s == pytest.approx(exact_sims[k], abs=1e-4)
    rate = same / len(keys)
    assert rate >= TOP5_RATE, f"{name}: top-5 agreement {rate:.3f} < {TOP5_RATE}"


def test_search_k_trades_recall(kv_text: KeyedVectors) -> None:
    normed = kv_text.get_normed_vectors()
    keys = _sample(kv_text)
    exact = [{k for k, _ in kv_text.most_similar([normed[i]], topn=10)} for i in keys]

    def recall(indexer: AnnoyIndexer) -> float:
        hits = sum(
            len({k for k, _ in indexer.most_similar(normed[i], 10)} & truth)
            for i, truth in zip(keys, exact, strict=True)
        )
        return hits / (10 * len(keys))

    indexer = AnnoyIndexer(kv_text, NUM_TREES, seed=7, search_k=10)
    tiny = recall(indexer)
    indexer.search_k = -1  # 10 neighbours x 10 trees = 100 nodes
    default = recall(indexer)
    indexer.search_k = SEARCH_K
    wide = recall(indexer)
    assert tiny < default < wide
    assert wide >= 0.95


def test_word_queries_through_keyedvectors(w2v: Word2Vec, indexers: dict) -> None:
    indexer = indexers["word2vec"]
    result = w2v.wv.most_similar("government", topn=5, indexer=indexer)
    assert len(result) == 5
    assert all(isinstance(k, str) and isinstance(s, float) for k, s in result)
    # gensim hands the indexer's answer back unfiltered: the query word itself comes first.
    assert result[0][0] == "government"
    sims = [s for _, s in result]
    assert sims == sorted(sims, reverse=True)
    # Analogy-style queries: the indexer answers for gensim's mean of the unit vectors.
    analogy = w2v.wv.most_similar(
        positive=["police", "minister"], negative=["fire"], topn=8, indexer=indexer
    )
    mean = w2v.wv.get_mean_vector(
        ["police", "minister", "fire"],
        weights=[1, 1, -1],
        pre_normalize=True,
        post_normalize=True,
    )
    assert_same_answer(analogy, indexer.most_similar(mean, 8))


def test_fasttext_out_of_vocabulary_word(fasttext: FastText, indexers: dict) -> None:
    # gensim builds an OOV word's vector from its n-grams; the indexer answers for that vector.
    word = "governmentality"
    assert word not in fasttext.wv.key_to_index
    approx = fasttext.wv.most_similar(word, topn=5, indexer=indexers["fasttext"])
    exact = fasttext.wv.most_similar(word, topn=5)
    assert len({k for k, _ in approx} & {k for k, _ in exact}) >= 4


def test_document_queries_through_dv(d2v: Doc2Vec, indexers: dict) -> None:
    indexer = indexers["doc2vec"]
    result = d2v.dv.most_similar(3, topn=4, indexer=indexer)
    assert [type(k) for k, _ in result] == [int] * 4
    assert result[0][0] == 3
    exact = d2v.dv.most_similar([d2v.dv.get_vector(3, norm=True)], topn=4)
    assert [k for k, _ in result] == [k for k, _ in exact]


def test_string_document_tags(lee_docs: list[list[str]]) -> None:
    tagged = [TaggedDocument(w, [f"doc-{i}"]) for i, w in enumerate(lee_docs[:60])]
    model = Doc2Vec(tagged, vector_size=16, min_count=2, seed=1, workers=1, epochs=2)
    indexer = AnnoyIndexer(model, 4, seed=1)
    assert model.dv.most_similar("doc-5", topn=1, indexer=indexer)[0][0] == "doc-5"


def test_topn_none_bypasses_the_indexer(kv_text: KeyedVectors, indexers: dict) -> None:
    # gensim only asks the indexer for an int topn; topn=None returns all exact similarities.
    v = kv_text.get_normed_vectors()[0]
    approx = kv_text.most_similar([v], topn=None, indexer=indexers["keyedvectors"])
    exact = kv_text.most_similar([v], topn=None)
    np.testing.assert_array_equal(approx, exact)
    assert len(approx) == len(kv_text)


def test_num_neighbors_edges(kv_text: KeyedVectors) -> None:
    small = KeyedVectors(vector_size=3)
    small.add_vectors(["a", "b", "c"], np.eye(3, dtype=np.float32))
    indexer = AnnoyIndexer(small, 2, seed=1)
    assert indexer.most_similar(np.array([1, 0, 0], np.float32), 0) == []
    got = indexer.most_similar(np.array([1, 0.1, 0], np.float32), 10)
    assert [k for k, _ in got][:1] == ["a"] and len(got) == 3
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match=r"'num_neighbors'"):
            indexer.most_similar(np.ones(3, np.float32), bad)  # type: ignore[arg-type]
    for shape in [(2,), (1, 3), (4,)]:
        with pytest.raises(ValueError, match=r"'vector'.*length 3"):
            indexer.most_similar(np.ones(shape, np.float32), 1)


def _random_kv(n: int, f: int = 8) -> KeyedVectors:
    """``n`` seeded random vectors keyed ``k0``, ``k1``...: small, and spread over the cells."""
    kv = KeyedVectors(vector_size=f)
    vectors = np.random.default_rng(0).normal(size=(n, f)).astype(np.float32)
    kv.add_vectors([f"k{i}" for i in range(n)], vectors)
    return kv


@pytest.mark.parametrize("probe", [None, 1])
def test_topn_beyond_the_vocabulary_is_capped_at_its_size(probe: int | None) -> None:
    # gensim hands topn to the indexer as is; the core pads its result rows to k columns, so
    # an uncapped 2**40 failed on the core's 'k' (and 10**8 took seconds and a GiB)
    kv = _random_kv(100)
    indexer = AnnoyIndexer(kv, 2, seed=1, probe=probe)
    for topn in (101, 2**40, 10**30):
        got = kv.most_similar("k1", topn=topn, indexer=indexer)
        assert len(got) == 100 and got[0][0] == "k1"
        assert {k for k, _ in got} == set(kv.index_to_key)


@pytest.mark.parametrize(
    "bad, shown",
    [
        ("k1", "str 'k1'"),
        ({"a": 1}, "dict {'a': 1}"),
        ([1, 2, [3], 4], "list [1, 2, [3], 4]"),
        ([None] * 4, "list [None, None, None, None]"),
        (np.array(["x"] * 4), "array of dtype <U1 and shape (4,)"),
        (np.ones(4, complex), "array of dtype complex128 and shape (4,)"),
    ],
)
def test_non_numeric_vector_is_a_type_error_naming_it(bad: object, shown: str) -> None:
    indexer = AnnoyIndexer(_random_kv(10, f=4), 2, seed=1)
    expected = r"'vector' must be a numeric 1-D vector of length 4 \(got " + re.escape(shown)
    with pytest.raises(TypeError, match=expected) as info:
        indexer.most_similar(bad, 2)
    if isinstance(bad, str):  # a word: the message says where words go
        assert "KeyedVectors.most_similar('k1'" in str(info.value)


def test_zero_vector_does_not_break_the_build() -> None:
    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["x", "y", "zero"], np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], np.float32))
    indexer = AnnoyIndexer(kv, 2, seed=1)
    got = dict(indexer.most_similar(np.array([1, 0, 0], np.float32), 3))
    assert got["x"] == pytest.approx(1.0, abs=1e-6)
    assert got["zero"] == pytest.approx(0.0, abs=1e-6)  # distance sqrt(2): cosine 0


# -- one file: save / load ----------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_save_load_round_trip(name: str, models: dict, indexers: dict, tmp_path: Any) -> None:
    kv, indexer = _kv(models[name]), indexers[name]
    fname = tmp_path / "index.idx"
    indexer.save(str(fname))
    assert os.listdir(tmp_path) == ["index.idx"]  # one file, no .d/.dict sidecar

    for loaded in (
        AnnoyIndexer().load(fname),
        AnnoyIndexer.load(str(fname)),
        AnnoyIndexer.from_file(fname),
    ):
        assert isinstance(loaded, AnnoyIndexer) and loaded.model is None
        assert loaded.labels == indexer.labels
        assert [type(k) for k in loaded.labels[:5]] == [type(k) for k in kv.index_to_key[:5]]
        assert loaded.index.f == indexer.index.f == kv.vector_size
        assert loaded.num_trees == indexer.num_trees == NUM_TREES
        assert loaded.search_k == indexer.search_k
        v = kv.get_normed_vectors()[1]
        expected = indexer.most_similar(v, 5)
        assert_same_answer(loaded.most_similar(v, 5), expected)
        assert_same_answer(kv.most_similar([v], topn=5, indexer=loaded), expected)


def test_instance_load_fills_in_the_instance(kv_text: KeyedVectors, tmp_path: Any) -> None:
    fname = tmp_path / "kv.idx"
    AnnoyIndexer(kv_text, 3, seed=1, search_k=123).save(fname)
    target = AnnoyIndexer(search_k=9)
    assert target.load(fname=str(fname)) is target
    assert target.search_k == 123  # the file's settings are restored
    assert os.path.samefile(target.path, fname)


def test_save_after_load_needs_no_model(kv_text: KeyedVectors, tmp_path: Any) -> None:
    first = tmp_path / "first.idx"
    AnnoyIndexer(kv_text, 4, seed=1).save(first)
    loaded = AnnoyIndexer.load(first)
    assert loaded.model is None
    second = tmp_path / "second.idx"
    loaded.save(second)
    loaded.save(second)  # saving over the file that backs the index works too
    again = AnnoyIndexer.load(second)
    assert again.labels == list(kv_text.index_to_key)
    assert again.num_trees == 4
    v = kv_text.get_normed_vectors()[10]
    assert_same_answer(again.most_similar(v, 5), AnnoyIndexer.load(first).most_similar(v, 5))


def test_mixed_document_tags_round_trip(tmp_path: Any) -> None:
    tagged = [TaggedDocument(w, [i if i % 2 else f"doc{i}"]) for i, w in enumerate(common_texts)]
    model = Doc2Vec(tagged, vector_size=8, min_count=1, seed=1, workers=1, epochs=2)
    keys = list(model.dv.index_to_key)
    assert {type(k) for k in keys} == {int, str}
    indexer = AnnoyIndexer(model, 2, seed=1)
    indexer.save(tmp_path / "mixed.idx")
    loaded = AnnoyIndexer.load(tmp_path / "mixed.idx")
    assert loaded.labels == keys
    assert [type(k) for k in loaded.labels] == [type(k) for k in keys]
    assert model.dv.most_similar("doc0", topn=1, indexer=loaded)[0][0] == "doc0"


def test_missing_file_is_an_oserror(tmp_path: Any) -> None:
    missing = tmp_path / "nope.idx"
    with pytest.raises(FileNotFoundError):
        AnnoyIndexer().load(missing)
    with pytest.raises(OSError):  # gensim's callers catch IOError (== OSError)
        AnnoyIndexer.load(str(missing))
    with pytest.raises(FileNotFoundError):
        AnnoyIndexer.from_file(missing)


def test_not_an_index_file(tmp_path: Any) -> None:
    junk = tmp_path / "junk.idx"
    junk.write_bytes(b"this is not an index" * 10)
    with pytest.raises(IndexFileError):
        AnnoyIndexer.load(junk)


# -- interoperability with the core and other writers -------------------------------------------
def test_loading_needs_neither_model_nor_gensim(kv_text: KeyedVectors, tmp_path: Any) -> None:
    fname = tmp_path / "kv.idx"
    AnnoyIndexer(kv_text, 3, seed=1).save(fname)
    vector = kv_text.get_normed_vectors()[5].tolist()
    code = (
        "import sys\n"
        "sys.modules['gensim'] = None  # any gensim import now fails\n"
        "from annoy_adapters.gensim import AnnoyIndexer\n"
        f"indexer = AnnoyIndexer.load({str(fname)!r})\n"
        f"print(indexer.most_similar({vector!r}, 1)[0][0])\n"
        "assert 'gensim.models' not in sys.modules\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == kv_text.index_to_key[5]


def test_file_loads_in_annoy_index(d2v: Doc2Vec, indexers: dict, tmp_path: Any) -> None:
    fname = tmp_path / "docs.idx"
    indexers["doc2vec"].save(fname)
    index = annoy_adapters.load(str(fname))
    assert index.metric == "angular" and index.f == d2v.dv.vector_size
    assert index.get_n_trees() == NUM_TREES
    np.testing.assert_array_equal(index.labels, np.arange(len(d2v.dv)))
    meta = index.metadata
    assert meta["adapter"] == "gensim"
    assert meta["gensim"]["num_trees"] == NUM_TREES
    assert meta["gensim"]["key_type"] == "int"
    assert meta["gensim"]["source"] == "Doc2Vec.dv"
    ids, _ = index.query_items([0, 5], 1)
    np.testing.assert_array_equal(ids[:, 0], [0, 5])
    np.testing.assert_allclose(
        index.get_item_vectors(np.arange(3)), d2v.dv.get_normed_vectors()[:3], atol=1e-6
    )


def test_plain_annoy_index_file_loads_with_ids_as_keys(tmp_path: Any) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    index = AnnoyIndex(8, "angular", seed=1)
    index.add_items(X)
    index.build(5)
    index.save(str(tmp_path / "plain.idx"))
    indexer = AnnoyIndexer.load(tmp_path / "plain.idx")
    assert indexer.labels == list(range(300)) and indexer.num_trees == 5
    key, sim = indexer.most_similar(X[42] / np.linalg.norm(X[42]), 1)[0]
    assert key == 42 and type(key) is int and sim == pytest.approx(1.0, abs=1e-5)
    indexer.save(tmp_path / "resaved.idx")  # no model, no labels in the source file
    assert AnnoyIndexer.load(tmp_path / "resaved.idx").labels == list(range(300))


def test_labelled_file_from_the_core_keeps_its_labels(tmp_path: Any) -> None:
    X = np.random.default_rng(2).normal(size=(50, 4)).astype(np.float32)
    index = AnnoyIndex(4, "angular", seed=1)
    index.add_items(X)
    index.set_labels([f"row{i}" for i in range(50)])
    index.set_metadata({"adapter": "pandas", "pandas": {"columns": ["a", "b", "c", "d"]}})
    index.build(3)
    index.save(str(tmp_path / "rows.idx"))
    indexer = AnnoyIndexer.load(tmp_path / "rows.idx")
    assert indexer.most_similar(X[7], 1)[0][0] == "row7"
    indexer.save(tmp_path / "rows2.idx")
    meta = annoy_adapters.load(str(tmp_path / "rows2.idx")).metadata
    assert meta["adapter"] == "gensim"
    assert meta["pandas"] == {"columns": ["a", "b", "c", "d"]}  # other adapters' entries kept


def test_non_angular_file_is_rejected(tmp_path: Any) -> None:
    index = AnnoyIndex(4, "euclidean", seed=1)
    index.add_items(np.eye(4, dtype=np.float32))
    index.build(2)
    index.save(str(tmp_path / "euclid.idx"))
    with pytest.raises(ValueError, match=r"angular.*euclidean"):
        AnnoyIndexer.load(tmp_path / "euclid.idx")


def test_gensim_two_file_index_converts_without_its_pickle(w2v: Word2Vec, tmp_path: Any) -> None:
    pytest.importorskip("annoy")
    from gensim.similarities.annoy import AnnoyIndexer as GensimAnnoyIndexer

    theirs = GensimAnnoyIndexer(w2v, 5)
    fname = str(tmp_path / "gensim.ann")
    theirs.save(fname)  # writes fname and the pickled fname + ".dict"
    with pytest.raises(IndexFileError, match="from_annoy_file"):
        AnnoyIndexer.load(fname)
    ours = AnnoyIndexer.from_annoy_file(fname, w2v)
    assert ours.labels == list(w2v.wv.index_to_key) and ours.num_trees == 5
    for v in w2v.wv.get_normed_vectors()[:20]:
        assert [k for k, _ in ours.most_similar(v, 5)] == [k for k, _ in theirs.most_similar(v, 5)]
    ours.save(tmp_path / "one-file.idx")
    assert AnnoyIndexer.load(tmp_path / "one-file.idx").labels == ours.labels
    fewer = KeyedVectors(vector_size=w2v.wv.vector_size)
    fewer.add_vectors(w2v.wv.index_to_key[:100], w2v.wv.vectors[:100])
    with pytest.raises(ValueError, match=r"holds \d+ items but 'model' has 100 keys"):
        AnnoyIndexer.from_annoy_file(fname, fewer)
    with pytest.raises(FileNotFoundError):
        AnnoyIndexer.from_annoy_file(tmp_path / "missing.ann", w2v)


def test_from_annoy_file_refuses_a_native_file(tmp_path: Any) -> None:
    # a native file holds its own keys (or none: then ids); from_annoy_file used to replace
    # them silently with another model's keys when the counts matched
    kv, other = _random_kv(50), KeyedVectors(vector_size=8)
    other.add_vectors([f"z{i}" for i in range(50)], kv.vectors[::-1].copy())
    indexer = AnnoyIndexer(kv, 2, seed=1)
    indexer.save(tmp_path / "native.idx")
    plain = AnnoyIndex(8, "angular", seed=1)
    plain.add_items(kv.vectors)
    plain.build(2)
    plain.save(str(tmp_path / "plain.idx"))  # no labels
    for name in ("native.idx", "plain.idx"):
        for model in (other, kv):
            with pytest.raises(IndexFileError, match=r"index file.*AnnoyIndexer\.load\(fname\)"):
                AnnoyIndexer.from_annoy_file(tmp_path / name, model)
    # the same index as an annoy .ann file still takes the model's keys
    indexer.index.export_annoy(str(tmp_path / "same.ann"))
    converted = AnnoyIndexer.from_annoy_file(tmp_path / "same.ann", kv)
    assert converted.labels == kv.index_to_key
    assert kv.most_similar("k3", topn=1, indexer=converted)[0][0] == "k3"


# -- pickling -----------------------------------------------------------------------------------
def test_pickle_in_memory(kv_text: KeyedVectors) -> None:
    indexer = AnnoyIndexer(kv_text, 3, seed=1, search_k=500)
    clone = pickle.loads(pickle.dumps(indexer))
    assert clone.model is None  # the model is not pickled: it is not needed for queries
    assert clone.labels == indexer.labels and clone.search_k == 500
    v = kv_text.get_normed_vectors()[3]
    assert_same_answer(clone.most_similar(v, 5), indexer.most_similar(v, 5))


def test_pickle_file_backed_carries_the_path(kv_text: KeyedVectors, tmp_path: Any) -> None:
    indexer = AnnoyIndexer(kv_text, 3, seed=1)
    in_memory = len(pickle.dumps(indexer))
    indexer.save(tmp_path / "kv.idx")
    blob = pickle.dumps(indexer)
    assert len(blob) < in_memory / 10  # neither vectors nor keys travel
    clone = pickle.loads(blob)
    assert clone.labels == indexer.labels and clone.path == indexer.path
    v = kv_text.get_normed_vectors()[3]
    assert_same_answer(clone.most_similar(v, 5), indexer.most_similar(v, 5))


# -- the cell scan (probe) ----------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_probe_top5_matches_exact_through_most_similar(name: str, models: dict) -> None:
    kv = _kv(models[name])
    indexer = AnnoyIndexer(models[name], NUM_TREES, seed=7, probe=8)
    assert indexer.index.get_n_cells() > 8  # a scan of part of the cells, not all of them
    normed = kv.get_normed_vectors()
    keys = _sample(kv)
    same = 0
    for i in keys:
        approx = kv.most_similar([normed[i]], topn=5, indexer=indexer)
        exact = kv.most_similar([normed[i]], topn=5)
        same += {k for k, _ in approx} == {k for k, _ in exact}
        assert indexer.most_similar(normed[i], 1)[0][0] == kv.index_to_key[i]
    rate = same / len(keys)
    assert rate >= TOP5_RATE, f"{name}: top-5 agreement with probe=8 {rate:.3f} < {TOP5_RATE}"


def test_probe_widens_until_topn_neighbours_are_found() -> None:
    # 200 words in ~sqrt(200) cells: one cell holds far fewer than topn=50 words, and a
    # probe=1 search returned only that cell's (20 of 50 before the scan was widened)
    kv = _random_kv(200)
    indexer = AnnoyIndexer(kv, 3, seed=1, probe=1)
    assert 4 < indexer.index.get_n_cells() < 50
    for word in ("k0", "k1", "k2"):
        for topn in (50, 150, 200):
            got = kv.most_similar(word, topn=topn, indexer=indexer)
            assert len({k for k, _ in got}) == len(got) == topn
            sims = [s for _, s in got]
            assert sims == sorted(sims, reverse=True) and got[0][0] == word
    assert indexer.probe == 1  # a starting width: queries do not change the setting
    # widened to every cell, the scan is exact
    got = dict(kv.most_similar("k1", topn=200, indexer=indexer))
    exact = dict(kv.most_similar("k1", topn=199))
    assert got.pop("k1") == pytest.approx(1.0, abs=1e-5)
    assert got == pytest.approx(exact, abs=1e-5)


def test_probe_is_kept_by_the_file_and_checked(kv_text: KeyedVectors, tmp_path: Any) -> None:
    indexer = AnnoyIndexer(kv_text, NUM_TREES, seed=7, probe=4)
    fname = str(tmp_path / "probe.idx")
    indexer.save(fname)
    loaded = AnnoyIndexer.load(fname)
    assert loaded.probe == 4 and "probe=4" in repr(loaded)
    v = kv_text.get_normed_vectors()[3]
    assert_same_answer(loaded.most_similar(v, 5), indexer.most_similar(v, 5))
    again = pickle.loads(pickle.dumps(loaded))
    assert again.probe == 4
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(ValueError, match="'probe' must be None or a positive int"):
            AnnoyIndexer(probe=bad)
    loaded.probe = None  # back to the trees
    assert loaded.most_similar(v, 1)[0][0] == kv_text.index_to_key[3]


def test_a_file_relabelled_by_another_adapter_keeps_its_new_labels(tmp_path) -> None:
    """The core keeps the gensim section when it re-saves with new labels; its int-key runs
    describe the old labels and must not be applied to the new ones."""
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    kv = KeyedVectors(vector_size=4)
    kv.add_vectors([0, 1, "a", "b", "c"], x)  # mixed tags, as Doc2Vec has
    AnnoyIndexer(kv, 2, seed=1).save(str(tmp_path / "mixed.idx"))
    for new in (["10", "11", "12", "13", "14"], ["x", "y", "z", "u", "v"]):
        index = annoy_adapters.load(str(tmp_path / "mixed.idx"))
        index.set_labels(new)
        index.save(str(tmp_path / "relabelled.idx"))
        assert AnnoyIndexer.load(str(tmp_path / "relabelled.idx")).labels == new
