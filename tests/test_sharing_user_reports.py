"""File sharing and threads: reports from a bug hunt, each a test that failed before its fix."""

from __future__ import annotations

import os

import numpy as np
import pytest

from annoy_adapters import AnnoyIndex, load
from annoy_adapters._cache import clear_cache, open_index


def _save(path: str, seed: int) -> None:
    index = AnnoyIndex(8, "euclidean", seed=1)
    index.add_items(np.random.default_rng(seed).normal(size=(300, 8)).astype(np.float32))
    index.build(4)
    index.save(path)


def test_the_cache_sees_a_replaced_file_whose_mtime_was_restored(tmp_path) -> None:
    """cp -p, rsync -t and os.utime put the old mtime back on new content of the same size."""
    path = str(tmp_path / "v.annoy")
    q = np.zeros((1, 8), np.float32)
    clear_cache()
    _save(path, 0)
    before = open_index(path).query(q, 3)[0]
    st = os.stat(path)
    _save(path, 1)
    assert os.stat(path).st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = open_index(path).query(q, 3)[0]
    assert np.array_equal(now, load(path).query(q, 3)[0])
    assert not np.array_equal(now, before)
    clear_cache()


@pytest.mark.parametrize("how", ["load", "save"])
def test_reloading_never_passes_through_an_empty_index(tmp_path, how: str) -> None:
    """A load() or save() swaps the new state in, then closes the old map: a thread querying
    meanwhile (the close releases the GIL) finds a built index, never "not built"."""
    x = np.random.default_rng(0).normal(size=(2000, 16)).astype(np.float32)
    index = AnnoyIndex(16, "euclidean", seed=3)
    index.add_items(x)
    index.build(4)
    path = str(tmp_path / "reload.annoy")
    index.save(path)
    want = index.query(x[:5], 10)[0]
    old = index._mapped
    seen: list[bool] = []
    close = old.close

    def observed_close() -> None:  # what a concurrent reader would find at this moment
        seen.append(index.built)
        close()

    old.close = observed_close
    index.load(path) if how == "load" else index.save(path)
    assert seen == [True]
    assert index._mapped is not old and np.array_equal(index.query(x[:5], 10)[0], want)


def test_the_search_learns_its_share_per_search_k() -> None:
    """A small search_k's learned share must not steer a large one (speed and memory only)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 16)).astype(np.float32)
    index = AnnoyIndex(16, "dot", seed=2)
    index.add_items(x)
    index.build(10)
    q = rng.normal(size=(50, 16)).astype(np.float32)
    fresh = AnnoyIndex(16, "dot", seed=2)
    fresh.add_items(x)
    fresh.build(10)
    index.query(q, 10, search_k=300)
    index.query(q, 10, search_k=5000)
    fresh.query(q, 10, search_k=5000)
    assert index._shares[5000] == fresh._shares[5000]
    assert set(index._shares) == {300, 5000}


def test_a_failed_save_names_the_callers_path(tmp_path) -> None:
    index = AnnoyIndex(4, "euclidean")
    index.add_items(np.random.default_rng(0).normal(size=(20, 4)))
    index.build(2)
    target = tmp_path / "missing" / "x.annoy"
    with pytest.raises(FileNotFoundError) as info:
        index.save(str(target))
    assert info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []
