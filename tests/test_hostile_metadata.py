"""Hostile metadata in a file that loads: every adapter raises IndexFileError naming the file.

Each file is a valid one re-saved with one section (or field) changed, as a tampered or foreign
file would hold it; the adapters must refuse it when they read it, not fail later with a
TypeError, an AttributeError or a plain ValueError.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import annoy_adapters.pandas  # noqa: F401  (registers the accessor)
from annoy_adapters import IndexFileError, load
from annoy_adapters.gensim import AnnoyIndexer
from annoy_adapters.sklearn import AnnoyTransformer

F = 4
X = np.random.default_rng(0).normal(size=(30, F))


def _retagged(path: str, edit: Callable[[dict[str, Any]], None], name: str = "bad") -> str:
    """A copy of the file at ``path`` whose metadata ``edit`` changed in place."""
    index = load(path)
    meta = index.metadata
    edit(meta)
    index.set_metadata(meta)
    out = os.path.join(os.path.dirname(path), f"{name}.annoy")
    index.save(out)
    return out


def _section(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda meta: meta.__setitem__(name, value)


def _field(section: str, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda meta: meta.setdefault(section, {}).__setitem__(field, value)


def _codec_field(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda meta: meta["pandas"]["index"].__setitem__(field, value)


def _raises(path: str, *words: str) -> Any:
    """pytest.raises(IndexFileError) whose message names the file and each of ``words``."""
    pattern = "".join(f"(?=.*{re.escape(w)})" for w in (repr(os.path.abspath(path)), *words))
    return pytest.raises(IndexFileError, match=re.compile(pattern, re.S))


# -- gensim -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gensim_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=F)
    kv.add_vectors([f"w{i}" for i in range(len(X))], X.astype(np.float32))
    path = str(tmp_path_factory.mktemp("gensim") / "words.idx")
    AnnoyIndexer(kv, num_trees=2, seed=1).save(path)
    return path


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_field("gensim", "search_k", "x"), ["'search_k'", "'gensim'", "got str 'x'"]),
        (_field("gensim", "search_k", True), ["'search_k'", "got bool"]),
        (_field("gensim", "probe", -3), ["'probe'", "'gensim'", "got int -3"]),
        (_field("gensim", "source", 5), ["'source'", "got int 5"]),
        (_field("gensim", "int_key_runs", 5), ["'int_key_runs'", "got int 5"]),
        (_field("gensim", "int_key_runs", [[3, 1]]), ["'int_key_runs'"]),
        (_field("gensim", "label_ends", 5), ["'label_ends'", "got int 5"]),
    ],
)
def test_gensim_load_refuses_a_hostile_section(gensim_file: str, edit: Any, words: Any) -> None:
    bad = _retagged(gensim_file, edit)
    with _raises(bad, "is corrupted", *words):
        AnnoyIndexer.load(bad)
    indexer = AnnoyIndexer()
    with pytest.raises(IndexFileError):
        indexer.load(bad)  # gensim's style: the instance is left as it was
    assert indexer.index is None and indexer.search_k == -1


@pytest.mark.parametrize("value", [[1], "4.3.3", None])
def test_a_gensim_key_that_is_no_record_is_the_users_own(gensim_file: str, value: Any) -> None:
    # metadata is the user's dict too ({"gensim": "4.3.3"}, a version): every reader ignores
    # a value that is not an adapter's record, as before, rather than call the file corrupted
    mine = _retagged(gensim_file, _section("gensim", value))
    assert AnnoyIndexer.load(mine).most_similar(X[0], 2)[0][0] == "w0"
    df = pd.DataFrame(X, columns=list("abcd"))
    assert df.annoy.query(df.iloc[:1], k=2, index=mine)["neighbor"].iloc[0] == "w0"


# -- scikit-learn -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sklearn_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    where = tmp_path_factory.mktemp("sklearn")
    frame = pd.DataFrame(X, columns=list("abcd"))
    out = {}
    for metric in ("euclidean", "dot", "manhattan"):
        out[metric] = str(where / f"{metric}.annoy")
        AnnoyTransformer(metric=metric, n_trees=2, random_state=0).fit(frame).save(out[metric])
    return out


@pytest.mark.parametrize(
    ("metric", "edit", "words"),
    [
        ("euclidean", _field("sklearn", "feature_names_in_", 5), ["'feature_names_in_'", "int"]),
        ("euclidean", _field("sklearn", "feature_names_in_", ["a"]), ["'feature_names_in_'"]),
        ("euclidean", _field("sklearn", "feature_names_in_", [1, 2, 3, 4]), ["4 str names"]),
        ("euclidean", _field("sklearn", "n_neighbors", "x"), ["'n_neighbors'", "got str"]),
        ("euclidean", _field("sklearn", "n_neighbors", True), ["'n_neighbors'", "got bool"]),
        ("euclidean", _field("sklearn", "mode", 3), ["'mode'"]),
        ("euclidean", _field("sklearn", "random_state", -1), ["'random_state'"]),
        ("euclidean", _field("sklearn", "n_jobs", 0), ["'n_jobs'"]),
        ("euclidean", _field("sklearn", "metric", "manhattan"), ["'metric'", "'euclidean'"]),
        ("euclidean", _field("sklearn", "metric", 5), ["'metric'", "got int 5"]),
        ("manhattan", _field("sklearn", "probe", 2), ["'probe'", "without cells"]),
        ("dot", _field("sklearn", "max_sq_norm_", "x"), ["'max_sq_norm_'", "got str"]),
        ("dot", _field("sklearn", "max_sq_norm_", -1.0), ["'max_sq_norm_'", ">= 0"]),
        ("dot", _field("sklearn", "max_sq_norm_", 10**400), ["'max_sq_norm_'"]),
    ],
)
def test_sklearn_load_refuses_a_hostile_section(
    sklearn_files: dict[str, str], metric: str, edit: Any, words: Any
) -> None:
    bad = _retagged(sklearn_files[metric], edit)
    with _raises(bad, "is corrupted", *words):
        AnnoyTransformer.load(bad).transform(X[:2])


def test_sklearn_load_reads_no_parameter_the_caller_overrides(
    sklearn_files: dict[str, str],
) -> None:
    bad = _retagged(sklearn_files["euclidean"], _field("sklearn", "n_neighbors", "x"))
    frame = pd.DataFrame(X[:2], columns=list("abcd"))
    assert AnnoyTransformer.load(bad, n_neighbors=3).transform(frame).getnnz() == 2 * 4


# -- pandas (and the readers of its section: scikit-learn, the CLI, Dask) ------------------


@pytest.fixture(scope="module")
def pandas_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("pandas") / "rows.annoy")
    frame = pd.DataFrame(X, columns=list("abcd"), index=[f"r{i}" for i in range(len(X))])
    frame.annoy.build(n_trees=2, seed=1, path=path)
    return path


# a value that cannot be this index's record: the user's own ({"pandas": "3.1.1"}), or
# column names copied from another index's metadata; readers ignore it, as they always have
_NO_RECORD = [
    _section("pandas", [1]),
    _section("pandas", "3.1.1"),
    _field("pandas", "columns", 5),
    _field("pandas", "columns", ["a", "b"]),
    _section("sklearn", [1]),
    _section("cli", 3),
    _field("cli", "columns", 5),
    _field("cli", "columns", ["a", 1, "b", "c"]),
    _section("cli", {"columns": list("abcd"), "vector_column": "x"}),
]


@pytest.mark.parametrize("edit", _NO_RECORD)
def test_a_value_that_is_no_adapters_record_is_ignored(
    pandas_file: str, sklearn_files: dict[str, str], edit: Any
) -> None:
    df = pd.DataFrame(X, columns=list("abcd"))
    for path in (pandas_file, sklearn_files["euclidean"]):
        clean = df.annoy.query(df.iloc[:2], k=2, index=path)
        mine = _retagged(path, edit)
        pd.testing.assert_frame_equal(df.annoy.query(df.iloc[:2], k=2, index=mine), clean)
        got = AnnoyTransformer.load(mine).transform(df.iloc[:2])
        assert (got != AnnoyTransformer.load(path).transform(df.iloc[:2])).nnz == 0


_PANDAS_CASES = [
    (_field("pandas", "columns", [{"a": 1}] * F), ["'columns'", "unknown label tag"]),
    (_field("pandas", "columns", ["a", "a", "b", "c"]), ["'columns'", "distinct"]),
    (_field("pandas", "vector_column", "x"), ["'vector_column'", "a bool"]),
    (_field("pandas", "index", 5), ["'index'", "got int 5"]),
    (_codec_field("codec", "bogus"), ["'index.codec'", "got str 'bogus'"]),
    (_codec_field("codec", "int"), ["'index.codec'", "str labels"]),
    (_codec_field("dtypes", 5), ["'index.dtypes'", "got int 5"]),
    (_codec_field("names", 5), ["'index.names'", "got int 5"]),
    (_codec_field("names", [{"$ts": 5}]), ["'index.names'"]),
    (_codec_field("nlevels", "x"), ["'index.nlevels'", "got str 'x'"]),
    (_codec_field("ends", 5), ["'index.ends'", "got int 5"]),
    (_codec_field("categories", [{"values": 1}]), ["'index.categories'"]),
]


@pytest.mark.parametrize(("edit", "words"), _PANDAS_CASES)
def test_pandas_accessor_refuses_a_hostile_section(pandas_file: str, edit: Any, words: Any) -> None:
    bad = _retagged(pandas_file, edit)
    df = pd.DataFrame(X, columns=list("abcd"))
    with _raises(bad, "is corrupted", *words):
        df.annoy.query(df.iloc[:2], k=2, index=bad)


@pytest.mark.parametrize(("edit", "words"), _PANDAS_CASES[:4])
def test_sklearn_load_refuses_a_hostile_pandas_section(
    pandas_file: str, edit: Any, words: Any
) -> None:
    bad = _retagged(pandas_file, edit)
    with _raises(bad, "is corrupted", *words):
        AnnoyTransformer.load(bad)


def test_a_cli_file_of_npy_vectors_records_no_columns(sklearn_files: dict[str, str]) -> None:
    def npy_build(meta: dict[str, Any]) -> None:
        del meta["sklearn"]["feature_names_in_"]
        meta["cli"] = {"source": "x.npy", "columns": None, "vector_column": False}

    path = _retagged(sklearn_files["euclidean"], npy_build)
    assert not hasattr(AnnoyTransformer.load(path), "feature_names_in_")


def test_labels_the_pandas_codec_cannot_decode(tmp_path: Any) -> None:
    """A float index is stored as JSON text; a label that is not is refused where decoded."""
    frame = pd.DataFrame(X, columns=list("abcd"), index=np.arange(len(X)) + 0.5)
    path = str(tmp_path / "floats.annoy")
    frame.annoy.build(n_trees=2, seed=1, path=path)
    index = load(path)
    labels = index.labels.copy()
    labels[1:-1] = [f"{{bad{i}" for i in range(1, len(labels) - 1)]  # same first and last
    index.set_labels(labels)
    bad = str(tmp_path / "bad.annoy")
    index.save(bad)
    with _raises(bad, "is corrupted", "labels"):
        frame.annoy.query(frame.iloc[1:3], k=2, index=bad)
    with _raises(bad, "is corrupted", "labels"):
        frame.annoy.neighbors(k=2, index=bad)
