"""Shared seeded data for the tests."""

from __future__ import annotations

import numpy as np
import pytest


def clustered(n: int, f: int, seed: int = 0, clusters: int = 20) -> np.ndarray:
    """Gaussian blobs: realistic neighbourhoods, so recall thresholds mean something."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, f)) * 3
    return (centers[rng.integers(0, clusters, n)] + rng.normal(size=(n, f))).astype(np.float32)


def brute_force(metric: str, x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Exact distances (n_queries, n_items), ordered like the index orders them (smaller first)."""
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if metric == "angular":
        xn = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
        qn = q64 / np.linalg.norm(q64, axis=1, keepdims=True)
        return np.sqrt(np.maximum(2 - 2 * qn @ xn.T, 0))
    if metric == "euclidean":
        return np.sqrt(np.maximum(((q64[:, None] - x64[None]) ** 2).sum(-1), 0))
    if metric == "manhattan":
        return np.abs(q64[:, None] - x64[None]).sum(-1)
    if metric == "dot":
        return -(q64 @ x64.T)
    if metric == "hamming":
        return ((q64[:, None] > 0.5) != (x64[None] > 0.5)).sum(-1).astype(np.float64)
    raise ValueError(metric)


def data_for(metric: str, n: int, f: int, seed: int = 0) -> np.ndarray:
    x = clustered(n, f, seed)
    return (x > 0).astype(np.float32) if metric == "hamming" else x


@pytest.fixture(params=["angular", "euclidean", "manhattan", "dot", "hamming"])
def metric(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def client():
    """A real distributed.LocalCluster of 2 worker processes, one per test module."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def cli_run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """``annoy-adapters ARGS`` in this process: exit code, stdout, stderr."""
    from annoy_adapters.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str) -> str:
    """The CLI's one error line (no traceback), asserting there is exactly one."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("annoy-adapters: error: "), err
    assert "Traceback" not in err
    return lines[0]
