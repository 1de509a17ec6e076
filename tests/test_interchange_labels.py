"""Labels across adapters: pandas-encoded labels in gensim, gensim's int keys in pandas.

Each adapter encodes what its core labels cannot hold (pandas: any hashable as JSON text;
gensim: int keys among str keys as text plus int runs). A file written by one must give the
other adapter's users their own keys back, not the encoding.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from gensim.models import KeyedVectors

import annoy_adapters.pandas  # noqa: F401  (registers df.annoy)
from annoy_adapters import load
from annoy_adapters.gensim import AnnoyIndexer

N, F = 24, 6
EXACT = 100_000  # a search_k that visits every leaf: results are exact


def _vectors() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, F)).astype(np.float32)


def _model(keys: list[object]) -> KeyedVectors:
    kv = KeyedVectors(vector_size=F)
    kv.add_vectors(keys, _vectors())
    return kv


def _frame(kv: KeyedVectors, index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(kv.get_normed_vectors(), index=index)


# -- pandas-encoded labels read by gensim -----------------------------------------------------

CAT = [f"c{i}" for i in range(N)]
MIXED = [i if i % 2 else f"s{i}" for i in range(N)]
INT_ENDS = [f"s{i}" if i % 2 else i for i in range(N - 1)] + [N - 1]  # ints at both ends


@pytest.mark.parametrize(
    ("keys", "index"),
    [
        (CAT, pd.CategoricalIndex(CAT)),
        (MIXED, pd.Index(MIXED, dtype=object)),
        (INT_ENDS, pd.Index(INT_ENDS, dtype=object)),
        (CAT, pd.Index(CAT, dtype="string[pyarrow]")),
    ],
    ids=["categorical", "object-mixed", "object-int-ends", "arrow-str"],
)
def test_gensim_loads_pandas_labels_as_the_model_keys(keys, index, tmp_path):
    kv = _model(keys)
    path = tmp_path / "frame.annoy"
    _frame(kv, index).annoy.build(path=path, seed=0)
    indexer = AnnoyIndexer.load(path)
    assert indexer.labels == keys
    assert [type(k) for k in indexer.labels] == [type(k) for k in keys]
    found = kv.most_similar(keys[3], topn=3, indexer=indexer)
    assert found[0][0] == keys[3]
    assert all(k in kv.key_to_index for k, _ in found)
    # pickled as the file's path, the keys are decoded again the same way
    assert pickle.loads(pickle.dumps(indexer)).labels == keys
    # re-saved by gensim, the keys stay the model's, for gensim and for pandas
    indexer.save(tmp_path / "resaved.idx")
    assert AnnoyIndexer.load(tmp_path / "resaved.idx").labels == keys
    frame = _frame(kv, pd.Index(keys, dtype=object))
    nn = frame.annoy.query(frame.iloc[[3]], k=1, index=tmp_path / "resaved.idx", search_k=EXACT)
    assert nn["neighbor"].tolist() == [keys[3]]


@pytest.mark.parametrize(
    ("index", "shown"),
    [
        (pd.Index(np.arange(N) + 0.5), "0.5"),
        (pd.date_range("2024-01-01", periods=N), "Timestamp"),
        (pd.MultiIndex.from_arrays([np.arange(N) % 2, np.arange(N)]), "(0, 0)"),
        (pd.Index([f"s{i}" for i in range(N - 1)] + [None], dtype=object), "None"),
    ],
    ids=["float", "timestamp", "multiindex", "missing"],
)
def test_gensim_refuses_pandas_labels_that_are_not_keys(index, shown, tmp_path):
    path = tmp_path / "frame.annoy"
    pd.DataFrame(_vectors(), index=index).annoy.build(path=path, seed=0)
    with pytest.raises(ValueError, match="str or int") as err:
        AnnoyIndexer.load(path)
    message = str(err.value)
    assert str(path) in message and shown in message
    assert "$" not in message and "null" not in message  # the label, not pandas' JSON text


def test_gensim_mixed_key_conflict_names_the_pair(tmp_path):
    kv = _model([0, 1, 2] + [f"d{i}" for i in range(3, N - 1)] + ["1"])
    with pytest.raises(ValueError, match=r"1 and '1'"):
        AnnoyIndexer(kv, num_trees=2, seed=0).save(tmp_path / "conflict.idx")


# -- gensim's int keys read by pandas ---------------------------------------------------------

MIXED_TAGS = [0, 1, 2] + [f"doc{i}" for i in range(3, N)]  # Doc2Vec's layout: ints first
BIG = [2**63 + i for i in range(N)]  # beyond int64: stored as text marked int


@pytest.mark.parametrize("keys", [MIXED_TAGS, BIG], ids=["mixed", "beyond-int64"])
def test_pandas_reads_gensim_int_keys_as_ints(keys, tmp_path):
    kv = _model(keys)
    path = tmp_path / "gensim.idx"
    AnnoyIndexer(kv, num_trees=5, seed=0).save(path)
    assert all(isinstance(label, str) for label in load(path).labels)  # held as text
    frame = _frame(kv, pd.Index(keys, dtype=object))

    nn = frame.annoy.query(frame.iloc[:2], k=2, index=path, search_k=EXACT)
    first = nn.xs(0, level="rank")["neighbor"].tolist()
    assert first == keys[:2] and all(type(k) is int for k in first)

    own = frame.annoy.neighbors(k=2, index=path, search_k=EXACT)
    expected = frame.annoy.neighbors(k=2, search_k=EXACT, seed=0)
    assert own["neighbor"].tolist() == expected["neighbor"].tolist()
    assert [type(k) for k in own["neighbor"]] == [type(k) for k in expected["neighbor"]]


def test_pandas_says_labels_differ_only_in_type(tmp_path):
    kv = _model(MIXED_TAGS)
    path = tmp_path / "gensim.idx"
    AnnoyIndexer(kv, num_trees=5, seed=0).save(path)
    as_text = _frame(kv, pd.Index([str(k) for k in MIXED_TAGS]))
    with pytest.raises(ValueError, match="only in type") as err:
        as_text.annoy.neighbors(k=2, index=path)
    assert "'0'" in str(err.value) and "int" in str(err.value)


# -- gensim's int keys read by Dask and the command line ---------------------------------------


def test_dask_and_cli_give_gensim_int_keys_back(tmp_path, capsys) -> None:
    import dask
    import dask.dataframe as dd

    from annoy_adapters.cli import main
    from annoy_adapters.dask import query_dataframe, query_items

    keys = [0, 1, 2, *[f"doc{i}" for i in range(3, N - 1)], 2**63 + 1]
    kv = _model(keys)
    path = str(tmp_path / "mixed.idx")
    AnnoyIndexer(kv, 2, seed=0).save(path)  # int keys stored as text plus int runs
    # object columns must stay objects for int and str keys to mix (dask makes them str)
    with dask.config.set({"scheduler": "sync", "dataframe.convert-string": False}):
        frame = dd.from_pandas(pd.DataFrame(kv.get_normed_vectors()), npartitions=2)
        got = query_dataframe(frame, path, k=1, search_k=EXACT).compute()
        assert got["neighbor"].tolist() == keys  # was '0', '1', '2', ..., '9223372036854775809'
        wanted = pd.Series([0, "doc3", 2**63 + 1], dtype=object)
        found = query_items(dd.from_pandas(wanted, npartitions=1), path, k=1, search_k=EXACT)
        assert found.compute()["neighbor"].tolist() == [0, "doc3", 2**63 + 1]
    assert main(["query", path, "--items", "0", "3", "-k", "1", "--search-k", str(EXACT)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["0,0,0,0.0", "3,0,doc3,0.0"]


# -- vector_dtype through every adapter that builds (README: "or the adapters' vector_dtype=") --


def test_gensim_indexer_takes_vector_dtype(tmp_path) -> None:
    kv = _model([f"w{i}" for i in range(N)])
    half = AnnoyIndexer(kv, 2, seed=1, vector_dtype="float16")
    assert half.index.vector_dtype == "float16"
    got = kv.most_similar("w3", topn=3, indexer=half)
    assert got[0][0] == "w3"
    half.save(tmp_path / "half.idx")
    back = AnnoyIndexer().load(tmp_path / "half.idx")
    assert back.vector_dtype == "float16"
    assert pickle.loads(pickle.dumps(back)).vector_dtype == "float16"
    assert kv.most_similar("w3", topn=3, indexer=back) == got


def test_pandas_neighbors_and_query_take_vector_dtype() -> None:
    df = pd.DataFrame(_vectors(), index=[f"r{i}" for i in range(N)])
    built = df.annoy.build(n_trees=3, seed=1, vector_dtype="float16")
    want = df.annoy.neighbors(k=3, index=built, search_k=EXACT)
    got = df.annoy.neighbors(k=3, n_trees=3, seed=1, vector_dtype="float16", search_k=EXACT)
    pd.testing.assert_frame_equal(got, want)
    q = df.annoy.query(df.iloc[:4], k=2, n_trees=3, seed=1, vector_dtype="float16")
    pd.testing.assert_frame_equal(q, df.annoy.query(df.iloc[:4], k=2, index=built))
    with pytest.raises(ValueError, match="'vector_dtype' is 'float32' but the index uses"):
        df.annoy.neighbors(k=3, index=built, vector_dtype="float32")
