"""Annoy's headerless ``.ann`` files: read them into the forest arrays, write them for annoy 1.17.3.

An ``.ann`` file is an array of fixed-size nodes (see ``docs/file-format.md``): item ``i`` is
node ``i``, the tree nodes follow, and a copy of every root closes the file.  It carries no f
and no metric, so both come from the `AnnoyIndex` that loads it.

Reading memory-maps the file and serves the item vectors in place (a strided view, shared by
every process that maps the file); the trees are converted once into the flat forest arrays
(one vectorized pass per tree level).  Leaves are numbered by decreasing annoy node id, so the
core's tie rule (equal priority: smaller leaf id first) is annoy's (equal priority: larger node
id first), and a query answers exactly as annoy does for every ``search_k``.

Writing turns any forest into annoy's shape: a leaf may hold at most ``K`` ids, a split must hold
more than ``K`` items (annoy tells them apart by that count) and, when the index has more than
``K`` ids, every root is a split.  Subtrees of at most ``K`` items become one leaf and larger
leaves are cut into balanced subtrees along the direction between two of their items.  With
``leaf_size == K`` no tree changes shape, and annoy answers exactly as this index for every
``search_k``; otherwise the answers agree when the search is exhaustive.
"""

from __future__ import annotations

import hashlib
import itertools
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._atomic import replace_atomically
from ._errors import IndexFileError
from ._fileformat import close_map
from ._forest import Forest
from ._forest import ranges as _ranges
from ._loader import check_values
from ._metrics import unpack_bits, words_for_bits

if TYPE_CHECKING:
    from ._index import AnnoyIndex

MAX_DEPTH = 4096  # annoy keeps every child under 99% of its parent: depth < 2200 for 2**31 items
MAX_NODES = 2**31 - 1  # annoy's node ids are int32


@dataclass(frozen=True)
class Layout:
    """Byte layout of one annoy node for a metric and f (annoy 1.17.3, little-endian)."""

    size: int  # bytes per node
    children: int  # offset of children[2] / the leaf's item ids
    v: int  # offset of the vector
    width: int  # vector entries: f floats, or ceil(f / 64) uint64 words for hamming
    dtype: str  # "<f4" or "<u8"

    @property
    def K(self) -> int:
        """Most item ids a leaf holds: the bytes from ``children`` to the end of the node."""
        return (self.size - self.children) // 4


def layout(metric: str, f: int) -> Layout:
    """Annoy's node layout for ``metric`` and ``f``."""
    if metric == "angular":  # n_descendants, children[2] (items: the squared norm), v
        return Layout(12 + 4 * f, 4, 12, f, "<f4")
    if metric in ("euclidean", "manhattan"):  # n_descendants, a, children[2], v
        return Layout(16 + 4 * f, 8, 16, f, "<f4")
    if metric == "dot":  # n_descendants, children[2], dot_factor, v  (1.17.3 layout)
        return Layout(16 + 4 * f, 4, 16, f, "<f4")
    w = words_for_bits(f)  # hamming: n_descendants, children[2], 4 bytes padding, v words
    return Layout(16 + 8 * w, 4, 16, w, "<u8")


def _field(
    buf: Any, n: int, lay: Layout, offset: int, dtype: str, width: int | None = None
) -> np.ndarray:
    """A strided view of one node field over ``n`` nodes of ``buf`` (no copy).

    Viewed through ``np.frombuffer``, which holds the map's buffer export while any view lives:
    ``np.ndarray(buffer=mm)`` did not, so unloading unmapped pages a query was still reading
    (a segfault), where a held map must refuse to close until its last view goes.
    """
    dt = np.dtype(dtype)
    base = buf if isinstance(buf, np.ndarray) else np.frombuffer(buf, np.uint8)
    if width is None:
        return np.ndarray((n,), dt, buffer=base, offset=offset, strides=(lay.size,))
    return np.ndarray((n, width), dt, buffer=base, offset=offset, strides=(lay.size, dt.itemsize))


class AnnFile:
    """The open ``.ann`` file behind a loaded index: its path, its map, a lazy content hash."""

    def __init__(
        self, path: str, mm: mmap.mmap, size: int, mtime_ns: int, info: dict[str, Any]
    ) -> None:
        self.path, self.size, self.mtime_ns = path, size, mtime_ns
        self._mm: mmap.mmap | None = mm
        self._info = info
        self._hash: str | None = None

    @property
    def fields(self) -> dict[str, Any]:
        """Manifest-like facts; ``content_hash`` (of the whole file) is computed on first use."""
        if self._hash is None and self._mm is not None:
            self._hash = hashlib.blake2b(self._mm, digest_size=16).hexdigest()
        return {**self._info, "format": "annoy", "format_version": None, "content_hash": self._hash}

    def close(self) -> None:
        close_map(self._mm)
        self._mm = None


# -- reading ---------------------------------------------------------------------------------
def read_ann(index: AnnoyIndex, path: str, prefault: bool = False) -> dict[str, Any]:
    """The state of ``index`` (its f and metric) serving annoy's ``.ann`` file at ``path``,
    memory-mapped; the caller swaps it in.

    Called by `AnnoyIndex.load` for files without the native magic.

    Parameters
    ----------
    index : AnnoyIndex
        The index to fill; its ``f`` and metric must be the ones the file was built with.
    path : str
        The ``.ann`` file.
    prefault : bool
        Ask the OS to read the whole file ahead.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    IndexFileError
        The file is not a valid annoy index of this f and metric (size, pointers, cycles).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from annoy_adapters import AnnoyIndex
    >>> src = AnnoyIndex(3, "angular")
    >>> _ = src.add_items(np.eye(3))
    >>> _ = src.build(2)
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.ann")
    >>> _ = src.export_annoy(path)
    >>> index = AnnoyIndex(3, "angular")
    >>> index.load(path)  # calls read_ann
    True
    >>> index.get_nns_by_vector([1.0, 0.1, 0.0], 1)
    [0]
    """
    path = os.fspath(path)
    metric, f = index._metric.name, index.f
    lay = layout(metric, f)
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        size = st.st_size

        def bad(why: str) -> IndexFileError:
            return IndexFileError(
                f"{path}: not a valid annoy index for f={f}, metric={metric!r}: {why} (annoy "
                ".ann files have no header, so f and metric must be the ones it was built with)"
            )

        if size == 0:
            raise bad("the file is empty")
        if size % lay.size:
            raise bad(f"its size {size} is not a multiple of the node size {lay.size}")
        if size // lay.size > MAX_NODES:
            raise bad(f"it holds {size // lay.size} nodes, more than annoy's int32 ids allow")
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if prefault and hasattr(mm, "madvise"):
        mm.madvise(mmap.MADV_WILLNEED)
    try:
        state = _convert(mm, lay, metric, f, size // lay.size, bad)
    except BaseException:
        try:
            mm.close()
        except BufferError:
            pass
        raise
    info = {
        "f": f,
        "metric": metric,
        "n_items": state["_n"],
        "n_trees": state["_forest"].n_trees,
        "leaf_size": lay.K,
    }
    state["_mapped"] = AnnFile(path, mm, size, st.st_mtime_ns, info)
    try:  # one NaN in the norms emptied every euclidean answer, as in a native file
        check_values(path, index._metric, f, state["_store"], state["_sqnorm"])
    except BaseException:
        state["_mapped"].close()
        raise
    return state


def _convert(
    mm: mmap.mmap, lay: Layout, metric: str, f: int, n_nodes: int, bad: Any
) -> dict[str, Any]:
    """Index state for the nodes in ``mm``: annoy's root scan, then the trees level by level."""
    K = lay.K
    nd = _field(mm, n_nodes, lay, 0, "<i4")
    ids = _field(mm, n_nodes, lay, lay.children, "<i4", K)  # children, or a leaf's item ids
    # annoy's load(): the roots are the run of nodes at the end with the last node's count
    m = int(nd[-1])
    differ = np.flatnonzero(nd[::-1] != m)
    run = int(differ[0]) if len(differ) else n_nodes
    roots = np.arange(n_nodes - 1, n_nodes - 1 - run, -1, dtype=np.int64)
    if len(roots) > 1 and ids[roots[0], 0] == ids[roots[-1], 0]:
        roots = roots[:-1]  # the last tree's original root sits just before the copies
    if not 0 <= m <= n_nodes:
        raise bad(f"the last node claims {m} items but the file holds {n_nodes} nodes")
    n = m
    slots = nd[:n]
    wrong = np.flatnonzero((slots != 0) & (slots != 1))
    if len(wrong):
        i = int(wrong[0])
        raise bad(f"item slot {i} has n_descendants {int(slots[i])} (items have 1, unused ids 0)")
    present = slots == 1

    # walk all trees at once, level by level; splits get ids in visiting order
    seen = np.zeros(n_nodes, bool)
    frontier = roots
    parents: list[np.ndarray] = []  # per level: parent split id (-1: a root) and side
    sides: list[np.ndarray] = []
    refs: list[np.ndarray] = []  # per level: split id, or -1 - leaf entry
    split_nodes: list[np.ndarray] = []
    leaf_nodes: list[np.ndarray] = []
    leaf_is_item: list[np.ndarray] = []
    parent = np.full(len(roots), -1, np.int64)
    side = np.zeros(len(roots), np.int64)
    n_split = n_entry = depth = 0
    while len(frontier):
        depth += 1
        if depth > MAX_DEPTH:
            raise bad(f"a tree is deeper than {MAX_DEPTH} levels")
        k = nd[frontier]
        is_item = (k == 1) & (frontier < n)  # annoy's test, in its order: item, leaf, split
        is_split = (k > K) & ~is_item
        if (k[~is_split] < 0).any():
            raise bad("a tree node has a negative n_descendants")
        # every split and non-empty leaf belongs to one tree once: no cycles, no blow-up
        once = frontier[~is_item & (k > 0)]
        if seen[once].any() or len(np.unique(once)) != len(once):
            raise bad("the trees share or revisit nodes")
        seen[once] = True
        sp = frontier[is_split]
        lf = ~is_split
        ref = np.empty(len(frontier), np.int64)
        ref[is_split] = n_split + np.arange(len(sp))
        ref[lf] = -1 - (n_entry + np.arange(int(lf.sum())))
        n_split += len(sp)
        n_entry += int(lf.sum())
        parents.append(parent)
        sides.append(side)
        refs.append(ref)
        split_nodes.append(sp)
        leaf_nodes.append(frontier[lf])
        leaf_is_item.append(is_item[lf])
        children = ids[sp, :2].astype(np.int64)
        if children.size and ((children < 0) | (children >= n_nodes)).any():
            raise bad("a split points outside the file")
        parent = np.repeat(ref[is_split], 2)
        side = np.tile(np.array([0, 1], np.int64), len(sp))
        frontier = children.reshape(-1)

    # leaves: by decreasing annoy id, so equal priorities break ties as annoy's heap does
    ent_node = np.concatenate(leaf_nodes)
    ent_item = np.concatenate(leaf_is_item)
    order = np.argsort(-ent_node, kind="stable")
    leaf_id = np.empty(len(order), np.int64)
    leaf_id[order] = np.arange(len(order))
    nodes, items_flag = ent_node[order], ent_item[order]
    sizes = np.where(items_flag, 1, nd[nodes]).astype(np.int64)
    ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    total = int(ptr[-1])
    rows = np.repeat(nodes, sizes)
    cols = np.arange(total, dtype=np.int64) - np.repeat(ptr[:-1], sizes)
    vals = np.where(np.repeat(items_flag, sizes), rows, ids[rows, cols]).astype(np.int64)
    if total and ((vals < 0) | (vals >= n)).any():
        raise bad(f"a leaf holds an id outside 0..{n - 1}")
    if total and not present[vals].all():
        vals, sizes = _drop_holes(vals, sizes, present)
        ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    # children and roots as forest references
    children_ref = np.zeros((n_split, 2), np.int64)
    root_ref = np.zeros(0, np.int64)
    for level, (par, sd, ref) in enumerate(zip(parents, sides, refs, strict=True)):
        ref = np.where(ref >= 0, ref, -1 - leaf_id[np.maximum(-1 - ref, 0)])
        if level == 0:
            root_ref = ref
        else:
            children_ref[par, sd] = ref

    sp = np.concatenate(split_nodes)
    normals, offsets = _split_planes(mm, lay, metric, f, n_nodes, sp, bad)
    forest = Forest(
        normals=normals,
        offsets=offsets,
        children=children_ref,
        counts=nd[sp].astype(np.int64),
        leaf_ptr=ptr,
        leaf_items=vals,
        roots=root_ref,
    )
    store = _field(mm, n_nodes, lay, lay.v, lay.dtype, lay.width)[:n]
    if metric == "hamming" and f % 64 and n:
        # annoy sets no item bit at or beyond f (LSB first): a set one means the file's f is
        # larger, which the node size cannot tell while both fit the same words
        beyond = ~np.uint64((1 << (f % 64)) - 1)
        if (store[:, -1][present] & beyond).any():
            raise bad(f"an item sets a bit beyond f={f} (the file was built with a larger f)")
    return {
        "_store": store,
        "_present": present,
        "_n": n,
        "_n_present": int(present.sum()),
        "_sqnorm": _sqnorm(mm, lay, metric, n_nodes, store, present),
        "_forest": forest,
        "_labels": None,
        "_label_index": None,
        "_label_arrays": None,
        "_metadata": {},
        "leaf_size": max(K, 2),
    }


def _drop_holes(
    vals: np.ndarray, sizes: np.ndarray, present: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unused ids in leaves (annoy skips them): reuse an id of the same leaf, else drop them."""
    leaf_of = np.repeat(np.arange(len(sizes)), sizes)
    ok = present[vals]
    pos = np.where(ok, np.arange(len(vals)), len(vals))
    first = np.full(len(sizes), len(vals), np.int64)
    np.minimum.at(first, leaf_of, pos)  # rare path (a root leaf of a tiny index with holes)
    fix = ~ok & (first[leaf_of] < len(vals))
    vals = vals.copy()
    vals[fix] = vals[first[leaf_of[fix]]]
    keep = ok | fix
    return vals[keep], np.bincount(leaf_of[keep], minlength=len(sizes)).astype(np.int64)


def _split_planes(
    mm: mmap.mmap, lay: Layout, metric: str, f: int, n_nodes: int, sp: np.ndarray, bad: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Normals and offsets of the split nodes ``sp`` in the forest's convention."""
    if metric == "hamming":
        bit = _field(mm, n_nodes, lay, lay.v, "<u8")[sp].astype(np.uint64)
        if len(bit) and (bit >= np.uint64(64 * lay.width)).any():
            raise bad("a hamming split tests a bit beyond the vector")
        b = bit.astype(np.int64)
        dims = 64 * (b // 64) + 63 - b % 64  # annoy tests bit 63 - b % 64 of word b // 64
        return np.zeros((len(sp), 0), np.float32), dims.astype(np.float32)
    v = _field(mm, n_nodes, lay, lay.v, "<f4", f)[sp]
    if metric in ("euclidean", "manhattan"):
        return v, np.array(_field(mm, n_nodes, lay, 4, "<f4")[sp])
    if metric == "dot":
        df = _field(mm, n_nodes, lay, 12, "<f4")[sp]
        with np.errstate(over="ignore", invalid="ignore"):
            return np.hstack([v, df[:, None]]), (df * df).astype(np.float32)
    return v, np.zeros(len(sp), np.float32)


def _sqnorm(
    mm: mmap.mmap, lay: Layout, metric: str, n_nodes: int, store: np.ndarray, present: np.ndarray
) -> np.ndarray | None:
    if metric == "angular":  # annoy keeps each item's squared norm in the node (0: compute it)
        norm = _field(mm, n_nodes, lay, 4, "<f4")[: len(store)]
        if not (present & (norm == 0)).any():
            return norm
        with np.errstate(over="ignore", invalid="ignore"):
            own = np.einsum("ij,ij->i", store, store, dtype=np.float32)
        return np.where(norm == 0, own, norm).astype(np.float32)
    if metric == "euclidean":
        with np.errstate(over="ignore", invalid="ignore"):
            return np.einsum("ij,ij->i", store, store, dtype=np.float32)
    return None


# -- writing ---------------------------------------------------------------------------------
def write_ann(index: AnnoyIndex, path: str) -> None:
    """Write ``index`` as an annoy 1.17.3 ``.ann`` file, atomically (temp file, fsync, rename).

    Called by `AnnoyIndex.export_annoy`.  Labels and metadata are not kept (annoy's file
    has no room for them); leaves larger than annoy's ``K`` are cut into subtrees.

    Parameters
    ----------
    index : AnnoyIndex
        A built index with at least one item and ids below 2**31.
    path : str
        Where to write; an existing file is replaced atomically.

    Raises
    ------
    RuntimeError
        The index is not built.
    ValueError
        The index has no items or ids beyond annoy's int32 range.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from annoy_adapters import AnnoyIndex
    >>> index = AnnoyIndex(2, "euclidean")
    >>> _ = index.add_items(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]))
    >>> _ = index.build(3)
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.ann")
    >>> index.export_annoy(path)  # calls write_ann; annoy.AnnoyIndex(2, "euclidean") loads it
    True
    >>> os.path.getsize(path) % (16 + 4 * 2)  # whole annoy nodes
    0
    """
    forest = index._require_built("export to annoy's format")
    metric, f, n = index._metric, index.f, index._n
    if index._n_present == 0:
        raise ValueError("cannot export an index without items: annoy cannot load one")
    if n + 2 > MAX_NODES:
        raise ValueError(f"annoy's ids are int32: cannot export {n} items")
    lay = layout(metric.name, f)
    shaped = _annoy_shape(index, forest, lay.K)
    _serialize(index, shaped, lay, Path(path))


def _levels(forest: Forest) -> list[np.ndarray]:
    """Split ids of each tree level, top down."""
    out = []
    frontier = forest.roots[forest.roots >= 0]
    while len(frontier):
        out.append(frontier)
        c = forest.children[frontier].reshape(-1)
        frontier = c[c >= 0]
    return out


def _annoy_shape(index: AnnoyIndex, forest: Forest, K: int) -> Forest:
    """The forest with annoy's constraints: leaves <= K items, splits > K, roots split if n > K.

    ``counts`` of the result are annoy's n_descendants (the number of ids for roots).
    """
    n_items = index._n
    force_root = n_items > K
    lsz = np.diff(forest.leaf_ptr).astype(np.int64)
    levels = _levels(forest)
    size = np.zeros(forest.n_splits, np.int64)
    for lvl in reversed(levels):
        c = forest.children[lvl]
        size[lvl] = np.where(c >= 0, size[np.maximum(c, 0)], lsz[np.maximum(-1 - c, 0)]).sum(1)
    is_root = np.zeros(forest.n_splits, bool)
    is_root[forest.roots[forest.roots >= 0]] = True
    kept = (size > K) | (is_root & force_root)

    # every node that does not stay a split belongs to one leaf "unit": its own, or that of the
    # topmost collapsed split above it
    n_units = 0
    group_split = np.full(forest.n_splits, -1, np.int64)
    unit_of_leaf = np.full(forest.n_leaves, -1, np.int64)
    for lvl in levels:
        top = lvl[~kept[lvl] & (group_split[lvl] < 0)]
        group_split[top] = n_units + np.arange(len(top))
        n_units += len(top)
        c = forest.children[lvl]
        g = np.where(kept[lvl], -1, group_split[lvl])[:, None].repeat(2, axis=1)
        group_split[c[c >= 0]] = g[c >= 0]
        unit_of_leaf[-1 - c[c < 0]] = g[c < 0]
    own = np.flatnonzero(unit_of_leaf < 0)  # leaves under kept splits, and root leaves
    unit_of_leaf[own] = n_units + np.arange(len(own))
    n_units += len(own)

    # items of every unit, units ordered by their first (smallest) original leaf
    by_unit = np.lexsort((np.arange(forest.n_leaves), unit_of_leaf))
    u_sorted = unit_of_leaf[by_unit]
    u_size = np.bincount(u_sorted, weights=lsz[by_unit], minlength=n_units).astype(np.int64)
    first_leaf = np.full(n_units, forest.n_leaves, np.int64)
    np.minimum.at(first_leaf, unit_of_leaf, np.arange(forest.n_leaves))
    starts = forest.leaf_ptr[by_unit]
    pool = forest.leaf_items[_ranges(starts, lsz[by_unit])].astype(np.int64)
    u_start = np.concatenate([[0], np.cumsum(u_size)[:-1]]).astype(np.int64)

    def ref_of(old: np.ndarray) -> np.ndarray:
        """New references of original ones: kept split -> new split id, else -1 - unit."""
        s = np.maximum(old, 0)
        pad = np.zeros(1, np.int64)  # lookups stay in range when there are no splits
        kp, nw, gs = (np.concatenate([a, pad]) for a in (kept, new_id, group_split))
        return np.where(
            old >= 0, np.where(kp[s], nw[s], -1 - gs[s]), -1 - unit_of_leaf[np.maximum(-1 - old, 0)]
        )

    kept_ids = np.concatenate(levels) if levels else np.zeros(0, np.int64)
    kept_ids = kept_ids[kept[kept_ids]]
    new_id = np.full(forest.n_splits, -1, np.int64)
    new_id[kept_ids] = np.arange(len(kept_ids))
    sp_normals = [np.asarray(forest.normals[kept_ids])]
    sp_offsets = [np.asarray(forest.offsets[kept_ids])]
    sp_children = [ref_of(forest.children[kept_ids])]
    sp_counts = [np.where(is_root[kept_ids], n_items, size[kept_ids])]
    roots = ref_of(forest.roots)
    n_split = len(kept_ids)

    # cut oversized units (and root units when the roots must split) into balanced halves
    unit_ref = np.full(n_units, 1, np.int64)  # >= 1: still a leaf; <= 0: -split id
    key1 = first_leaf.astype(np.float64)
    key2 = np.zeros(n_units)
    u_depth = np.zeros(n_units, np.int64)
    root_unit = np.zeros(n_units, bool)
    root_unit[-1 - roots[roots < 0]] = True
    while True:
        todo = np.flatnonzero((unit_ref > 0) & ((u_size > K) | (root_unit & force_root)))
        if not len(todo):
            break
        normal, offset, half = _cut(index, pool, u_start[todo], u_size[todo])
        ids = n_split + np.arange(len(todo))
        c0 = n_units + 2 * np.arange(len(todo))
        sp_normals.append(normal)
        sp_offsets.append(offset)
        sp_children.append(np.stack([-1 - c0, -2 - c0], axis=1))
        sp_counts.append(np.where(root_unit[todo], n_items, u_size[todo]))
        unit_ref[todo] = -ids
        n_split += len(todo)
        n_units += 2 * len(todo)
        kids_start = np.stack([u_start[todo], u_start[todo] + half], axis=1).reshape(-1)
        kids_size = np.stack([half, u_size[todo] - half], axis=1).reshape(-1)
        step = 0.5 ** (u_depth[todo] + 1)
        u_start = np.concatenate([u_start, kids_start])
        u_size = np.concatenate([u_size, kids_size])
        unit_ref = np.concatenate([unit_ref, np.ones(2 * len(todo), np.int64)])
        key1 = np.concatenate([key1, key1[todo].repeat(2)])
        key2 = np.concatenate([key2, np.stack([key2[todo], key2[todo] + step], 1).reshape(-1)])
        u_depth = np.concatenate([u_depth, (u_depth[todo] + 1).repeat(2)])
        root_unit = np.concatenate([root_unit, np.zeros(2 * len(todo), bool)])

    leaves = np.flatnonzero(unit_ref > 0)
    leaves = leaves[np.lexsort((key2[leaves], key1[leaves]))]
    leaf_id = np.full(n_units, -1, np.int64)
    leaf_id[leaves] = np.arange(len(leaves))

    def resolve(r: np.ndarray) -> np.ndarray:
        u = np.maximum(-1 - r, 0)
        return np.where(r >= 0, r, np.where(unit_ref[u] <= 0, -unit_ref[u], -1 - leaf_id[u]))

    size_out = u_size[leaves]
    return Forest(
        normals=np.concatenate(sp_normals).astype(np.float32),
        offsets=np.concatenate(sp_offsets).astype(np.float32),
        children=resolve(np.concatenate(sp_children)),
        counts=np.concatenate(sp_counts).astype(np.int64),
        leaf_ptr=np.concatenate([[0], np.cumsum(size_out)]).astype(np.int64),
        leaf_items=pool[_ranges(u_start[leaves], size_out)],
        roots=resolve(roots),
    )


CUT_ROWS = 1 << 17  # items per block of _cut: bounds its temporaries to ~CUT_ROWS * f floats


def _cut(
    index: AnnoyIndex, pool: np.ndarray, start: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split each segment ``pool[start:start + size]`` in two halves along a plane.

    Reorders the segments in place (side 0 first) and returns the planes and the half sizes.
    Non-hamming: the direction between the segment's first item and the item farthest from it,
    halves by projection (euclidean/manhattan also put the plane between the halves).
    Hamming: the bit closest to half set, items with it set last.  Works in blocks of whole
    segments of about ``CUT_ROWS`` items.
    """
    ends = np.cumsum(size)
    cuts = np.searchsorted(ends, np.arange(CUT_ROWS, int(ends[-1]), CUT_ROWS), side="left")
    bounds = np.unique(np.concatenate([[0], cuts + 1, [len(size)]]).clip(0, len(size)))
    parts = [_cut_block(index, pool, start[a:b], size[a:b]) for a, b in itertools.pairwise(bounds)]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]


def _cut_block(
    index: AnnoyIndex, pool: np.ndarray, start: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    metric, f = index._metric, index.f
    seg = np.repeat(np.arange(len(start)), size)
    pos = _ranges(start, size)
    items = pool[pos]
    head = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    if metric.is_hamming:
        bits = unpack_bits(index._stored(items), f)
        ones = np.add.reduceat(bits.astype(np.int64), head, axis=0)  # segments are non-empty
        dim = np.argmin(np.abs(2 * ones - size[:, None]), axis=1)
        proj = bits[np.arange(len(items)), dim[seg]].astype(np.float32)
        normal = np.zeros((len(start), 0), np.float32)
        offset = dim.astype(np.float32)
    else:
        x = index._stored(items).astype(np.float32)
        if metric.name == "angular":
            nrm = np.sqrt(np.einsum("ij,ij->i", x, x))
            x /= np.where(nrm > 0, nrm, 1)[:, None]
        d = x - np.repeat(x[head], size, axis=0)
        far = np.lexsort((np.einsum("ij,ij->i", d, d), seg))[np.cumsum(size) - 1]
        del d
        v = x[head] - x[far]
        nv = np.sqrt(np.einsum("ij,ij->i", v, v))
        v = (v / np.where(nv > 0, nv, 1)[:, None]).astype(np.float32)
        proj = np.einsum("ij,ij->i", x, np.repeat(v, size, axis=0))
        normal = v
        if metric.name == "dot":  # the extra coordinate's weight: queries have 0 there
            normal = np.hstack([v, np.zeros((len(v), 1), np.float32)])
        offset = np.zeros(len(start), np.float32)
    order = np.lexsort((np.arange(len(items)), proj, seg))
    pool[pos] = items[order]
    half = size // 2
    if metric.has_offset:
        ps = proj[order]
        hi = ps[head + half]
        lo = np.where(half > 0, ps[head + np.maximum(half - 1, 0)], hi - 1)
        offset = (-(lo + hi) / 2).astype(np.float32)
    return normal, offset, half


def _serialize(index: AnnoyIndex, g: Forest, lay: Layout, path: Path) -> None:
    """Write the annoy-shaped forest ``g`` and the items as annoy's node array."""
    n = index._n
    n_leaves, n_splits, n_trees = g.n_leaves, g.n_splits, g.n_trees
    # node order: every parent after its children, and leaves by decreasing forest id, so that
    # annoy's heap (ties: larger id first) pops leaves in the core's order (ties: smaller first)
    rank = (n_leaves - 1 - np.arange(n_leaves)).astype(np.int64)
    levels = _levels(g)
    key = np.zeros(n_splits, np.int64)
    depth = np.zeros(n_splits, np.int64)
    for d, lvl in enumerate(levels):
        depth[lvl] = d
    for lvl in reversed(levels):
        c = g.children[lvl]
        key[lvl] = np.where(c >= 0, key[np.maximum(c, 0)], rank[np.maximum(-1 - c, 0)]).max(1)
    order = np.lexsort(
        (
            np.concatenate([np.zeros(n_leaves, np.int64), -depth]),
            np.concatenate([np.zeros(n_leaves, np.int64), np.ones(n_splits, np.int64)]),
            np.concatenate([rank, key]),
        )
    )
    aid = np.empty(n_leaves + n_splits, np.int64)
    aid[order] = n + np.arange(n_leaves + n_splits)
    leaf_aid, split_aid = aid[:n_leaves], aid[n_leaves:]

    def annoy_ref(r: np.ndarray) -> np.ndarray:
        sa = np.concatenate([split_aid, [0]])  # lookups stay in range when there are no splits
        return np.where(r >= 0, sa[np.maximum(r, 0)], leaf_aid[np.maximum(-1 - r, 0)])

    root_aid = annoy_ref(g.roots)
    total = n + n_leaves + n_splits + 2 + n_trees  # + a zero separator and the last root twice
    if total > MAX_NODES:
        raise ValueError(f"the index needs {total} annoy nodes, more than annoy's int32 ids allow")

    with replace_atomically(path) as fh:
        fh.truncate(total * lay.size)
        buf = np.memmap(fh, dtype=np.uint8, mode="r+", shape=(total * lay.size,))
        _fill(buf, index, g, lay, leaf_aid, split_aid, annoy_ref(g.children), total)
        raw = buf.reshape(total, lay.size)
        raw[total - n_trees :] = raw[root_aid]  # annoy's copies of the roots
        raw[total - n_trees - 1] = raw[root_aid[-1]]  # load() drops this one again
        buf.flush()
        del raw, buf


def _fill(
    buf: np.ndarray,
    index: AnnoyIndex,
    g: Forest,
    lay: Layout,
    leaf_aid: np.ndarray,
    split_aid: np.ndarray,
    split_children: np.ndarray,
    total: int,
) -> None:
    """Items, leaves and splits into the zeroed node array ``buf``."""
    metric, f, n = index._metric.name, index.f, index._n
    nd = _field(buf, total, lay, 0, "<i4")
    ids = _field(buf, total, lay, lay.children, "<i4", lay.K)
    vec = _field(buf, total, lay, lay.v, lay.dtype, lay.width)
    present = np.asarray(index._present[:n], bool)
    nd[:n] = present
    sq = np.zeros(n, np.float32)
    chunk = 1 << 16  # items per copy, bounds the temporaries
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        block = index._stored(np.arange(lo, hi))
        vec[lo:hi] = block
        if metric in ("angular", "dot"):
            x = block.astype(np.float32)
            sq[lo:hi] = np.where(present[lo:hi], np.einsum("ij,ij->i", x, x), 0)
    if metric == "angular":  # annoy keeps each item's squared norm in its node
        _field(buf, total, lay, 4, "<f4")[:n] = _kept_sqnorm(index, lay, present, sq)
    elif metric == "dot":  # annoy 1.17.3's preprocess(): dot_factor = sqrt(max_norm^2 - |x|^2)
        computed = np.where(present, np.sqrt(np.maximum(sq.max(initial=0) - sq, 0)), 0)
        computed = computed.astype(np.float32)
        _field(buf, total, lay, 12, "<f4")[:n] = _kept_dot_factor(index, lay, present, sq, computed)
    # leaves: n_descendants and the item ids; root leaves list every id slot (annoy reads
    # n_items of them), the slots beyond the items repeat the first one
    sizes = np.diff(g.leaf_ptr)
    nd[leaf_aid] = sizes
    rows = np.repeat(leaf_aid, sizes)
    cols = _ranges(np.zeros(len(sizes), np.int64), sizes)
    ids[rows, cols] = g.leaf_items
    root_leaves = -1 - g.roots[g.roots < 0]
    if len(root_leaves):
        short = root_leaves[sizes[root_leaves] < n]
        for_each = n - sizes[short]
        r = np.repeat(leaf_aid[short], for_each)
        c = np.repeat(sizes[short], for_each) + _ranges(np.zeros(len(short), np.int64), for_each)
        ids[r, c] = np.repeat(g.leaf_items[g.leaf_ptr[short]], for_each)
        nd[leaf_aid[root_leaves]] = n
    # splits
    nd[split_aid] = g.counts
    ids[split_aid, :2] = split_children
    if metric == "hamming":
        d = g.offsets.astype(np.int64)
        vec[split_aid, 0] = (64 * (d // 64) + 63 - d % 64).astype(np.uint64)
    else:
        vec[split_aid] = g.normals[:, :f]
        if metric in ("euclidean", "manhattan"):
            _field(buf, total, lay, 4, "<f4")[split_aid] = g.offsets
        elif metric == "dot":  # annoy's margin adds dot_factor^2 (our offset; 0: none)
            _field(buf, total, lay, 12, "<f4")[split_aid] = _split_dot_factor(g, f)


def _valid(kept: np.ndarray, computed: np.ndarray, present: np.ndarray, atol: float) -> bool:
    """Whether ``kept`` may stand in for ``computed``: finite, >= 0 and within rounding of it for
    every present item (a corrupted or foreign value falls back to ``computed``)."""
    with np.errstate(over="ignore", invalid="ignore"):
        ok = np.isfinite(kept) & (kept >= 0) & (np.abs(kept - computed) <= 1e-3 * computed + atol)
    return bool(ok[present].all())


def _kept_sqnorm(
    index: AnnoyIndex, lay: Layout, present: np.ndarray, computed: np.ndarray
) -> np.ndarray:
    """Angular items' squared norms to write: the norm fields of the ``.ann`` file the index is
    loaded from, bit for bit (zeros included), when it is one and they are valid; else zeros.

    Annoy's ``get_distance`` and its queries by item use the stored norm, or compute it with its
    own ``dot`` where it is 0.  A norm summed in another order is an ulp off for ~40% of items,
    and annoy's distances with it (``get_distance(i, i)`` becomes ~3.7e-4, not 0).
    """
    mapped, n = index._mapped, len(present)
    zeros = np.zeros(n, np.float32)
    if not isinstance(mapped, AnnFile) or mapped._mm is None or mapped.size < n * lay.size:
        return zeros
    if mapped._info.get("metric") != "angular" or mapped._info.get("f") != index.f:
        return zeros
    kept = np.array(_field(mapped._mm, n, lay, 4, "<f4"), np.float32)
    kept[~present] = 0  # annoy leaves holes at 0
    checked = np.where(kept == 0, computed, kept)  # a 0 asks annoy to compute the norm
    return kept if _valid(checked, computed, present, 1e-30) else zeros


def _kept_dot_factor(
    index: AnnoyIndex, lay: Layout, present: np.ndarray, sq: np.ndarray, computed: np.ndarray
) -> np.ndarray:
    """Dot items' ``dot_factor`` to write: those of the ``.ann`` file the index is loaded from
    (holes included: annoy gives them the largest norm) when it is one and they are valid for
    every item, else ``computed`` (annoy's formula, in rounding that may differ from annoy's)."""
    mapped, n = index._mapped, len(present)
    if not isinstance(mapped, AnnFile) or mapped._mm is None or mapped.size < n * lay.size:
        return computed
    if mapped._info.get("metric") != "dot" or mapped._info.get("f") != index.f:
        return computed
    kept = np.array(_field(mapped._mm, n, lay, 12, "<f4"), np.float32)
    # sqrt(M^2 - |x|^2) loses up to about sqrt(f * eps) * M to cancellation near the largest norm
    top = float(np.sqrt(sq.max(initial=0)))
    return kept if _valid(kept, computed, present, 0.05 * top + 1e-30) else computed


def _split_dot_factor(g: Forest, f: int) -> np.ndarray:
    """Dot splits' ``dot_factor``: annoy's margin adds its square, our offset.

    A forest read from an ``.ann`` file keeps annoy's value (sign included) as the normal's extra
    coordinate, with the offset its float32 square: that value is written back unchanged.
    Otherwise the square root of the offset (``sqrt(d * d)`` need not give ``d`` back).
    """
    off = np.asarray(g.offsets, np.float32)
    out = np.sqrt(np.maximum(off, 0)).astype(np.float32)
    if g.normals.shape[1] > f:
        d = np.asarray(g.normals[:, f], np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            same = (d * d) == off
        out = np.where(same, d, out).astype(np.float32)
    return out
