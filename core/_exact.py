"""Exact search by matrix products, for a ``search_k`` that would collect every item anyway.

The items are scored in blocks with one BLAS product per block (queries x block, a few MB, so
it stays in cache).  Instead of a partial sort of every block, each query keeps a running
threshold: its ``k + SLACK``-th best score so far, started from an evenly spread sample of the
items.  Only the scores at or above it survive a block (one comparison and one ``flatnonzero``),
a few dozen per query in all, and `rank` re-measures those exactly.  A partial
sort per block costs several times the product itself; the comparison costs a tenth of it.
"""

from __future__ import annotations

import numpy as np

from ._metrics import Metric, widen
from ._search import padded_rows

BLOCK = 1 << 13  # items per product: 256 queries x 8,192 float32 scores = 8 MB
SAMPLE = 1 << 13  # evenly spread items scored first, for a starting threshold (at least 2 kk)
SLACK = 8  # kept beyond k: rank() re-measures with its own rounding, as for tree candidates
# A float32 product of length f rounds by at most ~f * eps * |q| |x|; the margin is many times
# twice that, so an item dropped below (kk-th best - margin) is exactly behind kk others.
ROUNDING = 64 * np.finfo(np.float32).eps

__all__ = ["exact_candidates"]


def _kth_largest(s: np.ndarray, kk: int) -> np.ndarray:
    """Each row's ``kk``-th largest value; -inf for rows narrower than ``kk``."""
    if s.shape[1] < kk:
        return np.full(len(s), -np.inf, np.float32)
    return np.partition(s, -kk, axis=1)[:, -kk]


def _survivors(s: np.ndarray, floor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of the scores at or above each row's ``floor``, flat."""
    hit = np.flatnonzero(s >= floor[:, None])
    rows, cols = np.divmod(hit, s.shape[1])
    return rows, cols, s.ravel()[hit]


class _Scorer:
    """Scores of queries against stored rows, larger is better, by one matrix product.

    angular: cosine times the query's norm (a zero row scores 0, as rank() puts it at cosine 0);
    euclidean: q.x - |x|^2 / 2; dot: q.x.  ``tolerance`` bounds the rounding of the scores seen
    so far (it grows with the largest row norm met), so a comparison against a threshold minus
    it never drops an item whose exact score reaches the threshold.
    """

    def __init__(self, metric: Metric, q: np.ndarray, sqnorm: np.ndarray | None) -> None:
        self.name = metric.name
        self.q = q
        self.sqnorm = sqnorm
        self.q_norm = np.sqrt(np.einsum("ij,ij->i", q, q, dtype=np.float64))
        self.top = 1.0 if self.name == "angular" else 0.0  # largest row norm met
        self.tolerance = self._tolerance()

    def _tolerance(self) -> np.ndarray:
        size = self.q_norm * self.top + (self.top**2 if self.name == "euclidean" else 0.0)
        return (ROUNDING * self.q.shape[1] * size).astype(np.float32)

    def __call__(self, rows: np.ndarray, ids: np.ndarray, out: np.ndarray) -> np.ndarray:
        rows = np.asarray(widen(rows), np.float32)
        if self.name != "angular":
            sq = self.sqnorm[ids] if self.sqnorm is not None else np.einsum("ij,ij->i", rows, rows)
            top = float(np.sqrt(sq.max(initial=0.0)))
            if top > self.top:
                self.top = top
                self.tolerance = self._tolerance()
        out = np.matmul(self.q, rows.T, out=out)
        if self.name == "euclidean":
            out -= 0.5 * self.sqnorm[ids]
        elif self.name == "angular":
            norm = np.sqrt(self.sqnorm[ids])
            with np.errstate(divide="ignore"):
                out *= np.where(norm > 0, 1 / norm, 0).astype(np.float32)
        return out


def exact_candidates(
    metric: Metric,
    q_stored: np.ndarray,
    vectors: np.ndarray,
    sqnorm: np.ndarray | None,
    scan: np.ndarray,
    k: int,
    row_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Candidate ids (B, M; -1 = none) that hold every query's exact top ``k`` and its ties.

    For angular, euclidean and dot.  ``scan`` lists the rows of ``vectors`` to score (sorted),
    ``row_ids`` the item id each row holds (default: its row).  Each result row holds the items
    whose product score comes within rounding of the query's ``k + SLACK``-th best, so rounding
    cannot push a true neighbour out.
    """
    ids = scan
    to_id = (lambda r: r) if row_ids is None else row_ids.take
    b, n = len(q_stored), len(ids)
    kk = k + SLACK
    score = _Scorer(metric, q_stored.astype(np.float32), sqnorm)
    if n <= kk:
        return np.broadcast_to(to_id(ids), (b, n))
    stride = max(1, n // max(SAMPLE, 2 * kk))  # a large k needs a larger sample
    sample = ids[::stride]
    s = score(vectors[sample], sample, np.empty((b, len(sample)), np.float32))
    best = _kth_largest(s, kk)
    rows, cols, sc = _survivors(s, best - score.tolerance)
    pool_row, pool_id, pool_score = [rows], [sample[cols]], [sc]
    out = np.empty((b, BLOCK), np.float32)
    fresh = 0
    for lo in range(0, n if stride > 1 else 0, BLOCK):  # one product per block, all queries
        blk = ids[lo : lo + BLOCK]
        contiguous = blk[-1] - blk[0] + 1 == len(blk)
        rows_of = vectors[blk[0] : blk[-1] + 1] if contiguous else vectors[blk]
        s = score(rows_of, blk, out[:, : len(blk)])
        s[:, (-lo) % stride :: stride] = -np.inf  # sampled items are in the pool already
        rows, cols, sc = _survivors(s, best - score.tolerance)
        pool_row.append(rows)
        pool_id.append(blk[cols])
        pool_score.append(sc)
        fresh += len(rows)
        if fresh > 2 * b:  # tighten: the pool's kk-th best, and drop what falls below it
            rows, sid, sc = (np.concatenate(p) for p in (pool_row, pool_id, pool_score))
            best = _kth_largest(padded_rows(rows, b, sc)[1][0], kk)  # padding is -inf
            keep = sc >= (best - score.tolerance)[rows]
            pool_row, pool_id, pool_score = [rows[keep]], [sid[keep]], [sc[keep]]
            fresh = 0
    rows, sid, sc = (np.concatenate(p) for p in (pool_row, pool_id, pool_score))
    keep = sc >= (best - score.tolerance)[rows]
    mask, (cand,) = padded_rows(rows[keep], b, to_id(sid[keep]))
    cand[~mask] = -1
    return cand
