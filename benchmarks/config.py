"""Default benchmark configurations: the full run and the ``--quick`` smoke run."""

from __future__ import annotations

import copy

ALL_SYSTEMS = ["annoy-adapters", "annoy", "hnswlib", "pynndescent", "sklearn-brute", "numpy-brute"]

FULL: dict = {
    "name": "full",
    "n_index": 390_000,
    "n_queries": 10_000,
    "seed": 42,
    "k": 10,
    "metrics": ["angular", "euclidean"],
    "threads": [1, 2],
    "systems": list(ALL_SYSTEMS),
    # the 2-thread run measures ours only (its n_jobs build and batch search); None: every
    # system again (hnswlib's and pynndescent's builds add ~10 minutes)
    "systems_2threads": ["annoy-adapters"],
    "n_trees": [10, 50],
    # steps of ~1.4x around recall 0.9-0.95 where the targets are read, 2x elsewhere
    "search_k": [
        500,
        1_000,
        2_000,
        3_000,
        4_000,
        6_000,
        8_000,
        12_000,
        16_000,
        32_000,
        64_000,
        128_000,
    ],
    # annoy-adapters' cell scan (of about sqrt(n) = 550 cells), measured on the 10-tree index
    "probe": [4, 6, 8, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256],
    "ef": [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512],
    "epsilon": [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4],
    "hnsw_ef_construction": 200,
    # annoy-adapters' forests (targets compare 10 trees; its cell scan reads one forest);
    # None: the same as annoy's (n_trees; a 50-tree sweep adds ~10 minutes per dtype and metric)
    "aa_n_trees": [10],
    "aa_leaf_size": None,
    # annoy-adapters' vector storage: each dtype is a configuration of its own (trees, cells)
    "aa_vector_dtypes": ["float32", "float16"],
    "stop_recall": 0.995,
    "max_point_seconds": 45.0,
    "repeats": 1,
    # builds timed per index (the fastest counts): one build on a shared machine can read
    # twice its time
    "build_repeats": 1,
    # rounds of annoy / annoy-adapters builds in turn, side by side for target 4 (paired.py)
    "paired_builds": 3,
    # one-query-per-call modes are timed on this many queries, evenly spread (recall on the
    # same ones); 0 or None: on all of them, like batch modes (hours for the slow points)
    "per_call_queries": 2_000,
    "scale_sizes": [50_000, 100_000, 200_000, 500_000],
    "scale_dim": 64,
    "scale_queries": 1_000,
    "scale_metric": "euclidean",
    "scale_systems": ["annoy-adapters", "annoy", "hnswlib", "numpy-brute"],
    "scale_n_trees": 10,
    "scale_search_k": 4_000,
    "scale_ef": 64,
    "worker_timeout": 7_200.0,
}

QUICK: dict = copy.deepcopy(FULL)
QUICK.update(
    {
        "name": "quick",
        "n_index": 20_000,
        "n_queries": 500,
        # pynndescent's numba compilation alone takes minutes: full runs only.
        "systems": ["annoy-adapters", "annoy", "hnswlib", "sklearn-brute", "numpy-brute"],
        # annoy-adapters only: enough to exercise the 2-thread path and target 4.
        "systems_2threads": ["annoy-adapters"],
        "n_trees": [10],
        "search_k": [500, 5_000],
        "probe": [2, 8],
        "ef": [10, 80],
        "hnsw_ef_construction": 100,
        "epsilon": [0.0, 0.1],
        "max_point_seconds": 5.0,
        "per_call_queries": 100,
        "build_repeats": 2,
        "paired_builds": 1,
        "scale_sizes": [5_000, 10_000],
        "scale_queries": 200,
        "scale_systems": ["annoy-adapters", "annoy", "numpy-brute"],
        "scale_search_k": 1_000,
        "worker_timeout": 300.0,
    }
)


def systems_for(cfg: dict, threads: int) -> list[str]:
    """The systems a run measures at ``threads`` threads.

    Examples
    --------
    >>> systems_for({"systems": ["annoy"], "systems_2threads": []}, 2)
    []
    """
    return cfg["systems"] if threads == 1 else cfg["systems_2threads"]


def defaults(quick: bool) -> dict:
    """Return a fresh copy of the quick or full configuration.

    Examples
    --------
    >>> defaults(True)["n_index"]
    20000
    """
    return copy.deepcopy(QUICK if quick else FULL)
