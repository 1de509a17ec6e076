"""One index object shared by threads while another thread swaps, rebuilds or relabels it;
copies of file-backed indexes; memory of an on_disk_build.  Small seeded data, seconds at most."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import annoy_adapters
from annoy_adapters import AnnoyIndex

F = 8


def _data(seed: int, n: int = 2000) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, F)).astype(np.float32)


def _built(
    x: np.ndarray, metric: str = "euclidean", *, seed: int = 1, trees: int = 2, cells: bool = True
) -> AnnoyIndex:
    index = AnnoyIndex(F, metric, seed=seed)
    index.add_items(x)
    index.build(trees, cells=cells)
    return index


def _in_threads(work, stop: threading.Event, n: int = 3) -> list[BaseException]:
    errors: list[BaseException] = []

    def run() -> None:
        while not stop.is_set():
            try:
                work()
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, errors


def test_unloading_an_ann_index_keeps_the_pages_a_query_still_reads(tmp_path: Path) -> None:
    # views of an .ann map did not pin it: unload() unmapped pages still read (a segfault),
    # so this runs in a child process that would die rather than fail
    script = f"""
import numpy as np, annoy_adapters as aa
x = np.random.default_rng(0).normal(size=(500, {F})).astype(np.float32)
a = aa.AnnoyIndex({F}, "euclidean", seed=1); a.add_items(x); a.build(3)
a.export_annoy({str(tmp_path / "a.ann")!r})
b = aa.AnnoyIndex({F}, "euclidean"); b.load({str(tmp_path / "a.ann")!r})
held = b._store  # what a running query holds
b.unload()
print(float(np.abs(held).sum()) > 0)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-500:]


def test_reloading_an_ann_file_never_shows_queries_an_empty_index(tmp_path: Path) -> None:
    # load() of a .ann reset the index first: pollers saw 0 trees and 0 items
    x = _data(0)
    built = _built(x, "angular", trees=3)
    built.export_annoy(tmp_path / "a.ann")
    index = AnnoyIndex(F, "angular")
    index.load(tmp_path / "a.ann")
    seen: list[tuple[int, int]] = []
    stop = threading.Event()
    threads, errors = _in_threads(
        lambda: seen.append((index.get_n_trees(), index.get_n_items())), stop, 1
    )
    for _ in range(25):
        index.load(tmp_path / "a.ann")
    stop.set()
    for t in threads:
        t.join()
    assert not errors and seen and set(seen) == {(3, len(x))}


def test_queries_during_a_swap_answer_from_one_index_or_the_other(tmp_path: Path) -> None:
    # load() of another file swapped attributes one by one: searches mixed two indexes
    x = _data(1)
    for name, seed in (("a", 1), ("b", 2)):
        index = AnnoyIndex(F, "euclidean", seed=seed)
        index.add_items(x[::-1] if name == "b" else x)
        index.build(2)
        index.save(tmp_path / f"{name}.annoy")
    q = _data(9, 40)
    answers = {
        name: annoy_adapters.load(tmp_path / f"{name}.annoy").query(q, 5)[0] for name in "ab"
    }
    served = annoy_adapters.load(tmp_path / "a.annoy")
    wrong: list[np.ndarray] = []

    def ask() -> None:
        ids = served.query(q, 5)[0]
        if not any(np.array_equal(ids, a) for a in answers.values()):
            wrong.append(ids)

    stop = threading.Event()
    threads, errors = _in_threads(ask, stop)
    for i in range(80):
        served.load(tmp_path / f"{'ba'[i % 2]}.annoy")
    stop.set()
    for t in threads:
        t.join()
    assert not errors and not wrong


def test_queries_during_unbuild_and_build_answer_or_say_not_built() -> None:
    # build() set the forest before the cells and norms: searches met None (TypeError)
    x = _data(2)
    index = _built(x, seed=4, trees=3)
    q = x[:30]
    expected = index.query(q, 5)[0]
    wrong: list[np.ndarray] = []

    def ask() -> None:
        try:
            ids = index.query(q, 5)[0]
        except RuntimeError as exc:
            assert "not built" in str(exc)
            time.sleep(0.001)  # let the rebuild have the GIL
            return
        if not np.array_equal(ids, expected):
            wrong.append(ids)

    stop = threading.Event()
    threads, errors = _in_threads(ask, stop)
    for _ in range(6):
        index.unbuild()
        index.build(3)
    stop.set()
    for t in threads:
        t.join()
    assert not errors and not wrong


@pytest.mark.parametrize("reader", ["labels", "ids_for"])
def test_set_labels_is_not_undone_by_a_reader_decoding_the_files(
    tmp_path: Path, reader: str
) -> None:
    # a reader decoding the file's labels stored them (or their lookup) after set_labels()
    n = 200_000
    index = AnnoyIndex(2, "euclidean", seed=1)
    index.add_items(np.random.default_rng(0).normal(size=(n, 2)))
    index.set_labels([f"old{i}" for i in range(n)])
    index.build(1, cells=False)
    index.save(tmp_path / "l.annoy")
    mine = [f"new{i}" for i in range(n)]
    for _ in range(3):
        loaded = annoy_adapters.load(tmp_path / "l.annoy")
        read = "labels" if reader == "labels" else "ids_for"
        t = threading.Thread(
            target=(lambda i=loaded: i.labels) if read == "labels" else loaded.ids_for,
            args=() if read == "labels" else ("old5",),
        )
        t.start()
        loaded.set_labels(mine)
        t.join()
        assert loaded.labels[5] == "new5"
        assert loaded.ids_for("new5").tolist() == [5]


def test_copies_of_a_loaded_index_outlive_its_file(tmp_path: Path) -> None:
    # copy.copy reopened the path like a pickle: refused once the file was replaced or gone
    x = _data(3)
    index = AnnoyIndex(F, "euclidean", seed=1)
    index.add_items(x)
    index.set_labels([f"w{i}" for i in range(len(x))])
    index.build(2)
    path = tmp_path / "x.annoy"
    index.save(path)
    served = annoy_adapters.load(path)
    expected = served.query(x[:5], 3)[0]
    other = _built(x[::-1], seed=2)
    other.save(path)  # replaced
    replaced = copy.copy(served)
    os.remove(path)
    gone = copy.deepcopy(served)
    for c in (replaced, gone):
        np.testing.assert_array_equal(c.query(x[:5], 3)[0], expected)
    gone.set_labels(None)  # independent in what can change in memory
    assert served.labels[0] == "w0" and gone.labels is None


def test_an_on_disk_build_keeps_no_copy_of_the_items_in_memory(tmp_path: Path) -> None:
    # angular and dot builds cached unit rows (a float32 copy of every item) even on disk
    x = np.random.default_rng(0).normal(size=(40_000, 64)).astype(np.float32)
    for metric in ("angular", "dot"):
        index = AnnoyIndex(64, metric, seed=1)
        index.on_disk_build(tmp_path / f"{metric}.annoy")
        index.add_items(x)
        tracemalloc.start()
        try:
            index.build(2, n_jobs=1)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2 * x.nbytes, (metric, peak)


def test_two_threads_loading_while_one_searches_never_mix_states(tmp_path: Path) -> None:
    # the swap count assumed one writer: two loaders at once let a search accept a half swap
    small, big = _data(4, 50), _data(5, 2000)
    for name, x in (("small", small), ("big", big)):
        index = _built(x)
        index.save(tmp_path / f"{name}.annoy")
    served = annoy_adapters.load(tmp_path / "big.annoy")
    stop = threading.Event()

    def swap(name: str) -> None:
        while not stop.is_set():
            served.load(tmp_path / f"{name}.annoy")

    loaders = [threading.Thread(target=swap, args=(n,)) for n in ("small", "big")]
    for t in loaders:
        t.start()
    threads, errors = _in_threads(
        lambda: (served.query(small[:3], 3), served.get_nns_by_item(1, 3)), stop, 1
    )
    time.sleep(1.5)
    stop.set()
    for t in loaders + threads:
        t.join()
    assert not errors


def test_a_check_of_one_file_does_not_vouch_for_the_next(tmp_path: Path, monkeypatch) -> None:
    # a forest checked while another file was swapped in marked the new one as checked, so
    # its corrupted leaves (a hole listed as an item) were searched unchecked
    from annoy_adapters.core import _index

    x = _data(6, 200)
    good = _built(x)
    good.save(tmp_path / "good.annoy")
    bad = _built(x)
    bad.save(tmp_path / "bad.annoy")
    served = annoy_adapters.load(tmp_path / "bad.annoy")
    present_at = served._mapped.fields["arrays"]["present"]["offset"]
    served.unload()
    raw = bytearray((tmp_path / "bad.annoy").read_bytes())
    raw[present_at] = 0  # item 0 becomes a hole its leaves still list
    (tmp_path / "bad.annoy").write_bytes(bytes(raw))

    slow_check = _index.check_forest

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return slow_check(*args, **kwargs)

    monkeypatch.setattr(_index, "check_forest", slow)
    served = annoy_adapters.load(tmp_path / "good.annoy")
    answered: list[np.ndarray] = []
    first = threading.Thread(target=lambda: answered.append(served.query(x[:2], 3)[0]))
    first.start()
    time.sleep(0.1)  # the good file's check is under way
    served.load(tmp_path / "bad.annoy")
    first.join()
    assert len(answered) == 1  # the first search answered from the good file it began with
    with pytest.raises(annoy_adapters.IndexFileError, match="no item"):
        served.query(x[:2], 3)


def test_a_copy_of_an_ann_index_pickles_after_the_original_unloads(tmp_path: Path) -> None:
    # the copy shared the .ann file's lazily computed hash: once the original closed the map,
    # a pickle of the copy claimed the unchanged file had changed
    x = _data(7, 300)
    built = _built(x, "angular")
    built.export_annoy(tmp_path / "a.ann")
    original = AnnoyIndex(F, "angular")
    original.load(tmp_path / "a.ann")
    twin = copy.deepcopy(original)
    original.unload()
    again = pickle.loads(pickle.dumps(twin))
    assert again.get_nns_by_item(3, 3) == twin.get_nns_by_item(3, 3)


def test_an_export_during_loads_writes_one_index_whole(tmp_path: Path) -> None:
    # export_annoy read the forest, the item flags and the rows at different moments: with a
    # load in another thread it wrote files mixing two indexes, or failed with IndexError
    for name, n in (("a", 2000), ("b", 3000)):
        index = _built(_data(10 + n, n), cells=False)
        index.save(tmp_path / f"{name}.annoy")
    served = annoy_adapters.load(tmp_path / "a.annoy")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            for name in "ab":
                served.load(tmp_path / f"{name}.annoy")

    loader = threading.Thread(target=swap)
    loader.start()
    try:
        for _ in range(8):
            served.export_annoy(tmp_path / "out.ann")
            back = AnnoyIndex(F, "euclidean")
            back.load(tmp_path / "out.ann")
            name = "a" if back.get_n_items() == 2000 else "b"
            source = annoy_adapters.load(tmp_path / f"{name}.annoy")
            np.testing.assert_array_equal(back.get_item_vectors(), source.get_item_vectors())
            q = source.get_item_vectors()[:5]
            np.testing.assert_array_equal(
                back.query(q, 3, search_k=10**6)[0], source.query(q, 3, search_k=10**6)[0]
            )
    finally:
        stop.set()
        loader.join()


def test_a_first_query_does_not_wait_for_a_save_in_another_thread(tmp_path: Path) -> None:
    # the check before a loaded file's first search took the writers' lock, which a save
    # holds for its whole write: the query waited as long as the save
    x = _data(11, 500)
    index = _built(x)
    index.save(tmp_path / "a.annoy")
    served = annoy_adapters.load(tmp_path / "a.annoy")
    held, release = threading.Event(), threading.Event()

    def long_save() -> None:  # holds the lock as a save of a large index would
        with served._lock:
            held.set()
            release.wait(10)

    saver = threading.Thread(target=long_save)
    saver.start()
    held.wait(5)
    answered: list[np.ndarray] = []
    asker = threading.Thread(target=lambda: answered.append(served.query(x[:3], 3)[0]))
    asker.start()
    asker.join(3)
    waited = asker.is_alive()
    release.set()
    saver.join()
    asker.join()
    assert not waited and len(answered) == 1


def test_an_ann_file_with_a_nan_is_refused(tmp_path: Path) -> None:
    # one NaN in a .ann file emptied every euclidean answer
    x = _data(12, 300)
    index = _built(x)
    index.export_annoy(tmp_path / "a.ann")
    raw = bytearray((tmp_path / "a.ann").read_bytes())
    node = 16 + 4 * F  # euclidean node: n_descendants, offset, children[2], v
    raw[7 * node + 16 : 7 * node + 20] = np.array([np.nan], "<f4").tobytes()
    (tmp_path / "a.ann").write_bytes(bytes(raw))
    with pytest.raises(annoy_adapters.IndexFileError, match="squared norms"):
        AnnoyIndex(F, "euclidean").load(tmp_path / "a.ann")
