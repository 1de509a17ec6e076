"""A forest as a few flat arrays, the same arrays that go to disk.

Node references: ``ref >= 0`` is split node ``ref``; ``ref < 0`` is leaf ``-ref - 1``.
Split ``s`` has plane ``normals[s]``, ``offsets[s]`` (hamming: the bit's dimension), children
``children[s] = (ref of side 0, ref of side 1)`` and ``counts[s]`` items below it.  Leaf ``l``
holds ``leaf_items[leaf_ptr[l]:leaf_ptr[l + 1]]``.  Tree ``t`` starts at ``roots[t]``; nodes are
numbered tree by tree, breadth first, so the arrays do not depend on how the build was grouped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Forest:
    normals: np.ndarray  # (n_splits, normal_dim) float32
    offsets: np.ndarray  # (n_splits,) float32
    children: np.ndarray  # (n_splits, 2) int64 refs
    counts: np.ndarray  # (n_splits,) int64 items below
    leaf_ptr: np.ndarray  # (n_leaves + 1,) int64
    leaf_items: np.ndarray  # (sum of leaf sizes,) int32 (while ids fit) or int64 item ids
    roots: np.ndarray  # (n_trees,) int64 refs
    # False for a forest read from a native file until its pointers (and the rows loaded
    # with it) pass check_forest before its first search; built ones are sound by making
    checked: bool = field(default=True, compare=False, repr=False)

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    @property
    def n_splits(self) -> int:
        return len(self.offsets)

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_ptr) - 1

    @classmethod
    def empty(cls, normal_dim: int) -> Forest:
        return cls(
            normals=np.zeros((0, normal_dim), np.float32),
            offsets=np.zeros(0, np.float32),
            children=np.zeros((0, 2), np.int64),
            counts=np.zeros(0, np.int64),
            leaf_ptr=np.zeros(1, np.int64),
            leaf_items=np.zeros(0, np.int64),
            roots=np.zeros(0, np.int64),
        )

    def leaf_sizes(self, leaves: np.ndarray) -> np.ndarray:
        return self.leaf_ptr[leaves + 1] - self.leaf_ptr[leaves]


def ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + l) for each pair, without a Python loop."""
    lens = np.asarray(lens, np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offs = np.repeat(np.asarray(starts, np.int64) - (np.cumsum(lens) - lens), lens)
    return offs + np.arange(total, dtype=np.int64)


def concat(parts: list[Forest], normal_dim: int) -> Forest:
    """Join forests tree-wise, renumbering splits and leaves (a few array ops per part)."""
    if not parts:
        return Forest.empty(normal_dim)
    split_base = np.cumsum([0] + [p.n_splits for p in parts])
    leaf_base = np.cumsum([0] + [p.n_leaves for p in parts])
    item_base = np.cumsum([0] + [len(p.leaf_items) for p in parts])

    def shift(refs: np.ndarray, i: int) -> np.ndarray:
        return np.where(refs >= 0, refs + split_base[i], refs - leaf_base[i])

    return Forest(
        normals=np.concatenate([p.normals for p in parts]).astype(np.float32, copy=False),
        offsets=np.concatenate([p.offsets for p in parts]).astype(np.float32, copy=False),
        children=np.concatenate([shift(p.children, i) for i, p in enumerate(parts)]),
        counts=np.concatenate([p.counts for p in parts]),
        leaf_ptr=np.concatenate(
            [np.zeros(1, np.int64)] + [p.leaf_ptr[1:] + item_base[i] for i, p in enumerate(parts)]
        ),
        leaf_items=np.concatenate([p.leaf_items for p in parts]),
        roots=np.concatenate([shift(p.roots, i) for i, p in enumerate(parts)]),
    )
