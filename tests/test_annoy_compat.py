"""Annoy interop: .ann files made by annoy load and answer as annoy does; our exports load in annoy.

The golden tests read tests/data/annoy_*.ann (made by annoy 1.17.3, see tests/data/make_golden.py)
and annoy's recorded answers, without importing annoy.  The live tests build with the real
``annoy`` package and compare both ways; they skip, with the reason, where it is not importable.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from annoy_adapters import AnnoyIndex, IndexFileError, load
from annoy_adapters.core import _annoy_format as annoy_format
from annoy_adapters.core._annoy_format import layout
from annoy_adapters.core._atomic import umask

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "annoy_golden.json").read_text())
METRICS = ("angular", "euclidean", "manhattan", "dot", "hamming")

try:
    import annoy
except ImportError as exc:  # pragma: no cover - annoy is in the test extra
    annoy = None
    ANNOY_MISSING = f"the annoy package is not importable ({exc}); pip install annoy==1.17.3"
else:
    ANNOY_MISSING = ""
needs_annoy = pytest.mark.skipif(annoy is None, reason=ANNOY_MISSING or "annoy present")


def _tol(metric: str) -> float:
    # angular: sqrt(2 - 2 cos) turns float32 rounding of 1e-7 into ~3e-4 near 0
    return 1e-3 if metric == "angular" else 1e-4


# -- golden files made by annoy (no annoy import) -------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
def test_golden_ann_answers_as_annoy(metric: str) -> None:
    g = GOLDEN[metric]
    index = AnnoyIndex(g["f"], metric)
    index.load(DATA / g["file"])
    assert index.get_n_items() == g["n_items"]
    assert index.get_n_trees() == g["n_trees"]
    assert index.path == os.fspath(DATA / g["file"])
    for i, vec in g["items"].items():
        assert index.get_item_vector(int(i)) == pytest.approx(vec)
    for hole in g["holes"]:
        with pytest.raises(IndexError):
            index.get_item_vector(hole)
    for r in g["results"]:
        if "vector" in r:
            got = index.get_nns_by_vector(g["queries"][r["vector"]], 6, r["search_k"], True)
        else:
            got = index.get_nns_by_item(r["item"], 6, r["search_k"], True)
        assert got[0] == r["ids"], r
        np.testing.assert_allclose(got[1], r["dist"], rtol=1e-5, atol=_tol(metric))


def test_golden_hamming_has_annoys_padding_bit_splits() -> None:
    # annoy zeroes v when it gives up on a split: bit 0 is the top bit of word 0, beyond f=20
    index = AnnoyIndex(20, "hamming")
    index.load(DATA / "annoy_hamming.ann")
    dims = index._forest.offsets
    assert (dims >= 20).any() and (dims < 20).any()


@pytest.mark.parametrize(
    ("f", "metric", "match"),
    [
        (9, "angular", "not a multiple of the node size"),
        (8, "euclidean", "not a multiple of the node size"),
        (8, "hamming", "not a multiple of the node size"),
        (1000, "angular", "not a multiple of the node size"),
    ],
)
def test_golden_ann_with_wrong_f_or_metric_is_refused(f: int, metric: str, match: str) -> None:
    index = AnnoyIndex(f, metric)
    with pytest.raises(IndexFileError, match=match) as info:
        index.load(DATA / "annoy_angular.ann")
    assert f"f={f}" in str(info.value) and repr(metric) in str(info.value)
    assert not index.built and index.path is None


def test_wrong_f_with_a_fitting_size_is_refused_by_structure(tmp_path: Path) -> None:
    # 4840 bytes = 110 angular nodes of f=8 (44 bytes) = 55 nodes of f=19 (88 bytes)
    index = AnnoyIndex(19, "angular")
    with pytest.raises(IndexFileError, match="f=19"):
        index.load(DATA / "annoy_angular.ann")


def test_ann_is_not_native_for_the_path_only_loader() -> None:
    with pytest.raises(IndexFileError, match=r"AnnoyIndex\(f, metric\)\.load"):
        load(DATA / "annoy_euclidean.ann")


def test_missing_and_empty_ann(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        AnnoyIndex(8, "angular").load(tmp_path / "missing.ann")
    (tmp_path / "empty.ann").write_bytes(b"")
    with pytest.raises(IndexFileError, match="empty"):
        AnnoyIndex(8, "angular").load(tmp_path / "empty.ann")


def test_loaded_ann_pickles_by_path_and_reopens_mapped(tmp_path: Path) -> None:
    path = tmp_path / "e.ann"
    shutil.copy(DATA / "annoy_euclidean.ann", path)
    index = AnnoyIndex(8, "euclidean")
    index.load(path)
    blob = pickle.dumps(index)
    assert len(blob) < 1000  # path + hash, not the nodes
    again = pickle.loads(blob)
    assert again.path == os.fspath(path)
    q = GOLDEN["euclidean"]["queries"][0]
    assert again.get_nns_by_vector(q, 5, 7) == index.get_nns_by_vector(q, 5, 7)
    shutil.copy(DATA / "annoy_manhattan.ann", path)  # same node size, other content
    with pytest.raises(IndexFileError, match="changed"):
        pickle.loads(blob)


def test_loaded_ann_is_read_only_and_unloads() -> None:
    index = AnnoyIndex(8, "dot")
    index.load(DATA / "annoy_dot.ann")
    with pytest.raises(RuntimeError, match="read-only"):
        index.add_item(100, [0.0] * 8)
    index.unload()
    assert index.path is None and not index.built and index.get_n_items() == 0


@pytest.mark.parametrize("metric", METRICS)
def test_ann_saved_native_answers_the_same(tmp_path: Path, metric: str) -> None:
    g = GOLDEN[metric]
    index = AnnoyIndex(g["f"], metric)
    index.load(DATA / g["file"])
    index.save(tmp_path / "native.annoy")
    native = load(tmp_path / "native.annoy")
    for sk in (-1, 7, 25):
        for q in g["queries"]:
            assert native.get_nns_by_vector(q, 6, sk) == index.get_nns_by_vector(q, 6, sk)


@pytest.mark.parametrize("metric", METRICS)
def test_export_then_read_back_equals_the_source_ann(tmp_path: Path, metric: str) -> None:
    # an .ann-loaded forest already has annoy's shape: the export is the same trees
    g = GOLDEN[metric]
    index = AnnoyIndex(g["f"], metric)
    index.load(DATA / g["file"])
    index.export_annoy(tmp_path / "back.ann")
    back = AnnoyIndex(g["f"], metric)
    back.load(tmp_path / "back.ann")
    assert back.get_n_items() == g["n_items"] and back.get_n_trees() == g["n_trees"]
    for sk in (-1, 1, 7, 25):
        for q in g["queries"]:
            assert back.get_nns_by_vector(q, 6, sk) == index.get_nns_by_vector(q, 6, sk)


def _nodes(path: Path, metric: str, f: int) -> np.ndarray:
    """The raw node array of an ``.ann`` file, one row of bytes per node."""
    return np.fromfile(path, np.uint8).reshape(-1, layout(metric, f).size)


def _split_rows(path: Path, metric: str, f: int, n: int) -> list[bytes]:
    """Distinct split nodes of an ``.ann`` file (root copies included once) without their child
    ids (node ids depend on the order), nor hamming's padding (annoy leaves it uninitialized)."""
    lay = layout(metric, f)
    raw = _nodes(path, metric, f)[n:]
    nd = raw[:, :4].copy().view("<i4").ravel()
    keep = np.r_[0 : lay.children, lay.children + 8 : (12 if metric == "hamming" else lay.size)]
    if metric == "hamming":
        keep = np.r_[keep, lay.v : lay.size]
    return sorted({bytes(r) for r in raw[nd > lay.K][:, keep]})


@pytest.mark.parametrize("metric", METRICS)
def test_export_of_an_annoy_file_keeps_its_items_and_splits_bit_for_bit(
    tmp_path: Path, metric: str
) -> None:
    # annoy's stored angular norms and dot factors are written back, not recomputed: a
    # recomputed norm may be 1 ulp off, and annoy's get_distance(i, i) becomes 3.7e-4
    g = GOLDEN[metric]
    f, n, src = g["f"], g["n_items"], DATA / g["file"]
    index = AnnoyIndex(f, metric)
    index.load(src)
    index.export_annoy(tmp_path / "back.ann")
    np.testing.assert_array_equal(
        _nodes(tmp_path / "back.ann", metric, f)[:n], _nodes(src, metric, f)[:n]
    )
    assert _split_rows(tmp_path / "back.ann", metric, f, n) == _split_rows(src, metric, f, n)


def test_annoy_items_survive_the_native_format(tmp_path: Path) -> None:
    # .ann -> native file -> .ann: the items' nodes come back byte for byte, but for the squared
    # norm, which only a loaded .ann vouches for: 0 asks annoy to compute it as it does itself
    g = GOLDEN["angular"]
    f, n, src = g["f"], g["n_items"], DATA / g["file"]
    index = AnnoyIndex(f, "angular")
    index.load(src)
    index.export_annoy(tmp_path / "direct.ann")  # straight from the .ann: every byte kept
    np.testing.assert_array_equal(
        _nodes(tmp_path / "direct.ann", "angular", f)[:n], _nodes(src, "angular", f)[:n]
    )
    index.save(tmp_path / "native.annoy")
    load(tmp_path / "native.annoy").export_annoy(tmp_path / "back.ann")
    back, orig = _nodes(tmp_path / "back.ann", "angular", f)[:n], _nodes(src, "angular", f)[:n]
    norm = slice(4, 8)
    assert not back[:, norm].any()
    np.testing.assert_array_equal(np.delete(back, norm, axis=1), np.delete(orig, norm, axis=1))


def test_export_with_cells_writes_each_items_own_vector(tmp_path: Path) -> None:
    # cells reorder the stored rows: the export writes them back by id (norms as 0: annoy's own)
    x = np.random.default_rng(12).normal(size=(3000, 6)).astype(np.float32)
    x[:, 0] *= np.linspace(0.1, 10, len(x), dtype=np.float32)  # norms that tell rows apart
    index = AnnoyIndex(6, "angular", seed=4)
    index.add_items(x)
    index.build(2)
    assert index.get_n_cells() > 0
    index.export_annoy(tmp_path / "x.ann")
    raw = _nodes(tmp_path / "x.ann", "angular", 6)[: len(x)]
    np.testing.assert_array_equal(raw[:, 12:].copy().view("<f4"), x)
    assert not raw[:, 4:8].any()


def test_export_refuses_empty_and_unbuilt(tmp_path: Path) -> None:
    index = AnnoyIndex(3, "angular")
    with pytest.raises(RuntimeError, match="not built"):
        index.export_annoy(tmp_path / "x.ann")
    index.build(2)
    with pytest.raises(ValueError, match="without items"):
        index.export_annoy(tmp_path / "x.ann")
    assert list(tmp_path.iterdir()) == []


def test_export_is_atomic_and_replaces_a_mapped_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "x.ann"
    first = AnnoyIndex(5, "euclidean", seed=1)
    first.add_items(rng.normal(size=(200, 5)))
    first.build(3)
    first.export_annoy(path)
    reader = AnnoyIndex(5, "euclidean")
    reader.load(path)
    before = reader.get_nns_by_item(0, 10)
    second = AnnoyIndex(5, "euclidean", seed=2)
    second.add_items(rng.normal(size=(300, 5)))
    second.build(4)
    second.export_annoy(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ann"]
    assert reader.get_nns_by_item(0, 10) == before  # the old mapping keeps working
    fresh = AnnoyIndex(5, "euclidean")
    fresh.load(path)
    assert fresh.get_n_items() == 300 and fresh.get_n_trees() == 4
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask()  # like annoy's own save


# -- live comparisons with the real annoy package -----------------------------------------------
def _data(metric: str, n: int, f: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)).astype(np.float32)
    return (x > 0).astype(np.float32) if metric == "hamming" else x


def _rows(ids: np.ndarray, dist: np.ndarray) -> list[tuple[list[int], list[float]]]:
    """Batch results as annoy's (ids, distances) lists, padding dropped."""
    return [(i[i >= 0].tolist(), d[i >= 0].tolist()) for i, d in zip(ids, dist, strict=True)]


def _annoy_built(metric: str, x: np.ndarray, path: Path, holes: set[int], trees: int) -> object:
    a = annoy.AnnoyIndex(x.shape[1], metric)
    a.set_seed(11)
    for i, row in enumerate(x):
        if i not in holes:
            a.add_item(i, row.tolist())
    a.build(trees, n_jobs=1)
    a.save(os.fspath(path))
    b = annoy.AnnoyIndex(x.shape[1], metric)
    b.load(os.fspath(path))
    return b


@needs_annoy
@pytest.mark.parametrize("metric", METRICS)
def test_annoy_built_file_answers_exactly_as_annoy(tmp_path: Path, metric: str) -> None:
    f, n = (72 if metric == "hamming" else 12), 600
    x = _data(metric, n, f, 1)
    holes = {3, 99, 400}
    ref = _annoy_built(metric, x, tmp_path / "a.ann", holes, 5)
    ours = AnnoyIndex(f, metric)
    ours.load(tmp_path / "a.ann")
    assert ours.get_n_items() == ref.get_n_items() and ours.get_n_trees() == ref.get_n_trees()
    queries = _data(metric, 15, f, 2)
    items = [0, 250, 599]
    for sk in (-1, 1, 10, 60, 300, n * 5):
        got = _rows(*ours.query(queries, 10, search_k=sk))
        got += _rows(*ours.query_items(items, 10, search_k=sk))
        want = [ref.get_nns_by_vector(q.tolist(), 10, sk, True) for q in queries]
        want += [ref.get_nns_by_item(i, 10, sk, True) for i in items]
        for g, w in zip(got, want, strict=True):
            assert g[0] == w[0], sk
            np.testing.assert_allclose(g[1], w[1], rtol=1e-5, atol=_tol(metric))


@needs_annoy
@pytest.mark.parametrize("metric", METRICS)
def test_export_with_annoys_leaf_size_answers_exactly_as_we_do(tmp_path: Path, metric: str) -> None:
    # leaf_size == K: annoy gets our trees unchanged, and its heap order equals our search
    f, n = (100 if metric == "hamming" else 10), 800
    x = _data(metric, n, f, 3)
    ours = AnnoyIndex(f, metric, leaf_size=layout(metric, f).K, seed=5)
    keep = np.setdiff1d(np.arange(n), [7, 500])
    ours.add_items(x[keep], ids=keep)
    ours.build(6)
    ours.export_annoy(tmp_path / "ours.ann")
    theirs = annoy.AnnoyIndex(f, metric)
    theirs.load(os.fspath(tmp_path / "ours.ann"))
    assert theirs.get_n_items() == n and theirs.get_n_trees() == 6
    queries = _data(metric, 15, f, 4)
    for sk in (-1, 1, 15, 100, 1000, n * 6):
        want = _rows(*ours.query(queries, 10, search_k=sk))
        got = [theirs.get_nns_by_vector(q.tolist(), 10, sk, True) for q in queries]
        for g, w in zip(got, want, strict=True):
            assert g[0] == w[0], sk
            np.testing.assert_allclose(g[1], w[1], rtol=1e-5, atol=_tol(metric))


@needs_annoy
@pytest.mark.parametrize("metric", METRICS)
def test_export_with_leaves_larger_than_k_agrees_when_exhaustive(
    tmp_path: Path, metric: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # leaves larger than annoy's K (here 64 items) are cut into annoy subtrees,
    # so only an exhaustive search is guaranteed to agree
    monkeypatch.setattr(annoy_format, "CUT_ROWS", 100)  # several blocks of leaves to cut
    f, n = (20 if metric == "hamming" else 6), 700
    x = _data(metric, n, f, 5)
    ours = AnnoyIndex(f, metric, seed=3, leaf_size=64)
    ours.add_items(x)
    ours.build(4)
    ours.set_labels([f"w{i}" for i in range(n)])  # labels are not exported
    ours.export_annoy(tmp_path / "ours.ann")
    theirs = annoy.AnnoyIndex(f, metric)
    theirs.load(os.fspath(tmp_path / "ours.ann"))
    assert theirs.get_n_items() == n and theirs.get_n_trees() == 4
    for i in (0, 123, 699):
        assert theirs.get_item_vector(i) == pytest.approx(ours.get_item_vector(i))
    recall = []
    for q in _data(metric, 20, f, 6):
        want = ours.get_nns_by_vector(q, 10, search_k=n * 4, include_distances=True)
        got = theirs.get_nns_by_vector(q.tolist(), 10, search_k=n * 4, include_distances=True)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=_tol(metric))
        if metric != "hamming":  # hamming distances tie: equal distances, ids may differ
            assert got[0] == want[0]
        exact = theirs.get_nns_by_vector(q.tolist(), 10, search_k=n * 4)
        approx = theirs.get_nns_by_vector(q.tolist(), 10, search_k=-1)
        recall.append(len(set(exact) & set(approx)) / 10)
    assert np.mean(recall) > 0.3  # annoy's own search works on the exported trees


def _annoy_round_trip(
    tmp_path: Path, metric: str, x: np.ndarray, holes: set[int], n_trees: int
) -> tuple[object, object]:
    """Annoy's index of ``x`` (saved as a.ann) and annoy's read of it after load + export_annoy
    here (b.ann)."""
    ref = _annoy_built(metric, x, tmp_path / "a.ann", holes, n_trees)
    ours = AnnoyIndex(x.shape[1], metric)
    ours.load(tmp_path / "a.ann")
    ours.export_annoy(tmp_path / "b.ann")
    back = annoy.AnnoyIndex(x.shape[1], metric)
    back.load(os.fspath(tmp_path / "b.ann"))
    return ref, back


@needs_annoy
@pytest.mark.parametrize("metric", METRICS)
def test_round_trip_annoy_to_ours_to_annoy_is_exact(tmp_path: Path, metric: str) -> None:
    f, n = 16, 400
    x = _data(metric, n, f, 7)
    if metric == "hamming":
        x[300:] = x[0]  # duplicates: annoy's padding-bit splits
    ref, back = _annoy_round_trip(tmp_path, metric, x, {10}, 3)
    for sk in (-1, 2, 30, 200):
        for q in _data(metric, 10, f, 8):
            assert back.get_nns_by_vector(q.tolist(), 8, sk) == ref.get_nns_by_vector(
                q.tolist(), 8, sk
            )


@needs_annoy
@pytest.mark.parametrize("metric", METRICS)
def test_round_trip_reproduces_every_annoy_answer(tmp_path: Path, metric: str) -> None:
    # annoy -> load -> export_annoy -> annoy: the same items bit for bit, so the same distances
    # (angular used to recompute the stored norms: get_distance(i, i) = 3.7e-4 instead of 0)
    f, n = 8, 100
    x = _data(metric, n, f, 0)
    ref, back = _annoy_round_trip(tmp_path, metric, x, {40}, 2)
    np.testing.assert_array_equal(
        _nodes(tmp_path / "b.ann", metric, f)[:n], _nodes(tmp_path / "a.ann", metric, f)[:n]
    )
    items = [i for i in range(n) if i != 40]
    for i in items:
        assert [back.get_distance(i, j) for j in items] == [ref.get_distance(i, j) for j in items]
        for sk in (-1, n * 2):
            want = ref.get_nns_by_item(i, 10, sk, include_distances=True)
            assert back.get_nns_by_item(i, 10, sk, include_distances=True) == want


@needs_annoy
def test_tiny_index_below_K_round_trips(tmp_path: Path) -> None:
    # n_items <= K: the roots are leaves listing n_items id slots, padded with id 0 (a hole here)
    x = _data("euclidean", 6, 10, 9)
    ref = _annoy_built("euclidean", x, tmp_path / "a.ann", {0, 2}, 2)
    ours = AnnoyIndex(10, "euclidean")
    ours.load(tmp_path / "a.ann")
    q = x[1] + 0.1
    for sk in (-1, 1, 100):
        assert ours.get_nns_by_vector(q, 6, sk) == ref.get_nns_by_vector(q.tolist(), 6, sk)
    ours.export_annoy(tmp_path / "b.ann")
    back = annoy.AnnoyIndex(10, "euclidean")
    back.load(os.fspath(tmp_path / "b.ann"))
    assert back.get_nns_by_vector(q.tolist(), 6) == ref.get_nns_by_vector(q.tolist(), 6)


@needs_annoy
def test_annoy_reading_our_export_finds_each_item_at_distance_zero(tmp_path: Path) -> None:
    # the export wrote our own squared norms, an ulp off annoy's for ~40% of items, and annoy
    # then gave get_distance(i, i) ~ 5e-4; a 0 norm makes annoy compute it as it does itself
    X = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    ours = AnnoyIndex(16, "angular", seed=1)
    ours.add_items(X)
    ours.build(5)
    ours.export_annoy(tmp_path / "ours.ann")
    theirs = annoy.AnnoyIndex(16, "angular")
    theirs.load(str(tmp_path / "ours.ann"))
    assert [theirs.get_distance(i, i) for i in range(300)] == [0.0] * 300
    assert theirs.get_nns_by_item(204, 1, include_distances=True) == ([204], [0.0])
    # read back here and exported again, the items' nodes (norms included) stay byte for byte
    back = AnnoyIndex(16, "angular")
    back.load(tmp_path / "ours.ann")
    back.export_annoy(tmp_path / "again.ann")
    item_bytes = 300 * layout("angular", 16).size
    again = (tmp_path / "again.ann").read_bytes()[:item_bytes]
    assert again == (tmp_path / "ours.ann").read_bytes()[:item_bytes]


def test_a_hamming_ann_opened_with_a_smaller_f_is_refused(tmp_path: Path) -> None:
    # any f up to 64 has the same node size: items' bits beyond f then counted in distances
    X = np.random.default_rng(1).integers(0, 2, size=(120, 20)).astype(np.float32)
    index = AnnoyIndex(20, "hamming", seed=1)
    index.add_items(X)
    index.build(3)
    index.export_annoy(tmp_path / "h.ann")
    with pytest.raises(IndexFileError, match="sets a bit beyond f=1"):
        AnnoyIndex(1, "hamming").load(tmp_path / "h.ann")
    same = AnnoyIndex(20, "hamming")
    same.load(tmp_path / "h.ann")
    assert same.get_n_items() == 120
