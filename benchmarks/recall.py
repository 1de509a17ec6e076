"""Recall@k against exact ground truth, robust to ties.

A returned id counts as a hit when its exact distance is within the true
k-th distance (plus a tiny relative tolerance), as in ann-benchmarks. This
does not penalise a system for picking a different member of a tie, and it
uses our own float64 distances rather than each system's reported ones.
Padding ids (-1) and repeated ids count as misses.
"""

from __future__ import annotations

import numpy as np

from benchmarks.exact import exact_distances


def recall_at_k(
    X: np.ndarray,
    Q: np.ndarray,
    ids: np.ndarray,
    gt_dist: np.ndarray,
    k: int,
    metric: str,
    rtol: float = 1e-5,
) -> float:
    """Mean recall@k of ``ids`` (nq, >= k) for queries ``Q`` over items ``X``.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> gt = np.array([[0.0, 1.0]])
    >>> recall_at_k(X, X[:1], np.array([[0, 2]]), gt, 2, "euclidean")
    0.5
    """
    ids = np.asarray(ids, dtype=np.int64)[:, :k]
    if ids.shape != (Q.shape[0], k):
        raise ValueError(f"'ids' must have shape ({Q.shape[0]}, {k}) (got {ids.shape})")
    # Sorting each row puts repeats next to each other; a repeat is no new hit.
    s = np.sort(ids, axis=1)
    repeat = np.zeros(s.shape, dtype=bool)
    repeat[:, 1:] = s[:, 1:] == s[:, :-1]
    d_unique = np.where(repeat, np.inf, exact_distances(X, Q, s, metric))
    thresh = gt_dist[:, k - 1 : k] * (1.0 + rtol) + 1e-9
    hits = (d_unique <= thresh).sum(axis=1)
    return float(np.mean(np.minimum(hits, k) / k))
