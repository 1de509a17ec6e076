"""Vectorized best-first search across queries and trees.

Annoy pops nodes from one max-heap per query, a child inheriting min(parent priority, +/-margin),
until ``search_k`` candidates (duplicates counted) have been collected.  Because priorities only
fall going down a tree, that set is "the leaves of highest priority whose sizes first add up to
``search_k``".  We compute the same set for a batch of queries at once: each round expands the
few best open nodes of every query (one gather and one einsum for all of them), and a node is
dropped as soon as its priority falls below the cut that the leaves already collected guarantee.
The loop ends when no query has an open node above its cut, so the result does not depend on
how many nodes a round expands.
"""

from __future__ import annotations

import numpy as np

from ._forest import Forest
from ._metrics import Metric

EXPAND = 32  # open nodes expanded per query per round
RANK_BUDGET = 1 << 24  # gathered candidate values per ranking block (64 MB of float32)
NEG = np.float32(-np.inf)


def _compact(keep: np.ndarray, *cols: np.ndarray) -> list[np.ndarray]:
    """Move the kept entries of every row to the front; width becomes the largest row count."""
    counts = keep.sum(axis=1)
    width = max(int(counts.max(initial=0)), 1)
    pos = np.cumsum(keep, axis=1) - 1
    rows = np.nonzero(keep)[0]
    out = []
    for c in cols:
        fill = NEG if c.dtype == np.float32 else 0
        o = np.full((len(keep), width), fill, dtype=c.dtype)
        o[rows, pos[keep]] = c[keep]
        out.append(o)
    return out


def _cut(pri: np.ndarray, size: np.ndarray, search_k: int) -> np.ndarray:
    """Per row, the priority at which collected leaves first reach ``search_k`` items, else -inf."""
    order = np.argsort(-pri, axis=1, kind="stable")
    cum = np.cumsum(np.take_along_axis(size, order, axis=1), axis=1)
    enough = cum[:, -1] >= search_k
    at = np.argmax(cum >= search_k, axis=1)
    cut = np.take_along_axis(pri, order[np.arange(len(pri)), at][:, None], axis=1)[:, 0]
    return np.where(enough, cut, NEG).astype(np.float32)


def collect_leaves(
    forest: Forest, metric: Metric, q: np.ndarray, search_k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Leaves that annoy's best-first search visits for each query row of ``q`` (query space).

    Returns ``(leaf, keep)``: (B, C) leaf ids and a mask of the ones inside the search.
    """
    b = len(q)
    roots = forest.roots
    split_roots, leaf_roots = roots[roots >= 0], -1 - roots[roots < 0]
    root = np.float32(metric.root_priority)
    fr_ref = np.tile(split_roots, (b, 1))
    fr_pri = np.full(fr_ref.shape, root, np.float32)
    col_leaf = np.tile(leaf_roots, (b, 1))
    col_pri = np.full(col_leaf.shape, root, np.float32)
    col_size = forest.leaf_sizes(col_leaf)
    if fr_ref.shape[1] == 0:
        fr_ref, fr_pri = np.zeros((b, 1), np.int64), np.full((b, 1), NEG)
    if col_leaf.shape[1] == 0:
        col_leaf, col_pri = np.zeros((b, 1), np.int64), np.full((b, 1), NEG)
        col_size = np.zeros((b, 1), np.int64)

    done_rows, done_leaf, done_pri, done_size = [], [], [], []
    live = np.arange(b)
    while len(live):
        cut = _cut(col_pri, col_size, search_k)
        open_ = fr_pri >= cut[:, None]
        finished = ~open_.any(axis=1)
        if finished.any():
            done_rows.append(live[finished])
            done_leaf.append(col_leaf[finished])
            done_pri.append(col_pri[finished])
            done_size.append(col_size[finished])
            keep_rows = ~finished
            live, cut, open_ = live[keep_rows], cut[keep_rows], open_[keep_rows]
            fr_ref, fr_pri = fr_ref[keep_rows], fr_pri[keep_rows]
            col_leaf, col_pri, col_size = (
                col_leaf[keep_rows], col_pri[keep_rows], col_size[keep_rows])
            if not len(live):
                break
        # the EXPAND best open nodes of each live query
        if fr_pri.shape[1] > EXPAND:
            key = np.where(open_, fr_pri, NEG)
            sel = np.argpartition(-key, EXPAND - 1, axis=1)[:, :EXPAND]
        else:
            sel = np.broadcast_to(np.arange(fr_pri.shape[1]), fr_pri.shape)
        rows = np.arange(len(live))[:, None]
        s_ok = open_[rows, sel]
        s_ref = np.where(s_ok, fr_ref[rows, sel], 0)
        s_pri = fr_pri[rows, sel]
        fr_pri[rows, sel] = np.where(s_ok, NEG, s_pri)
        qb = np.broadcast_to(q[live][:, None, :], (*s_ref.shape, q.shape[1]))
        m = metric.margins(qb, np.take(forest.normals, s_ref, axis=0), forest.offsets[s_ref])
        p0, p1 = metric.child_priority(s_pri, m)
        c_ref = forest.children[s_ref].reshape(len(live), -1)
        c_pri = np.stack([p0, p1], axis=-1).reshape(len(live), -1).astype(np.float32)
        c_pri[~np.repeat(s_ok, 2, axis=1)] = NEG
        is_split = c_ref >= 0
        # open nodes above the cut survive; leaves at or above it are collected
        fr_ref, fr_pri = _compact(
            np.concatenate([fr_pri >= cut[:, None], (c_pri >= cut[:, None]) & is_split & (c_pri > NEG)],
                           axis=1),
            np.concatenate([fr_ref, c_ref], axis=1),
            np.concatenate([fr_pri, c_pri], axis=1),
        )
        new_leaf = np.where(is_split, 0, -1 - c_ref)
        col_leaf, col_pri, col_size = _compact(
            np.concatenate([(col_pri >= cut[:, None]) & (col_pri > NEG),
                            (c_pri >= cut[:, None]) & ~is_split & (c_pri > NEG)], axis=1),
            np.concatenate([col_leaf, new_leaf], axis=1),
            np.concatenate([col_pri, c_pri], axis=1),
            np.concatenate([col_size, forest.leaf_sizes(new_leaf)], axis=1),
        )
    width = max(a.shape[1] for a in done_leaf)
    leaf = np.zeros((b, width), np.int64)
    pri = np.full((b, width), NEG, np.float32)
    size = np.zeros((b, width), np.int64)
    for r, lf, p, s in zip(done_rows, done_leaf, done_pri, done_size, strict=True):
        leaf[r, : lf.shape[1]], pri[r, : lf.shape[1]], size[r, : lf.shape[1]] = lf, p, s
    # keep the best leaves until search_k items are reached (annoy's stopping rule)
    # ties in priority (hamming's integer priorities) are broken by leaf id, so the kept set
    # never depends on how queries were batched
    order = np.lexsort((leaf, -pri), axis=1)
    pri, leaf, size = (np.take_along_axis(a, order, axis=1) for a in (pri, leaf, size))
    before = np.cumsum(size, axis=1) - size
    keep = (before < search_k) & (pri > NEG) & (size > 0)
    return leaf, keep


def candidates(forest: Forest, leaf: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Unique item ids of the kept leaves per row, padded with -1: (B, M)."""
    b = len(leaf)
    rows, cols = np.nonzero(keep)
    lf = leaf[rows, cols]
    start, size = forest.leaf_ptr[lf], forest.leaf_sizes(lf)
    total = int(size.sum())
    row_of = np.repeat(rows, size)
    offs = np.repeat(start - (np.cumsum(size) - size), size)
    items = forest.leaf_items[offs + np.arange(total, dtype=np.int64)]
    per_row = np.bincount(rows, weights=size, minlength=b).astype(np.int64)
    width = max(int(per_row.max(initial=0)), 1)
    pos = np.arange(total) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    out = np.full((b, width), -1, np.int64)
    out[row_of, pos] = items
    out.sort(axis=1)
    dup = np.zeros_like(out, dtype=bool)
    dup[:, 1:] = out[:, 1:] == out[:, :-1]
    out[dup] = -1
    return out


def rank(
    metric: Metric,
    q_stored: np.ndarray,
    cand: np.ndarray,
    vectors: np.ndarray,
    sqnorm: np.ndarray | None,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of candidate ids (B, M; -1 = none) by exact distance: ids and rank distances."""
    b, m = cand.shape
    width = vectors.shape[1]
    step = max(1, RANK_BUDGET // max(m * width, 1))
    out_ids = np.full((b, k), -1, np.int64)
    out_d = np.full((b, k), np.inf, np.float32)
    qn = None
    if metric.needs_sqnorm:
        qf = q_stored.astype(np.float32)
        qn = np.einsum("ij,ij->i", qf, qf)
    for lo in range(0, b, step):
        c = cand[lo:lo + step]
        valid = c >= 0
        cc = np.where(valid, c, 0)
        g = np.take(vectors, cc, axis=0)  # np.take gathers rows ~3x faster than v[idx]
        cn = sqnorm[cc] if sqnorm is not None else None
        d = metric.rank(q_stored[lo:lo + step], g, None if qn is None else qn[lo:lo + step], cn)
        d = np.where(valid, d, np.inf).astype(np.float32)
        # finalists: a few more than k, re-measured directly, then sorted by (distance, id)
        kk = min(m, k + 8 if metric.name in ("angular", "euclidean") else k)
        if kk < m:
            # ties at the boundary go to the smaller id, so a batch never changes the answer
            t = np.partition(d, kk - 1, axis=1)[:, kk - 1 : kk]
            big = np.iinfo(np.int64).max
            key = np.where(d < t, -1, np.where((d == t) & valid, c, big))
            top = np.argpartition(key, kk - 1, axis=1)[:, :kk]
        else:
            top = np.broadcast_to(np.arange(m), (len(c), m))
        ids = np.take_along_axis(c, top, axis=1)
        dd = np.take_along_axis(d, top, axis=1)
        if metric.name in ("angular", "euclidean"):
            ok = ids >= 0
            exact = metric.exact(q_stored[lo:lo + step].astype(np.float32),
                                 np.take(vectors, np.where(ok, ids, 0), axis=0))
            dd = np.where(ok, exact, np.inf).astype(np.float32)
        order = np.lexsort((np.where(ids >= 0, ids, np.iinfo(np.int64).max), dd), axis=1)
        n = min(k, kk)
        out_ids[lo:lo + step, :n] = np.take_along_axis(ids, order, axis=1)[:, :n]
        out_d[lo:lo + step, :n] = np.take_along_axis(dd, order, axis=1)[:, :n]
    out_d[out_ids < 0] = np.inf
    return out_ids, out_d
