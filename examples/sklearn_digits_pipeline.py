"""Digits KNN classifier on an approximate k-neighbours graph, with a cached grid search.

Shows that ``AnnoyTransformer`` replaces scikit-learn's exact ``KNeighborsTransformer`` in a
``Pipeline(memory=...)`` + ``GridSearchCV`` over the classifier's ``n_neighbors``: the graph
is computed once per fold (the cache serves every other candidate), and the test accuracy
and wall time of both pipelines are printed side by side.

Run::

    python examples/sklearn_digits_pipeline.py
    ANNOY_ADAPTERS_EXAMPLE_SMALL=1 python examples/sklearn_digits_pipeline.py  # quicker

Digits is small (1,797 samples of 64 features), so exact search is already fast here; the
point is that the approximate pipeline is a drop-in replacement with the same accuracy.
"""

from __future__ import annotations

import os
import tempfile
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsTransformer
from sklearn.pipeline import Pipeline

from annoy_adapters.sklearn import AnnoyTransformer


def run(name: str, transformer, X_train, X_test, y_train, y_test, grid: list[int]) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        pipe = Pipeline(
            [("graph", transformer), ("knn", KNeighborsClassifier(metric="precomputed"))],
            memory=cache,
        )
        search = GridSearchCV(pipe, {"knn__n_neighbors": grid}, cv=3)
        start = time.perf_counter()
        search.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
        start = time.perf_counter()
        accuracy = search.score(X_test, y_test)
        score_time = time.perf_counter() - start
    return {
        "name": name,
        "best_k": search.best_params_["knn__n_neighbors"],
        "cv": search.best_score_,
        "accuracy": accuracy,
        "fit": fit_time,
        "score": score_time,
    }


def main() -> None:
    small = os.environ.get("ANNOY_ADAPTERS_EXAMPLE_SMALL") == "1"
    X, y = load_digits(return_X_y=True)
    if small:
        X, y = X[:900], y[:900]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    grid = [1, 3, 5, 7, 9]
    k = max(grid)  # the graph must hold at least the classifier's largest n_neighbors
    print(f"digits: {len(X_train)} train / {len(X_test)} test samples, {X.shape[1]} features")
    print(f"GridSearchCV(cv=3) over KNeighborsClassifier n_neighbors={grid}, cached graph\n")

    results = [
        run(
            "AnnoyTransformer",
            AnnoyTransformer(n_neighbors=k, random_state=0),
            X_train,
            X_test,
            y_train,
            y_test,
            grid,
        ),
        run(
            "KNeighborsTransformer (exact)",
            KNeighborsTransformer(n_neighbors=k),
            X_train,
            X_test,
            y_train,
            y_test,
            grid,
        ),
    ]
    print(
        f"{'graph':32s} {'best k':>6s} {'cv acc':>7s} {'test acc':>8s} "
        f"{'search s':>9s} {'score s':>8s}"
    )
    for r in results:
        print(
            f"{r['name']:32s} {r['best_k']:6d} {r['cv']:7.4f} {r['accuracy']:8.4f} "
            f"{r['fit']:9.2f} {r['score']:8.3f}"
        )
    gap = 100 * (results[0]["accuracy"] - results[1]["accuracy"])
    print(f"\ntest accuracy, approximate minus exact: {gap:+.2f} points")


if __name__ == "__main__":
    main()
