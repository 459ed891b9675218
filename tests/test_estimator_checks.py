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
    # Precomputed teacher embeddings: the configuration whose y sklearn cannot generate.
    CWCLAligner(
        teacher="precomputed",
        student="mlp",
        max_epochs=2,
        batch_size=32,
        device="cpu",
        random_state=0,
        student__hidden_sizes=(16,),
    ),
]

# Encoder options are keyword parameters (``student__hidden_sizes=...``), stored by __init__
# like skorch's ``module__*``: sklearn's checks cannot see a ``**kwargs`` parameter.
_KWARGS_PARAMETERS = {
    "check_no_attributes_set_in_init": (
        "student__* options are **kwargs parameters, stored as attributes by __init__ "
        "(the skorch convention), which this check cannot tell from other attributes."
    ),
}

# These checks fit on targets made by sklearn: 1-D class labels or regression values, often
# with zeros. A precomputed teacher's y is an (n_samples, dim) array of embeddings, each row a
# direction, so the aligner rightly rejects such y ("y must be a 2-D array of embeddings").
# They run on the module teacher above, which reads numeric y (and passes them all but
# check_estimators_overwrite_params, for the reason given in EXPECTED_FAILURES).
_FITS_ON_GENERATED_TARGETS = (
    "sklearn passes y of shape (n_samples,) (labels or a regression target); a precomputed "
    "teacher needs (n_samples, dim) embeddings with no all-zero row, so fit rejects it. The "
    "check runs on the module teacher configuration, which reads numeric y."
)
_PRECOMPUTED_TEACHER_UNFIT_CHECKS = [
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
]

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
    if isinstance(estimator, CWCLAligner) and estimator.teacher == "precomputed":
        return {
            **_KWARGS_PARAMETERS,
            **dict.fromkeys(_PRECOMPUTED_TEACHER_UNFIT_CHECKS, _FITS_ON_GENERATED_TARGETS),
        }
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
