"""Processes that load one index file share one copy of it in RAM; replacing it never breaks them.

The memory test reads each child's proportional set size (PSS) of the file's mapping from
/proc/PID/smaps: a page mapped by k processes counts 1/k in each, so the sum over processes is
the memory the file really costs.  Linux only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from annoy_adapters import AnnoyIndex, load

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/smaps").exists(), reason="needs Linux /proc/PID/smaps"
)

N_PROCS = 4

# each child maps the file, reads every vector (an exhaustive query) and some tree pages, then
# holds the mapping until told to exit
HOLDER = textwrap.dedent("""
    import sys
    import numpy as np
    from annoy_adapters import load
    index = load(sys.argv[1])
    q = np.random.default_rng(int(sys.argv[2])).normal(size=(8, index.f)).astype(np.float32)
    index.query(q, 10)
    index.query(q[:2], 10, search_k=10**9)
    print("ready", flush=True)
    sys.stdin.readline()
""")


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~33 MB index (120k x 64 float32 vectors, two coarse trees), built once."""
    x = np.random.default_rng(0).normal(size=(120_000, 64)).astype(np.float32)
    index = AnnoyIndex(64, "euclidean", leaf_size=2000, seed=1)
    index.add_items(x)
    index.build(2)
    path = tmp_path_factory.mktemp("share") / "big.annoy"
    index.save(path)
    index.unload()  # this process keeps no mapping of its own
    return path


def _file_mapping_kb(pid: int, path: Path) -> dict[str, int]:
    """Rss and Pss (kB) of every mapping of ``path`` in process ``pid``."""
    target = os.path.realpath(path)
    out = {"Rss": 0, "Pss": 0}
    current = False
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                current = len(head) >= 6 and head[5] == target
            elif current and head[0] in ("Rss:", "Pss:"):
                out[head[0][:-1]] += int(head[1])
    return out


def _rollup_pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("Pss:"))


def test_processes_share_one_copy_of_the_file(big_file: Path) -> None:
    size_kb = big_file.stat().st_size / 1024
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOLDER, os.fspath(big_file), str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(N_PROCS)
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", "a child failed to load the index"
        per = [_file_mapping_kb(p.pid, big_file) for p in procs]
        totals = [_rollup_pss_kb(p.pid) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.stdin.write("\n")
                p.stdin.flush()
        for p in procs:
            p.wait(timeout=60)
    rss = [m["Rss"] for m in per]
    pss = [m["Pss"] for m in per]
    detail = f"file {size_kb:.0f} kB; Rss {rss}; Pss {pss}; whole-process Pss {totals}"
    # every child really has (almost) the whole file resident ...
    assert min(rss) > 0.8 * size_kb, detail
    # ... yet together they cost about one copy, not four
    assert sum(pss) < 1.5 * size_kb, detail
    assert all(p.returncode == 0 for p in procs)


READER = textwrap.dedent("""
    import os, sys
    import numpy as np
    from annoy_adapters import load
    path, stop, expected = sys.argv[1:4]
    with np.load(expected) as e:
        q, first, second = e["q"], e["first"], e["second"]
    held = load(path)  # keeps the first version mapped while it is replaced
    print("started", flush=True)
    rounds = wrong = 0
    while not os.path.exists(stop) or rounds < 3:
        fresh = load(path)
        ids = fresh.query(q, 5)[0]
        wrong += not (np.array_equal(ids, first) or np.array_equal(ids, second))
        wrong += not np.array_equal(held.query(q, 5)[0], first)
        fresh.unload()
        rounds += 1
    print(rounds, wrong, flush=True)
""")


def test_reader_keeps_working_while_the_file_is_replaced(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    versions = []
    for seed in (1, 2):
        index = AnnoyIndex(16, "angular", seed=seed)
        index.add_items(rng.normal(size=(5000, 16)))
        index.build(3)
        versions.append(index)
    q = rng.normal(size=(20, 16)).astype(np.float32)
    path, stop = tmp_path / "live.annoy", tmp_path / "stop"
    np.savez(
        tmp_path / "expected.npz",
        q=q,
        first=versions[0].query(q, 5)[0],
        second=versions[1].query(q, 5)[0],
    )
    versions[0].save(path)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            READER,
            os.fspath(path),
            os.fspath(stop),
            os.fspath(tmp_path / "expected.npz"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "started"
        for k in range(10):
            versions[(k + 1) % 2].save(path)  # atomic replace while the reader queries
            time.sleep(0.05)
    finally:
        stop.touch()
    out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0, out
    rounds, wrong = map(int, out.split())
    assert rounds >= 3 and wrong == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expected.npz", "live.annoy", "stop"]
    assert load(path).get_n_items() == 5000
