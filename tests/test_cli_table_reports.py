"""User reports against the command line's reading of tables: a typo in a number column, NumPy
reprs in messages, header names with spaces, repeated --columns, bool columns, a Parquet
file's stored index, float labels, empty inputs, and demo's -q and sample output."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli_run as run
from conftest import one_error_line

from annoy_adapters import load

DOCS = Path(__file__).resolve().parent.parent / "docs"


def words_csv(path: Path, bad: str | None = None, n: int = 6, f: int = 4) -> Path:
    """A CSV table: a 'word' column and f number columns d0.., one cell of d2 (row 3) ``bad``."""
    frame = pd.DataFrame(
        np.random.default_rng(0).normal(size=(n, f)).round(3), columns=[f"d{j}" for j in range(f)]
    )
    frame.insert(0, "word", [f"w{i}" for i in range(n)])
    if bad is not None:
        frame["d2"] = frame["d2"].astype(object)
        frame.loc[3, "d2"] = bad
    frame.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- 1. typos


@pytest.mark.parametrize("bad", ["1.2.3", "1,5", "x"])
def test_a_typo_in_a_number_column_is_refused_not_dropped(tmp_path, capsys, bad):
    path = words_csv(tmp_path / "typo.csv", bad)
    out = tmp_path / "o.annoy"
    for extra in ([], ["--label-column", "word"]):
        code, _, err = run(capsys, "build", path, "-o", out, "-q", *extra)
        line = one_error_line(err)
        assert code == 1, line
        for fragment in ("typo.csv' row 3", "column 'd2'", repr(bad), "--columns"):
            assert fragment in line, line
        assert not out.exists()
    assert "(word 'w3')" in line, line  # with the label column, the row's label too
    # explicit --columns names the row and value too
    code, _, err = run(capsys, "build", path, "-o", out, "-q", "--columns", "d1,d2")
    line = one_error_line(err)
    assert code == 1 and "row 3" in line and "column 'd2'" in line and repr(bad) in line, line
    # leaving the column out explicitly builds
    code, _, err = run(capsys, "build", path, "-o", out, "-q", "--columns", "d0,d1,d3")
    assert code == 0 and load(out).f == 3, err


def test_a_text_column_of_words_is_still_left_out(tmp_path, capsys):
    path = words_csv(tmp_path / "words.csv")
    frame = pd.read_csv(path)
    frame.insert(1, "note", ["red", "green", "blue", "1", "cyan", "pink"])  # one number: words
    frame.to_csv(path, index=False)
    out = tmp_path / "o.annoy"
    code, _, err = run(capsys, "build", path, "-o", out, "-q", "--label-column", "word")
    assert code == 0, err
    assert load(out).f == 4 and load(out).metadata["cli"]["columns"] == ["d0", "d1", "d2", "d3"]


# --------------------------------------------------------------------------- 3. plain values


def test_int_labels_show_as_plain_numbers(tmp_path, capsys):
    frame = pd.DataFrame({"id": [100, 101, 102, 103], "a": [1.0, 2.0, 3.0, 4.0], "b": 1.0})
    frame.loc[3, "a"] = np.nan
    frame.to_parquet(tmp_path / "nan.parquet")
    code, _, err = run(capsys, "build", tmp_path / "nan.parquet", "-o", tmp_path / "o.annoy",
                       "-q", "--label-column", "id")  # fmt: skip
    line = one_error_line(err)
    assert code == 1 and "(id 103)" in line and "np." not in line, line
    frame.loc[3, "a"] = 4.0
    frame.to_parquet(tmp_path / "ok.parquet")
    assert run(capsys, "build", tmp_path / "ok.parquet", "-o", tmp_path / "o.annoy", "-q",
               "--label-column", "id")[0] == 0  # fmt: skip
    code, _, err = run(capsys, "query", tmp_path / "o.annoy", "--vectors", tmp_path / "nan.parquet",
                       "--label-column", "id")  # fmt: skip
    line = one_error_line(err)
    assert code == 1 and "(id 103)" in line and "np." not in line, line
    frame["id"] = [100, 101, 102, 100]
    frame.to_parquet(tmp_path / "dup.parquet")
    code, _, err = run(capsys, "build", tmp_path / "dup.parquet", "-o", tmp_path / "d.annoy",
                       "-q", "--label-column", "id")  # fmt: skip
    line = one_error_line(err)
    assert code == 1 and "100 is on rows 0, 3" in line and "np." not in line, line


# --------------------------------------------------------------------------- 4. spaces


def test_header_names_with_spaces_can_be_chosen(tmp_path, capsys):
    path = tmp_path / "spaced.csv"
    path.write_text("word, d1, d2\nw0,1,0\nw1,0,1\nw2,1,1\n")
    out = tmp_path / "o.annoy"
    code, _, err = run(capsys, "build", path, "-o", out, "-q", "--columns", "d1,d2",
                       "--label-column", "word", "--metric", "euclidean")  # fmt: skip
    assert code == 0, err
    index = load(out)
    assert index.f == 2 and index.labels.tolist() == ["w0", "w1", "w2"]
    assert index.metadata["cli"]["columns"] == [" d1", " d2"]  # as the file spells them
    code, stdout, err = run(capsys, "query", out, "--vectors", path, "--label-column", "word",
                            "-k", "1")  # fmt: skip
    assert code == 0, err
    assert pd.read_csv(io.StringIO(stdout))["neighbor"].tolist() == ["w0", "w1", "w2"]
    # a name that is not there still says which columns there are
    code, _, err = run(capsys, "build", path, "-o", out, "-q", "--columns", "d3")
    line = one_error_line(err)
    assert code == 1 and "['d3']" in line and "' d1'" in line, line


# --------------------------------------------------------------------------- 5. repeats


@pytest.mark.parametrize(
    ("name", "columns", "repeated"),
    [("t.parquet", ["a,a,b"], "a"), ("t.csv", ["d1,d1"], "d1"), ("t.csv", ["d1", " d1"], "d1")],
)
def test_a_repeated_column_is_a_usage_error(tmp_path, capsys, name, columns, repeated):
    args = [arg for c in columns for arg in ("--columns", c)]
    # the input does not exist: the usage error comes before any file is read
    code, _, err = run(capsys, "build", tmp_path / name, "-o", tmp_path / "o.annoy", *args)
    line = one_error_line(err)
    assert code == 2 and f"--columns repeats {repeated!r}" in line, line
    code, _, err = run(capsys, "query", tmp_path / "x.annoy", "--vectors", tmp_path / name, *args)
    assert code == 2 and f"--columns repeats {repeated!r}" in one_error_line(err)


# --------------------------------------------------------------------------- 6. bools


def test_bool_columns_are_numeric(tmp_path, capsys):
    rng = np.random.default_rng(1)
    bits = pd.DataFrame(rng.random((20, 5)) < 0.5, columns=[f"b{j}" for j in range(5)])
    bits.to_parquet(tmp_path / "bits.parquet")
    out = tmp_path / "bits.annoy"
    code, _, err = run(capsys, "build", tmp_path / "bits.parquet", "-o", out, "-q",
                       "--metric", "hamming")  # fmt: skip
    assert code == 0, err
    assert load(out).f == 5
    code, stdout, err = run(capsys, "query", out, "--vectors", tmp_path / "bits.parquet", "-k", "1")
    assert code == 0 and np.allclose(pd.read_csv(io.StringIO(stdout))["distance"], 0), err
    mixed = pd.DataFrame({"x": rng.normal(size=20), "flag": bits["b0"], "y": rng.normal(size=20)})
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    code, _, err = run(capsys, "build", tmp_path / "mixed.csv", "-o", out, "-q")
    assert code == 0, err
    assert load(out).metadata["cli"]["columns"] == ["x", "flag", "y"]
    assert load(out).get_item_vector(0)[1] == float(bits["b0"][0])  # True is 1, False 0


# --------------------------------------------------------------------------- 7. float16


def test_float16_hamming_is_a_usage_error(tmp_path, capsys):
    code, _, err = run(capsys, "build", tmp_path / "missing.npy", "-o", tmp_path / "o.annoy",
                       "--vector-dtype", "float16", "--metric", "hamming")  # fmt: skip
    line = one_error_line(err)
    assert code == 2 and "--vector-dtype float16" in line and "--metric hamming" in line, line


# --------------------------------------------------------------------------- 8. stored index


def test_a_parquet_index_is_a_column(tmp_path, capsys):
    frame = pd.DataFrame({"d1": [1.0, 0.0, 1.0], "d2": [0.0, 1.0, 1.0]})
    frame.index = pd.Index(["a", "b", "c"], name="rowname")
    frame.to_parquet(tmp_path / "named.parquet")
    out = tmp_path / "o.annoy"
    code, _, err = run(capsys, "build", tmp_path / "named.parquet", "-o", out, "-q",
                       "--label-column", "rowname")  # fmt: skip
    assert code == 0, err
    assert load(out).labels.tolist() == ["a", "b", "c"] and load(out).f == 2
    # an int index (rows kept by a filter, say) names rows: it is no default vector column
    numbered = pd.DataFrame({"d1": [1.0, 0.0, 1.0], "d2": [0.0, 1.0, 1.0]}, index=[7, 3, 9])
    numbered.to_parquet(tmp_path / "numbered.parquet")
    code, _, err = run(capsys, "build", tmp_path / "numbered.parquet", "-o", out, "-q")
    assert code == 0 and load(out).f == 2, err


# --------------------------------------------------------------------------- 10. float labels


def test_float_labels_are_refused(tmp_path, capsys):
    frame = pd.DataFrame({"id": [100.0, 101.0, 102.0], "a": [1.0, 2.0, 3.0], "b": 1.0})
    frame.to_parquet(tmp_path / "fl.parquet")
    out = tmp_path / "o.annoy"
    code, _, err = run(capsys, "build", tmp_path / "fl.parquet", "-o", out, "-q",
                       "--label-column", "id")  # fmt: skip
    line = one_error_line(err)
    assert code == 1 and "--label-column 'id'" in line and "fl.parquet" in line, line
    assert "ints or text" in line and "astype" in line and not out.exists(), line


# --------------------------------------------------------------------------- minor


def test_the_label_column_cannot_be_a_vector_column(tmp_path, capsys):
    for name in ("t.csv", "t.parquet"):
        code, _, err = run(capsys, "build", tmp_path / name, "-o", tmp_path / "o.annoy",
                           "--label-column", "id", "--columns", "id,a")  # fmt: skip
        line = one_error_line(err)
        assert code == 2 and "--label-column 'id' is also in --columns" in line, line


def test_an_input_without_rows_is_refused(tmp_path, capsys):
    np.save(tmp_path / "empty.npy", np.zeros((0, 3), dtype=np.float32))
    (tmp_path / "empty.csv").write_text("a,b,c\n")
    for name in ("empty.npy", "empty.csv"):
        code, _, err = run(capsys, "build", tmp_path / name, "-o", tmp_path / "o.annoy", "-q")
        line = one_error_line(err)
        assert code == 1 and f"{str(tmp_path / name)!r} has no rows" in line, line
        assert not (tmp_path / "o.annoy").exists()


def test_the_docs_demo_sample_has_the_demos_format():
    """The sample output in docs/cli.md shows the lines the demo prints, in its format."""
    text = (DOCS / "cli.md").read_text()
    sample = text.split("$ annoy-adapters demo\n", 1)[1].split("```", 1)[0].splitlines()
    assert re.fullmatch(r"\d+ queries in \S+ ms", sample[-2]), sample
    assert re.fullmatch(
        r"batch: 10,000 queries \(k=8, probe=8\) in \S+ s = \S+ queries/s, "
        r"recall@8 \d\.\d{3} \(against exact search, 500 of them\)",
        sample[-1],
    ), sample
