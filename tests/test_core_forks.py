"""Tree chunks built in forked processes: same bytes as threads, nothing lost when a child fails."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import data_for

from annoy_adapters.core import AnnoyIndex
from annoy_adapters.core._forks import can_fork, fork_map

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux only")


@dataclass
class _Out:
    value: np.ndarray  # (2, 3) float32, from the item
    pid: np.ndarray  # () int64, the process that computed it
    empty: np.ndarray  # (0, 4) int16: shapes and dtypes of all kinds make the trip


def _square(i: int) -> _Out:
    return _Out(
        value=np.full((2, 3), i * i, np.float32),
        pid=np.array(os.getpid()),
        empty=np.zeros((0, 4), np.int16),
    )


def test_fork_map_deals_items_to_children_and_returns_them_in_order() -> None:
    seen: list[int] = []
    out = fork_map(_square, list(range(7)), 3, _Out, after=seen.append)
    assert [float(o.value[1, 2]) for o in out] == [i * i for i in range(7)]
    assert all(o.value.dtype == np.float32 and o.value.shape == (2, 3) for o in out)
    assert all(o.empty.dtype == np.int16 and o.empty.shape == (0, 4) for o in out)
    pids = [int(o.pid) for o in out]
    assert pids[0::3] == [os.getpid()] * 3  # the caller's share: items 0, 3, 6
    assert len(set(pids)) == 3 and os.getpid() not in pids[1::3] + pids[2::3]
    assert sorted(seen) == list(range(7))  # ``after`` ran in the caller for every item


@pytest.mark.parametrize("how", ["exits", "raises"])
def test_a_failed_child_has_its_items_redone_by_the_caller(how: str) -> None:
    parent = os.getpid()

    def flaky(i: int) -> _Out:
        if os.getpid() != parent:
            if how == "exits":
                os._exit(3)
            raise MemoryError("child ran out")
        return _square(i)

    out = fork_map(flaky, list(range(5)), 2, _Out)
    assert [float(o.value[0, 0]) for o in out] == [i * i for i in range(5)]
    assert {int(o.pid) for o in out} == {parent}


def test_an_error_in_the_callers_share_is_raised_and_children_reaped() -> None:
    parent = os.getpid()

    def bad(i: int) -> _Out:
        if os.getpid() == parent:
            raise ValueError("'x' must be finite")
        return _square(i)

    with pytest.raises(ValueError, match="must be finite"):
        fork_map(bad, list(range(4)), 2, _Out)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left behind, running or zombie


def _spy_on_forks(monkeypatch) -> list[int]:
    """The ``n_jobs`` of each fork_map call the build makes, from now on."""
    import annoy_adapters.core._build as build

    forked: list[int] = []

    def spy(*args, **kwargs):
        forked.append(args[2])
        return fork_map(*args, **kwargs)

    monkeypatch.setattr(build, "fork_map", spy)
    return forked


def test_same_bytes_from_threads_and_forked_processes(tmp_path, monkeypatch, metric) -> None:
    import annoy_adapters.core._build as build

    forked = _spy_on_forks(monkeypatch)
    # the suite may have left a harmless daemon thread (tqdm's monitor) that would stop forks
    monkeypatch.setattr(build, "can_fork", lambda: True)
    monkeypatch.setattr(build, "MAX_ROWS", 1000)  # a chunk per tree: 6 chunks for 3 workers
    x = data_for(metric, 1000, 8)
    blobs, done = [], []
    for n_jobs, fork_rows in ((1, 0), (2, 10**9), (2, 0), (3, 0)):
        monkeypatch.setattr(build, "FORK_ROWS", fork_rows)
        index = AnnoyIndex(8, metric, seed=5)
        index.add_items(x)
        index.build(6, n_jobs=n_jobs, progress=lambda d, t: done.append((d, t)))
        index.save(tmp_path / f"{n_jobs}-{fork_rows}.idx")
        blobs.append((tmp_path / f"{n_jobs}-{fork_rows}.idx").read_bytes())
    assert forked == [2, 3], "n_jobs > 1 from FORK_ROWS rows must fork"
    assert all(b == blobs[0] for b in blobs[1:])
    assert sorted(done) == sorted([(k, 6) for k in range(1, 7)] * 4)


def test_no_fork_while_another_python_thread_runs(monkeypatch) -> None:
    import annoy_adapters.core._build as build

    forked = _spy_on_forks(monkeypatch)
    monkeypatch.setattr(build, "FORK_ROWS", 0)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not can_fork()
        index = AnnoyIndex(8, "euclidean", seed=5)
        index.add_items(data_for("euclidean", 500, 8))
        index.build(4, n_jobs=2)
    finally:
        stop.set()
        other.join()
    assert forked == []  # threads instead
    assert index.get_n_trees() == 4
