"""The native index file: round trips, golden v1 files, atomic saves, pickling, header checks."""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from annoy_adapters import AnnoyIndex, IndexFileError, load
from annoy_adapters.core import _fileformat as ff
from annoy_adapters.core import file_info
from annoy_adapters.core._atomic import umask

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "native_golden.json").read_text())
METRICS = ("angular", "euclidean", "manhattan", "dot", "hamming")


def _data(metric: str, n: int, f: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, f)).astype(np.float32)
    return (x > 0).astype(np.float32) if metric == "hamming" else x


def _built(metric: str, n: int = 300, f: int = 7, trees: int = 4) -> AnnoyIndex:
    index = AnnoyIndex(f, metric, leaf_size=8, seed=3)
    ids = np.setdiff1d(np.arange(n), [4, 40])  # with holes
    index.add_items(_data(metric, n, f, 0)[ids], ids=ids)
    index.build(trees)
    index.set_labels([f"item-{i}" for i in range(n)])
    index.set_metadata({"adapter": "test", "test": {"metric": metric}})
    return index


def _answers(index: AnnoyIndex, q: np.ndarray) -> list[np.ndarray]:
    return [a for sk in (-1, 5, 40) for a in index.query(q, 6, search_k=sk)]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


# -- round trips ------------------------------------------------------------------------------
CHILD = """
import sys, numpy as np
from annoy_adapters import load
index = load(sys.argv[1])
q = np.load(sys.argv[2])
out = [a for sk in (-1, 5, 40) for a in index.query(q, 6, search_k=sk)]
np.savez(sys.argv[3], *out, labels=np.array(index.labels.tolist()))
"""


@pytest.mark.parametrize("metric", METRICS)
def test_round_trip_save_load_pickle_and_second_process(tmp_path: Path, metric: str) -> None:
    index = _built(metric)
    q = _data(metric, 12, 7, 1)
    before = _answers(index, q)
    path = tmp_path / "i.annoy"
    assert index.save(path) is True
    assert index.path == os.fspath(path)  # after save, served from the file (as annoy)
    _same(_answers(index, q), before)
    loaded = load(path)
    _same(_answers(loaded, q), before)
    assert loaded.labels.tolist() == [f"item-{i}" for i in range(300)]
    assert loaded.metadata == {"adapter": "test", "test": {"metric": metric}}
    _same(_answers(pickle.loads(pickle.dumps(loaded)), q), before)
    np.save(tmp_path / "q.npy", q)
    subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            os.fspath(path),
            os.fspath(tmp_path / "q.npy"),
            os.fspath(tmp_path / "out.npz"),
        ],
        check=True,
        timeout=120,
    )
    with np.load(tmp_path / "out.npz") as out:
        _same([out[f"arr_{i}"] for i in range(len(before))], before)
        assert out["labels"].tolist() == loaded.labels.tolist()


def test_load_needs_only_the_path_and_takes_everything_from_the_file(tmp_path: Path) -> None:
    index = AnnoyIndex(5, "manhattan", leaf_size=11, seed=99)
    index.add_items(_data("manhattan", 50, 5, 2))
    index.build(3)
    index.save(tmp_path / "m.annoy")
    got = load(tmp_path / "m.annoy")
    assert (got.f, got.metric, got.leaf_size, got.seed) == (5, "manhattan", 11, 99)
    assert got.get_n_items() == 50 and got.get_n_trees() == 3 and got.built
    info = file_info(tmp_path / "m.annoy")
    assert info["format_version"] == 3 and info["f"] == 5 and info["metric"] == "manhattan"


@pytest.mark.parametrize(("f", "metric"), [(6, "euclidean"), (7, "angular"), (6, "dot")])
def test_load_with_disagreeing_f_or_metric_names_both(tmp_path: Path, f: int, metric: str) -> None:
    index = AnnoyIndex(7, "euclidean")
    index.add_items(_data("euclidean", 20, 7, 3))
    index.build(2)
    index.save(tmp_path / "e.annoy")
    other = AnnoyIndex(f, metric)
    with pytest.raises(ValueError, match=r"f=7, metric='euclidean'") as info:
        other.load(tmp_path / "e.annoy")
    assert f"f={f}, metric={metric!r}" in str(info.value)
    assert not other.built


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.annoy")
    with pytest.raises(FileNotFoundError):
        AnnoyIndex(3).load(tmp_path / "nope.annoy")


def test_unload_and_prefault(tmp_path: Path) -> None:
    index = _built("angular")
    index.save(tmp_path / "a.annoy", prefault=True)
    again = AnnoyIndex(7, "angular")
    again.load(tmp_path / "a.annoy", prefault=True)
    assert again.get_nns_by_item(0, 3) == index.get_nns_by_item(0, 3)
    again.unload()
    assert again.path is None and not again.built and again.get_n_items() == 0


# -- golden files of format version 1 --------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
def test_golden_v1_files_still_load_and_answer(metric: str) -> None:
    g = GOLDEN[metric]
    index = load(DATA / g["file"])
    assert (index.f, index.metric) == (g["f"], metric)
    assert index.get_n_items() == g["n_items"] and index.get_n_trees() == g["n_trees"]
    assert index.labels.tolist() == g["labels"]
    assert index.metadata == g["metadata"]
    ids = [i for i in range(g["n_items"]) if i not in g["holes"]]
    np.testing.assert_array_equal(
        index.get_item_vectors(ids), np.asarray(g["vectors"], np.float32)[ids]
    )
    q = np.asarray(g["queries"], np.float32)
    for r in g["results"]:
        got, dist = index.query(q, 5, search_k=r["search_k"])
        np.testing.assert_array_equal(got, r["ids"])
        np.testing.assert_allclose(dist, r["dist"], rtol=1e-6)
    label = g["labels"][ids[0]]
    assert index.ids_for([label]).tolist() == [ids[0]]
    assert file_info(DATA / g["file"])["format_version"] == 1


def test_golden_labels_cover_both_kinds() -> None:
    kinds = {type(GOLDEN[m]["labels"][0]) for m in METRICS}
    assert kinds == {str, int}
    assert any("ö" in lab for lab in GOLDEN["angular"]["labels"])


# -- atomic saves ------------------------------------------------------------------------------
def test_save_leaves_no_temporary_file_and_keeps_old_readers(tmp_path: Path) -> None:
    path = tmp_path / "x.annoy"
    old = _built("euclidean", n=200)
    old.save(path)
    reader = load(path)
    q = _data("euclidean", 5, 7, 8)
    old_answers = _answers(reader, q)
    new = _built("euclidean", n=400, trees=6)
    new.save(path)  # replaces the file the reader has mapped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.annoy"]
    _same(_answers(reader, q), old_answers)  # the old mapping is still intact
    fresh = load(path)
    assert fresh.get_n_items() == 400 and fresh.get_n_trees() == 6
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask()


def test_failed_save_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.annoy"
    _built("dot", n=100).save(path)
    before = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ff.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        _built("dot", n=150).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.annoy"]


def test_arrays_are_aligned_and_served_in_place(tmp_path: Path) -> None:
    index = _built("angular")
    index.save(tmp_path / "a.annoy")
    loaded = load(tmp_path / "a.annoy")
    table = loaded._mapped.fields["arrays"]
    assert all(e["offset"] % 64 == 0 for e in table.values())
    store = loaded._store
    assert not store.flags.owndata and not store.flags.writeable  # a view of the map


# -- pickling ---------------------------------------------------------------------------------
def test_file_backed_pickle_is_small_and_reopens_mapped(tmp_path: Path) -> None:
    index = _built("angular", n=2000)
    in_memory = pickle.dumps(index)
    assert len(in_memory) > 2000 * 7 * 4  # content: at least the vectors
    copy = pickle.loads(in_memory)
    assert copy.path is None and copy.labels.tolist() == index.labels.tolist()
    index.save(tmp_path / "a.annoy")
    blob = pickle.dumps(index)
    assert len(blob) < 1000  # path and checksum
    again = pickle.loads(blob)
    assert again.path == os.fspath(tmp_path / "a.annoy")
    assert not again._store.flags.owndata
    assert again.get_nns_by_item(3, 5) == index.get_nns_by_item(3, 5)


def test_pickle_of_a_replaced_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.annoy"
    _built("euclidean", n=100).save(path)
    blob = pickle.dumps(load(path))
    _built("euclidean", n=120).save(path)
    with pytest.raises(IndexFileError, match="changed"):
        pickle.loads(blob)


# -- header checks ------------------------------------------------------------------------------
def _header(path: Path) -> tuple[bytes, tuple]:
    raw = path.read_bytes()
    return raw, ff.HEADER.unpack(raw[: ff.HEADER.size])


def test_foreign_newer_and_truncated_files_are_index_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.annoy"
    _built("angular", n=100).save(path)
    raw, (magic, _version, res, moff, mlen, crc) = _header(path)
    cases = {
        "magic": b"NOTANIDX" + raw[8:],
        "version": ff.HEADER.pack(magic, 5, res, moff, mlen, crc) + raw[ff.HEADER.size :],
        "truncated": raw[: len(raw) // 2],
        "short": raw[:10],
        "manifest": raw[:70] + bytes([raw[70] ^ 1]) + raw[71:],
    }
    messages = {
        "magic": "not an annoy-adapters index",
        "version": "unsupported format version 5",
        "truncated": "outside the file",
        "short": "truncated",
        "manifest": "checksum",
    }
    for name, data in cases.items():
        bad = tmp_path / f"{name}.annoy"
        bad.write_bytes(data)
        with pytest.raises(IndexFileError, match=messages[name]):
            load(bad)


def _rewrite_manifest(path: Path, edit) -> None:
    """A hostile file: edit the manifest and fix its checksum (the CRC is no defence)."""
    raw, (magic, version, res, moff, mlen, _) = _header(path)
    fields = json.loads(raw[moff : moff + mlen])
    edit(fields)
    text = json.dumps(fields).encode()
    assert len(text) <= 1024 + mlen  # the writer leaves room after the manifest
    head = ff.HEADER.pack(magic, version, res, moff, len(text), zlib.crc32(text))
    body = raw[ff.HEADER.size : moff] + text
    path.write_bytes(head + body + raw[len(head) + len(body) :])


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m["arrays"]["children"].update(offset=10**15), "outside the file"),
        (lambda m: m["arrays"]["vectors"].update(shape=[10**9, 7]), "vectors"),
        (lambda m: m["arrays"]["roots"].update(dtype="<f8"), "roots"),
        (lambda m: m["arrays"]["offsets"].update(shape=[], nbytes=4), "offsets"),
        (lambda m: m["arrays"]["leaf_ptr"].update(shape=[], nbytes=8), "leaf"),
        (lambda m: m["arrays"]["leaf_items"].update(shape=[], nbytes=8), "leaf"),
        (lambda m: m.update(metric=["angular"]), "metric"),
        (lambda m: m.update(n_trees=0), "n_trees"),
        (lambda m: m.update(f=-1), "'f'"),
        (lambda m: m.update(labels="pickle"), "labels"),
        (lambda m: m.update(metadata=[1, 2]), "metadata"),
        (lambda m: m["arrays"].pop("leaf_items"), "leaf items"),
        # an empty array claiming 2**62 columns made NumPy raise "array is too big"
        (lambda m: m["arrays"]["offsets"].update(shape=[0, 2**62], nbytes=0), "offsets"),
        (lambda m: m["arrays"]["vectors"].update(shape=[], nbytes=4), "vectors"),  # 0-d
        # one array pointed at another's bytes loaded and answered wrongly
        (lambda m: m["arrays"]["sqnorm"].update(offset=m["arrays"]["roots"]["offset"]), "overlap"),
    ],
)
def test_hostile_manifests_are_index_file_errors(tmp_path: Path, edit, match: str) -> None:
    path = tmp_path / "a.annoy"
    _built("angular", n=100).save(path)
    _rewrite_manifest(path, edit)
    with pytest.raises(IndexFileError, match=match):
        load(path)


def _patch_array(path: Path, name: str, values: np.ndarray, at: int = 0) -> None:
    raw, (_, _, _, moff, mlen, _) = _header(path)
    e = json.loads(raw[moff : moff + mlen])["arrays"][name]
    data = bytearray(raw)
    b = np.ascontiguousarray(values, dtype=e["dtype"]).tobytes()
    pos = e["offset"] + at * np.dtype(e["dtype"]).itemsize
    data[pos : pos + len(b)] = b
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "values", "match"),
    [
        ("children", np.array([10**9]), "out of range"),
        ("children", np.array([-(10**9)]), "out of range"),
        ("children", np.array([0, 0]), "back up"),  # a cycle: split 0 is its own child
        ("roots", np.array([-(2**30)]), "out of range"),
        ("leaf_ptr", np.array([5]), "leaf ranges"),
        ("leaf_items", np.array([10**9]), "leaf items"),
        ("present", np.array([7]), "present"),
        # split 0's children both split 1: a graph whose paths double at every shared split
        # (searches hung, exports asked for GiBs)
        ("children", np.array([1, 1]), "share or revisit"),
        ("present", np.array([0]), "no item"),  # a hole in a leaf was returned as an answer
        ("sqnorm", np.array([np.nan]), "squared norms"),  # one NaN emptied every answer
    ],
)
def test_hostile_arrays_are_index_file_errors(
    tmp_path: Path, name: str, values: np.ndarray, match: str
) -> None:
    path = tmp_path / "a.annoy"
    _built("euclidean", n=100).save(path)
    _patch_array(path, name, values)
    # loading is O(1): the tree pointers are checked once, before the forest is first used
    with pytest.raises(IndexFileError, match=match):
        load(path).get_nns_by_item(1, 3)


def test_pointer_checks_run_once_before_first_use(tmp_path: Path) -> None:
    path = tmp_path / "a.annoy"
    _built("euclidean", n=100).save(path)
    _patch_array(path, "children", np.array([10**9]))
    index = load(path)  # O(1): the bad pointer is not looked at yet
    for use in (
        lambda: index.get_nns_by_vector(np.zeros(7), 3),
        lambda: index.query(np.zeros((2, 7)), 3),
        lambda: index.leaf_of(np.zeros((1, 7))),
        lambda: index.save(tmp_path / "copy.annoy"),
    ):
        with pytest.raises(IndexFileError, match="out of range"):
            use()


def test_header_is_the_documented_struct() -> None:
    assert ff.HEADER.size == 64 and ff.HEADER.format == "<8sIIQQI28x"
    assert struct.calcsize("<8sIIQQI28x") == 64


@pytest.mark.parametrize("kind", ["int", "str"])
def test_a_file_whose_labels_repeat_is_corrupted(tmp_path: Path, kind: str) -> None:
    # ids_for answered one id for two items, and save wrote the duplicates on
    index = _built("euclidean", n=100)
    index.set_labels(list(range(100)) if kind == "int" else [f"w{i:02d}" for i in range(100)])
    path = tmp_path / "a.annoy"
    index.save(path)
    if kind == "int":
        _patch_array(path, "labels_int", np.array([0]), at=1)
    else:
        _patch_array(path, "labels_utf8", np.frombuffer(b"w00", np.uint8), at=3)
    loaded = load(path)
    for use in (lambda: loaded.labels, lambda: loaded.ids_for([5]), lambda: loaded.save(path)):
        with pytest.raises(IndexFileError, match=r"a\.annoy: corrupted labels \(a label repeats"):
            use()


def test_a_save_removes_the_temporary_files_a_killed_writer_left(tmp_path: Path) -> None:
    # kill -9 during save left full-size temporary files that nothing ever removed; a writer
    # holds a lock on its file, which the kernel drops when the writer dies
    import fcntl

    from annoy_adapters.core._atomic import STALE_SECONDS, _prefix

    path = tmp_path / "a.annoy"
    _built("euclidean", n=100).save(path)
    old = os.path.getmtime(path) - 2 * STALE_SECONDS
    dead = tmp_path / f"{_prefix(path.name)}abc.tmp"  # nobody holds it
    dead.write_bytes(b"\0" * 1000)
    held = tmp_path / f"{_prefix(path.name)}xyz.tmp"  # a save under way (any PID namespace)
    held.write_bytes(b"\0" * 1000)
    fresh = tmp_path / f"{_prefix(path.name)}new.tmp"  # just created, not locked yet
    fresh.write_bytes(b"")
    other = tmp_path / ".b.annoy.somehost.xyz.tmp"  # another file's
    other.write_bytes(b"")
    for p in (dead, held, other):
        os.utime(p, (old, old))
    with open(held, "rb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        _built("euclidean", n=100).save(path)
    assert not dead.exists() and held.exists() and fresh.exists() and other.exists()


def test_a_bool_seed_in_a_manifest_is_not_a_seed(tmp_path: Path) -> None:
    # "seed": true loaded as seed True, and the index then failed to unpickle
    path = tmp_path / "a.annoy"
    _built("angular", n=100).save(path)
    _rewrite_manifest(path, lambda m: m.update(seed=True))
    loaded = load(path)
    assert type(loaded.seed) is int
    assert pickle.loads(pickle.dumps(loaded)).seed == loaded.seed


def test_a_native_hamming_item_with_a_bit_beyond_f_is_corrupted(tmp_path: Path) -> None:
    # bits beyond f were counted in distances (a flipped bit, or a file relabelled smaller f)
    path = tmp_path / "h.annoy"
    x = np.random.default_rng(0).integers(0, 2, size=(100, 70)).astype(np.float32)
    index = AnnoyIndex(70, "hamming", seed=1)
    index.add_items(x)
    index.build(2)
    index.save(path)
    _patch_array(path, "vectors", np.array([np.uint64(1) << np.uint64(63)]), at=1)  # bit 127
    with pytest.raises(IndexFileError, match="beyond f=70"):
        load(path).query_items([0], 3)
