"""Turn an open native file into index state, checking every field, shape and tree pointer.

Loading is O(1) in the forest's size: the header, the array table and the item flags.  The tree
pointers and leaf items (O(nodes + leaf items)) are checked by `check_forest` once, before
the forest's first use, so a query never follows a pointer or gathers a row out of bounds; the
vectors are not read here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._cells import METRICS as CELL_METRICS
from ._cells import Cells
from ._errors import IndexFileError
from ._fileformat import NARROWED, Mapped
from ._forest import Forest
from ._metrics import BY_NAME, Metric, words_for_bits
from ._validate import SEED_LIMIT

if TYPE_CHECKING:
    from ._index import AnnoyIndex


def _int_field(m: Mapped, name: str, low: int = 0) -> int:
    v = m.fields.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise IndexFileError(f"{m.path}: corrupted manifest ({name!r} = {v!r})")
    return v


def _array(m: Mapped, name: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    a = m.arrays.get(name)
    if a is None:
        raise IndexFileError(f"{m.path}: corrupted (array {name!r} missing)")
    allowed = {dtype}
    if m.version >= 2 and name in NARROWED:  # written narrower where that loses nothing
        allowed.add(NARROWED[name])
    if a.dtype.str not in allowed or a.shape != shape:
        raise IndexFileError(
            f"{m.path}: corrupted (array {name!r} is {a.dtype.str}{a.shape}, "
            f"expected {' or '.join(sorted(allowed))}{shape})"
        )
    return a


def check_forest(
    path: str,
    forest: Forest,
    metric: Metric,
    f: int,
    n_items: int,
    present: np.ndarray | None = None,
) -> None:
    """Pointers in range, children after parents (no cycles), each node reached once (trees,
    not graphs whose paths multiply), leaf ranges inside leaf_items, leaf items inside
    0..n_items-1 (so a search may hold them in int32 and gather rows) and, given ``present``,
    items rather than holes."""
    leaf_ptr, children, n_splits = forest.leaf_ptr, forest.children, forest.n_splits
    n_leaves, items = forest.n_leaves, forest.leaf_items
    if leaf_ptr[0] != 0 or leaf_ptr[-1] != len(items) or (np.diff(leaf_ptr) < 0).any():
        raise IndexFileError(f"{path}: corrupted (leaf ranges out of bounds)")
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise IndexFileError(f"{path}: corrupted leaf items (id out of range)")
    if items.size and present is not None and not present.take(items).all():
        raise IndexFileError(f"{path}: corrupted leaf items (a leaf lists an id with no item)")
    for refs in (children, forest.roots):
        if refs.size and ((refs < -n_leaves).any() or (refs >= n_splits).any()):
            raise IndexFileError(f"{path}: corrupted (node pointer out of range)")
    if n_splits and (children.max(axis=1, initial=-1) >= 0).any():
        own = np.arange(n_splits)[:, None]
        if ((children >= 0) & (children <= own)).any():
            raise IndexFileError(f"{path}: corrupted (a split points back up its tree)")
    # a node with two parents turns a tree into a graph whose paths double at each sharing
    # split: 2**splits leaves for a search or an export to walk
    refs = np.concatenate([children.ravel(), forest.roots]).astype(np.int64, copy=False)
    if refs.size and np.bincount(refs + n_leaves, minlength=n_leaves + n_splits).max() > 1:
        raise IndexFileError(f"{path}: corrupted (the trees share or revisit nodes)")
    if metric.is_hamming and n_splits:
        # annoy's padding bits (f..64*words-1) can hold splits of a converted .ann forest
        top = 64 * words_for_bits(max(f, 1))
        offsets = forest.offsets
        bad = (offsets < 0) | (offsets >= top) | (offsets != np.floor(offsets))
        if bad.any():
            raise IndexFileError(f"{path}: corrupted (hamming split dimension out of range)")


def check_values(path: str, metric: Metric, f: int, store: np.ndarray, sqnorm: Any) -> None:
    """The stored values a search relies on, once before the first search (O(items)): squared
    norms finite and >= 0 (one NaN emptied every euclidean answer), and no hamming item bit
    at or beyond ``f`` (a file relabelled with a smaller f counted bits it no longer has).
    Every row: holes hold zeros in a valid file."""
    if sqnorm is not None and len(sqnorm):
        with np.errstate(invalid="ignore"):
            if not (np.isfinite(sqnorm) & (sqnorm >= 0)).all():
                raise IndexFileError(f"{path}: corrupted squared norms (NaN, inf or negative)")
    if metric.is_hamming and f % 64 and len(store):
        beyond = ~np.uint64((1 << (f % 64)) - 1)
        if (store[:, -1] & beyond).any():
            raise IndexFileError(f"{path}: corrupted vectors (an item sets a bit beyond f={f})")


def unpack(m: Mapped, index: AnnoyIndex) -> dict[str, Any]:
    """Validated attribute values for ``index`` served from ``m``."""
    fields = m.fields
    name = fields.get("metric")
    metric = BY_NAME.get(name) if isinstance(name, str) else None
    if metric is None:
        raise IndexFileError(f"{m.path}: corrupted manifest (metric {fields.get('metric')!r})")
    f = _int_field(m, "f")
    n = _int_field(m, "n_items")
    n_trees = _int_field(m, "n_trees", 1)  # every build has a tree; the search needs one
    if not isinstance(fields.get("metadata"), dict):
        raise IndexFileError(f"{m.path}: corrupted manifest (metadata is not a dict)")
    width = metric.stored_width(f)
    vectors = m.arrays.get("vectors")
    half = m.version >= 4 and vectors is not None and vectors.dtype.str == "<f2"
    if half and metric.is_hamming:
        raise IndexFileError(f"{m.path}: corrupted (float16 vectors in a hamming index)")
    store = _array(m, "vectors", "<f2" if half else metric.stored_dtype().str, (n, width))
    present = _array(m, "present", "|u1", (n,))
    if n and present.max() > 1:
        raise IndexFileError(f"{m.path}: corrupted (present flags other than 0/1)")
    split_offsets = m.arrays.get("offsets")
    if split_offsets is None or split_offsets.ndim != 1:
        raise IndexFileError(f"{m.path}: corrupted (array 'offsets' missing or not 1-D)")
    n_splits = split_offsets.shape[0]
    nd = 0 if metric.is_hamming else metric.normal_dim(f)
    normals = _array(m, "normals", "<f4", (n_splits, nd))
    offsets = _array(m, "offsets", "<f4", (n_splits,))
    children = _array(m, "children", "<i8", (n_splits, 2))
    counts = _array(m, "counts", "<i8", (n_splits,))
    leaf_ptr = m.arrays.get("leaf_ptr")
    if leaf_ptr is None or leaf_ptr.ndim != 1 or len(leaf_ptr) < 1:
        raise IndexFileError(f"{m.path}: corrupted (leaf pointers missing)")
    n_leaves = len(leaf_ptr) - 1
    leaf_ptr = _array(m, "leaf_ptr", "<i8", (n_leaves + 1,))
    leaf_items = m.arrays.get("leaf_items")
    if leaf_items is None or leaf_items.ndim != 1:
        raise IndexFileError(f"{m.path}: corrupted (leaf items missing)")
    leaf_items = _array(m, "leaf_items", "<i8", (len(leaf_items),))
    roots = _array(m, "roots", "<i8", (n_trees,))
    sqnorm = None
    if metric.needs_sqnorm:
        sqnorm = _array(m, "sqnorm", "<f4", (n,))
    kind = fields.get("labels")
    if kind not in (None, "int", "str"):
        raise IndexFileError(f"{m.path}: corrupted manifest (labels kind {kind!r})")
    leaf_size = fields.get("leaf_size")
    seed = fields.get("seed")
    cells = None
    if "cell_rows" in m.arrays:  # version 3; the order is checked before its first use
        if metric.name not in CELL_METRICS:
            raise IndexFileError(f"{m.path}: corrupted (cells in a {metric.name} index)")
        cells = Cells.from_arrays(m.path, m.arrays, present.view(bool), f)
    return {
        "_cells": cells,
        "_store": store,
        "_present": present.view(bool),
        "_n": n,
        "_n_present": int(np.count_nonzero(present)),
        "_sqnorm": sqnorm,
        "_forest": Forest(
            normals=normals,
            offsets=offsets,
            children=children,
            counts=counts,
            leaf_ptr=leaf_ptr,
            leaf_items=leaf_items,
            roots=roots,
            checked=False,  # check_forest runs before its first search
        ),
        "_mapped": m,
        "_labels": None,
        "_label_index": None,
        "_label_arrays": (kind, m.arrays) if kind else None,
        "_metadata": fields["metadata"],
        "leaf_size": leaf_size
        if isinstance(leaf_size, int) and leaf_size >= 2
        else index.leaf_size,
        "seed": seed
        if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < SEED_LIMIT
        else index.seed,
    }
