"""scikit-learn's own estimator checks on AnnoyTransformer."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from annoy_adapters.sklearn import AnnoyTransformer

# Checks that are expected to fail, with the reason; kept empty unless a check tests
# something an approximate neighbours transformer cannot provide.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks(
    [
        AnnoyTransformer(),
        AnnoyTransformer(metric="cosine", mode="connectivity", n_trees=3),
        AnnoyTransformer(metric="manhattan", n_trees=-1, search_k=50),
        AnnoyTransformer(metric="euclidean", vector_dtype="float16", probe=2),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
