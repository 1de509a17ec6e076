"""Regenerate the golden index files of tests/data (run by hand, never by the tests).

    python tests/data/make_golden.py

* ``annoy_<metric>.ann``: built by the real ``annoy`` 1.17.3 package (seeded, one thread), with
  holes; ``annoy_golden.json`` holds annoy's own answers (ids and distances) for a few queries
  and ``search_k`` values, so tests/test_annoy_compat.py checks them without importing annoy.
* ``native_v1_<metric>.annoy``: our native format, version 1, with str or int labels and
  metadata; ``native_golden.json`` holds what loading and querying them returns.  These files
  are a compatibility promise: never regenerate them to make a failing test pass.  A change that
  cannot read them is a format change (a new version, see docs/file-format.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
METRICS = ("angular", "euclidean", "manhattan", "dot", "hamming")
SEARCH_KS = (-1, 1, 7, 25, 10_000)
HOLES = (5, 17)


def _data(metric: str, n: int, f: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)).astype(np.float32)
    if metric == "hamming":
        x[n - 8 :] = x[0]  # duplicates make annoy give up on splits: padding-bit splits
        x = (x > 0).astype(np.float32)
    return np.round(x, 3)  # short decimals keep the JSON exact


def make_annoy() -> None:
    import annoy

    out = {}
    for k, metric in enumerate(METRICS):
        f = 20 if metric == "hamming" else 8
        n = 62
        x = _data(metric, n, f, 100 + k)
        a = annoy.AnnoyIndex(f, metric)
        a.set_seed(42)
        for i in range(n):
            if i not in HOLES:
                a.add_item(i, x[i].tolist())
        a.build(3, n_jobs=1)
        name = f"annoy_{metric}.ann"
        a.save(str(HERE / name))
        b = annoy.AnnoyIndex(f, metric)
        b.load(str(HERE / name))
        queries = _data(metric, 4, f, 200 + k)
        results = []
        for sk in SEARCH_KS:
            for qi, q in enumerate(queries):
                ids, dist = b.get_nns_by_vector(q.tolist(), 6, search_k=sk, include_distances=True)
                results.append({"vector": qi, "search_k": sk, "ids": ids, "dist": dist})
            for item in (0, 30, 61):
                ids, dist = b.get_nns_by_item(item, 6, search_k=sk, include_distances=True)
                results.append({"item": item, "search_k": sk, "ids": ids, "dist": dist})
        out[metric] = {
            "file": name,
            "f": f,
            "n_items": b.get_n_items(),
            "n_trees": b.get_n_trees(),
            "holes": list(HOLES),
            "items": {str(i): b.get_item_vector(i) for i in (0, 1, 61)},
            "queries": queries.tolist(),
            "results": results,
        }
    (HERE / "annoy_golden.json").write_text(json.dumps(out) + "\n")


def make_native() -> None:
    from annoy_adapters import AnnoyIndex, load

    out = {}
    for k, metric in enumerate(METRICS):
        f = 70 if metric == "hamming" else 6
        n = 40
        x = _data(metric, n, f, 300 + k)
        index = AnnoyIndex(f, metric, leaf_size=5, seed=7 + k)
        ids = np.array([i for i in range(n) if i not in HOLES])
        index.add_items(x[ids], ids=ids)
        index.build(3)
        if k % 2 == 0:
            labels = [f"wörd-{i}" if i % 3 else f"w{i}" for i in range(n)]
        else:
            labels = [(i - 20) * 1_000_000_007 for i in range(n)]
        index.set_labels(labels)
        index.set_metadata({"adapter": "golden", "golden": {"metric": metric, "k": k}})
        name = f"native_v1_{metric}.annoy"
        index.save(HERE / name)
        loaded = load(HERE / name)
        queries = _data(metric, 3, f, 400 + k)
        results = []
        for sk in (-1, 3, 10_000):
            got, dist = loaded.query(queries, 5, search_k=sk)
            results.append({"search_k": sk, "ids": got.tolist(), "dist": dist.tolist()})
        out[metric] = {
            "file": name,
            "f": f,
            "n_items": loaded.get_n_items(),
            "n_trees": loaded.get_n_trees(),
            "labels": list(loaded.labels.tolist()),
            "metadata": loaded.metadata,
            "vectors": x.tolist(),
            "holes": list(HOLES),
            "queries": queries.tolist(),
            "results": results,
        }
    (HERE / "native_golden.json").write_text(json.dumps(out) + "\n")


if __name__ == "__main__":
    make_annoy()
    make_native()
