"""gensim's own AnnoyIndexer tests, ported to annoy_adapters.gensim.AnnoyIndexer.

Source: gensim 4.4 ``gensim/test/test_similarities.py``, classes ``TestWord2VecAnnoyIndexer`` and
``TestDoc2VecAnnoyIndexer``. Every assertion is kept, with the same models and corpora except:

- training is made small, seeded and single-threaded (``workers=1``, fewer epochs/dimensions) so
  the tests are fast and repeatable;
- ``assertIndexSaved`` checked for a ``fname + '.d'`` sidecar, which gensim's own indexer never
  writes (it writes ``.dict``; those tests fail with annoy installed). Ours writes one file, so
  the port asserts that ``fname`` exists and that no sidecar does;
- a fresh temporary directory per saved file instead of gensim's shared ``get_tmpfile`` path;
- the imports: ``from annoy_adapters.gensim import AnnoyIndexer``, no annoy C++ package needed;
- ``assertApproxNeighborsMatchExact`` asks an approximate top-5 to equal the exact one at
  annoy's tiny default ``search_k`` (``n_trees * 5``). That holds for some random forests and not
  others, for gensim's own indexer too (annoy 1.17.3 passes 31 of 50 seeds on
  ``lee_fasttext.vec``). The port keeps the assertion and runs it over many seeds, for ours and
  for the real annoy package as gensim's indexer calls it, and asks ours to pass on most seeds
  and about as often as annoy (within 6 of 48 seeds, two binomial standard deviations; over 200
  seeds ours passed 147 to annoy's 158 on the FastText model, 163 to 124 on lee_fasttext.vec).
"""

from __future__ import annotations

import os
import tempfile
import unittest

import pytest

pytest.importorskip("gensim")
from gensim import utils
from gensim.models import FastText, KeyedVectors, doc2vec, word2vec
from gensim.test.utils import common_texts as TEXTS
from gensim.test.utils import datapath

from annoy_adapters.gensim import AnnoyIndexer

annoy = pytest.importorskip("annoy")  # gensim's own indexer runs on it: the reference

SENTENCES = [doc2vec.TaggedDocument(words, [i]) for i, words in enumerate(TEXTS)]
SMALL = {"seed": 1, "workers": 1}
SEEDS = range(48)


def _exact_top5(wv) -> list[str]:  # type: ignore[no-untyped-def]
    vector = wv.get_normed_vectors()[0]
    return [word for word, _ in wv.most_similar(positive=[vector], topn=5)]


def _gensim_annoy_passes(wv, num_trees: int) -> int:  # type: ignore[no-untyped-def]
    """Seeds on which gensim's AnnoyIndexer (annoy 1.17.3) passes the top-5 assertion."""
    vectors = wv.get_normed_vectors()
    exact = _exact_top5(wv)
    passes = 0
    for seed in SEEDS:
        index = annoy.AnnoyIndex(wv.vector_size, "angular")  # as gensim builds it
        index.set_seed(seed)
        for i, vector in enumerate(vectors):
            index.add_item(i, vector)
        index.build(num_trees)
        ids = index.get_nns_by_vector(vectors[0], 5)
        passes += [wv.index_to_key[i] for i in ids] == exact
    return passes


def get_tmpfile(suffix: str) -> str:
    # gensim's get_tmpfile reuses one path in the shared temp dir; a fresh dir per call keeps
    # the "no sidecar" assertion independent of files left there by other runs.
    return os.path.join(tempfile.mkdtemp(prefix="annoy-gensim-"), suffix)


def _assert_one_file(testcase: unittest.TestCase, fname: str) -> None:
    testcase.assertTrue(os.path.exists(fname))
    for suffix in (".d", ".dict"):
        testcase.assertFalse(os.path.exists(fname + suffix))


class TestWord2VecAnnoyIndexer(unittest.TestCase):
    def setUp(self) -> None:
        self.indexer = AnnoyIndexer

    def test_word2vec(self) -> None:
        model = word2vec.Word2Vec(TEXTS, min_count=1, **SMALL)
        index = self.indexer(model, 10)

        self.assertVectorIsSimilarToItself(model.wv, index)
        self.assertApproxNeighborsMatchExact(model.wv, model.wv, index)
        self.assertIndexSaved(index)
        self.assertLoadedIndexEqual(index, model)

    def test_fast_text(self) -> None:
        class LeeReader:
            def __init__(self, fn: str) -> None:
                self.fn = fn

            def __iter__(self):  # type: ignore[no-untyped-def]
                with utils.open(self.fn, "r", encoding="latin_1") as infile:
                    for line in infile:
                        yield line.lower().strip().split()

        model = FastText(LeeReader(datapath("lee.cor")), bucket=5000, vector_size=32, **SMALL)
        index = self.indexer(model, 10)

        self.assertVectorIsSimilarToItself(model.wv, index)
        self.assertApproxNeighborsMatchExact(model.wv, model.wv, index)
        self.assertIndexSaved(index)
        self.assertLoadedIndexEqual(index, model)

    def test_annoy_indexing_of_keyed_vectors(self) -> None:
        keyVectors_file = datapath("lee_fasttext.vec")
        model = KeyedVectors.load_word2vec_format(keyVectors_file)
        index = AnnoyIndexer(model, 10)

        self.assertEqual(index.num_trees, 10)
        self.assertVectorIsSimilarToItself(model, index)
        self.assertApproxNeighborsMatchExact(model, model, index)

    def test_load_missing_raises_error(self) -> None:
        test_index = AnnoyIndexer()

        self.assertRaises(IOError, test_index.load, fname="test-index")

    def test_all_similarities_disable_indexer(self) -> None:
        # gensim defines this helper but never calls it; it holds for ours.
        model = word2vec.Word2Vec(TEXTS, min_count=1, **SMALL)
        index = self.indexer(model, 10)
        self.assertAllSimilaritiesDisableIndexer(model.wv, model.wv, index)

    def assertVectorIsSimilarToItself(self, wv, index):  # type: ignore[no-untyped-def]
        vector = wv.get_normed_vectors()[0]
        label = wv.index_to_key[0]
        approx_neighbors = index.most_similar(vector, 1)
        word, similarity = approx_neighbors[0]

        self.assertEqual(word, label)
        self.assertAlmostEqual(similarity, 1.0, places=2)

    def assertApproxNeighborsMatchExact(self, model, wv, index):  # type: ignore[no-untyped-def]
        vector = wv.get_normed_vectors()[0]
        exact = _exact_top5(wv)
        passes = 0
        for seed in SEEDS:  # gensim's assertion, on a forest per seed
            seeded = AnnoyIndexer(wv, index.num_trees, seed=seed)
            approx_neighbors = model.most_similar([vector], topn=5, indexer=seeded)
            passes += [neighbor[0] for neighbor in approx_neighbors] == exact
        theirs = _gensim_annoy_passes(wv, index.num_trees)
        self.assertGreaterEqual(passes, theirs - 6, f"ours passed {passes}, annoy {theirs}")
        self.assertGreater(passes, len(SEEDS) // 2, f"ours passed {passes} of {len(SEEDS)}")

    def assertAllSimilaritiesDisableIndexer(self, model, wv, index):  # type: ignore[no-untyped-def]
        vector = wv.get_normed_vectors()[0]
        approx_similarities = model.most_similar([vector], topn=None, indexer=index)
        exact_similarities = model.most_similar(positive=[vector], topn=None)

        self.assertEqual(list(approx_similarities), list(exact_similarities))
        self.assertEqual(len(approx_similarities), len(wv.vectors))

    def assertIndexSaved(self, index):  # type: ignore[no-untyped-def]
        fname = get_tmpfile("gensim_similarities.tst.pkl")
        index.save(fname)
        _assert_one_file(self, fname)

    def assertLoadedIndexEqual(self, index, model):  # type: ignore[no-untyped-def]
        fname = get_tmpfile("gensim_similarities.tst.pkl")
        index.save(fname)

        index2 = AnnoyIndexer()
        index2.load(fname)
        index2.model = model

        self.assertEqual(index.index.f, index2.index.f)
        self.assertEqual(index.labels, index2.labels)
        self.assertEqual(index.num_trees, index2.num_trees)


class TestDoc2VecAnnoyIndexer(unittest.TestCase):
    def setUp(self) -> None:
        self.model = doc2vec.Doc2Vec(SENTENCES, min_count=1, **SMALL)
        self.index = AnnoyIndexer(self.model, 300)
        self.vector = self.model.dv.get_normed_vectors()[0]

    def test_document_is_similar_to_itself(self) -> None:
        approx_neighbors = self.index.most_similar(self.vector, 1)
        doc, similarity = approx_neighbors[0]

        self.assertEqual(doc, 0)
        self.assertAlmostEqual(similarity, 1.0, places=2)

    def test_approx_neighbors_match_exact(self) -> None:
        approx_neighbors = self.model.dv.most_similar([self.vector], topn=5, indexer=self.index)
        exact_neighbors = self.model.dv.most_similar([self.vector], topn=5)

        approx_words = [neighbor[0] for neighbor in approx_neighbors]
        exact_words = [neighbor[0] for neighbor in exact_neighbors]

        self.assertEqual(approx_words, exact_words)

    def test_save(self) -> None:
        fname = get_tmpfile("gensim_similarities.tst.pkl")
        self.index.save(fname)
        _assert_one_file(self, fname)

    def test_load_not_exist(self) -> None:
        self.test_index = AnnoyIndexer()

        self.assertRaises(IOError, self.test_index.load, fname="test-index")

    def test_save_load(self) -> None:
        fname = get_tmpfile("gensim_similarities.tst.pkl")
        self.index.save(fname)

        self.index2 = AnnoyIndexer()
        self.index2.load(fname)
        self.index2.model = self.model

        self.assertEqual(self.index.index.f, self.index2.index.f)
        self.assertEqual(self.index.labels, self.index2.labels)
        self.assertEqual(self.index.num_trees, self.index2.num_trees)
