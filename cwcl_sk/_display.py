"""Readable text and HTML representations of estimators holding models or weight matrices.

scikit-learn prints every parameter with ``repr``. A ``torch.nn.Module`` or
``SentenceTransformer`` given as the teacher or student prints its whole layer tree, and a
kernel given as an (n, n) matrix prints its rows; in a notebook either buries the
estimator's settings. Such values are shown by a one-line summary instead, in ``repr``, in the
text of the HTML diagram and in its parameter table. Nothing else changes: ``get_params``
still returns the objects themselves, so ``clone`` and grid searches are unaffected.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator

__all__ = ["ReadableReprMixin", "summary"]


class _Summary:
    """A value whose ``repr`` is a given short text."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def summary(value):
    """A one-line stand-in for a model or a matrix, or ``value`` itself when it prints short.

    Parameters
    ----------
    value : object
        A parameter value.

    Returns
    -------
    shown : object
        ``value``, or an object whose ``repr`` is e.g. ``<Sequential: 1,234 parameters>`` or
        ``<ndarray of shape (60, 60)>``.
    """
    if isinstance(value, torch.nn.Module):
        n_parameters = sum(parameter.numel() for parameter in value.parameters())
        return _Summary(f"<{type(value).__name__}: {n_parameters:,} parameters>")
    if isinstance(value, np.ndarray | torch.Tensor) and value.ndim > 1:
        shape = tuple(value.shape)
        return _Summary(f"<{type(value).__name__} of shape {shape}>")
    return value


def _for_display(estimator):
    """A shallow copy of ``estimator`` whose parameters (nested ones included) print short."""
    shown = copy.copy(estimator)
    for name, value in estimator.get_params(deep=False).items():
        if isinstance(value, BaseEstimator):
            setattr(shown, name, _for_display(value))
        else:
            setattr(shown, name, summary(value))
    return shown


class ReadableReprMixin:
    """``repr`` and the HTML diagram with models and matrices summarised in one line."""

    def __repr__(self, N_CHAR_MAX=700):
        return BaseEstimator.__repr__(_for_display(self), N_CHAR_MAX=N_CHAR_MAX)

    def _get_params_html(self, deep=True, doc_link=""):
        params = super()._get_params_html(deep=deep, doc_link=doc_link)
        for name, value in params.items():
            params[name] = summary(value)
        return params
