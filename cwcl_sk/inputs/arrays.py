"""Numeric inputs: feature rows for students, embedding rows for a precomputed teacher."""

from __future__ import annotations

import numbers

import numpy as np
import torch

__all__ = [
    "FeatureInputs",
    "check_embeddings",
    "check_features",
    "check_same_length",
    "count_samples",
    "unique_float_rows",
    "unique_rows",
]


def _numeric_array(values, argument: str, what: str) -> np.ndarray:
    """Convert to a float32 array, rejecting strings, objects, complex numbers and None."""
    if values is None:
        raise ValueError(f"{argument} is None; expected {what}.")
    if hasattr(values, "toarray") or type(values).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{argument} is a sparse matrix; expected dense {what}. Use .toarray().")
    if isinstance(values, str):
        raise TypeError(f"{argument} is a string; expected {what}.")
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as error:  # ragged nested lists
        raise ValueError(f"{argument} could not be read as {what}: {error}") from None
    if np.iscomplexobj(array):
        raise ValueError(
            f"Complex data not supported: {argument} has dtype {array.dtype}; expected {what} "
            "with real values."
        )
    if array.dtype.kind not in "biuf":
        try:
            array = array.astype(np.float64)
        except (ValueError, TypeError) as error:
            raise TypeError(
                f"{argument} has dtype {array.dtype} with values that are not numbers ({error}); "
                f"expected {what}."
            ) from None
    return array.astype(np.float32, copy=False)


def _check_finite(array: np.ndarray, argument: str) -> None:
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        kind = "NaN" if np.isnan(array[tuple(bad)]) else "inf"
        raise ValueError(
            f"{argument} contains NaN or inf values (first {kind} at index {tuple(bad.tolist())}); "
            "expected finite numbers."
        )


def check_features(X, argument: str = "X") -> np.ndarray:
    """Validate numeric feature rows for a feature-based student.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Real, finite numbers. A 1-D input is rejected (reshape it explicitly).
    argument : str, default="X"
        Name used in error messages.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features), dtype float32

    Raises
    ------
    ValueError
        On wrong dimensionality, no samples, no features, NaN or inf.
    TypeError
        On non-numeric, complex or sparse input.
    """
    array = _numeric_array(X, argument, "a 2-D array of numbers (n_samples, n_features)")
    if array.ndim != 2:
        hint = (
            " Reshape your data with X.reshape(-1, 1) if it has one feature, or "
            "X.reshape(1, -1) if it is one sample."
            if array.ndim == 1
            else ""
        )
        raise ValueError(
            f"{argument} must be a 2-D array (n_samples, n_features), got {array.ndim}-D "
            f"with shape {array.shape}.{hint}"
        )
    if array.shape[0] == 0:
        raise ValueError(
            f"{argument} has 0 sample(s) (shape={array.shape}) while a minimum of 1 is required."
        )
    if array.shape[1] == 0:
        raise ValueError(
            f"{argument} has 0 feature(s) (shape={array.shape}) while a minimum of 1 is required."
        )
    _check_finite(array, argument)
    return np.ascontiguousarray(array)


def check_embeddings(y, argument: str = "y", n_dims: int | None = None) -> np.ndarray:
    """Validate precomputed embeddings (one row per sample) and L2-normalise them.

    Parameters
    ----------
    y : array-like of shape (n_samples, dim)
    argument : str, default="y"
    n_dims : int, optional
        The width the rows must have (the width seen in ``fit``).

    Returns
    -------
    embeddings : ndarray of shape (n_samples, dim), dtype float32, rows of unit norm
    """
    array = _numeric_array(y, argument, "a 2-D array of embeddings (n_samples, dim)")
    if array.ndim != 2:
        raise ValueError(
            f"{argument} must be a 2-D array of embeddings (n_samples, dim) for a precomputed "
            f"teacher, got shape {array.shape}."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{argument} is empty (shape {array.shape}).")
    if n_dims is not None and array.shape[1] != n_dims:
        raise ValueError(
            f"{argument} has embeddings of width {array.shape[1]}, expected {n_dims} as in fit."
        )
    _check_finite(array, argument)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        index = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise ValueError(f"{argument} row {index} is all zeros; it has no direction to align to.")
    return np.ascontiguousarray(array / norms, dtype=np.float32)


def count_samples(values, argument: str = "X") -> int:
    """The number of samples in ``values``: rows of an array, items of a list.

    Parameters
    ----------
    values : sequence or array
    argument : str, default="X"
        Name used in error messages.

    Returns
    -------
    n_samples : int
    """
    # A 0-d array has __len__ but no length.
    zero_dimensional = isinstance(values, np.ndarray) and values.ndim == 0
    if values is None or not hasattr(values, "__len__") or zero_dimensional:
        raise TypeError(
            f"{argument} must be a sequence or an array with one entry per sample, got "
            f"{type(values).__name__}."
        )
    return len(values)


def check_same_length(X_length: int, y_length: int, X_name: str = "X", y_name: str = "y") -> None:
    """Raise a ValueError when paired inputs differ in length."""
    if X_length != y_length:
        raise ValueError(
            f"{X_name} and {y_name} must be paired one to one, but {X_name} has {X_length} "
            f"samples and {y_name} has {y_length}."
        )


def unique_rows(items) -> tuple[list, np.ndarray]:
    """Unique items in order of first appearance and, for each input, its unique index.

    Works for strings (any hashable) and for rows of a 2-D array (compared by value).

    Returns
    -------
    uniques : list
    inverse : ndarray of shape (n_items,), dtype int64
    """
    keys = [row.tobytes() for row in items] if isinstance(items, np.ndarray) else list(items)
    position: dict = {}
    uniques = []
    inverse = np.empty(len(keys), dtype=np.int64)
    for index, key in enumerate(keys):
        if key not in position:
            position[key] = len(uniques)
            uniques.append(items[index])
        inverse[index] = position[key]
    return uniques, inverse


def unique_float_rows(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`unique_rows` of a float32 (n, dim) array, in NumPy instead of a Python loop.

    Rows are equal when their bits are, as in :func:`unique_rows`. Returns the unique rows in
    order of first appearance, shape (n_unique, dim), and each row's index among them.
    """
    bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)  # (n, dim)
    # A key from the first two columns; it is checked against whole rows below, so a key
    # shared by different rows (all but impossible for real embeddings) only costs time.
    keys = bits[:, 0].astype(np.uint64) << np.uint64(32)
    if bits.shape[1] > 1:
        keys |= bits[:, 1]
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if len(first) == len(array):
        # Distinct keys: the rows are distinct, and they are their own uniques.
        return array, np.arange(len(array))
    inverse = inverse.reshape(-1)
    if not np.array_equal(bits, bits[first[inverse]]):
        uniques, inverse = unique_rows(array)
        return np.stack(uniques), inverse
    order = np.argsort(first)  # unique keys by first appearance
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    return array[first[order]], position[inverse]


def split_items(X, argument: str, expected: str, noun: str, numeric_items) -> list:
    """Split a collection ``X`` of media (clips, images) into a list of items.

    The part every modality shares: None, arrays of objects or strings (one path or object
    per item), lists, tuples and other iterables. A numeric array is the modality's to read:
    ``numeric_items(array)`` returns its items or raises an error that says why it cannot be
    a set of ``noun``s.

    Parameters
    ----------
    X : object
        What the user passed.
    argument : str
        Its name in error messages (``"X"``).
    expected : str
        What was expected, for error messages.
    noun : str
        One item, e.g. ``"clip"``.
    numeric_items : callable
        ``numeric_items(array) -> list`` for a numeric ndarray.

    Returns
    -------
    items : list
        At least one item.
    """
    if X is None:
        raise ValueError(f"{argument} is None; expected {expected}.")
    if not isinstance(X, list | tuple) and hasattr(X, "__array__"):
        X = np.asarray(X)
    if isinstance(X, np.ndarray) and X.dtype != object and X.dtype.kind not in "US":
        items = numeric_items(X)
    elif isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise ValueError(
                f"{argument} must be a 1-D sequence of {noun}s or paths; got an array of "
                f"{X.dtype} with shape {X.shape}."
            )
        items = X.tolist()
    elif isinstance(X, list | tuple) or hasattr(X, "__iter__"):
        items = list(X)
    else:
        raise TypeError(f"{argument} is {type(X).__name__}; expected {expected}.")
    if not items:
        raise ValueError(f"{argument} is empty; expected at least one {noun}.")
    return items


def is_integer(value) -> bool:
    """True for Python and NumPy integers, but not for booleans."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class FeatureInputs:
    """Student-side numeric feature rows: validated once, batched as float32 tensors.

    Every student modality has such a handler (``prepare`` the whole set once, ``collate`` a
    batch by index), so the training loop never needs to know which modality it trains.
    """

    kind = "features"

    def __init__(self, sampling_rate: int | None = None):
        # Feature rows have no sampling rate; accepted so every handler shares one signature.
        self.sampling_rate = sampling_rate

    def prepare(self, X, argument: str = "X") -> np.ndarray:
        """Validate ``X`` (see :func:`check_features`) and return it as float32."""
        return check_features(X, argument)

    def collate(self, data: np.ndarray, indices) -> torch.Tensor:
        """The rows ``indices`` of the prepared data as a (batch, n_features) tensor."""
        return torch.from_numpy(data[np.asarray(indices)])

    def n_features(self, data: np.ndarray) -> int:
        """Width of the prepared rows (sklearn's ``n_features_in_``)."""
        return int(data.shape[1])
