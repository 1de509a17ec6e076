"""Cells: the items split into about sqrt(n) groups stored side by side, for probe search.

A build cuts tree 0 where subtrees hold at most ``2 sqrt(n)`` items (its two-means splits make
a balanced first partition), then refines those groups with a few rounds of Lloyd's k-means
(spherical for angular), which follows the data more closely than a plane per level can.
The vectors are then stored cell by cell: row ``r`` of the store holds item ``row_ids[r]``.
A probe search scores each query against the centroids and scans the items of its ``probe``
nearest cells with one matrix product per cell (all queries probing it at once, over rows that
are contiguous), instead of gathering scattered rows as tree candidates need.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from ._errors import IndexFileError
from ._forest import Forest, ranges
from ._metrics import HALF_SCALE, Metric, half_scaled, scale_half_bits, widen
from ._search import padded_rows
from ._threads import thread_map

METRICS = ("angular", "euclidean")  # whose scores a matrix product gives (see _cell_scores)
ROUNDS = 6  # Lloyd rounds after the tree's partition; recall gains little beyond
PER_CELL = 160  # items per cell the first Lloyd rounds look at
FULL_ROUNDS = 1  # rounds over all items after those
BLOCK = 1 << 12  # items per product when assigning items to centroids: scores stay in cache
CANDIDATES = 64  # centroids a sample round compares a row with: those nearest its cell's
SLACK = 8  # kept beyond k per query: rank() re-measures the finalists exactly
# rows per one-query product: OpenBLAS spreads larger ones over its threads, and two
# callers' threads then fight (two threads calling get_nns_by_vector: half the speed)
BLAS_ROWS = 4096
KEPT_BUDGET = 1 << 22  # (query, kept item) pairs a batch holds before merging: ~80 MB

__all__ = ["METRICS", "Cells", "build_cells", "chunk_size", "probe_candidates"]


@dataclass
class Cells:
    row_ids: np.ndarray  # (n,) item id at each row of the store; present items first
    ptr: np.ndarray  # (n_cells + 1,) cell c holds rows ptr[c]:ptr[c + 1]
    centroids: np.ndarray  # (n_cells, f) float32 (unit for angular)
    rows: np.ndarray  # (n,) row of each id: the inverse of row_ids
    present: np.ndarray = field(repr=False)  # (n,) bool, by id: for the check
    path: str = ""  # the file the arrays came from, for error messages
    checked: bool = True  # a loaded file's order is checked once, before its first use
    top_sqnorm: float | None = field(default=None, repr=False)  # largest row |x|^2, once

    def largest_sqnorm(self, sqnorm: np.ndarray) -> float:
        """The largest squared norm of the rows (``sqnorm`` in row order), computed once: it
        bounds the rounding of every scan score (a corrupted, non-finite one counts as 0)."""
        if self.top_sqnorm is None:
            top = float(np.max(sqnorm, initial=0.0)) if len(sqnorm) else 0.0
            self.top_sqnorm = top if math.isfinite(top) else 0.0
        return self.top_sqnorm

    @classmethod
    def ordered(
        cls, row_ids: np.ndarray, ptr: np.ndarray, cent: np.ndarray, present: np.ndarray
    ) -> Cells:
        """Cells of a new build: the inverse map computed here, nothing to check."""
        rows = np.empty(len(row_ids), np.int64)
        rows[row_ids] = np.arange(len(row_ids))
        return cls(row_ids, ptr, cent, rows, present)

    @property
    def n_cells(self) -> int:
        return len(self.ptr) - 1

    @property
    def id_rows(self) -> np.ndarray:
        """Row of each id, after checking (once) that the two maps are inverse permutations
        and the cells hold exactly the present items: a loaded file's maps are trusted only
        then, so no row or id read through them can be out of bounds."""
        if not self.checked:
            n, ids, rows = len(self.row_ids), self.row_ids, self.rows
            ok = n == 0 or (
                min(int(ids.min()), int(rows.min())) >= 0
                and max(int(ids.max()), int(rows.max())) < n
            )
            ok = ok and bool((ids.take(rows) == np.arange(n)).all())
            ok = ok and int(np.count_nonzero(self.present)) == int(self.ptr[-1])
            ok = ok and bool(self.present.take(ids[: self.ptr[-1]]).all())
            if not ok:
                raise IndexFileError(f"{self.path}: corrupted (cell rows are not a permutation)")
            self.checked = True
        return self.rows

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "cell_rows": self.row_ids,
            "item_rows": self.rows,
            "cell_ptr": self.ptr,
            "centroids": self.centroids,
        }

    @classmethod
    def from_arrays(
        cls, path: str, arrays: dict[str, np.ndarray], present: np.ndarray, f: int
    ) -> Cells:
        """Cells of a loaded file; O(cells) checks here, the O(n) one on first use."""
        names = ("cell_rows", "item_rows", "cell_ptr", "centroids")
        ids, rows, ptr, cent = (arrays.get(k) for k in names)
        n = len(present)
        if ids is None or rows is None or ptr is None or cent is None:
            raise IndexFileError(f"{path}: corrupted (cell arrays incomplete)")
        for name, a in (("cell_rows", ids), ("item_rows", rows)):
            if a.dtype.kind != "i" or a.shape != (n,):
                raise IndexFileError(f"{path}: corrupted (array {name!r} is {a.dtype}{a.shape})")
        nc = len(cent)
        if (
            ptr.dtype.kind != "i"
            or ptr.shape != (nc + 1,)
            or cent.dtype.str != "<f4"
            or cent.shape != (nc, f)
            or ptr[0] != 0
            or ptr[-1] > n
            or (np.diff(ptr) < 0).any()
        ):
            raise IndexFileError(f"{path}: corrupted (cell pointers or centroids)")
        return cls(ids, ptr, cent, rows, present, path, checked=False)


def _unit(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    return np.divide(x, np.where(norm > 0, norm, 1)[:, None], out=out)


def _relabel(labels: np.ndarray, n: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels renumbered 0.. in order, none unused (``np.unique``'s inverse without a sort),
    and which of the old labels (at least ``n``) were used."""
    used = np.bincount(labels, minlength=n) > 0
    return (np.cumsum(used) - 1)[labels], used


def _bounds(cell: np.ndarray, nc: int) -> np.ndarray:
    """Where each of the ``nc`` cells' rows start once sorted by cell, then the end."""
    return np.concatenate([[0], np.cumsum(np.bincount(cell, minlength=nc))]).astype(np.int64)


def _tree_cut(forest: Forest, n: int, cap: int) -> np.ndarray:
    """Subtree of tree 0 holding each item, cut where subtrees hold at most ``cap`` items.

    Walks tree 0's nodes level by level (not its items): each node inherits its parent's
    subtree once one is chosen, and the leaves then label their items.
    """
    item_cut = np.zeros(n, np.int64)
    ref = forest.roots[:1].astype(np.int64)
    cut = np.full(1, -1, np.int64)  # -1: no subtree chosen yet above this node
    while len(ref):
        split = ref >= 0
        size = np.zeros(len(ref), np.int64)
        size[split] = forest.counts[ref[split]]
        cut = np.where((cut < 0) & (~split | (size <= cap)), ref + n, cut)  # ids > any leaf's
        leaf = -1 - ref[~split]
        count = forest.leaf_sizes(leaf)
        item_cut[forest.leaf_items[ranges(forest.leaf_ptr[leaf], count)]] = np.repeat(
            cut[~split], count
        )
        ref = forest.children[ref[split]].ravel()
        cut = np.repeat(cut[split], 2)
    return item_cut


def _centroids(
    metric: Metric,
    xt: np.ndarray,
    cell: np.ndarray,
    last: np.ndarray | None = None,
    n_jobs: int = 1,
) -> np.ndarray:
    """Mean (angular: unit mean) of each cell's rows; ``xt`` holds the rows as columns.
    A cell left empty keeps its ``last`` centroid, so cells keep their numbers.

    One bincount per dimension (a thread task each) sums in float64 in item order, so the
    result never depends on threads or blocking.
    """
    nc = int(cell.max(initial=-1)) + 1 if last is None else len(last)

    def column(col: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weights=col, minlength=nc)

    sums = np.stack(thread_map(column, list(xt), n_jobs), axis=1)
    count = np.bincount(cell, minlength=nc)
    if metric.name == "angular":
        cent = _unit(sums).astype(np.float32)
    else:
        cent = (sums / np.maximum(count, 1)[:, None]).astype(np.float32)
    if last is not None:
        cent[count == 0] = last[count == 0]
    return cent


def _transposed(x: np.ndarray, n_jobs: int) -> np.ndarray:
    """``x.T`` contiguous, a block of rows at a time so each block stays in cache (GloVe,
    memory already touched: 33 ms, against 93 ms for one strided copy of all rows)."""
    xt = np.empty(x.shape[::-1], x.dtype)

    def block(lo: int) -> None:
        xt[:, lo : lo + BLOCK] = x[lo : lo + BLOCK].T

    thread_map(block, range(0, len(x), BLOCK), n_jobs)
    return xt


def _centroid_scores(metric: Metric, q: np.ndarray, cent: np.ndarray) -> np.ndarray:
    """Larger is nearer: cosine (times |q|) or q.c - |c|^2 / 2."""
    s = q @ cent.T
    if metric.name == "euclidean":
        s -= 0.5 * np.einsum("ij,ij->i", cent, cent)
    return s


def _nearest(metric: Metric, x: np.ndarray, cent: np.ndarray, n_jobs: int) -> np.ndarray:
    """Nearest centroid of each row."""

    def block(lo: int) -> np.ndarray:
        return np.argmax(_centroid_scores(metric, x[lo : lo + BLOCK], cent), axis=1)

    return np.concatenate(thread_map(block, range(0, len(x), BLOCK), n_jobs))


def _nearest_around(
    metric: Metric, x: np.ndarray, cell: np.ndarray, cent: np.ndarray, n_jobs: int
) -> np.ndarray:
    """Nearest centroid of each row among the `CANDIDATES` nearest its cell's centroid.

    After a first exact round, 1-5% of a GloVe sample miss their nearest centroid this way
    (about 500 cells); the sample rounds only place centroids, so they take this for an
    eighth of the products.  Recall of the cells' probe search measured the same.
    """
    n_cells = len(cent)
    near = _top(_centroid_scores(metric, cent, cent), min(CANDIDATES, n_cells))  # (nc, K)
    half = 0.5 * np.einsum("ij,ij->i", cent, cent)[near] if metric.name == "euclidean" else None
    order = np.argsort(cell, kind="stable")
    ptr = _bounds(cell, n_cells)
    out = np.empty(len(x), np.int64)

    def cells(cs: range) -> None:
        for c in cs:  # per cell (~sqrt(n) rows each), not per row
            rows = order[ptr[c] : ptr[c + 1]]
            s = np.take(x, rows, axis=0) @ cent[near[c]].T
            if half is not None:
                s -= half[c]
            out[rows] = near[c].take(s.argmax(axis=1))

    # whole cells, about BLOCK rows per task, for the threads
    cuts = np.searchsorted(ptr, np.arange(0, len(x), BLOCK))
    cuts = np.unique(np.append(cuts, n_cells)).tolist()
    thread_map(cells, [range(a, b) for a, b in pairwise(cuts)], n_jobs)
    return out


def build_cells(
    metric: Metric,
    store: np.ndarray,
    present: np.ndarray,
    forest: Forest,
    n_jobs: int = 1,
    rows: np.ndarray | None = None,
) -> Cells | None:
    """Cells of the present items (``store`` by id); None for other metrics, no trees or
    no items.  The nearest-centroid passes run on ``n_jobs`` threads (same cells for any).
    ``rows``: the present items' float32 rows, unit for angular, if the caller holds them
    (read only); else they are computed from ``store``."""
    ids = np.flatnonzero(present)
    if metric.name not in METRICS or forest.n_trees == 0 or not len(ids):
        return None
    if rows is not None:
        x = rows
    else:
        x = np.asarray(widen(store[ids]), np.float32)  # a copy: normalized in place
        if metric.name == "angular":
            _unit(x, out=x)
    cap = max(2 * math.ceil(math.sqrt(len(ids))), 1)
    cell, _ = _relabel(_tree_cut(forest, len(store), cap)[ids])
    xt = _transposed(x, n_jobs)  # once: only the labels change between rounds
    cent = _centroids(metric, xt, cell, n_jobs=n_jobs)
    # the rounds move centroids, which an evenly spaced sample places as well as all items
    # do, at a fraction of the products (a full round was ~80% of the cells' time); after
    # the first, a sample row only looks at centroids near its cell's
    stride = max(1, len(ids) // (PER_CELL * len(cent)))
    xs = np.ascontiguousarray(x[::stride])  # np.take would copy a strided view at every call
    xst, cs = np.ascontiguousarray(xt[:, ::stride]), cell[::stride]
    for r in range(ROUNDS):
        if r == 0:  # from the tree's cut, rows scatter widely
            cs = _nearest(metric, xs, cent, n_jobs)
        else:
            cs = _nearest_around(metric, xs, cs, cent, n_jobs)
        cent = _centroids(metric, xst, cs, cent, n_jobs)
    for _ in range(1 + FULL_ROUNDS):  # every item, to its nearest centroid
        cell = _nearest(metric, x, cent, n_jobs)
        cent = _centroids(metric, xt, cell, cent, n_jobs)
    cell, used = _relabel(cell, len(cent))  # cells left empty are dropped
    cent = cent[used]
    order = np.argsort(cell, kind="stable")
    holes = np.flatnonzero(~present)
    ptr = _bounds(cell, len(cent))
    return Cells.ordered(np.concatenate([ids[order], holes]), ptr, cent, present)


def _cell_scores(metric: Metric, s: np.ndarray, sq: np.ndarray) -> np.ndarray:
    """Products ``s`` of queries and rows with squared norms ``sq`` as scores, in place;
    larger is better: cosine (times |q|) or q.x - |x|^2 / 2."""
    if metric.name == "angular":
        # cosine times |q|; a zero row's product is 0 already (rank() puts it at cosine 0)
        np.divide(s, np.sqrt(sq), out=s, where=sq > 0)
    else:
        s -= 0.5 * sq
    return s


def _top(s: np.ndarray, kk: int) -> np.ndarray:
    """Columns of each row's ``kk`` largest (all columns when there are no more)."""
    if s.shape[1] <= kk:
        return np.broadcast_to(np.arange(s.shape[1]), s.shape)
    return np.argpartition(s, -kk, axis=1)[:, -kk:]


def _kk_largest(s: np.ndarray, kk: int, slack: float) -> np.ndarray:
    """Positions of the ``kk`` largest of 1-D ``s``, and of any within ``slack`` of the
    kk-th (ties, or scores whose rounding could hide a better one)."""
    if len(s) <= kk:
        return np.arange(len(s))
    return np.flatnonzero(s >= np.partition(s, len(s) - kk)[len(s) - kk] - slack)


def _top_after_first(s: np.ndarray, kk: int, first: int, slack: float) -> np.ndarray:
    """`_kk_largest` of ``s``, whose ``first`` scores are the nearest cell's: their
    kk-th best bars the rest, so only the few above it (~50 of ~11,000 on GloVe) are
    partitioned; a partition of all took a fifth of a one-query probe."""
    if first <= kk:
        return _kk_largest(s, kk, slack)
    above = np.flatnonzero(s >= np.partition(s[:first], first - kk)[first - kk] - slack)
    return above.take(_kk_largest(s.take(above), kk, slack))


def _for_products(
    store: np.ndarray, q: np.ndarray
) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    """How to read rows for products with the queries, and the queries to use: float16 rows
    as `half_scaled` (a pass fewer than widening, most of a float16 probe's time)
    against queries times ``HALF_SCALE`` give the same products bit for bit (queries of a
    float16 index lie within +-65504, so the scaled ones stay finite)."""
    if store.dtype == np.float16:
        return half_scaled, q * HALF_SCALE
    return widen, q


def _half_products(store: np.ndarray, spans: list[tuple[int, int]], q: np.ndarray) -> np.ndarray:
    """Products of float16 rows ``store[a:z]`` of every span with ``q`` (times ``HALF_SCALE``),
    in span order.  Spans are copied straight into an int32 buffer of ``BLAS_ROWS`` rows
    (the copy is the widening's first pass) and scored a full buffer at a time: the buffer
    stays in cache (GloVe, ``probe=20``: 1,495 one-query probes/s against 1,016 with all rows
    concatenated, then widened at once)."""
    pieces = [(a, min(a + BLAS_ROWS, z)) for a0, z in spans for a in range(a0, z, BLAS_ROWS)]
    out = np.empty(sum(z - a for a, z in pieces), np.float32)
    buf = np.empty((min(BLAS_ROWS, len(out)), store.shape[1]), np.int32)
    done = fill = 0

    def flush() -> None:
        np.matmul(scale_half_bits(buf[:fill]), q, out=out[done : done + fill])

    for a, z in pieces:  # per probed cell (~sqrt(n) rows), not per row
        if fill + z - a > len(buf):
            flush()
            done, fill = done + fill, 0
        np.copyto(buf[fill : fill + z - a], store[a:z].view(np.int16))
        fill += z - a
    flush()
    return out


def _by_cell(qid: np.ndarray, cell: np.ndarray, nc: int) -> Iterator[tuple[int, np.ndarray]]:
    """(cell, ids of the queries that probe it) for each probed cell, in cell order."""
    order = np.argsort(cell, kind="stable")
    qid, cell = qid[order], cell[order]
    bounds = np.searchsorted(cell, np.arange(nc + 1))
    for c in np.flatnonzero(np.diff(bounds)).tolist():  # per cell (~sqrt(n) items), not per item
        yield c, qid[bounds[c] : bounds[c + 1]]


def chunk_size(cells: Cells, probe: int, k: int) -> int:
    """Queries per batch: up to 4,096 (more queries share each cell's product), fewer when
    their kept items (``k + SLACK`` per probed cell) would pass `KEPT_BUDGET`."""
    kept = min(probe, cells.n_cells) * (k + SLACK)
    return max(256, min(4096, KEPT_BUDGET // max(kept, 1)))


def probe_candidates(
    metric: Metric,
    q: np.ndarray,
    store: np.ndarray,
    sqnorm: np.ndarray,
    cells: Cells,
    probe: int,
    k: int,
) -> np.ndarray:
    """Candidate ids (B, M; -1 = none): each query's best ``k + SLACK`` in its ``probe``
    nearest cells, by product score, and any whose score is within twice its rounding bound
    of the ``k + SLACK``-th (points far from the origin: the scores cancel, and rank()
    re-measures the finalists directly).  ``store`` and ``sqnorm`` are in row order."""
    b, nc = len(q), cells.n_cells
    q = np.asarray(q, np.float32)
    q_norm = np.sqrt(np.einsum("ij,ij->i", q, q, dtype=np.float64))
    slack = (2 * metric.score_error(q.shape[1], q_norm, cells.largest_sqnorm(sqnorm))).astype(
        np.float32
    )
    p = min(probe, nc)
    cs = _centroid_scores(metric, q, cells.centroids)
    top = _top(cs, p)
    kk = k + SLACK
    ptr = cells.ptr
    read, qx = _for_products(store, q)
    if b == 1:  # one query: a product per cell, on the rows in place (a gather copies them)
        probed = top[0].copy()
        nearest = int(np.argmax(cs[0].take(probed)))
        probed[[0, nearest]] = probed[[nearest, 0]]  # the nearest cell first: it sets the bar
        lo, hi = ptr[probed], ptr[probed + 1]
        spans = list(zip(lo.tolist(), hi.tolist(), strict=True))
        q0 = qx[0]
        if store.dtype != np.float16:
            s = np.concatenate([store[a:z] @ q0 for a, z in spans])
        else:
            s = _half_products(store, spans, q0)
        s = _cell_scores(metric, s, np.concatenate([sqnorm[a:z] for a, z in spans]))
        pos = _top_after_first(s, kk, int(hi[0] - lo[0]), float(slack[0]))
        start = np.cumsum(hi - lo) - (hi - lo)  # where each cell's scores begin in s
        j = np.searchsorted(start, pos, side="right") - 1
        return cells.row_ids.take(lo.take(j) + pos - start.take(j))[None]
    # many queries: one product per probed cell with every query that probes it.  Each
    # query's nearest cell goes first and sets its bar, the kk-th best score there: in its
    # other cells only items at or above the bar can reach its top kk, found with one
    # comparison instead of a partition of every row (those partitions were half the time)
    got_q: list[np.ndarray] = []
    got_row: list[np.ndarray] = []
    got_s: list[np.ndarray] = []

    def scores(c: int, qs: np.ndarray) -> tuple[int, np.ndarray]:
        lo, hi = int(ptr[c]), int(ptr[c + 1])
        return lo, _cell_scores(metric, qx[qs] @ read(store[lo:hi]).T, sqnorm[lo:hi])

    def keep(qs: np.ndarray, lo: int, s: np.ndarray, above: np.ndarray) -> None:
        at = np.flatnonzero(above)  # ~2x a 2-D nonzero
        r = at // s.shape[1]
        got_q.append(qs.take(r))
        got_row.append(at - r * s.shape[1] + lo)
        got_s.append(s.ravel().take(at))

    def keep_top(qs: np.ndarray, lo: int, s: np.ndarray) -> np.ndarray:
        """Keep each row's kk best and those within its slack of them; return the bars."""
        if s.shape[1] <= kk:
            keep(qs, lo, s, np.ones(s.shape, bool))
            return np.full(len(qs), -np.inf, np.float32)
        floor = np.partition(s, s.shape[1] - kk, axis=1)[:, s.shape[1] - kk] - slack[qs]
        keep(qs, lo, s, s >= floor[:, None])
        return floor

    first = top[np.arange(b), np.take_along_axis(cs, top, axis=1).argmax(axis=1)]
    bar = np.full(b, -np.inf, np.float32)  # stays -inf where the nearest cell has <= kk items
    for c, qs in _by_cell(np.arange(b), first, nc):
        lo, s = scores(c, qs)
        bar[qs] = keep_top(qs, lo, s)
    rest = top != first[:, None]
    for c, qs in _by_cell(np.nonzero(rest)[0], top[rest], nc):
        lo, s = scores(c, qs)
        above = s >= bar[qs, None]
        over = np.count_nonzero(above, axis=1) > kk
        if over.any():  # more than kk above the bar (a low one, or a better cell): partition
            keep_top(qs[over], lo, s[over])
            above[over] = False
        keep(qs, lo, s, above)
    mask, (score, rows) = padded_rows(
        np.concatenate(got_q), b, np.concatenate(got_s), np.concatenate(got_row)
    )
    if score.shape[1] > kk:  # the kk best of each row and those within its slack
        floor = np.partition(score, score.shape[1] - kk, axis=1)[:, score.shape[1] - kk]
        mask &= score >= (floor - slack)[:, None]
    width = max(int(np.count_nonzero(mask, axis=1).max(initial=0)), min(kk, score.shape[1]))
    j = _top(np.where(mask, score, -np.inf), width)
    ids = cells.row_ids.take(np.take_along_axis(rows, j, axis=1))
    return np.where(np.take_along_axis(mask, j, axis=1), ids, -1)
