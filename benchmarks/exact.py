"""Blocked exact k-nearest-neighbour search in plain NumPy.

Used twice: to compute the ground truth once per dataset, and as the
"NumPy exact brute force" system. Scores come from one BLAS matrix product
per query block; the block size keeps the score matrix near ``budget_bytes``
so memory stays flat whatever the number of indexed points.
"""

from __future__ import annotations

import numpy as np

METRICS = ("angular", "euclidean")


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"'metric' must be one of {METRICS} (got {metric!r})")


def normalize(X: np.ndarray) -> np.ndarray:
    """Return the rows of ``X`` scaled to unit L2 norm (zero rows stay zero).

    Examples
    --------
    >>> normalize(np.array([[3.0, 4.0]], dtype=np.float32)).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.maximum(norms, np.finfo(X.dtype).tiny)).astype(X.dtype, copy=False)


class ExactIndex:
    """Exact search over ``X`` for ``metric`` in ``{"angular", "euclidean"}``.

    Parameters
    ----------
    X : ndarray of shape (n, f)
        Indexed vectors.
    metric : str
        ``"angular"`` (annoy's ``sqrt(2 - 2 cos)``) or ``"euclidean"``.
    dtype : numpy dtype
        Working precision; float32 for speed, float64 for ground truth.
    budget_bytes : int
        Approximate size of one block of scores.

    Examples
    --------
    >>> X = np.eye(3, dtype=np.float32)
    >>> ids, dist = ExactIndex(X, "euclidean").query(X[:1], 2)
    >>> ids.tolist()
    [[0, 1]]
    """

    def __init__(
        self,
        X: np.ndarray,
        metric: str,
        dtype: type = np.float32,
        budget_bytes: int = 64 << 20,
    ) -> None:
        _check_metric(metric)
        self.metric = metric
        self.dtype = np.dtype(dtype)
        self.budget_bytes = int(budget_bytes)
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if metric == "angular":
            # Unit rows make "largest dot product" the angular order.
            self.X = normalize(X)
            self.sqnorm = None
        else:
            self.X = X
            self.sqnorm = np.einsum("ij,ij->i", X, X)

    def _distances(self, scores: np.ndarray, Q: np.ndarray) -> np.ndarray:
        """Turn block scores (smaller is better) into the metric's distances."""
        if self.metric == "angular":
            # scores = -cos; d = sqrt(2 - 2 cos)
            return np.sqrt(np.maximum(2.0 + 2.0 * scores, 0.0))
        qn = np.einsum("ij,ij->i", Q, Q)[:, None]
        return np.sqrt(np.maximum(scores + qn, 0.0))

    def query(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(ids int64 (nq, k), distances (nq, k))``, best first.

        Ties are broken by id so the result is deterministic.
        """
        n = self.X.shape[0]
        if not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"'k' must be a positive int (got {k!r})")
        k = min(int(k), n)
        Q = np.ascontiguousarray(Q, dtype=self.dtype)
        if self.metric == "angular":
            Q = normalize(Q)
        nq = Q.shape[0]
        block = max(1, self.budget_bytes // (n * self.dtype.itemsize))
        out_ids = np.empty((nq, k), dtype=np.int64)
        out_d = np.empty((nq, k), dtype=self.dtype)
        for start in range(0, nq, block):  # one BLAS call per block, not per query
            Qb = Q[start : start + block]
            scores = Qb @ self.X.T
            if self.metric == "angular":
                np.negative(scores, out=scores)
            else:
                scores *= -2.0
                scores += self.sqnorm
            if k < n:
                part = np.argpartition(scores, k - 1, axis=1)[:, :k]
            else:
                part = np.broadcast_to(np.arange(n), scores.shape)
            sub = np.take_along_axis(scores, part, axis=1)
            order = np.lexsort((part, sub), axis=1)
            ids = np.take_along_axis(part, order, axis=1)
            out_ids[start : start + block] = ids
            out_d[start : start + block] = self._distances(
                np.take_along_axis(sub, order, axis=1), Qb
            )
        return out_ids, out_d


def exact_distances(X: np.ndarray, Q: np.ndarray, ids: np.ndarray, metric: str) -> np.ndarray:
    """Float64 distances from each query row to the items ``ids[i]``.

    Invalid ids (negative or >= n) get ``inf``.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> exact_distances(X, X[:1], np.array([[1, -1]]), "euclidean").tolist()
    [[5.0, inf]]
    """
    _check_metric(metric)
    ids = np.asarray(ids)
    n = X.shape[0]
    valid = (ids >= 0) & (ids < n)
    V = np.asarray(X, dtype=np.float64)[np.where(valid, ids, 0)]  # (nq, k, f)
    Q64 = np.asarray(Q, dtype=np.float64)
    if metric == "angular":
        V = V / np.maximum(np.linalg.norm(V, axis=2, keepdims=True), 1e-300)
        Qn = Q64 / np.maximum(np.linalg.norm(Q64, axis=1, keepdims=True), 1e-300)
        cos = np.einsum("qkf,qf->qk", V, Qn)
        d = np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0))
    else:
        d = np.linalg.norm(V - Q64[:, None, :], axis=2)
    return np.where(valid, d, np.inf)


def ground_truth(
    X: np.ndarray, Q: np.ndarray, k: int, metric: str, slack: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` ids and float64 distances of ``Q`` against ``X``.

    Candidates come from a fast float32 pass (``k + slack`` per query) and
    are re-ranked in float64, so rounding cannot reorder the true top ``k``.
    """
    cand, _ = ExactIndex(X, metric, np.float32).query(Q, min(k + slack, X.shape[0]))
    d = exact_distances(X, Q, cand, metric)
    order = np.lexsort((cand, d), axis=1)[:, :k]
    return (
        np.take_along_axis(cand, order, axis=1),
        np.take_along_axis(d, order, axis=1),
    )
