"""Held-out pairs scored after every epoch: validation loss and paired retrieval R@1."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..metrics import recall_at_k
from .devices import autocast, to_device
from .state import TrainingState

__all__ = ["ValidationSet", "validate"]


@dataclass
class ValidationSet:
    """Held-out pairs scored after every epoch.

    Attributes
    ----------
    data : object
        Prepared student-side inputs.
    teacher_embeddings : torch.Tensor of shape (n_samples, dim)
    unique_embeddings : ndarray of shape (n_unique, dim)
        Distinct teacher-side items, the candidates of retrieval.
    inverse : ndarray of shape (n_samples,)
        Index of each pair's teacher-side item among ``unique_embeddings``.
    """

    data: object
    teacher_embeddings: torch.Tensor
    unique_embeddings: np.ndarray
    inverse: np.ndarray


def validate(
    state: TrainingState,
    validation: ValidationSet,
    collate: Callable,
    batch_loss: Callable,
    batch_size: int,
    device: torch.device,
    precision: str,
) -> dict:
    """Validation loss and paired retrieval R@1, in eval mode without gradient.

    Returns
    -------
    scores : dict
        ``valid_loss`` (``batch_loss`` averaged over the pairs) and ``valid_r1``.
    """
    model = state.model
    model.eval()
    n_samples = len(validation.teacher_embeddings)
    total, embeddings = 0.0, []
    with torch.no_grad():
        for start in range(0, n_samples, batch_size):
            indices = np.arange(start, min(start + batch_size, n_samples))
            with autocast(device, precision):
                student_embeddings = model(to_device(collate(validation.data, indices), device))
            targets = validation.teacher_embeddings[torch.from_numpy(indices).to(device)]
            total += float(batch_loss(student_embeddings, targets, None)) * len(indices)
            embeddings.append(student_embeddings.float().cpu().numpy())
    recall = recall_at_k(
        np.concatenate(embeddings), validation.unique_embeddings, validation.inverse
    )
    return {"valid_loss": total / n_samples, "valid_r1": recall}
