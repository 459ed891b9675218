"""Training pairs as the estimators receive them: lengths, rows, validation splits, candidates."""

from __future__ import annotations

import numpy as np
import torch

from .inputs import check_same_length, count_samples
from .inputs.sources import InputSource, Subset

__all__ = ["as_candidates", "merge_candidates", "split_pairs", "take_rows"]


def take_rows(values, indices: np.ndarray):
    """Rows ``indices`` of an array, a data frame, a list or an input source, keeping its kind."""
    if isinstance(values, InputSource):
        return Subset(values, indices)  # still read on demand
    if isinstance(values, np.ndarray | torch.Tensor):
        return values[indices]
    if hasattr(values, "iloc"):
        return values.iloc[indices]
    return [values[index] for index in indices]


def split_pairs(
    X,
    y,
    validation_data,
    validation_fraction: float,
    allow_split: bool,
    random: np.random.RandomState,
    estimator: str,
):
    """Training pairs and validation pairs (or None) from the arguments of ``fit``.

    Parameters
    ----------
    X, y : the paired inputs
    validation_data : tuple (X_valid, y_valid) or None
        Used as given when not None.
    validation_fraction : float
        Otherwise the share of the pairs held out, drawn with ``random``.
    allow_split : bool
        False (``partial_fit``) never holds pairs out.
    random : numpy.random.RandomState
    estimator : str
        The estimator's name, for messages.

    Returns
    -------
    X_train, y_train, validation : the training pairs and ``(X_valid, y_valid)`` or None
    """
    if y is None:
        raise ValueError(
            f"{estimator} requires y to be passed, but the target y is None: "
            "y holds the teacher-side half of each pair."
        )
    if validation_data is not None:
        if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
            raise ValueError(
                "validation_data must be a pair (X_valid, y_valid), got "
                f"{type(validation_data).__name__}."
            )
        return X, y, tuple(validation_data)
    if not allow_split or validation_fraction == 0:
        return X, y, None
    n_samples = count_samples(X, "X")
    check_same_length(n_samples, count_samples(y, "y"))
    n_valid = round(validation_fraction * n_samples)
    if n_valid < 1 or n_valid >= n_samples:
        raise ValueError(
            f"validation_fraction={validation_fraction} of {n_samples} pairs leaves "
            f"{n_valid} for validation and {n_samples - n_valid} for training; both need "
            "at least one."
        )
    order = random.permutation(n_samples)
    valid, train = np.sort(order[:n_valid]), np.sort(order[n_valid:])
    return take_rows(X, train), take_rows(y, train), (take_rows(X, valid), take_rows(y, valid))


def as_candidates(items) -> np.ndarray:
    """Candidates as an array: 1-D of objects for texts, 2-D for embedding rows."""
    if isinstance(items, np.ndarray) and items.ndim == 2:
        return items
    if len(items) and isinstance(items[0], np.ndarray):
        return np.stack(items)
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _key(item):
    return item.tobytes() if isinstance(item, np.ndarray) else item


def merge_candidates(candidates, candidate_embeddings, uniques, unique_embeddings):
    """``candidates`` and their embeddings, followed by the items of ``uniques`` not in them.

    Returns
    -------
    candidates : ndarray
    candidate_embeddings : ndarray of shape (n_candidates, dim)
    """
    known = {_key(item) for item in candidates}
    new = [index for index, item in enumerate(uniques) if _key(item) not in known]
    if not new:
        return candidates, candidate_embeddings
    merged = as_candidates([*list(candidates), *[uniques[index] for index in new]])
    return merged, np.concatenate([candidate_embeddings, unique_embeddings[new]])
