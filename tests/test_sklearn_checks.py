"""scikit-learn's own estimator checks on AnnoyTransformer."""

from __future__ import annotations

from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Binarizer
from sklearn.utils.estimator_checks import parametrize_with_checks

from annoy_adapters.sklearn import AnnoyTransformer

# Checks that are expected to fail, with the reason; kept empty unless a check tests
# something an approximate neighbours transformer cannot provide.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}

# metric='hamming' takes 0/1 features only, and the checks draw real values: it is checked
# behind a Binarizer (3 * uniform samples split at 1.0: few bits, many duplicate rows). Two
# checks fail for any Pipeline, scikit-learn's own KNeighborsTransformer included: they see
# the fitted steps as a mutated `steps` parameter.
PIPELINE_FAILED_CHECKS = {
    "check_estimators_overwrite_params": "fitting a Pipeline fits the estimators in `steps`",
    "check_dont_overwrite_parameters": "fitting a Pipeline fits the estimators in `steps`",
}


def _expected_failed_checks(estimator) -> dict[str, str]:
    if isinstance(estimator, Pipeline):
        return PIPELINE_FAILED_CHECKS
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks(
    [
        AnnoyTransformer(),
        AnnoyTransformer(metric="cosine", mode="connectivity", n_trees=3),
        AnnoyTransformer(metric="manhattan", n_trees=-1, search_k=50),
        AnnoyTransformer(metric="euclidean", vector_dtype="float16", probe=2),
        # random_state set here: scikit-learn seeds only a top-level random_state
        make_pipeline(Binarizer(threshold=1.0), AnnoyTransformer(metric="hamming", random_state=0)),
        make_pipeline(
            Binarizer(threshold=1.0),
            AnnoyTransformer(metric="hamming", mode="connectivity", n_trees=3, random_state=0),
        ),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
