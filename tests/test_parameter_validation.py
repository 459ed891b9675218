"""Declared parameter constraints: what they accept, and the errors that name what was wrong."""

import math
import pickle
from numbers import Integral, Real

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone

from cwcl_sk import CWCLAligner, ZeroShotClassifier
from cwcl_sk._validation import (
    CheckedBy,
    HasMethods,
    InstanceOf,
    Interval,
    InvalidParameterError,
    Requires,
    StrOptions,
    check_int,
    check_real,
    validate_parameters,
)

RNG = np.random.default_rng(0)
FEATURES = RNG.normal(size=(12, 4))
EMBEDDINGS = RNG.normal(size=(12, 6))


class _Toy(BaseEstimator):
    """An estimator with one parameter of each kind of constraint."""

    _parameter_constraints = {  # noqa: RUF012 (read-only declaration, as in scikit-learn)
        "rate": [Interval(Real, 0, 10, closed="right")],
        "size": [None, Interval(Integral, 1, None, closed="left")],
        "mode": [StrOptions(["fast", "exact"])],
        "flag": ["boolean"],
        "seed": ["random_state"],
        "anything": ["no_validation"],
    }
    _parameter_conditions = (
        Requires("size", lambda toy: toy.mode != "exact" or toy.size is not None, "must be set"),
    )

    def __init__(self, rate=1.0, size=None, mode="fast", flag=False, seed=None, anything=None):
        self.rate = rate
        self.size = size
        self.mode = mode
        self.flag = flag
        self.seed = seed
        self.anything = anything


@pytest.mark.parametrize(
    ("interval", "inside", "outside"),
    [
        (Interval(Real, 0, None, closed="neither"), [1e-9, 3, 1e30], [0, -1, math.inf, math.nan]),
        (Interval(Real, 0, 10, closed="right"), [10, 1e-3], [0, 10.5, 1e39, True]),
        (Interval(Integral, 1, None, closed="left"), [1, np.int64(7)], [0, 2.0, True, 8.5]),
        (Interval(Integral, 1000, 384_000, closed="both"), [1000, 384_000], [999, 10**9]),
    ],
)
def test_interval_accepts_finite_numbers_of_its_type_inside_its_bounds(interval, inside, outside):
    assert all(interval.is_satisfied_by(value) for value in inside)
    assert not any(interval.is_satisfied_by(value) for value in outside)


def test_interval_describes_its_bounds_and_type():
    assert str(Interval(Integral, 1, None, closed="left")) == "an integer >= 1"
    assert str(Interval(Real, 0, None, closed="neither")) == "a finite real number > 0"
    assert str(Interval(Real, 0, 10, closed="right")) == "a finite real number > 0 and <= 10"


def test_interval_rejects_a_bad_declaration():
    with pytest.raises(ValueError, match="closed"):
        Interval(Real, 0, 1, closed="open")
    with pytest.raises(ValueError, match="kind"):
        Interval(float, 0, 1, closed="both")


def test_valid_parameters_pass():
    validate_parameters(_Toy(rate=10, size=3, mode="exact", flag=np.bool_(True), seed=5))


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"rate": 1e39}, ["'rate'", "_Toy", "> 0 and <= 10", "1e+39"]),
        ({"size": 0}, ["'size'", "None or an integer >= 1", "got 0"]),
        ({"mode": "slow"}, ["'mode'", "one of 'fast', 'exact'", "'slow'"]),
        ({"flag": 1}, ["'flag'", "True or False", "got 1"]),
        ({"seed": -1}, ["'seed'", ">= 0 and <= 4294967295", "RandomState", "got -1"]),
        ({"mode": "exact"}, ["'size'", "must be set", "got None"]),
    ],
)
def test_invalid_value_names_parameter_expectation_and_value(params, words):
    with pytest.raises(InvalidParameterError) as raised:
        validate_parameters(_Toy(**params))
    for word in words:
        assert word in str(raised.value)


def test_invalid_parameter_error_is_both_a_value_and_a_type_error():
    # Code written against the old checks catches either.
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)


def test_long_values_are_shortened_in_the_message():
    with pytest.raises(InvalidParameterError) as raised:
        validate_parameters(_Toy(mode=np.arange(1000)))
    assert len(str(raised.value)) < 300 and "..." in str(raised.value)


def test_unknown_attribute_is_reported_with_the_valid_names():
    toy = _Toy()
    toy.rte = 2
    with pytest.raises(InvalidParameterError, match=r"Unknown parameter\(s\) \['rte'\].*'rate'"):
        validate_parameters(toy)


def test_checked_by_lets_the_checks_own_error_through():
    def no_threes(value):
        if value == 3:
            raise ValueError("kernel must not be 3")

    constraint = CheckedBy(no_threes)
    assert constraint.is_satisfied_by(2)
    with pytest.raises(ValueError, match="kernel must not be 3"):
        constraint.is_satisfied_by(3)


def test_instance_and_method_constraints():
    assert InstanceOf((str, bytes)).is_satisfied_by("a")
    assert str(InstanceOf(str)) == "an instance of 'str'"
    assert HasMethods(["fit"]).is_satisfied_by(CWCLAligner())
    assert not HasMethods(["fit"]).is_satisfied_by(object())


def test_function_argument_checks_keep_their_messages():
    assert check_real("rate", 3, low=0.0, low_inclusive=True, high=5.0) == 3.0
    assert check_int("sampling_rate", 8000, low=1) == 8000
    with pytest.raises(InvalidParameterError, match="'rate' parameter must be"):
        check_real("rate", 6, low=0.0, high=5.0)


@pytest.mark.parametrize(
    ("parameter", "value", "words"),
    [
        ("sampling_rate", 10**9, ["sampling_rate", ">= 1000 and <= 384000"]),
        ("sampling_rate", 1, ["sampling_rate", ">= 1000 and <= 384000"]),
        ("learning_rate", 1e39, ["learning_rate", "> 0.0 and <= 10"]),
        ("random_state", -1, ["random_state", "got -1"]),
        ("random_state", np.random.default_rng(0), ["random_state", "RandomState"]),
        ("num_workers", -1, ["num_workers", ">= 0"]),
    ],
)
def test_aligner_rejects_values_no_user_means(parameter, value, words):
    aligner = CWCLAligner(teacher="precomputed", max_epochs=1, device="cpu", **{parameter: value})
    with pytest.raises(InvalidParameterError) as raised:
        aligner.fit(FEATURES, EMBEDDINGS)
    for word in words:
        assert word in str(raised.value)


def test_every_aligner_parameter_is_declared():
    declared = set(CWCLAligner._parameter_constraints)
    assert declared == set(CWCLAligner._get_param_names())
    assert set(ZeroShotClassifier._parameter_constraints) == set(
        ZeroShotClassifier._get_param_names()
    )


def test_zero_shot_classifier_validates_its_parameters_in_fit():
    classifier = ZeroShotClassifier(CWCLAligner(teacher="precomputed"), labels=3)
    with pytest.raises(InvalidParameterError, match="'labels' parameter of ZeroShotClassifier"):
        classifier.fit(FEATURES, [0, 1] * 6)


def test_set_params_stores_the_catch_all_name_like_init_and_fit_rejects_it():
    aligner = CWCLAligner(teacher="precomputed", max_epochs=1, device="cpu")
    aligner.set_params(encoder_options={"student__hidden_sizes": (8,)})
    assert aligner.encoder_options == {"student__hidden_sizes": (8,)}
    with pytest.raises(InvalidParameterError, match=r"\['encoder_options'\].*'student__'"):
        aligner.fit(FEATURES, EMBEDDINGS)


def test_declarations_survive_clone_and_pickle():
    aligner = CWCLAligner(teacher="precomputed", learning_rate=1e39)
    for copy in (clone(aligner), pickle.loads(pickle.dumps(aligner))):
        with pytest.raises(InvalidParameterError, match="learning_rate"):
            copy.fit(FEATURES, EMBEDDINGS)
