"""Vectorized forest build: all nodes of a level, across a chunk of trees, per array operation.

Each split is annoy's: the plane midway between two centroids found by a short two-means run on
items of the node, with annoy's distances weighed by the centroids' counts (here a few batch
steps on a random sample instead of 200 single-item steps, which vectorizes across nodes).
Unbalanced splits (more than 95% on one side) are retried up to three times; above 99% after
that the sides are assigned at random, as annoy does.  All random draws are hashes of (seed,
tree, node), so trees do not depend on chunking or threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from . import _hashrng as rng
from ._forest import Forest, concat
from ._forest import ranges as _ranges
from ._forks import can_fork, fork_map
from ._metrics import Metric
from ._threads import thread_map
from ._treespace import TreeSpace

SAMPLE = 128  # items per node that two-means looks at
SMALL_NODE, SMALL_SAMPLE = 400, 48  # nodes of at most SMALL_NODE items look at fewer
# Lloyd steps of two-means.  A fourth step cost 7-11% of a GloVe build for recall within
# 0.007 (search_k 2,000; within 0.002 at 8,000): each step reads every sample block twice
STEPS = 3
ATTEMPTS = 3  # annoy's retries of an unbalanced split
BLOCK = 1 << 14  # rows per vectorized block: its temporaries (~BLOCK * dim * 4 bytes) stay in cache
# rows per block of a scan: the block is read once per tree of the chunk, and its rows with
# their gathered planes (2 x 400 KB for GloVe) stay in a core's L2 from tree to tree (GloVe,
# 10 trees: the scans took 2.0 s with 2,048-row blocks against 2.6-2.8 s with 16,384 on an
# AVX-512 Xeon; session 20's processor read the other way, see docs/benchmarks.md)
SCAN_BLOCK = 1 << 11
MEANS_SAMPLES = 1 << 14  # samples per two-means block (~3 MB for GloVe): they stay in cache
KEY_BLOCKS = 16  # two-means blocks whose sample positions are hashed together
SCAN_SHARE = 0.3  # margins by a scan of all rows while this share of the chunk's items is open
# rows per chunk of trees at most: enough work per array op to hide Python, while the chunk's
# bookkeeping (~100 bytes a row) bounds the build's memory
MAX_ROWS = 1 << 21
# (tree, item) rows from which n_jobs > 1 builds fork (see _forks) rather than use threads: a
# fork and the pipe back cost milliseconds, a build of this many rows ~0.3 s
FORK_ROWS = 1 << 18

# hash "purposes", so different draws of one node never collide
_INIT, _SAMPLE_P, _FLIP, _RANDOM_SIDE, _HAMMING_DIM = 1, 2, 3, 4, 5


class _Chunk:
    """Build state of a chunk of trees: one permutation of the items per tree, cut into nodes."""

    def __init__(self, z: TreeSpace, metric: Metric, trees: np.ndarray, seed: int, leaf: int):
        self.z, self.metric, self.seed, self.leaf = z, metric, np.uint64(seed), leaf
        self.trees = trees.astype(np.uint64)
        n = len(z)
        self.rows = len(trees) * n  # (tree, item) pairs of the chunk
        # int32 positions halve the bookkeeping's memory traffic while they fit
        self.pos_dtype = np.int32 if self.rows < 2**31 else np.int64
        # the items of the open nodes, node after node (leaves leave at once)
        self.perm = np.tile(np.arange(n, dtype=self.pos_dtype), len(trees))
        # per open node: start, length, local tree, heap index, parent split (creation id),
        # side, and place among its level's nodes (for numbering)
        self.len = np.full(len(trees), n, np.int64)
        self.start = self.len.cumsum() - self.len
        self.tree = np.arange(len(trees), dtype=np.int64)
        self.heap = np.ones(len(trees), np.uint64)
        self.parent = np.full(len(trees), -1, np.int64)
        self.side = np.zeros(len(trees), np.int64)
        self.order = np.arange(len(trees), dtype=np.int64)
        self.splits: list[dict[str, np.ndarray]] = []
        self.leaves: list[dict[str, np.ndarray]] = []
        self.n_splits = 0
        self.level = 0
        self._scan: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # scan buffers
        # the scans' slot -> open node map is valid for this level, and what the level's full
        # scan left to carry it to the next: (slot of each item in node order, margin signs)
        self._plane_level = -1
        self._scanned: tuple[np.ndarray, np.ndarray] | None = None
        self._retire(self.perm, self.start)  # roots small enough are leaves already

    def _key(self, nodes: np.ndarray, purpose: int, *extra: np.ndarray | int) -> np.ndarray:
        return rng.keyed(self.seed, self.trees[self.tree[nodes]], self.heap[nodes], purpose, *extra)

    # -- splitting ----------------------------------------------------------------------------
    def _two_means(self, nodes: np.ndarray, attempt: int) -> tuple[np.ndarray, np.ndarray]:
        z, start, ln = self.z, self.start[nodes], self.len[nodes]
        i0 = rng.below(self._key(nodes, _INIT, attempt, 0), ln)
        i1 = (i0 + 1 + rng.below(self._key(nodes, _INIT, attempt, 1), ln - 1)) % ln
        p = z.rows(self.perm[start + i0])
        q = z.rows(self.perm[start + i1])
        small = ln <= SMALL_NODE
        for in_group, size in ((small, SMALL_SAMPLE), (~small, SAMPLE)):
            group = np.flatnonzero(in_group)
            j = np.arange(size, dtype=np.uint64)[None, :]
            step = max(1, MEANS_SAMPLES // size)  # nodes per block
            # the sample positions of many blocks in one hash: the per-call overhead (held GIL)
            # of hashing block by block slowed two threads
            for top in range(0, len(group), KEY_BLOCKS * step):
                gg = group[top : top + KEY_BLOCKS * step]
                key = self._key(nodes[gg, None], _SAMPLE_P, attempt, j)
                pos = start[gg, None] + rng.below(key, ln[gg, None])
                for lo in range(0, len(gg), step):
                    g = gg[lo : lo + step]
                    items = self.perm[pos[lo : lo + step]]
                    p[g], q[g] = self._lloyd(z.rows(items), z.squares(items), p[g], q[g])
        return self.metric.plane(p, q)

    def _lloyd(
        self, s: np.ndarray, ss: np.ndarray | None, p: np.ndarray, q: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Two-means steps on each node's samples ``s`` (A, S, d) from centroids p, q;
        ``ss`` (A, S) are the samples' squared norms when the tree space holds them.

        Annoy weighs each centroid's distance by its count (``ic * d`` in its online steps), so
        the larger side gives up the points in between and splits come out balanced (GloVe
        euclidean: mean leaf depth 13.5 in annoy's trees, 18 without the weights).  In a batch
        step the weights must agree with the counts they produce: a sample goes to p when
        ``d_p / d_q < (1 + n_q) / (1 + n_p)``, so with the ratios sorted, ``n_p`` is where they
        cross ``(1 + S - k) / (1 + k)`` and the ``n_p`` smallest ratios go to p.  Few NumPy
        calls per step: each holds the GIL for its overhead, which two building threads share.
        """
        a, size = s.shape[0], s.shape[1]
        total = np.matmul(np.ones((1, size), np.float32), s)[:, 0]  # BLAS: ~3x s.sum(axis=1)
        if self.metric.name == "manhattan":
            ss = None
        else:
            ss = (np.einsum("asd,asd->as", s, s) if ss is None else ss)[:, None]
        k = np.arange(1, size + 1, dtype=np.float32)
        cross = (1 + size - k) / (1 + k)
        node = np.arange(a)
        c = np.empty((a, 2, s.shape[2]), np.float32)  # both centroids: one product per step
        c[:, 0], c[:, 1] = p, q
        for _ in range(STEPS):
            d = self._sample_distances(s, ss, c)
            d_p, d_q = d[:, 0], d[:, 1]
            ratio = np.where(d_p > 0, np.float32(np.inf), np.float32(1))
            np.divide(d_p, d_q, out=ratio, where=d_q > 0)
            ordered = np.sort(ratio, axis=1)
            taken = (ordered < cross).sum(axis=1)
            last = ordered[node, taken - 1]
            last[taken == 0] = -np.inf  # nothing goes to p
            to_p = (ratio <= last[:, None]).astype(np.float32)
            n_p = to_p.sum(axis=1)[:, None]
            sum_p = np.matmul(to_p[:, None, :], s)[:, 0]
            c[:, 0] += sum_p
            c[:, 0] /= 1 + n_p
            c[:, 1] += total
            c[:, 1] -= sum_p
            c[:, 1] /= 1 + size - n_p
        return c[:, 0], c[:, 1]

    def _sample_distances(self, s: np.ndarray, ss: np.ndarray | None, c: np.ndarray) -> np.ndarray:
        """Distances (A, 2, S) of samples ``s`` (A, S, d) to their node's two centroids ``c``
        (A, 2, d), both in one stacked product (samples last: NumPy's loops run along them);
        ``ss`` (A, 1, S) are the samples' squared norms."""
        if ss is None:
            return self.metric.centroid_distance(s[:, None], c[:, :, None])
        # |s|^2 - 2 s.c + |c|^2: a stacked matmul (one BLAS gemm per node) is ~2.5x einsum here
        cc = np.einsum("acd,acd->ac", c, c)[..., None]
        if self.metric.name in ("angular", "dot"):  # annoy's cosine distance: to the unit centroid
            with np.errstate(divide="ignore", invalid="ignore"):
                c = c / np.where(cc > 0, np.sqrt(cc), np.inf)  # a zero centroid stays zero
            cc = np.float32(1)
        d = np.matmul(c, s.transpose(0, 2, 1))
        d *= -2
        d += ss
        d += cc
        return np.maximum(d, 0, out=d)

    def _hamming_dim(self, nodes: np.ndarray, attempt: int) -> tuple[np.ndarray, np.ndarray]:
        """Annoy's hamming split: a random bit; here the most balanced of a few random bits."""
        f = self.z.f
        tries = 8
        dims = rng.below(self._key(nodes[:, None], _HAMMING_DIM, attempt, np.arange(tries)), f)
        pos = _ranges(self.start[nodes], self.len[nodes])
        owner = np.repeat(np.arange(len(nodes)), self.len[nodes])
        ones = np.zeros((len(nodes), tries), np.int64)
        for t in range(tries):  # a fixed handful of candidates, each vectorized over all items
            bits = self.z.bits(self.perm[pos], dims[owner, t])
            ones[:, t] = np.bincount(owner, weights=bits, minlength=len(nodes))
        balance = np.abs(2 * ones - self.len[nodes][:, None])
        best = dims[np.arange(len(nodes)), balance.argmin(axis=1)]
        normals = np.zeros((len(nodes), 0), np.float32)
        return normals, best.astype(np.float32)

    def _members(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each item of ``nodes`` in node order: its node (index into ``nodes``) and its id."""
        pos = _ranges(self.start[nodes], self.len[nodes])
        return np.repeat(np.arange(len(nodes)), self.len[nodes]), self.perm[pos]

    def _owners(self) -> np.ndarray:
        """The node (index) of every open item: all open nodes are split at once."""
        return np.repeat(np.arange(len(self.len), dtype=self.pos_dtype), self.len)

    def _sides(
        self,
        nodes: np.ndarray,
        members: tuple[np.ndarray, np.ndarray],
        normals: np.ndarray,
        offsets: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Side (0/1) of every item of ``nodes``, in node order, and the count on side 1."""
        owner, items = members
        if self.z.scannable and len(items) >= SCAN_SHARE * self.rows:
            m = self._scan_margins(nodes, owner, items, normals, offsets)
        else:
            m = np.empty(len(items), np.float32)
            for b in range(0, len(items), BLOCK):
                sl = slice(b, b + BLOCK)
                # np.take gathers rows several times faster than fancy indexing
                o = owner[sl]
                m[sl] = self.z.margins(items[sl], np.take(normals, o, axis=0), offsets[o])
        side = m > 0
        if not self.metric.is_hamming:
            tie = np.flatnonzero(m == 0)
            if len(tie):  # annoy flips a coin on the plane
                flip = self._key(nodes[owner[tie]], _FLIP, items[tie]) & np.uint64(1)
                side[tie] = flip.astype(bool)
        # items come node by node, so each node's count is a sum over its run of items
        starts = np.cumsum(self.len[nodes]) - self.len[nodes]
        ones = np.add.reduceat(side.view(np.uint8), starts, dtype=np.int64)
        return side, ones

    def _scan_margins(
        self,
        nodes: np.ndarray,
        owner: np.ndarray,
        items: np.ndarray,
        normals: np.ndarray,
        offsets: np.ndarray,
    ) -> np.ndarray:
        """Signs (int8) of the margins of ``items`` (node order) computed in item order,
        reading rows in place.

        While most items are still in open nodes, scanning the rows in storage order and
        gathering each one's small plane beats gathering every item's row (that gather was the
        build's largest cost); items already in leaves meet a zero plane and are dropped.
        """
        n, z = len(self.z), self.z
        dt = self.pos_dtype
        # (tree, item) -> flat slot; items come node by node
        where = np.repeat((self.tree[nodes] * n).astype(dt), self.len[nodes]) + items
        if self._scan is None:  # kept from level to level: fresh pages cost ~2 ms/MB here
            self._scan = (
                np.empty(self.rows, dt),
                np.empty(self.rows, dt),
                np.empty(self.rows, np.float32),
            )
        plane, _, m = self._scan
        full = len(nodes) == len(self.len)  # every open node (nodes is a sorted subset)
        if not (full and self._plane_level == self.level):
            plane.fill(len(nodes))  # len(nodes): the zero plane
            np.put(plane, where, owner)  # put / take: ~25% faster than fancy indexing here
            self._plane_level = self.level if full else -1
        normals = np.concatenate([normals, np.zeros((1, normals.shape[1]), np.float32)])
        offsets = np.append(offsets, np.float32(0))
        planes = np.empty((min(SCAN_BLOCK, n), normals.shape[1]), np.float32)  # reused
        offs = np.zeros(len(planes), np.float32)
        affine = self.metric.has_offset  # angular and dot planes have no offsets to gather
        for lo in range(0, n, SCAN_BLOCK):
            x = z.block(lo, min(lo + SCAN_BLOCK, n))
            p, off = planes[: len(x)], offs[: len(x)]
            for t in range(len(self.trees)):  # the chunk's trees share each block of rows
                sl = slice(t * n + lo, t * n + lo + len(x))
                o = plane[sl]
                # out= with mode "raise" would buffer the copy; every o is a valid plane
                np.take(normals, o, axis=0, out=p, mode="clip")
                if affine:
                    np.take(offsets, o, out=off, mode="clip")
                z.block_margins(x, lo, p, off, out=m[sl])
        # only the signs matter: gathered as int8, a quarter of the bytes of random reads
        signs = np.take(np.sign(m).astype(np.int8), where)
        self._scanned = (where, signs) if full else None
        return signs

    def _next_planes(self, side: np.ndarray, child: np.ndarray, n_next: int) -> None:
        """Carry the slot -> node map of this level's full scan to the next level's open
        nodes, reading the sides in slot order: a lookup in a small table per slot instead of
        a scatter of every open item's node (random writes over all slots) at each level.

        ``side``: the final sides in node order; ``child``: each node's children (side 0 of
        every node, then side 1) as indices among the ``n_next`` open nodes of the next level,
        ``n_next`` for leaves.
        Called after a full scan of this level, which left the map valid for it.
        """
        where, signs = self._scanned
        plane, spare, m = self._scan
        in_slots = m > 0  # the scan's sides, slot by slot (closed slots read 0: side 0)
        moved = np.flatnonzero(side != (signs > 0))  # ties, retried or random nodes
        in_slots[where[moved]] = side[moved]
        count = len(child) // 2
        table = np.full(2 * count + 2, n_next, plane.dtype)  # closed slots stay closed
        table[0 : 2 * count : 2], table[1 : 2 * count : 2] = child[:count], child[count:]
        np.left_shift(plane, 1, out=spare)
        spare += in_slots
        np.take(table, spare, out=plane, mode="clip")  # every index is valid; "raise" buffers
        self._plane_level = self.level + 1

    def _random_sides(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Balanced random sides for nodes no plane could split (e.g. duplicate points)."""
        ln = self.len[nodes]
        rank = _ranges(np.zeros(len(nodes), np.int64), ln)
        start = rng.below(self._key(nodes, _RANDOM_SIDE), 2)
        side = ((rank + np.repeat(start, ln)) % 2).astype(bool)
        return side, np.bincount(
            np.repeat(np.arange(len(nodes)), ln), weights=side, minlength=len(nodes)
        ).astype(np.int64)

    def _split(
        self, nodes: np.ndarray, members: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        dim = self.z.dim
        normals = np.zeros((len(nodes), dim), np.float32)
        offsets = np.zeros(len(nodes), np.float32)
        ones = np.zeros(len(nodes), np.int64)
        item_base = np.concatenate([[0], np.cumsum(self.len[nodes])])
        todo = np.arange(len(nodes))
        for attempt in range(ATTEMPTS):
            if not len(todo):
                break
            make = self._hamming_dim if self.metric.is_hamming else self._two_means
            nv, no = make(nodes[todo], attempt)
            at = members if attempt == 0 else self._members(nodes[todo])  # retries: a few nodes
            s, o = self._sides(nodes[todo], at, nv, no)
            normals[todo], offsets[todo], ones[todo] = nv, no, o
            if attempt == 0:  # every node (todo starts as all): sides in node order already
                side = s
            else:
                side[_ranges(item_base[todo], self.len[nodes[todo]])] = s
            ln = self.len[nodes[todo]]
            todo = todo[np.maximum(o, ln - o) > 0.95 * ln]
        ln = self.len[nodes[todo]]
        todo = todo[np.maximum(ones[todo], ln - ones[todo]) > 0.99 * ln]
        if len(todo):
            s, o = self._random_sides(nodes[todo])
            normals[todo], offsets[todo], ones[todo] = 0, 0, o
            side[_ranges(item_base[todo], self.len[nodes[todo]])] = s
        return normals, offsets, side, ones

    # -- one level ----------------------------------------------------------------------------
    def step(self) -> bool:
        """Split every open node of the current level; return whether any remain open."""
        if not len(self.len):
            return False
        nodes = np.arange(len(self.len))
        normals, offsets, side, ones = self._split(nodes, (self._owners(), self.perm))
        ids = self.n_splits + nodes
        self.splits.append(
            dict(
                tree=self.tree,
                level=np.full(len(nodes), self.level),
                order=self.order,
                parent=self.parent,
                side=self.side,
                len=self.len,
                normals=normals,
                offsets=offsets,
                id=ids,
            )
        )
        self.n_splits += len(nodes)
        # stable partition inside each node: each tree's items of either side compressed in
        # order leave every child as one run; a tree's side-0 children come first, and trees
        # stay apart, so scans touch one tree's slots at a time (numbering sorts by ``order``)
        zeros = self.len - ones
        bounds = np.searchsorted(self.tree, np.arange(len(self.trees) + 1))
        item_bounds = np.append(self.start, len(self.perm))[bounds]
        tree_zeros = np.bincount(self.tree, zeros, len(self.trees)).astype(np.int64)
        both = np.empty_like(self.perm)
        for a, b, z in zip(item_bounds[:-1], item_bounds[1:], tree_zeros, strict=True):
            if a < b:
                np.compress(~side[a:b], self.perm[a:b], out=both[a : a + z])
                np.compress(side[a:b], self.perm[a:b], out=both[a + z : b])
        first = bounds[self.tree] + nodes  # where each node's side-0 child goes
        dest = np.concatenate([first, first + np.diff(bounds)[self.tree]])

        def children(side0: np.ndarray, side1: np.ndarray) -> np.ndarray:
            out = np.empty(len(dest), side0.dtype)
            out[dest] = np.concatenate([side0, side1])
            return out

        # breadth-first place: a node's children follow its rank among the level's nodes
        rank = np.empty(len(nodes), np.int64)
        rank[np.argsort(self.order)] = nodes
        self.order = children(2 * rank, 2 * rank + 1)
        self.len = children(zeros, ones)
        self.tree = children(self.tree, self.tree)
        with np.errstate(over="ignore"):
            self.heap = children(self.heap * np.uint64(2), self.heap * np.uint64(2) + 1)
        self.parent = children(ids, ids)
        self.side = children(np.zeros(len(nodes), np.int64), np.ones(len(nodes), np.int64))
        if self._scanned is not None:
            keep = self._staying_open()
            n_next = int(np.count_nonzero(keep))
            index = np.where(keep, np.cumsum(keep) - 1, n_next)
            self._next_planes(side, index[dest], n_next)
            self._scanned = None
        self.level += 1
        self._retire(both, self.len.cumsum() - self.len)
        return bool(len(self.len))

    def _staying_open(self) -> np.ndarray:
        """Which nodes of ``self.len`` are too large to be leaves."""
        return self.len > self.leaf

    def _retire(self, items: np.ndarray, starts: np.ndarray) -> None:
        """Record the nodes of ``items`` (runs at ``starts``) small enough to be leaves and
        keep the rest open, their items contiguous in ``self.perm``."""
        keep = self._staying_open()
        lf = np.flatnonzero(~keep)
        if len(lf):
            self.leaves.append(
                dict(
                    tree=self.tree[lf],
                    level=np.full(len(lf), self.level),
                    order=self.order[lf],
                    parent=self.parent[lf],
                    side=self.side[lf],
                    len=self.len[lf],
                    items=items[_ranges(starts[lf], self.len[lf])],
                )
            )
            items = items[np.repeat(keep, self.len)]
            for name in ("len", "tree", "heap", "parent", "side", "order"):
                setattr(self, name, getattr(self, name)[keep])
        self.perm = items
        self.start = self.len.cumsum() - self.len

    def forest(self) -> Forest:
        """Number nodes tree by tree, breadth first, and link children; leaves hold ``z.ids``."""

        def cat(recs: list[dict[str, np.ndarray]], k: str, dtype: type = np.int64) -> np.ndarray:
            return np.concatenate([r[k] for r in recs]) if recs else np.zeros(0, dtype)

        S, L = self.splits, self.leaves
        s_order = np.lexsort((cat(S, "order"), cat(S, "level"), cat(S, "tree")))
        l_order = np.lexsort((cat(L, "order"), cat(L, "level"), cat(L, "tree")))
        split_new = np.empty(len(s_order), np.int64)
        split_new[cat(S, "id")[s_order]] = np.arange(len(s_order))
        n_trees = len(self.trees)
        roots = np.zeros(n_trees, np.int64)
        children = np.zeros((len(s_order), 2), np.int64)
        for recs, refs in ((S, split_new[cat(S, "id")]), (L, -1 - np.argsort(l_order))):
            if not recs:
                continue
            parent, side, tree = cat(recs, "parent"), cat(recs, "side"), cat(recs, "tree")
            top = parent < 0
            roots[tree[top]] = refs[top]
            children[split_new[parent[~top]], side[~top]] = refs[~top]
        leaf_len = cat(L, "len")[l_order]
        items = cat(L, "items")
        item_start = np.concatenate([[0], np.cumsum(cat(L, "len"))[:-1]]).astype(np.int64)
        leaf_items = items[_ranges(item_start[l_order], leaf_len)]
        ids = self.z.ids
        if not self.z.dense:  # items are 0..n-1: label them with their ids
            leaf_items = ids[leaf_items]
        # int32 while ids fit, as files store them: half the bytes to join, send and save
        id_type = np.int32 if len(ids) == 0 or ids[-1] < 2**31 else np.int64
        normals = (
            np.concatenate([r["normals"] for r in S])
            if S
            else np.zeros((0, self.z.dim), np.float32)
        )
        return Forest(
            normals=np.ascontiguousarray(normals[s_order], dtype=np.float32),
            offsets=cat(S, "offsets", np.float32)[s_order].astype(np.float32),
            children=children,
            counts=cat(S, "len")[s_order],
            leaf_ptr=np.concatenate([[0], np.cumsum(leaf_len)]).astype(np.int64),
            leaf_items=leaf_items.astype(id_type, copy=False),
            roots=roots,
        )


def build_trees(
    z: TreeSpace,
    metric: Metric,
    trees: Sequence[int] | np.ndarray,
    seed: int,
    leaf_size: int,
    n_jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Forest:
    """Build the trees numbered ``trees`` over the items of ``z`` (labelled ``z.ids``).

    Tree ``t`` depends only on (data, metric, seed, t, leaf_size), so any grouping of tree
    numbers, in any thread or process, yields the same arrays once joined in tree order.
    ``progress(n)`` is called with the number of trees finished by each chunk.
    """
    trees = np.asarray(trees, dtype=np.int64)
    normal_dim = z.dim
    chunks = _chunks(trees, len(z), n_jobs)

    def one(chunk: np.ndarray) -> Forest:
        state = _Chunk(z, metric, chunk, seed, leaf_size)
        while state.step():
            pass
        return state.forest()

    def done(chunk: np.ndarray) -> None:
        if progress is not None:
            progress(len(chunk))

    def built(chunk: np.ndarray) -> Forest:  # threads report each chunk as it finishes
        forest = one(chunk)
        done(chunk)
        return forest

    if n_jobs > 1 and len(chunks) > 1 and len(trees) * len(z) >= FORK_ROWS and can_fork():
        parts = fork_map(one, chunks, n_jobs, Forest, done)
    else:
        parts = thread_map(built, chunks, n_jobs)
    return concat(parts, normal_dim)


def _chunks(trees: np.ndarray, n: int, n_jobs: int) -> list[np.ndarray]:
    """``trees`` in chunks of consecutive trees, each built by one thread: as few as
    ``MAX_ROWS`` allows, in whole rounds of ``n_jobs`` so no thread idles, of sizes within one
    tree of each other."""
    if not len(trees):
        return []
    most = int(np.clip(MAX_ROWS // max(n, 1), 1, 256))
    count = -(-len(trees) // most)
    count = min(len(trees), -(-count // n_jobs) * n_jobs)
    return np.array_split(trees, count)
