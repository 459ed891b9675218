"""scikit-learn's common estimator checks, in numeric configurations."""

import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from cwcl_sk import CWCLAligner, ZeroShotClassifier


def _numeric_teacher():
    """A fixed random map from numeric y to 16-d vectors: a frozen teacher for numeric y."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh())


ESTIMATORS = [
    CWCLAligner(
        teacher=_numeric_teacher(),
        max_epochs=3,
        batch_size=32,
        device="cpu",
        random_state=0,
        student__hidden_sizes=(16,),
    ),
    ZeroShotClassifier(
        CWCLAligner(max_epochs=40, batch_size=32, device="cpu", random_state=0),
        templates="class {}",
    ),
]

# Encoder options are keyword parameters (``student__hidden_sizes=...``), stored by __init__
# like skorch's ``module__*``: sklearn's checks cannot see a ``**kwargs`` parameter.
_KWARGS_PARAMETERS = {
    "check_no_attributes_set_in_init": (
        "student__* options are **kwargs parameters, stored as attributes by __init__ "
        "(the skorch convention), which this check cannot tell from other attributes."
    ),
    "check_do_not_raise_errors_in_init_or_set_params": (
        "the check passes the name of the **kwargs catch-all ('encoder_options') as if it were "
        "a parameter; set_params rightly rejects it as unknown."
    ),
}

EXPECTED_FAILURES = {
    "ZeroShotClassifier": {
        "check_methods_subset_invariance": (
            "the student computes in float32, and BLAS rounds a row's product differently for "
            "different batch sizes (~1e-7); dividing by the temperature (0.07) lifts that above "
            "the check's 1e-7 tolerance on predict_proba."
        ),
    },
    "CWCLAligner": {
        **_KWARGS_PARAMETERS,
        "check_estimators_overwrite_params": (
            "the check compares joblib hashes of a deep copy of the teacher module with the "
            "module itself, and deep-copied torch modules hash differently even when equal; "
            "tests/test_aligner.py checks that fit leaves a teacher module's weights unchanged."
        ),
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
