"""The loss of one contrastive batch, as the training loop calls it: CWCL or CLIP's.

The training loop knows no loss: it calls ``batch_loss(student_embeddings,
teacher_embeddings, indices)``. :class:`BatchLoss` is that callable for the estimators'
``loss``, ``kernel``, ``direction`` and (fixed or learned) temperature.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .kernels import target_matrix
from .losses import contrastive_loss, cwcl_loss

__all__ = ["BatchLoss", "batch_kernel", "batch_targets", "is_kernel_matrix"]


def is_kernel_matrix(kernel) -> bool:
    """True for weights given for every pair of training samples (an array)."""
    return isinstance(kernel, np.ndarray | torch.Tensor)


def batch_kernel(kernel, indices):
    """The kernel of the batch of training pairs ``indices``: a matrix is sliced to it."""
    if is_kernel_matrix(kernel):
        return torch.as_tensor(np.asarray(kernel)[np.ix_(indices, indices)])
    return kernel


def batch_targets(teacher_embeddings: torch.Tensor, indices, kernel) -> torch.Tensor:
    """The row-normalised CWCL targets of the training pairs ``indices``.

    Parameters
    ----------
    teacher_embeddings : torch.Tensor of shape (n_samples, dim)
        The teacher's embedding of every training pair.
    indices : ndarray of shape (batch_size,)
    kernel : str, WeightKernel, callable or array of shape (n_samples, n_samples)

    Returns
    -------
    targets : torch.Tensor of shape (batch_size, batch_size)
    """
    rows = torch.from_numpy(np.asarray(indices)).to(teacher_embeddings.device)
    return target_matrix(teacher_embeddings[rows].detach(), batch_kernel(kernel, indices))


class BatchLoss:
    """``loss(student_embeddings, teacher_embeddings, indices)``: one batch's training loss.

    Parameters
    ----------
    loss : {"cwcl", "clip"}
    kernel : str, WeightKernel, callable or array of shape (n_samples, n_samples)
        CWCL's kernel (see :func:`cwcl_sk.losses.cwcl_loss`); a matrix holds the weights of
        every pair of training samples and is sliced to each batch.
    direction : {"both", "student_to_teacher", "teacher_to_student"}
    temperature : float or callable
        A fixed temperature, or a callable returning the temperature tensor (a
        :class:`cwcl_sk.training.LogitScale`), through which the loss trains it.
    """

    def __init__(self, loss: str, kernel, direction: str, temperature: float | Callable):
        self.loss = loss
        self.kernel = kernel
        self.direction = direction
        self.temperature = temperature

    def __call__(self, student_embeddings, teacher_embeddings, indices) -> torch.Tensor:
        """The batch's loss; ``indices`` are positions in the training set, None in validation.

        Validation batches cannot index a training-set kernel matrix: they are scored with
        the CL loss instead.
        """
        temperature = self.temperature() if callable(self.temperature) else self.temperature
        if self.loss == "clip" or (is_kernel_matrix(self.kernel) and indices is None):
            return contrastive_loss(
                student_embeddings, teacher_embeddings, temperature, direction=self.direction
            )
        return cwcl_loss(
            student_embeddings,
            teacher_embeddings,
            temperature,
            kernel=batch_kernel(self.kernel, indices),
            direction=self.direction,
        )
