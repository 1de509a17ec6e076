"""Bugs users reported against the core: one test (or a few) per report, on small seeded data."""

from __future__ import annotations

import os
import pickle
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import data_for

import annoy_adapters
from annoy_adapters import AnnoyIndex

N = 100
F = 4


def _saved(tmp_path: Path, metric: str = "euclidean", n: int = N) -> Path:
    index = AnnoyIndex(F, metric, seed=7)
    index.add_items(np.random.default_rng(0).random((n, F)))
    index.build(2)
    path = tmp_path / "p.annoy"
    index.save(path)
    return path


def _built(n: int = 1000, metric: str = "euclidean") -> AnnoyIndex:
    index = AnnoyIndex(F, metric, seed=3)
    index.add_items(data_for(metric, n, F))
    index.build(2)
    return index


# -- 1. a loaded index's unsaved labels and metadata survive pickling ----------------------------
@pytest.mark.parametrize("labels", [[f"x{i}" for i in range(N)], list(range(1000, 1000 + N))])
def test_pickle_of_loaded_index_keeps_labels_and_metadata_set_after_loading(
    tmp_path: Path, labels: list
) -> None:
    u = annoy_adapters.load(_saved(tmp_path))
    u.set_labels(labels)
    u.set_metadata({"v": 1})
    v = pickle.loads(pickle.dumps(u))
    assert v.labels.tolist() == labels and v.metadata == {"v": 1}
    assert v.path == u.path and not v._store.flags.owndata  # still served from the file
    assert v.ids_for([labels[5]]).tolist() == [5]
    w = pickle.loads(pickle.dumps(v))  # still unsaved in v: pickled again
    assert w.labels.tolist() == labels and w.metadata == {"v": 1}
    assert annoy_adapters.load(u.path).labels is None  # the file itself is unchanged


def test_pickle_of_unchanged_loaded_index_is_path_and_hash_only(tmp_path: Path) -> None:
    index = AnnoyIndex(F, "euclidean")
    index.add_items(np.random.default_rng(1).random((N, F)))
    index.set_labels([f"x{i}" for i in range(N)])
    index.set_metadata({"v": 1})
    index.build(2)
    index.save(tmp_path / "l.annoy")
    u = annoy_adapters.load(tmp_path / "l.annoy")
    assert u.labels[3] == "x3"  # decoding the file's labels is not a change
    state = u.__getstate__()
    assert "labels" not in state and "metadata" not in state and "store" not in state
    assert len(pickle.dumps(u)) < 1000
    u.set_metadata({"v": 2})
    state = u.__getstate__()
    assert state["metadata"] == {"v": 2} and "labels" not in state
    assert pickle.loads(pickle.dumps(u)).metadata == {"v": 2}


# -- 2. paths are absolute, so a pickle reopens after a chdir -----------------------------------
def test_pickled_loaded_index_reopens_after_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    index = AnnoyIndex(F, "euclidean")
    index.add_items(np.random.default_rng(2).random((N, F)))
    index.build(2)
    index.save("rel.annoy")
    want = os.fspath(tmp_path / "rel.annoy")
    assert index.path == want
    loaded = annoy_adapters.load("rel.annoy")
    assert loaded.path == want and os.path.isabs(loaded.path)
    blob = pickle.dumps(loaded)
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = pickle.loads(blob)
    assert again.path == want
    assert again.get_nns_by_item(0, 3) == index.get_nns_by_item(0, 3)


def test_annoy_file_and_on_disk_build_paths_are_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    index = _built(N)
    index.export_annoy("rel.ann")
    ann = AnnoyIndex(F, "euclidean")
    ann.load("rel.ann")
    assert ann.path == os.fspath(tmp_path / "rel.ann")
    disk = AnnoyIndex(F, "euclidean")
    disk.on_disk_build("disk.annoy")
    disk.add_items(np.ones((3, F)))
    monkeypatch.chdir(tmp_path / "elsewhere")
    disk.build(1)
    assert disk.path == os.fspath(tmp_path / "disk.annoy")
    assert pickle.loads(pickle.dumps(ann)).get_nns_by_item(0, 2) == ann.get_nns_by_item(0, 2)


# -- 3. values beyond int64 are refused, not wrapped ---------------------------------------------
@pytest.mark.parametrize(
    "labels",
    [np.array([2**63, 2**63 + 1], dtype=np.uint64), [2**63, 1], [-(2**63) - 1, 1]],
    ids=["uint64", "python-int", "python-negative"],
)
def test_labels_beyond_int64_are_refused(labels: object) -> None:
    index = AnnoyIndex(F, "euclidean")
    index.add_items(np.ones((2, F)))
    with pytest.raises(ValueError, match=r"'labels' must fit in int64 \(got -?\d{19}\)"):
        index.set_labels(labels)


def test_unsigned_labels_that_fit_still_work() -> None:
    index = AnnoyIndex(F, "euclidean")
    index.add_items(np.ones((2, F)))
    index.set_labels(np.array([2**63 - 1, 5], dtype=np.uint64))
    assert index.labels.dtype == np.int64 and index.labels.tolist() == [2**63 - 1, 5]
    assert index.ids_for([5]).tolist() == [1]


@pytest.mark.parametrize(
    "ids", [np.array([2**63], np.uint64), [2**64]], ids=["uint64", "python-int"]
)
def test_ids_beyond_int64_are_refused(ids: object) -> None:
    index = AnnoyIndex(F, "euclidean")
    with pytest.raises(ValueError, match=r"'ids' must fit in int64 \(got \d+\)"):
        index.add_items(np.ones((1, F)), ids=ids)
    index.add_items(np.ones((2, F)), ids=np.array([3, 1], np.uint64))
    assert index.get_n_items() == 4


def test_query_items_with_uint64_ids_beyond_int64_is_refused() -> None:
    index = _built(N)
    with pytest.raises(ValueError, match=r"'ids' must fit in int64 \(got 9223372036854775808\)"):
        index.query_items(np.array([2**63], np.uint64), 2)
    assert index.query_items(np.array([4], np.uint64), 1)[0].tolist() == [[4]]


# -- 4. a huge n costs what n = the number of items costs ---------------------------------------
def _peak_bytes(call: object) -> int:
    tracemalloc.start()
    try:
        call()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("method", ["get_nns_by_item", "get_nns_by_vector"])
def test_huge_n_in_list_apis_returns_every_item_without_allocating_n(method: str) -> None:
    index = _built(1000)
    arg = 0 if method == "get_nns_by_item" else index.get_item_vector(0)
    ids, d = getattr(index, method)(arg, 1000, include_distances=True)
    # n = 10**7: before the cap, (1, n) int64 and float32 arrays (120 MB) were allocated
    peak = _peak_bytes(lambda: getattr(index, method)(arg, 10**7, include_distances=True))
    assert peak < 20 << 20
    assert getattr(index, method)(arg, 2**31 - 1, include_distances=True) == (ids, d)
    assert sorted(ids) == list(range(1000))


def test_query_with_k_beyond_the_items_pads_as_documented() -> None:
    index = _built(50)
    x = data_for("euclidean", 3, F, seed=5)
    ids, d = index.query(x, 50)
    big_ids, big_d = index.query(x, 5000)
    assert big_ids.shape == big_d.shape == (3, 5000)
    assert (big_ids[:, :50] == ids).all() and (big_d[:, :50] == d).all()
    assert (big_ids[:, 50:] == -1).all() and np.isposinf(big_d[:, 50:]).all()
    item_ids, _ = index.query_items([1, 2], 5000)
    assert item_ids.shape == (2, 5000) and (item_ids[:, 50:] == -1).all()
    dot = _built(50, "dot")
    _, dot_d = dot.query(x, 60)
    assert np.isneginf(dot_d[:, 50:]).all()


# -- 5. error messages name the argument that was wrong ------------------------------------------
def test_get_nns_by_item_names_i_and_n() -> None:
    index = _built(N)
    with pytest.raises(IndexError, match=r"'i' is not an item: -1"):
        index.get_nns_by_item(-1, 3)
    with pytest.raises(ValueError, match=r"'n' must be a positive int \(got 0\)"):
        index.get_nns_by_item(0, 0)
    with pytest.raises(ValueError, match=r"'n' must be a positive int \(got -2\)"):
        index.get_nns_by_vector([0.0] * F, -2)


def test_add_item_with_a_matrix_names_vector() -> None:
    index = AnnoyIndex(F, "euclidean")
    with pytest.raises(ValueError, match=r"'vector' must be one vector of 4 floats.*\(2, 4\)"):
        index.add_item(0, np.ones((2, F)))
    assert index.get_n_items() == 0
    built = _built(N)
    with pytest.raises(ValueError, match=r"'vector' must be one vector of 4 floats.*\(2, 4\)"):
        built.get_nns_by_vector(np.ones((2, F)), 3)


def test_query_items_of_no_ids_returns_empty_arrays_like_query() -> None:
    index = _built(N)
    ids, d = index.query_items([], 3)
    want_ids, want_d = index.query(np.empty((0, F)), 3)
    assert ids.shape == d.shape == want_ids.shape == (0, 3)
    assert ids.dtype == want_ids.dtype == np.int64 and d.dtype == want_d.dtype == np.float32
    assert index.get_item_vectors([]).shape == (0, F)


def test_query_items_with_2d_ids_is_a_clear_error() -> None:
    index = _built(N)
    with pytest.raises(ValueError, match=r"'ids' must be a 1-D sequence .*\(2, 1\)"):
        index.query_items([[1], [2]], 3)


def test_ids_for_a_single_label_is_one_label() -> None:
    index = _built(N)
    index.set_labels([f"w{i}" for i in range(N)])
    assert index.ids_for("w7").tolist() == [7]
    assert index.ids_for(np.str_("w8")).tolist() == [8]
    with pytest.raises(KeyError, match="unknown label 'king'"):
        index.ids_for("king")
    assert index.ids_for(f"w{i}" for i in (1, 2)).tolist() == [1, 2]  # any iterable
    index.set_labels(list(range(10, 10 + N)))
    assert index.ids_for(12).tolist() == [2] and index.ids_for(np.int64(13)).tolist() == [3]


def test_float64_beyond_float32_is_named_without_a_warning() -> None:
    index = _built(N)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"'X' row 1 holds 1e\+39, outside the float32 range"):
            index.query([[0, 0, 0, 0], [1e39, 0, 0, 0]], 3)
        with pytest.raises(ValueError, match=r"'X' must be finite: row 0 holds NaN or inf"):
            index.query([[np.inf, 0, 0, 0]], 3)


# -- 6. vectors too large for float32 squared distances are refused ------------------------------
@pytest.mark.parametrize("metric", ["angular", "euclidean", "dot"])
def test_vectors_whose_squared_norm_overflows_are_refused(metric: str) -> None:
    x = np.random.default_rng(4).random((6, F))
    x[3] *= 1e20
    index = AnnoyIndex(F, metric)
    with pytest.raises(ValueError, match=r"'X' row 3 is too large: its norm .*overflow float32"):
        index.add_items(x)
    with pytest.raises(ValueError, match=r"'vector' row 0 is too large"):
        index.add_item(0, x[3])
    assert index.get_n_items() == 0
    index.add_items(x[:3] * 1e18)  # large but usable: distances stay finite
    index.build(2)
    with pytest.raises(ValueError, match=r"'X' row 3 is too large"):
        index.query(x, 2)
    with pytest.raises(ValueError, match=r"'vector' row 0 is too large"):
        index.get_nns_by_vector(x[3], 2)
    ids, d = index.query(x[:3] * 1e18, 3)
    assert (ids >= 0).all() and np.isfinite(d).all()


def test_manhattan_and_hamming_keep_large_values() -> None:
    x = np.full((2, F), 1e20)
    index = AnnoyIndex(F, "manhattan")
    index.add_items(x)
    assert index.get_n_items() == 2
    hamming = AnnoyIndex(F, "hamming")
    hamming.add_items(x)
    assert hamming.get_n_items() == 2


@pytest.mark.parametrize("content", [b"\0" * 100, b"\1" * 4096], ids=["zeros", "ones"])
def test_a_failed_ann_load_keeps_the_index(tmp_path: Path, content: bytes) -> None:
    # load() used to unload first, so a file that is not a valid .ann wiped an unsaved index
    X = np.random.default_rng(0).normal(size=(N, 8)).astype(np.float32)
    index = AnnoyIndex(8, "euclidean", seed=1)
    index.add_items(X)
    index.build(5)
    before = index.query(X[:5], 3)
    bad = tmp_path / "other.ann"
    bad.write_bytes(content)
    with pytest.raises(annoy_adapters.IndexFileError):
        index.load(bad)
    assert index.built and index.get_n_items() == N
    np.testing.assert_array_equal(index.query(X[:5], 3)[0], before[0])


def test_a_failed_ann_load_keeps_the_mapped_file(tmp_path: Path) -> None:
    index = annoy_adapters.load(_saved(tmp_path))
    bad = tmp_path / "other.ann"
    bad.write_bytes(b"\0" * 100)
    with pytest.raises(annoy_adapters.IndexFileError):
        index.load(bad)
    assert index.get_nns_by_item(0, 3) == annoy_adapters.load(_saved(tmp_path)).get_nns_by_item(
        0, 3
    )


@pytest.mark.parametrize("metric", ["manhattan", "euclidean"])
@pytest.mark.parametrize("built", [True, False])
def test_a_copy_does_not_share_the_items(metric: str, built: bool) -> None:
    import copy

    a = AnnoyIndex(3, metric, seed=1)
    a.add_items(np.eye(3))
    if built:
        a.build(2)
    b = copy.copy(a)
    if built:
        b.unbuild()
    b.add_item(1, [9, 9, 9])
    assert a.get_item_vector(1) == [0.0, 1.0, 0.0]
    assert b.get_item_vector(1) == [9.0, 9.0, 9.0]


def test_overwriting_an_item_keeps_the_labels() -> None:
    a = AnnoyIndex(3, "euclidean")
    a.add_items(np.eye(3))
    a.set_labels(["x", "y", "z"])
    a.add_item(1, [0, 2, 0])  # labels used to be dropped silently here
    assert a.labels.tolist() == ["x", "y", "z"]


def test_a_new_id_beyond_the_labels_raises_and_changes_nothing() -> None:
    a = AnnoyIndex(3, "euclidean")
    a.add_items(np.eye(3))
    a.set_labels(["x", "y", "z"])
    with pytest.raises(ValueError, match=r"'ids' holds 4, beyond the ids 0..2 the labels"):
        a.add_item(4, [1, 1, 1])
    assert a.get_n_items() == 3 and a.labels.tolist() == ["x", "y", "z"]
    a.set_labels(None)  # the way out the message names
    a.add_item(3, [1, 1, 1])
    a.set_labels(["x", "y", "z", "w"])
    a.build(2)
    assert a.ids_for("w").tolist() == [3]


def test_set_labels_none_survives_a_pickle_of_a_loaded_index(tmp_path: Path) -> None:
    index = AnnoyIndex(F, "euclidean", seed=7)
    index.add_items(np.random.default_rng(0).random((N, F)))
    index.set_labels([f"r{i}" for i in range(N)])
    index.build(2)
    index.save(tmp_path / "l.annoy")
    loaded = annoy_adapters.load(tmp_path / "l.annoy")
    loaded.set_labels(None)
    assert pickle.loads(pickle.dumps(loaded)).labels is None


def test_ids_for_one_label_of_another_type_is_an_unknown_label() -> None:
    a = AnnoyIndex(3, "euclidean")
    a.add_items(np.eye(3))
    a.set_labels(["x", "y", "z"])
    a.build(2)
    with pytest.raises(KeyError, match=r"unknown label 2\.5"):
        a.ids_for(2.5)  # was "TypeError: 'float' object is not iterable"


def test_leaf_of_rounds_as_a_float16_index_stores() -> None:
    # leaf_of read float32 rows unrounded, so a stored item could "fall" in another leaf
    X = np.random.default_rng(3).normal(size=(2000, 8)).astype(np.float32)
    index = AnnoyIndex(8, "euclidean", seed=1, vector_dtype="float16")
    index.add_items(X)
    index.build(5, cells=False)
    forest = index._forest  # the leaves' items, to see where each item is stored
    for tree in range(5):
        leaves = index.leaf_of(X, tree)
        lo, hi = forest.leaf_ptr[leaves], forest.leaf_ptr[leaves + 1]
        misplaced = [i for i in range(len(X)) if i not in forest.leaf_items[lo[i] : hi[i]]]
        assert misplaced == [], f"tree {tree}"


def test_index_built_on_disk_unbuilds_takes_items_and_builds_again(tmp_path: Path) -> None:
    # annoy allows on_disk_build -> build -> unbuild -> add -> build; ours refused the unbuild
    X = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    path = tmp_path / "disk.annoy"
    index = AnnoyIndex(5, "euclidean", seed=2)
    index.on_disk_build(path)
    index.add_items(X[:50])
    index.build(3)
    index.set_labels([f"w{i}" for i in range(50)])
    index.set_metadata({"corpus": "toy"})
    assert index.unbuild() is True
    assert not index.built and index.get_n_items() == 50 and index.labels[49] == "w49"
    assert os.path.exists(str(path) + ".items")  # the items wait beside the file, not in memory
    index.set_labels(None)  # new ids beyond the labels need them dropped first
    for i in range(50, 60):
        index.add_item(i, X[i])
    index.build(3)
    assert not os.path.exists(str(path) + ".items")
    again = annoy_adapters.load(path)
    assert again.get_n_items() == 60 and again.metadata == {"corpus": "toy"}
    exact = np.argsort(((X - X[55]) ** 2).sum(axis=1))[:3].tolist()
    assert again.get_nns_by_item(55, 3, search_k=10**6) == exact
    with pytest.raises(RuntimeError, match="loaded index"):  # an index only loaded still refuses
        again.unbuild()


def test_a_file_load_cannot_use_is_an_oserror_as_in_annoy(tmp_path: Path) -> None:
    # annoy's load raises OSError, so code written for it catches that; ours raised ValueError only
    junk = tmp_path / "junk.ann"
    junk.write_bytes(b"\1" * 1001)
    with pytest.raises(OSError, match=r"junk\.ann"):
        AnnoyIndex(5, "angular").load(junk)
    other_f = _saved(tmp_path)
    with pytest.raises(OSError, match="f=4"):
        AnnoyIndex(5, "euclidean").load(other_f)
    with pytest.raises(ValueError):  # still a ValueError, as documented before
        AnnoyIndex(5, "angular").load(junk)


def test_a_huge_id_says_ids_index_rows() -> None:
    # was "Unable to allocate 16.0 TiB" with no word of why
    index = AnnoyIndex(4, "euclidean")
    with pytest.raises(MemoryError, match=r"id 1099511627776 needs a store .*set_labels"):
        index.add_item(2**40, [1.0, 2.0, 3.0, 4.0])
    assert index.get_n_items() == 0


def _address_space() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_a_huge_n_jobs_costs_no_more_than_the_work() -> None:
    # a list of n_jobs shares was made before forking: n_jobs=10**11 ate 23 GB and was killed.
    # 30,000 items x 10 trees take the forked path; the address space is capped 1 GiB above
    # what the process maps, so the old list fails fast with MemoryError instead of swapping
    import resource

    X = np.random.default_rng(0).normal(size=(30_000, 8)).astype(np.float32)
    index = AnnoyIndex(8, "euclidean", seed=5)
    index.add_items(X)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + 2**30, hard))
    try:
        index.build(10, n_jobs=10**11, cells=False)
        ids, _ = index.query(X[:50], 5, n_jobs=10**11)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    same = AnnoyIndex(8, "euclidean", seed=5)
    same.add_items(X)
    same.build(10, n_jobs=1, cells=False)
    np.testing.assert_array_equal(ids, same.query(X[:50], 5)[0])


def test_row_error_crosses_processes() -> None:
    # it could not be unpickled (its __init__ takes four arguments), so a Dask worker's
    # "'X' holds NaN" came back as a wrapped exception
    index = AnnoyIndex(3, "euclidean")
    with pytest.raises(annoy_adapters.RowError) as caught:
        index.add_items(np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, 0.0]]))
    back = pickle.loads(pickle.dumps(caught.value))
    assert type(back) is annoy_adapters.RowError and str(back) == str(caught.value)
    assert (back.argument, back.row, back.reason) == (
        caught.value.argument,
        caught.value.row,
        caught.value.reason,
    )


def test_an_index_built_on_disk_still_unbuilds_after_saving_to_its_file(tmp_path: Path) -> None:
    # save() to on_disk_build's own file forgot where the index came from: unbuild refused
    path = tmp_path / "disk.annoy"
    index = AnnoyIndex(4, "euclidean", seed=2)
    index.on_disk_build(path)
    index.add_items(np.random.default_rng(0).random((30, 4)))
    index.build(2)
    index.set_metadata({"v": 2})
    index.save(path)
    assert index.unbuild() is True and index.metadata == {"v": 2}


def test_an_error_reading_the_index_during_an_export_keeps_its_message(tmp_path: Path) -> None:
    # IndexFileError is also an OSError: the atomic writer re-labelled it with the output path
    # and showed a tuple, "(None, '<path>: corrupted ...', 'out.ann')"
    index = AnnoyIndex(4, "euclidean", seed=2)
    index.add_items(np.random.default_rng(0).random((3000, 4)))
    index.build(2)
    assert index.get_n_cells() > 0
    index.save(tmp_path / "c.annoy")
    loaded = annoy_adapters.load(tmp_path / "c.annoy")
    rows = loaded._mapped.fields["arrays"]["cell_rows"]
    loaded.unload()
    raw = bytearray((tmp_path / "c.annoy").read_bytes())
    raw[rows["offset"] : rows["offset"] + 8] = np.array([1, 1], "<i4").tobytes()
    (tmp_path / "c.annoy").write_bytes(bytes(raw))
    with pytest.raises(annoy_adapters.IndexFileError) as caught:
        annoy_adapters.load(tmp_path / "c.annoy").export_annoy(tmp_path / "out.ann")
    assert str(caught.value).startswith(str(tmp_path / "c.annoy")) and "None" not in str(
        caught.value
    )
