"""Checks of hyperparameter values, run at the start of ``fit`` (never in ``__init__``).

Each check raises with a message that names the parameter, the expected kind of value and
what it got, in the manner of scikit-learn's own parameter validation.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_choice", "check_int", "check_real"]


def check_real(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = False,
    estimator: str = "",
) -> float:
    """Return ``value`` as a float after checking it is a finite real in the given range."""
    where = f" of {estimator}" if estimator else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"The '{name}' parameter{where} must be a real number, got {value!r}.")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"The '{name}' parameter{where} must be finite, got {value!r}.")
    if low is not None and (number < low or (number == low and not low_inclusive)):
        bound = ">=" if low_inclusive else ">"
        raise ValueError(f"The '{name}' parameter{where} must be {bound} {low}, got {value!r}.")
    if high is not None and number > high:
        raise ValueError(f"The '{name}' parameter{where} must be <= {high}, got {value!r}.")
    return number


def check_int(name: str, value, *, low: int = 1, estimator: str = "") -> int:
    """Return ``value`` as an int after checking it is an integer >= ``low``."""
    where = f" of {estimator}" if estimator else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"The '{name}' parameter{where} must be an integer, got {value!r}.")
    if value < low:
        raise ValueError(f"The '{name}' parameter{where} must be >= {low}, got {value!r}.")
    return int(value)


def check_choice(name: str, value, choices, *, estimator: str = ""):
    """Return ``value`` after checking it is one of ``choices``."""
    where = f" of {estimator}" if estimator else ""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"The '{name}' parameter{where} must be one of {options}; got {value!r}.")
    return value
