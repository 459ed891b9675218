"""CWCL weights given as a precomputed matrix over every pair of training samples."""

from __future__ import annotations

import numpy as np
import torch


def is_kernel_matrix(kernel) -> bool:
    """Whether ``kernel`` is a weight matrix (sliced per batch) rather than a kernel."""
    return isinstance(kernel, np.ndarray | torch.Tensor)


def check_kernel_matrix(kernel, loss: str, n_samples: int) -> None:
    """Raise a ValueError when a kernel matrix does not cover every pair of the samples.

    Parameters
    ----------
    kernel : object
        The estimator's ``kernel``; anything but a matrix passes.
    loss : str
        The estimator's ``loss``: with ``"clip"`` the kernel is ignored.
    n_samples : int
        Number of training pairs.
    """
    if loss == "cwcl" and is_kernel_matrix(kernel):
        shape = tuple(np.shape(kernel))
        if shape != (n_samples, n_samples):
            raise ValueError(
                f"kernel given as a matrix must hold weights for every pair of training "
                f"samples, shape ({n_samples}, {n_samples}); got {shape}."
            )
