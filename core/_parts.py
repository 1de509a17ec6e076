"""Building a forest in pieces: any tree of a forest can be built anywhere (e.g. on a Dask
worker) and the pieces joined into the same file a one-shot build writes, byte for byte."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import fsync_folder
from ._build import build_trees as _build_trees
from ._forest import Forest, concat
from ._index import AnnoyIndex
from ._metrics import get_metric
from ._treespace import TreeSpace

__all__ = ["TreePart", "assemble", "build_trees", "file_info"]


@dataclass
class TreePart:
    """Some trees of a forest: plain arrays and the parameters they were built with."""

    tree_ids: np.ndarray
    forest: Forest
    n_items: int
    f: int
    metric: str
    seed: int
    leaf_size: int
    vector_dtype: str = "float32"


def _vectors(vectors: str | os.PathLike[str] | np.ndarray) -> np.ndarray:
    if isinstance(vectors, (str, os.PathLike)):
        return np.load(vectors, mmap_mode="r")  # each worker maps the shared file
    return np.asarray(vectors)


def _index(
    x: np.ndarray, metric: str, seed: int | None, leaf_size: int | None, vector_dtype: str
) -> AnnoyIndex:
    if x.ndim != 2:
        raise ValueError(f"'vectors' must be a 2-D array (got {x.ndim} dimensions)")
    index = AnnoyIndex(
        x.shape[1], metric, leaf_size=leaf_size, seed=seed, vector_dtype=vector_dtype
    )
    index.add_items(x)
    index._trim()  # add_items keeps spare capacity (16 rows at least), as build() trims it
    return index


def build_trees(
    vectors: str | os.PathLike[str] | np.ndarray,
    metric: str,
    tree_ids: Sequence[int] | np.ndarray,
    *,
    seed: int | None = None,
    leaf_size: int | None = None,
    vector_dtype: str = "float32",
    progress: Callable[[int, int | None], None] | None = None,
) -> TreePart:
    """Build only trees ``tree_ids`` of the forest over all rows of ``vectors`` (items 0..n-1).

    ``vectors`` may be the path of a 2-D ``.npy`` file, memory-mapped rather than copied.
    Tree ``t`` is the same wherever it is built, so the parts can be joined by `assemble`.
    """
    x = _vectors(vectors)
    index = _index(x, metric, seed, leaf_size, vector_dtype)
    ids = np.asarray(tree_ids, dtype=np.int64)
    m = get_metric(metric)
    present = np.arange(index.get_n_items())
    index._check_scale()  # the error AnnoyIndex.build gives
    z = TreeSpace(m, index._store, present, index.f)
    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        if progress is not None:
            progress(done[0], len(ids))

    forest = _build_trees(z, m, ids, index.seed, index.leaf_size, progress=tick)
    return TreePart(
        ids, forest, len(present), index.f, m.name, index.seed, index.leaf_size, vector_dtype
    )


def assemble(
    vectors: str | os.PathLike[str] | np.ndarray,
    metric: str,
    parts: Sequence[TreePart],
    path: str | os.PathLike[str],
    *,
    seed: int | None = None,
    leaf_size: int | None = None,
    labels: Sequence[Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    vector_dtype: str = "float32",
) -> AnnoyIndex:
    """Join tree parts into one index file at ``path`` (atomic) and return it loaded.

    The bytes equal those of ``AnnoyIndex(f, metric, leaf_size=, seed=, vector_dtype=)`` with
    the same items, labels and metadata, built with as many trees and saved.  The new file is
    written beside ``path`` and fully checked before it replaces ``path``: a failed join leaves
    any file already at ``path`` untouched.
    """
    x = _vectors(vectors)
    index = _index(x, metric, seed, leaf_size, vector_dtype)
    want = (len(x), index.f, index.metric, index.seed, index.leaf_size, index.vector_dtype)
    for p in parts:
        got = (p.n_items, p.f, p.metric, p.seed, p.leaf_size, p.vector_dtype)
        if got != want:
            raise ValueError(
                f"'parts' hold a part built with (n, f, metric, seed, leaf_size, vector_dtype)="
                f"{got}, expected {want}"
            )
    ids = np.concatenate([p.tree_ids for p in parts]) if parts else np.zeros(0, np.int64)
    if not len(ids) or not np.array_equal(np.sort(ids), np.arange(len(ids))):
        raise ValueError(
            f"'parts' must hold trees 0..n_trees-1 exactly once (got tree ids "
            f"{np.sort(ids).tolist()[:20]})"
        )
    # split parts into single trees, then join in tree order
    singles: dict[int, Forest] = {}
    for p in parts:
        for pos, t in enumerate(p.tree_ids.tolist()):
            singles[t] = _one_tree(p.forest, pos)
    nd = parts[0].forest.normals.shape[1]
    index._finish_build(concat([singles[t] for t in range(len(ids))], nd))
    if labels is not None:
        index.set_labels(labels)
    if metadata is not None:
        index.set_metadata(metadata)
    _save_checked(index, path)
    return index


def _save_checked(index: AnnoyIndex, path: str | os.PathLike[str]) -> None:
    """Save beside ``path``, check the written file as a reader would, then rename it over
    ``path``: the parts come from other processes, so trust them only once they load."""
    target = Path(path)
    if not target.parent.is_dir():  # mkstemp's error would name the temporary file instead
        raise FileNotFoundError(f"'path' must be in an existing folder (got {os.fspath(path)!r})")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        index.save(tmp)  # atomic itself; maps the file, checking its manifest and arrays
        index.verify()  # the checks a reader defers to first use
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(target.parent)
    index.load(target)  # serve from ``path`` (the same bytes), not the temporary name


def _one_tree(forest: Forest, t: int) -> Forest:
    """Tree ``t`` of a forest as a forest of its own (nodes are numbered tree by tree)."""
    roots = forest.roots
    split_ids = np.flatnonzero(_tree_of_splits(forest) == t)
    leaf_ids = np.flatnonzero(_tree_of_leaves(forest) == t)
    s0 = split_ids[0] if len(split_ids) else 0
    l0 = leaf_ids[0] if len(leaf_ids) else 0
    s1, l1 = s0 + len(split_ids), l0 + len(leaf_ids)

    def shift(r: np.ndarray) -> np.ndarray:
        return np.where(r >= 0, r - s0, r + l0)

    ptr = forest.leaf_ptr[l0 : l1 + 1]
    return Forest(
        normals=forest.normals[s0:s1],
        offsets=forest.offsets[s0:s1],
        children=shift(forest.children[s0:s1]),
        counts=forest.counts[s0:s1],
        leaf_ptr=ptr - ptr[0],
        leaf_items=forest.leaf_items[ptr[0] : ptr[-1]],
        roots=shift(roots[t : t + 1]),
    )


def _tree_of_splits(forest: Forest) -> np.ndarray:
    return _owner(forest)[0]


def _tree_of_leaves(forest: Forest) -> np.ndarray:
    return _owner(forest)[1]


def _owner(forest: Forest) -> tuple[np.ndarray, np.ndarray]:
    """Tree number of every split and leaf, by walking the trees level by level."""
    split_tree = np.full(forest.n_splits, -1, np.int64)
    leaf_tree = np.full(forest.n_leaves, -1, np.int64)
    refs, tree = forest.roots.copy(), np.arange(forest.n_trees)
    while len(refs):
        leaf = refs < 0
        leaf_tree[-1 - refs[leaf]] = tree[leaf]
        split_tree[refs[~leaf]] = tree[~leaf]
        refs, tree = forest.children[refs[~leaf]].ravel(), np.repeat(tree[~leaf], 2)
    return split_tree, leaf_tree


def file_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What a native index file holds, from its header and manifest only."""
    from ._fileformat import Mapped

    m = Mapped(path)
    try:
        fl = m.fields
        arrays = fl.get("arrays", {})
        n_splits = arrays.get("offsets", {}).get("shape", [0])[0]
        n_leaves = max(arrays.get("leaf_ptr", {}).get("shape", [1])[0] - 1, 0)
        return {
            "path": os.fspath(path),
            "format_version": m.version,
            "f": fl.get("f"),
            "metric": fl.get("metric"),
            "n_items": fl.get("n_items"),
            "n_trees": fl.get("n_trees"),
            "n_nodes": n_splits + n_leaves,
            "leaf_size": fl.get("leaf_size"),
            "seed": fl.get("seed"),
            "labels": fl.get("labels"),
            "metadata": fl.get("metadata"),
            "content_hash": fl.get("content_hash"),
            "size_bytes": m.size,
        }
    finally:
        m.close()
