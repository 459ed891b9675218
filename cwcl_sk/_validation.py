"""Declarative checks of hyperparameter values, run at the start of ``fit`` (never in ``__init__``).

An estimator declares what each parameter accepts, in the manner of scikit-learn's own
(private) ``_parameter_constraints``::

    _parameter_constraints = {
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "loss": [StrOptions({"cwcl", "clip"})],
        "mini_batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

and :func:`validate_parameters` checks the values against it. A value is valid when it
satisfies one constraint of its list; otherwise the error names the estimator, the parameter,
every accepted kind of value and the value it got. Checks that involve two parameters are
declared as :class:`Requires` rules in ``_parameter_conditions``.

The functions :func:`check_real`, :func:`check_int` and :func:`check_choice` check a single
argument of a plain function (a dataset helper's ``sampling_rate``) with the same messages.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable

import numpy as np

__all__ = [
    "CheckedBy",
    "HasMethods",
    "InstanceOf",
    "Interval",
    "InvalidParameterError",
    "Requires",
    "StrOptions",
    "check_choice",
    "check_int",
    "check_real",
    "validate_parameters",
]


class InvalidParameterError(ValueError, TypeError):
    """A hyperparameter of the wrong type or value.

    A subclass of both ``ValueError`` and ``TypeError``, as scikit-learn's own, so that code
    catching either (a wrong value, a wrong type) keeps working.
    """


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


class Interval:
    """Numbers of a type in a range; NaN and infinities are never accepted.

    Parameters
    ----------
    kind : {numbers.Integral, numbers.Real}
        ``Integral`` accepts integers only; ``Real`` accepts integers and floats. Booleans are
        refused by both: ``batch_size=True`` is a mistake, not the number 1.
    left, right : float or None
        The bounds; None means unbounded on that side.
    closed : {"left", "right", "both", "neither"}
        Which bounds belong to the interval.

    Examples
    --------
    >>> from numbers import Real
    >>> from cwcl_sk._validation import Interval
    >>> rate = Interval(Real, 0, 10, closed="right")
    >>> rate.is_satisfied_by(1e-3), rate.is_satisfied_by(1e39), str(rate)
    (True, False, 'a finite real number > 0 and <= 10')
    """

    def __init__(self, kind, left, right, *, closed: str):
        if kind not in (numbers.Integral, numbers.Real):
            raise ValueError(f"kind must be numbers.Integral or numbers.Real, got {kind!r}.")
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(
                f"closed must be 'left', 'right', 'both' or 'neither', got {closed!r}."
            )
        self.kind = kind
        self.left = left
        self.right = right
        self.closed = closed

    def is_satisfied_by(self, value) -> bool:
        """Whether ``value`` is a finite number of the right type inside the bounds."""
        right_type = _is_integer(value) if self.kind is numbers.Integral else _is_real(value)
        if not right_type or not math.isfinite(value):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        noun = "an integer" if self.kind is numbers.Integral else "a finite real number"
        left_closed = self.closed in ("left", "both")
        right_closed = self.closed in ("right", "both")
        if self.right is None and self.left is not None:
            return f"{noun} {'>=' if left_closed else '>'} {self.left}"
        if self.left is None and self.right is not None:
            return f"{noun} {'<=' if right_closed else '<'} {self.right}"
        if self.left is None:
            return noun
        return (
            f"{noun} {'>=' if left_closed else '>'} {self.left} and "
            f"{'<=' if right_closed else '<'} {self.right}"
        )


class StrOptions:
    """One of a set of strings, listed in the error in the order given.

    Parameters
    ----------
    options : iterable of str
    """

    def __init__(self, options: Iterable[str]):
        self.options = tuple(dict.fromkeys(options))

    def is_satisfied_by(self, value) -> bool:
        """Whether ``value`` is one of the options (a string, compared exactly)."""
        return isinstance(value, str) and value in self.options

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(option) for option in self.options)


class InstanceOf:
    """An instance of one of some types, described in words of the user's domain.

    Parameters
    ----------
    types : type or tuple of type
    description : str, optional
        What to call such a value in errors ("a folder path (str or path-like)"); defaults to
        the names of the types.
    """

    def __init__(self, types, description: str | None = None):
        self.types = types if isinstance(types, tuple) else (types,)
        self.description = description

    def is_satisfied_by(self, value) -> bool:
        """Whether ``value`` is an instance of one of the types."""
        return isinstance(value, self.types)

    def __str__(self) -> str:
        if self.description:
            return self.description
        names = " or ".join(repr(kind.__name__) for kind in self.types)
        return f"an instance of {names}"


class HasMethods:
    """Any object with the given methods (an estimator, a frozen wrapper of one).

    Parameters
    ----------
    methods : list of str
    """

    def __init__(self, methods: list[str]):
        self.methods = list(methods)

    def is_satisfied_by(self, value) -> bool:
        """Whether every method named is a callable attribute of ``value``."""
        return all(callable(getattr(value, method, None)) for method in self.methods)

    def __str__(self) -> str:
        return "an object with methods " + ", ".join(repr(method) for method in self.methods)


class CheckedBy:
    """A value checked by a function of its own, whose error already names the parameter.

    For values too rich for a type or a range (a kernel given by name, object or callable):
    ``check(value)`` raises a clear error of its own, or returns for a valid value.

    Parameters
    ----------
    check : callable
        ``check(value)``; raises when the value is invalid.
    """

    def __init__(self, check: Callable):
        self.check = check

    def is_satisfied_by(self, value) -> bool:
        """Run the check (which raises on an invalid value) and report the value valid."""
        self.check(value)
        return True

    def __str__(self) -> str:
        return "a value its check accepts"


class Requires:
    """A rule between parameters: when ``condition(estimator)`` is false, ``parameter`` is wrong.

    Parameters
    ----------
    parameter : str
        The parameter blamed in the error.
    condition : callable
        ``condition(estimator) -> bool``; it runs after every single-parameter check passed.
    expected : str
        What the parameter must be, with the reason ("must be >= 0.01 with
        learn_temperature=True").
    """

    def __init__(self, parameter: str, condition: Callable, expected: str):
        self.parameter = parameter
        self.condition = condition
        self.expected = expected

    def check(self, estimator) -> None:
        """Raise :class:`InvalidParameterError` when the rule is broken."""
        if not self.condition(estimator):
            value = getattr(estimator, self.parameter)
            raise InvalidParameterError(
                f"The {self.parameter!r} parameter of {type(estimator).__name__} "
                f"{self.expected}, got {_short_repr(value)}."
            )


class _Boolean:
    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, bool | np.bool_)

    def __str__(self) -> str:
        return "True or False"


class _NoneValue:
    def is_satisfied_by(self, value) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


# check_random_state takes None, a seed or a RandomState; NumPy seeds lie in [0, 2**32 - 1].
_RANDOM_STATE = [
    _NoneValue(),
    Interval(numbers.Integral, 0, 2**32 - 1, closed="both"),
    InstanceOf(np.random.RandomState, "a numpy.random.RandomState instance"),
]

_NAMED = {
    "boolean": [_Boolean()],
    "random_state": _RANDOM_STATE,
    # Validated where the value is used (a registry lookup, a device query), with messages
    # that list what exists there.
    "no_validation": [],
}


def _make_constraints(declared) -> list | None:
    """Constraint objects for one parameter's declaration; None means "do not check"."""
    constraints = []
    for item in declared:
        if isinstance(item, str):
            if item not in _NAMED:
                raise ValueError(f"Unknown constraint name {item!r}; known: {sorted(_NAMED)}.")
            if item == "no_validation":
                return None
            constraints.extend(_NAMED[item])
        elif item is None:
            constraints.append(_NoneValue())
        elif isinstance(item, type):
            constraints.append(InstanceOf(item))
        else:
            constraints.append(item)
    return constraints


def _short_repr(value, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: an array's repr can run to pages."""
    text = repr(value)
    if " at 0x" in text:
        # A default object repr carries a memory address, which says nothing to the user.
        return f"an instance of {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(constraints: list) -> str:
    descriptions = [str(constraint) for constraint in constraints]
    if len(descriptions) == 1:
        return descriptions[0]
    return ", ".join(descriptions[:-1]) + " or " + descriptions[-1]


def check_unknown_parameters(estimator, extra_prefixes: tuple[str, ...] = ()) -> None:
    """Raise when ``estimator`` holds a public attribute that is not one of its parameters.

    ``__init__`` of an estimator that takes ``**options`` stores every keyword it is given, a
    misspelt ``temprature=0.1`` included; this catches such names before they are ignored.

    Parameters
    ----------
    estimator : BaseEstimator
    extra_prefixes : tuple of str
        Prefixes of accepted keyword options (``"student__"``).
    """
    known = set(estimator._get_param_names())
    unknown = [
        key
        for key in vars(estimator)
        if not key.startswith(("_", *extra_prefixes)) and not key.endswith("_") and key not in known
    ]
    if unknown:
        prefixes = " or ".join(repr(prefix) for prefix in extra_prefixes)
        options = f" Options are keywords starting with {prefixes}." if extra_prefixes else ""
        raise InvalidParameterError(
            f"Unknown parameter(s) {unknown} of {type(estimator).__name__}.{options} Valid "
            f"parameters: {sorted(known)}."
        )


def validate_parameters(estimator) -> None:
    """Check every parameter of ``estimator`` against its declared constraints.

    Reads the class attributes ``_parameter_constraints`` (parameter -> list of accepted
    kinds: :class:`Interval`, :class:`StrOptions`, :class:`InstanceOf`, :class:`HasMethods`,
    :class:`CheckedBy`, a type, None, ``"boolean"``, ``"random_state"`` or
    ``"no_validation"``), ``_parameter_conditions`` (a list of :class:`Requires` rules, run
    after the single checks) and ``_parameter_prefixes`` (prefixes of keyword options that the
    estimator accepts besides its named parameters).

    Parameters
    ----------
    estimator : BaseEstimator

    Raises
    ------
    InvalidParameterError
        For an unknown parameter, or a value that satisfies none of its constraints: the
        message names the estimator, the parameter, what it accepts and the value it got.
    """
    check_unknown_parameters(estimator, getattr(estimator, "_parameter_prefixes", ()))
    name = type(estimator).__name__
    for parameter, declared in type(estimator)._parameter_constraints.items():
        constraints = _make_constraints(declared)
        if constraints is None:
            continue
        value = getattr(estimator, parameter)
        if not any(constraint.is_satisfied_by(value) for constraint in constraints):
            raise InvalidParameterError(
                f"The {parameter!r} parameter of {name} must be {_describe(constraints)}, "
                f"got {_short_repr(value)}."
            )
    for rule in getattr(type(estimator), "_parameter_conditions", ()):
        rule.check(estimator)


def _check_one(name: str, value, constraint, estimator: str):
    if not constraint.is_satisfied_by(value):
        where = f" of {estimator}" if estimator else ""
        raise InvalidParameterError(
            f"The {name!r} parameter{where} must be {constraint}, got {_short_repr(value)}."
        )
    return value


def check_real(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = False,
    estimator: str = "",
) -> float:
    """Return ``value`` as a float after checking it is a finite real in the given range.

    Parameters
    ----------
    name : str
        The argument's name, for the error.
    value : object
    low, high : float or None
        Bounds; ``high`` is inclusive, ``low`` is when ``low_inclusive``.
    low_inclusive : bool, default=False
    estimator : str, default=""
        Who takes the argument, for the error.

    Returns
    -------
    number : float
    """
    closed = "both" if low_inclusive else "right"
    constraint = Interval(numbers.Real, low, high, closed=closed)
    return float(_check_one(name, value, constraint, estimator))


def check_int(name: str, value, *, low: int = 1, estimator: str = "") -> int:
    """Return ``value`` as an int after checking it is an integer >= ``low``.

    Parameters
    ----------
    name : str
    value : object
    low : int, default=1
    estimator : str, default=""

    Returns
    -------
    number : int
    """
    constraint = Interval(numbers.Integral, low, None, closed="left")
    return int(_check_one(name, value, constraint, estimator))


def check_choice(name: str, value, choices, *, estimator: str = ""):
    """Return ``value`` after checking it is one of the strings ``choices``.

    Parameters
    ----------
    name : str
    value : object
    choices : iterable of str
    estimator : str, default=""

    Returns
    -------
    value : str
    """
    return _check_one(name, value, StrOptions(choices), estimator)
