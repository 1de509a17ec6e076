"""AnnoyTransformer.load names its features after the columns any adapter recorded.

"Build it in pandas (or with the CLI), load it in a scikit-learn pipeline": a file that records
one str column name per dimension gives the loaded estimator ``feature_names_in_``, so
scikit-learn's own feature-name check catches a frame whose columns come in another order.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

import annoy_adapters.pandas  # noqa: F401  (registers df.annoy)
from annoy_adapters import load
from annoy_adapters.cli import main as cli_main
from annoy_adapters.sklearn import AnnoyTransformer

ORDER = ["d", "c", "b", "a"]


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(60, 4)), columns=["a", "b", "c", "d"])


def _cli_file(frame: pd.DataFrame, tmp_path) -> str:
    table = tmp_path / "t.parquet"
    frame.to_parquet(table)
    path = tmp_path / "cli.annoy"
    assert cli_main(["build", str(table), "-o", str(path), "--columns", ",".join(ORDER), "-q"]) == 0
    assert load(path).metadata["cli"]["columns"] == ORDER
    return str(path)


def _pandas_file(frame: pd.DataFrame, tmp_path) -> str:
    path = tmp_path / "pd.annoy"
    frame[ORDER].annoy.build(path=path, seed=0)
    return str(path)


@pytest.mark.parametrize("make_file", [_cli_file, _pandas_file], ids=["cli", "pandas"])
def test_load_takes_recorded_columns_as_feature_names(make_file, frame, tmp_path):
    est = AnnoyTransformer.load(make_file(frame, tmp_path), n_neighbors=3)
    assert est.feature_names_in_.tolist() == ORDER
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file's column order: no feature-name warning
        by_name = est.transform(frame[ORDER])
        _, ind = est.kneighbors(frame[ORDER].iloc[:5])
    assert by_name.shape == (60, 60) and ind.shape == (5, 3)
    # a frame in another order is refused by scikit-learn's own check, not silently misread
    with pytest.raises(ValueError, match="feature names"):
        est.transform(frame)
    with pytest.raises(ValueError, match="feature names"):
        est.kneighbors(frame.iloc[:5])


def test_cli_file_serves_a_pipeline_that_checks_the_frame_columns(frame, tmp_path):
    path = _cli_file(frame, tmp_path)
    y = (frame["d"] > 0).to_numpy()
    # the loaded index, not refitted, feeding a classifier on the precomputed graph
    pipe = make_pipeline(
        FrozenEstimator(AnnoyTransformer.load(path, n_neighbors=5)),
        KNeighborsClassifier(n_neighbors=5, metric="precomputed"),
    ).fit(frame[ORDER], y)
    assert (pipe.predict(frame[ORDER]) == y).mean() > 0.8
    with pytest.raises(ValueError, match="feature names"):
        pipe.predict(frame)


def test_vector_column_is_not_a_feature_name(tmp_path):
    # one column of 1-d vectors: f == 1 == len(columns), yet "emb" names no feature
    df = pd.DataFrame({"emb": [np.array([float(i)]) for i in range(20)]})
    path = tmp_path / "vec.annoy"
    df.annoy.build("emb", metric="euclidean", path=path, seed=0)
    est = AnnoyTransformer.load(path)
    assert not hasattr(est, "feature_names_in_")


def test_non_str_recorded_columns_leave_feature_names_unset(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(20, 3)), columns=["a", 1, "c"])
    path = tmp_path / "mixed.annoy"
    df.annoy.build(path=path, seed=0)
    est = AnnoyTransformer.load(path)
    assert not hasattr(est, "feature_names_in_")


def test_dask_picks_the_cli_list_column_by_default(tmp_path):
    import dask
    import dask.dataframe as dd

    from annoy_adapters.cli import main
    from annoy_adapters.dask import query_dataframe

    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    table = pd.DataFrame({"word": [f"w{i}" for i in range(40)], "emb": list(X)})
    table.to_parquet(tmp_path / "emb.parquet")
    path = str(tmp_path / "emb.annoy")
    assert main(["build", str(tmp_path / "emb.parquet"), "-o", path, "--label-column", "word",
                 "-q", "--seed", "0"]) == 0  # fmt: skip
    with dask.config.set(scheduler="sync"):
        frame = dd.read_parquet(tmp_path / "emb.parquet")  # lists, not text
        got = query_dataframe(frame, path, k=1, search_k=10**5).compute()
    assert got["neighbor"].tolist() == table["word"].tolist()  # was "'word' is not numeric"
