"""Vectorized best-first search across queries and trees.

Annoy pops nodes from one max-heap per query, a child inheriting min(parent priority, +/-margin),
until ``search_k`` candidates (duplicates counted) have been collected.  Priorities only fall
going down a tree, so that set is "the leaves of highest priority whose sizes first add up to
``search_k``" (ties broken here by leaf id).  We compute the same set for a batch of queries at
once, with flat (query, node) arrays and no heap:

1. Descend all trees, expanding every node whose priority is at least the query's threshold
   ``tau`` (one gather and one einsum per step for the whole batch).  Children below ``tau`` are
   set aside.  The first threshold is 0: the greedy paths.  A step covers one level when many
   nodes are open (a large batch), and a block of several levels below each open node when few
   are (single queries), where each step's fixed cost of a few dozen NumPy calls dominates.
2. A query whose collected leaves hold at least ``search_k`` items is done: every leaf of
   priority >= tau has been seen, so the best ``search_k`` are among them.  Otherwise lower its
   ``tau`` to cover the deficit, estimated from the set-aside nodes' item counts, and resume
   from them.
3. Keep each query's best leaves, by (priority, leaf id), until ``search_k`` items are reached.
"""

from __future__ import annotations

import math

import numpy as np

from ._forest import Forest, ranges
from ._metrics import Metric, widen

RANK_BUDGET = 1 << 22  # gathered candidate values per ranking block (16 MB of float32)
SHARE = 0.1  # first guess of the share of a set-aside subtree's items a lower tau brings in
SMALL = 512  # below this many open nodes a step is overhead-bound: expand a block of levels
DEEP_WORK = 1 << 10  # block width aimed at: open nodes x 2**depth columns
MAX_DEPTH = 5
AIM = 1.25  # aim past the deficit: one more pass costs more than a few extra leaves
NEG = np.float32(-np.inf)
LOWEST = np.finfo(np.float32).min
Flat = tuple[np.ndarray, np.ndarray, np.ndarray]  # (query ids, node refs, priorities)


def _sizes(forest: Forest, refs: np.ndarray) -> np.ndarray:
    """Items below each node reference (split counts or leaf sizes)."""
    out = np.empty(len(refs), np.int64)
    leaf = refs < 0
    out[~leaf] = forest.counts[refs[~leaf]]
    out[leaf] = forest.leaf_sizes(-1 - refs[leaf])
    return out


def _pick(
    mask: np.ndarray, qid: np.ndarray, width: int, refs: np.ndarray, pri: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Query ids, refs and priorities where ``mask`` (rows of ``width``) holds, flat.

    One nonzero and three gathers: cheaper than a boolean mask per array.
    """
    at = np.flatnonzero(mask)
    return qid.take(at // width), refs.take(at), pri.take(at)


def padded_rows(qid: np.ndarray, b: int, *cols: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Scatter flat per-query entries into padded rows (b, width): a mask and the columns.

    Flat arrays arrive as sorted runs of query ids (one run per level), which a stable sort
    merges cheaply; per-row work afterwards is a row-wise sort, much faster than a global one.
    """
    order = np.argsort(qid, kind="stable")
    q = qid[order]
    per_row = np.bincount(q, minlength=b)
    width = max(int(per_row.max(initial=0)), 1)
    pos = np.arange(len(q)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    mask = np.zeros((b, width), bool)
    mask[q, pos] = True
    out = []
    for c in cols:
        fill = NEG if c.dtype == np.float32 else 0
        o = np.full((b, width), fill, c.dtype)
        o[q, pos] = c[order]
        out.append(o)
    return mask, out


def _block_depth(n_open: int) -> int:
    """Levels per step: deep blocks while few nodes are open (each step costs a fixed few
    dozen NumPy calls), one level at a time once the arrays are large enough to amortise them."""
    if n_open >= SMALL:
        return 1
    return min(max(int(math.log2(DEEP_WORK / n_open)), 1), MAX_DEPTH)  # scalar: no NumPy


def _expand_block(
    forest: Forest,
    kids: np.ndarray,
    metric: Metric,
    q: np.ndarray,
    tau: np.ndarray,
    o_qid: np.ndarray,
    o_ref: np.ndarray,
    o_pri: np.ndarray,
) -> tuple[Flat, Flat, Flat]:
    """Expand a block of levels below each open node: (leaves kept, nodes set aside, open).

    Each open node's block is laid out as a complete binary tree in heap order (children of
    column ``c`` at ``2c + 1`` and ``2c + 2``), whatever the real tree's shape: columns below
    a leaf get priority -inf and drop out.  A node is *inside* when its priority is at least
    its query's ``tau``; priorities only fall going down, so every ancestor of an inside node
    is inside too.  A node whose parent is inside but which is not, is set aside.
    """
    n = len(o_ref)
    depth = _block_depth(n)
    refs = [o_ref[:, None]]
    for _ in range(depth):  # heap order, level by level; below a leaf: harmless garbage
        refs.append(kids.take(np.maximum(refs[-1], 0), axis=0).reshape(n, -1))
    splits = np.concatenate(refs[:depth], axis=1)  # every level but the last
    at = np.flatnonzero(splits >= 0)
    nodes = splits.take(at)
    m = np.full(splits.shape, np.nan, np.float32)  # NaN: no split here, children drop out
    m.flat[at] = metric.margins(
        q.take(o_qid.take(at // splits.shape[1]), axis=0),
        forest.normals.take(nodes, axis=0),
        forest.offsets.take(nodes),
    )
    edges = metric.child_edges(m)
    combine = metric.path_combine
    pri, parent = [o_pri[:, None]], [np.full((n, 1), np.inf, np.float32)]
    lo = 0
    for _ in range(depth):
        up = pri[-1].repeat(2, axis=1)
        parent.append(up)
        pri.append(combine(up, edges[:, lo : lo + up.shape[1]]))
        lo += up.shape[1]
    r_all = np.concatenate(refs, axis=1)
    p_all = np.concatenate(pri, axis=1)
    # never below the lowest float, so -inf (below a leaf, NaN planes) is never inside
    tq = np.maximum(tau.take(o_qid), LOWEST)[:, None]
    inside = p_all >= tq
    aside = (np.concatenate(parent, axis=1) >= tq) & ~inside & (p_all > NEG)
    cols = (o_qid, r_all.shape[1], r_all.ravel(), p_all.ravel())
    kept = _pick(inside & (r_all < 0), *cols)
    held = _pick(aside, *cols)
    bottom = refs[-1].shape[1]  # splits inside on the block's last level open the next step
    deeper = _pick(
        inside[:, -bottom:] & (refs[-1] >= 0), o_qid, bottom, refs[-1].ravel(), pri[-1].ravel()
    )
    return kept, held, deeper


def collect_leaves(
    forest: Forest,
    metric: Metric,
    q: np.ndarray,
    search_k: int,
    share0: float = SHARE,
    tau0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Leaves annoy's search visits for each row of ``q`` (query space): flat (query, leaf).

    ``share0`` guesses what share of a reopened subtree's items a lower threshold brings in;
    it changes only how many passes the search takes, never its result.  So does ``tau0``, a
    first threshold per query (default 0: the greedy paths).  Returned: query ids and leaves,
    the share observed, and each query's cut (the priority of its last kept leaf), from which
    the caller can guess the next calls' first thresholds.
    """
    b = len(q)
    roots = forest.roots
    t = len(roots)
    o_qid = np.repeat(np.arange(b), t)
    o_ref = np.tile(roots, b)
    o_pri = np.full(b * t, np.float32(metric.root_priority), np.float32)
    tau = np.zeros(b, np.float32) if tau0 is None else np.asarray(tau0, np.float32)
    c_qid, c_ref, c_pri = [], [], []  # collected leaves
    a_qid = [np.zeros(0, np.int64)]  # set-aside nodes, joined once per pass
    a_ref = [np.zeros(0, np.int64)]
    a_pri = [np.zeros(0, np.float32)]
    count = np.zeros(b, np.int64)
    share = np.full(b, share0)
    seen: list[np.ndarray] = []  # observed gain / reopened items, per query and pass
    opened = np.zeros(b, np.float64)
    before = count.copy()
    # children of leaf entries are looked up too (then ignored): keep row 0 valid for them
    kids = forest.children if forest.n_splits else np.full((1, 2), -1, np.int64)
    while True:
        while len(o_ref):  # a block of levels below every open node of every query
            leaf, aside, (o_qid, o_ref, o_pri) = _expand_block(
                forest, kids, metric, q, tau, o_qid, o_ref, o_pri
            )
            if len(leaf[0]):
                c_qid.append(leaf[0])
                c_ref.append(-1 - leaf[1])
                c_pri.append(leaf[2])
                size = forest.leaf_sizes(-1 - leaf[1])
                count += np.bincount(leaf[0], weights=size, minlength=b).astype(np.int64)
            if len(aside[0]):
                a_qid.append(aside[0])
                a_ref.append(aside[1])
                a_pri.append(aside[2])
        a_qid, a_ref, a_pri = np.concatenate(a_qid), np.concatenate(a_ref), np.concatenate(a_pri)
        ok = opened > 0
        if ok.any():
            seen.append((count - before)[ok] / opened[ok])
        is_short = count < search_k
        sel = is_short[a_qid]
        if not sel.any():
            break
        # lower tau of each short query to where the set-aside items cover its deficit; only
        # the short queries' set-aside nodes are sorted (the others keep their tau)
        short = np.flatnonzero(is_short)
        row = np.cumsum(is_short) - 1  # query -> its row among the short ones
        _, (r_pri, r_size) = padded_rows(
            row[a_qid[sel]], len(short), a_pri[sel], _sizes(forest, a_ref[sel])
        )
        order = np.argsort(-r_pri, axis=1)
        r_pri = np.take_along_axis(r_pri, order, axis=1)
        # a reopened subtree brings in only part of its items (the rest lie below tau): guess
        # a share, and lower it for queries that come up short again
        cum = np.cumsum(np.take_along_axis(r_size, order, axis=1), axis=1) * share[short, None]
        enough = cum >= AIM * (search_k - count[short])[:, None]
        at = np.argmax(enough, axis=1)
        # no estimate reaches the deficit: open everything left
        rs = np.arange(len(short))
        new_tau = np.full(b, NEG)
        new_tau[short] = np.where(enough[rs, at], r_pri[rs, at], NEG)
        tau = np.where(is_short, np.minimum(tau, new_tau), tau)
        share = np.where(is_short, share / 2, share)
        reopen = a_pri >= tau[a_qid]
        if not reopen.any():  # nothing left that could add candidates
            break
        o_qid, o_ref, o_pri = a_qid[reopen], a_ref[reopen], a_pri[reopen]
        a_qid, a_ref, a_pri = [a_qid[~reopen]], [a_ref[~reopen]], [a_pri[~reopen]]
        opened = np.bincount(o_qid, weights=_sizes(forest, o_ref), minlength=b)
        before = count.copy()
    qid = np.concatenate(c_qid) if c_qid else np.zeros(0, np.int64)
    leaf = np.concatenate(c_ref) if c_ref else np.zeros(0, np.int64)
    pri = np.concatenate(c_pri) if c_pri else np.zeros(0, np.float32)
    mask, (r_leaf, r_pri) = padded_rows(qid, b, leaf, pri)
    # best first by priority; ties by leaf id, so batching never changes the kept set
    order = np.lexsort((np.where(mask, r_leaf, np.iinfo(np.int64).max), -r_pri), axis=1)
    r_leaf = np.take_along_axis(r_leaf, order, axis=1)
    mask = np.take_along_axis(mask, order, axis=1)
    size = np.where(mask, forest.leaf_sizes(r_leaf), 0)
    keep = mask & (np.cumsum(size, axis=1) - size < search_k)
    rows = np.nonzero(keep)[0]
    observed = float(np.median(np.concatenate(seen))) if seen else share0
    r_pri = np.take_along_axis(r_pri, order, axis=1)
    cut = np.where(keep, r_pri, np.inf).min(axis=1)
    return rows, r_leaf[keep], float(np.clip(observed, 1e-4, 1.0)), cut


def candidates(
    forest: Forest, qid: np.ndarray, leaf: np.ndarray, b: int, n_items: int
) -> np.ndarray:
    """Unique item ids of each query's kept leaves, padded with -1: (b, M).

    Ids below ``n_items`` (``check_forest`` saw to it for loaded files); int32 when they fit
    (row sorts of int32 run ~3x faster).
    """
    start, size = forest.leaf_ptr[leaf], forest.leaf_sizes(leaf)
    total = int(size.sum())
    row_of = np.repeat(qid, size)
    items = forest.leaf_items[ranges(start, size)]
    per_row = np.bincount(qid, weights=size, minlength=b).astype(np.int64)
    width = max(int(per_row.max(initial=0)), 1)
    pos = np.arange(total) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    out = np.full((b, width), -1, np.int32 if n_items < 2**31 else np.int64)
    out[row_of, pos] = items
    out.sort(axis=1)
    dup = np.zeros_like(out, dtype=bool)
    dup[:, 1:] = out[:, 1:] == out[:, :-1]
    out[dup] = -1  # a repeat gathers row 0 in ranking: cache-hot, cheaper than packing rows
    return out


def _finalists(
    metric: Metric,
    f: int,
    d: np.ndarray,
    c: np.ndarray,
    cn: np.ndarray,
    valid: np.ndarray,
    q_sqnorm: np.ndarray,
    kk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates (ids, -1 = none) whose first-pass distance ``d`` may rank among the best
    ``kk``: within twice the pass's rounding bound of the ``kk``-th.  Usually ``kk`` of them
    and the ties; for points far from the origin the expansion's cancellation widens the set,
    up to every candidate, and the exact re-measure decides.  Each row's set depends on the
    row alone, so batching never changes the answer."""
    t = np.partition(d, kk - 1, axis=1)[:, kk - 1]
    top_sq = np.where(valid, cn, 0).max(axis=1, initial=0)
    slack = 2 * metric.rank_error(f, q_sqnorm, top_sq)
    near = valid & (d <= (t + slack)[:, None])
    w = max(int(np.count_nonzero(near, axis=1).max(initial=0)), kk)  # kk < d.shape[1]
    key = np.where(near, d, np.inf)
    top = np.argpartition(key, w - 1, axis=1)[:, :w] if w < d.shape[1] else None
    if top is None:
        return np.where(near, c, -1), key
    ids = np.where(np.take_along_axis(near, top, axis=1), np.take_along_axis(c, top, axis=1), -1)
    return ids, np.take_along_axis(key, top, axis=1)


def rank(
    metric: Metric,
    q_stored: np.ndarray,
    cand: np.ndarray,
    vectors: np.ndarray,
    sqnorm: np.ndarray | None,
    k: int,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of candidate ids (B, M; -1 = none) by exact distance: ids and rank distances.

    ``rows`` maps ids to rows of ``vectors`` and ``sqnorm`` (default: the id is the row).
    """
    b, m = cand.shape
    width = vectors.shape[1]
    step = max(1, RANK_BUDGET // max(m * width, 1))
    out_ids = np.full((b, k), -1, np.int64)
    out_d = np.full((b, k), np.inf, np.float32)
    refine = metric.name in ("angular", "euclidean")
    # finalists: a few more than k, re-measured directly, then sorted by (distance, id)
    kk = min(m, k + 8 if refine else k)
    qn = None
    if metric.needs_sqnorm and (kk < m or not refine):
        qf = q_stored.astype(np.float32)
        qn = np.einsum("ij,ij->i", qf, qf)
    for lo in range(0, b, step):
        c = cand[lo : lo + step].astype(np.int64)  # int32 would wrap the tie-break key
        if kk < m or not refine:  # a first pass by the fast expansion picks the finalists
            valid = c >= 0
            cc = np.where(valid, c, 0)
            if rows is not None:
                cc = rows.take(cc)
            g = widen(vectors.take(cc, axis=0))  # take gathers ~3x faster than v[idx]
            cn = sqnorm[cc] if sqnorm is not None else None
            qb = None if qn is None else qn[lo : lo + step]
            d = metric.rank(q_stored[lo : lo + step], g, qb, cn)
            d = np.where(valid, d, np.inf).astype(np.float32)
            if kk < m and refine:
                ids, dd = _finalists(metric, width, d, c, cn, valid, qb, kk)
            elif kk < m:
                # ties at the boundary go to the smaller id, so a batch never changes the answer
                t = np.partition(d, kk - 1, axis=1)[:, kk - 1 : kk]
                big = np.iinfo(np.int64).max
                key = np.where(d < t, -1, np.where((d == t) & valid, c, big))
                top = np.argpartition(key, kk - 1, axis=1)[:, :kk]
                ids = np.take_along_axis(c, top, axis=1)
                dd = np.take_along_axis(d, top, axis=1)
            else:
                ids, dd = c, d
        else:  # every candidate is a finalist: measured once, directly, below
            ids = c
        if refine:
            ok = ids >= 0
            at = np.where(ok, ids, 0)
            exact = metric.exact(
                q_stored[lo : lo + step].astype(np.float32),
                widen(vectors.take(at if rows is None else rows.take(at), axis=0)),
            )
            dd = np.where(ok, exact, np.inf).astype(np.float32)
        order = np.lexsort((np.where(ids >= 0, ids, np.iinfo(np.int64).max), dd), axis=1)
        n = min(k, kk)
        out_ids[lo : lo + step, :n] = np.take_along_axis(ids, order, axis=1)[:, :n]
        out_d[lo : lo + step, :n] = np.take_along_axis(dd, order, axis=1)[:, :n]
    out_d[out_ids < 0] = np.inf
    return out_ids, out_d
